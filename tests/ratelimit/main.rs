//! Rate-limit layer and policy tests (being written).
