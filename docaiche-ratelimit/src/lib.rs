//! docaiche-ratelimit
