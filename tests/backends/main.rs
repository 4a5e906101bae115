//! Backend reachability (placeholder).
