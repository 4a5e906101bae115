//! Cost of one in-process rate-limit decision, against bare `governor`.
//!
//! Run with `cargo bench --bench ratelimit`. One group, `ratelimit`; each
//! variant is measured on one hot key and on 10,000 keys taken in turn:
//!
//! | variant | what it runs |
//! |---|---|
//! | `governor_check_key` | the baseline: `DefaultKeyedRateLimiter<String>::check_key` (DashMap, quanta clock) |
//! | `local_check_sync` | `LocalRateLimiter::check_sync`, the same decision without a future |
//! | `local_check_sync_tsc` | the same on a `Clock` over governor's quanta clock: the clocks equalised |
//! | `local_check_now_dyn` | `RateLimiter::check_now` through `&dyn RateLimiter`: the synchronous fast path the rate-limit layer takes first |
//! | `local_check_dyn` | `RateLimiter::check` through `&dyn RateLimiter`, awaited |
//! | `local_peek_dyn` | `RateLimiter::peek` through `&dyn RateLimiter`, awaited |
//! | `noop_check_dyn` | a `dyn RateLimiter` that decides nothing: the price of the `async_trait` box alone |
//!
//! Fairness: both limiters use `String` keys built before the loop (ours
//! wrapped in `RateLimitKey`), the same quota (one unit per millisecond,
//! bursts of `u32::MAX`: every decision allows and stores, and no key goes
//! idle between visits), and their own production clock
//! (governor's quanta TSC clock, our `SystemClock` on `Instant`, which costs
//! more per read: `local_check_sync_tsc` gives ours governor's clock to show
//! how much of the gap is the clock). The `dyn`
//! variants run in `b.to_async` on a current-thread tokio runtime, which
//! blocks on one future for the whole timing loop, so no per-iteration
//! `block_on` is measured; `noop_check_dyn` is what the trait call itself
//! costs, so `local_check_dyn − noop_check_dyn ≈ local_check_sync`.
//! Target: `local_check_now_dyn` (what the layer pays per limit with an
//! in-process limiter) within 1.5× of `governor_check_key`.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use docaiche_core::Result;
use docaiche_core::clock::{BoxFuture, Clock, SystemClock};
use docaiche_core::rate_limit::{Quota, RateLimitDecision, RateLimitKey, RateLimiter};
use docaiche_ratelimit::local::LocalRateLimiter;
use governor::DefaultKeyedRateLimiter;
use governor::clock::{Clock as _, QuantaClock, QuantaInstant, Reference as _};

/// Keys in the rotating case.
const ROTATING_KEYS: usize = 10_000;

/// The emission interval of both limiters' quota.
const INTERVAL: Duration = Duration::from_millis(1);

/// The burst of both limiters' quota: so large that no decision in the run
/// is denied, while every key stays active (its TAT ahead of the clock) from
/// one visit to the next, as keys in a busy server do.
const BURST: NonZeroU32 = NonZeroU32::MAX;

/// A limiter that allows everything without looking: the trait's own cost.
#[derive(Debug)]
struct Noop;

#[async_trait::async_trait]
impl RateLimiter for Noop {
    async fn check(
        &self,
        _key: &RateLimitKey,
        quota: &Quota,
        _cost: NonZeroU32,
    ) -> Result<RateLimitDecision> {
        Ok(RateLimitDecision::allow(
            quota.limit.get(),
            0,
            Duration::ZERO,
        ))
    }

    async fn peek(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Result<RateLimitDecision> {
        self.check(key, quota, cost).await
    }
}

/// A [`Clock`] on governor's quanta (TSC) clock, as governor reads time.
#[derive(Debug)]
struct TscClock {
    clock: QuantaClock,
    origin: QuantaInstant,
}

impl TscClock {
    fn new() -> Self {
        let clock = QuantaClock::default();
        let origin = clock.now();
        Self { clock, origin }
    }
}

impl Clock for TscClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }

    fn monotonic(&self) -> Duration {
        self.clock.now().duration_since(self.origin).into()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The key names of one case: `hot_key` is one name, `rotating_10k` many.
fn names(case: &str) -> Vec<String> {
    let count = if case == "hot_key" { 1 } else { ROTATING_KEYS };
    (0..count)
        .map(|index| format!("ip:198.51.{}.{}", index / 256, index % 256))
        .collect()
}

/// An endless walk over `items`, one per call.
fn cycle<'a, T>(items: &'a [T]) -> impl FnMut() -> &'a T + 'a {
    let mut index = 0;
    move || {
        let item = &items[index];
        index = (index + 1) % items.len();
        item
    }
}

fn ratelimit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let quota = Quota::new(BURST, INTERVAL * BURST.get()).expect("valid quota");
    let mut group = c.benchmark_group("ratelimit");
    group.throughput(Throughput::Elements(1));

    for case in ["hot_key", "rotating_10k"] {
        let names = names(case);
        let keys: Vec<RateLimitKey> = names
            .iter()
            .map(|name| RateLimitKey::new(name.as_str()).expect("valid key"))
            .collect();

        let governor: DefaultKeyedRateLimiter<String> = governor::RateLimiter::keyed(
            governor::Quota::with_period(INTERVAL)
                .expect("non-zero")
                .allow_burst(BURST),
        );
        group.bench_function(BenchmarkId::new("governor_check_key", case), |b| {
            let mut next = cycle(&names);
            b.iter(|| black_box(governor.check_key(next()).is_ok()));
        });

        let local = LocalRateLimiter::new(Arc::new(SystemClock::new()));
        group.bench_function(BenchmarkId::new("local_check_sync", case), |b| {
            let mut next = cycle(&keys);
            b.iter(|| black_box(local.check_sync(next(), &quota, NonZeroU32::MIN)));
        });

        let tsc = LocalRateLimiter::new(Arc::new(TscClock::new()));
        group.bench_function(BenchmarkId::new("local_check_sync_tsc", case), |b| {
            let mut next = cycle(&keys);
            b.iter(|| black_box(tsc.check_sync(next(), &quota, NonZeroU32::MIN)));
        });

        let limiter: &dyn RateLimiter = &local;
        group.bench_function(BenchmarkId::new("local_check_now_dyn", case), |b| {
            let mut next = cycle(&keys);
            b.iter(|| black_box(limiter.check_now(next(), &quota, NonZeroU32::MIN)));
        });
        group.bench_function(BenchmarkId::new("local_check_dyn", case), |b| {
            let mut next = cycle(&keys);
            b.to_async(&runtime).iter(|| {
                let key = next();
                async move { black_box(limiter.check(key, &quota, NonZeroU32::MIN).await) }
            });
        });
        group.bench_function(BenchmarkId::new("local_peek_dyn", case), |b| {
            let mut next = cycle(&keys);
            b.to_async(&runtime).iter(|| {
                let key = next();
                async move { black_box(limiter.peek(key, &quota, NonZeroU32::MIN).await) }
            });
        });

        let noop: &dyn RateLimiter = &Noop;
        group.bench_function(BenchmarkId::new("noop_check_dyn", case), |b| {
            let mut next = cycle(&keys);
            b.to_async(&runtime).iter(|| {
                let key = next();
                async move { black_box(noop.check(key, &quota, NonZeroU32::MIN).await) }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, ratelimit);
criterion_main!(benches);
