//! Per-call overhead of the resilience wrappers on the happy path.
//!
//! Run with `cargo bench --bench resilience`. Every variant awaits the same
//! async call returning `Ok(1u64)` on a current-thread tokio runtime; `bare`
//! is that call alone, so each wrapper's overhead reads as the difference.
//! Target: under 100 ns per call for each wrapper.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use docaiche_core::Error;
use docaiche_core::clock::{Clock, SystemClock};
use docaiche_core::resilience::{
    CircuitBreaker, Retry, RetryBudget, RetryPolicy, SingleFlight, Timeout,
};

/// The protected operation: an async call that succeeds at once.
async fn operation() -> Result<u64, Error> {
    Ok(black_box(1))
}

fn resilience(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());

    let breaker = CircuitBreaker::builder("bench")
        .clock(Arc::clone(&clock))
        .build()
        .expect("valid breaker");
    let policy = RetryPolicy::builder().build().expect("valid policy");
    let retry = Retry::new(policy, Arc::clone(&clock));
    let budget = RetryBudget::builder()
        .clock(Arc::clone(&clock))
        .build()
        .expect("valid budget");
    let budgeted_retry = Retry::new(policy, Arc::clone(&clock)).with_budget(budget);
    let group: SingleFlight<u64, u64> = SingleFlight::new();
    let timeout = Timeout::new(Duration::from_secs(5), "bench", Arc::clone(&clock));

    let mut g = c.benchmark_group("resilience");
    g.throughput(Throughput::Elements(1));

    g.bench_function(BenchmarkId::new("bare", "ok"), |b| {
        b.to_async(&runtime).iter(operation);
    });
    g.bench_function(BenchmarkId::new("circuit_breaker", "closed"), |b| {
        b.to_async(&runtime).iter(|| breaker.call(operation));
    });
    g.bench_function(BenchmarkId::new("retry", "first_try"), |b| {
        b.to_async(&runtime).iter(|| retry.call(operation));
    });
    g.bench_function(BenchmarkId::new("retry", "first_try_with_budget"), |b| {
        b.to_async(&runtime).iter(|| budgeted_retry.call(operation));
    });
    g.bench_function(BenchmarkId::new("single_flight", "uncontended"), |b| {
        b.to_async(&runtime)
            .iter(|| group.run(black_box(7), operation));
    });
    g.bench_function(BenchmarkId::new("timeout", "ready"), |b| {
        b.to_async(&runtime).iter(|| timeout.call(operation()));
    });
    g.finish();
}

criterion_group!(benches, resilience);
criterion_main!(benches);
