//! Redis rate-limiter benchmarks (being written).
fn main() {}
