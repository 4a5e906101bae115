//! Audit trail benchmarks (filled in below).
fn main() {}
