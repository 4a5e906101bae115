//! Rate-limiter benchmarks (being written).
fn main() {}
