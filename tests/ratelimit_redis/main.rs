//! Redis limiter tests (being written).
