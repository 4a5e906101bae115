//! docaiche-store
