//! docaiche-auth
