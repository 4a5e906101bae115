//! docaiche-compliance
