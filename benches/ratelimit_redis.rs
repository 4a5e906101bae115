//! Decisions per second and latency of [`RedisRateLimiter`] under many
//! concurrent callers, against a real Redis.
//!
//! ```text
//! DOCAICHE_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench --features redis --bench ratelimit_redis
//! ./scripts/bench-redis-limiter.sh     # the same, beside redis-benchmark running the same EVALSHA
//! ```
//!
//! `tasks` callers (default 64) on a multi-thread runtime share one limiter
//! (one multiplexed connection, as a server would) and call `check` as fast
//! as they can for `seconds` (default 5), each on random keys out of 100 000
//! under a quota that allows nearly everything, so each decision is a full
//! read-decide-write of the script. Prints decisions/s and the p50/p90/p99
//! latency of one decision, and a last line `decisions_per_sec=<n>` for
//! scripts. Environment: `DOCAICHE_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`), `DOCAICHE_BENCH_TASKS`,
//! `DOCAICHE_BENCH_SECONDS`, `DOCAICHE_BENCH_KEYS`.
//!
//! A custom `main` (harness = false) rather than criterion: the figure that
//! matters is aggregate throughput under concurrency, which criterion's
//! one-call-at-a-time loop does not measure. `cargo bench` passes `--bench`;
//! any other run (`cargo test --benches`) does a 1-second smoke run with 4
//! tasks.

use std::env;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use docaiche::core::rate_limit::{Quota, RateLimitKey, RateLimiter};
use docaiche::ratelimit::redis::RedisRateLimiter;

fn setting(name: &str, default: u64) -> u64 {
    env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn main() {
    let full = env::args().any(|arg| arg == "--bench");
    let url =
        env::var("DOCAICHE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let tasks = setting("DOCAICHE_BENCH_TASKS", if full { 64 } else { 4 });
    let seconds = setting("DOCAICHE_BENCH_SECONDS", if full { 5 } else { 1 });
    let keys = setting("DOCAICHE_BENCH_KEYS", 100_000).max(1);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(&url, tasks, Duration::from_secs(seconds), keys));
}

async fn run(url: &str, tasks: u64, duration: Duration, keys: u64) {
    let limiter = RedisRateLimiter::builder(url)
        .key_prefix("docaiche:bench")
        .timeout(Duration::from_secs(1))
        .build()
        .await
        .expect("a valid Redis URL");
    if let Err(error) = limiter.ping().await {
        eprintln!("ratelimit_redis bench: no Redis at {url} ({error}); skipped");
        return;
    }
    let quota = Quota::per_second(NonZeroU32::new(1_000_000).expect("non-zero"));
    let key_names: Vec<RateLimitKey> = (0..keys)
        .map(|i| RateLimitKey::new(format!("key:{i}")).expect("valid key"))
        .collect();
    let key_names = std::sync::Arc::new(key_names);

    // Warm up: connect and load the script.
    limiter
        .check(&key_names[0], &quota, NonZeroU32::MIN)
        .await
        .expect("a first decision");

    let started = Instant::now();
    let deadline = started + duration;
    let mut handles = Vec::new();
    for task in 0..tasks {
        let limiter = limiter.clone();
        let key_names = std::sync::Arc::clone(&key_names);
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut errors = 0_u64;
            // A cheap per-task LCG picks keys; quality does not matter.
            let mut state = task.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let len = key_names.len() as u64;
            while Instant::now() < deadline {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let index = usize::try_from((state >> 33) % len).unwrap_or(0);
                let begun = Instant::now();
                match limiter
                    .check(&key_names[index], &quota, NonZeroU32::MIN)
                    .await
                {
                    Ok(_) => latencies.push(begun.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for handle in handles {
        let (mut l, e) = handle.await.expect("a bench task");
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |p: f64| {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a percentile index into a non-empty vector"
        )]
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(index).copied().unwrap_or_default()
    };
    #[expect(clippy::cast_precision_loss, reason = "a count of decisions")]
    let per_sec = latencies.len() as f64 / elapsed.as_secs_f64();
    println!(
        "redis limiter: {tasks} tasks, {keys} keys, {elapsed:.2?}: {} decisions ({errors} errors), \
         {per_sec:.0} decisions/s; latency p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0),
    );
    println!("decisions_per_sec={per_sec:.0}");
}
