//! docaiche-extract
