//! Conformance suite runs (placeholder).
