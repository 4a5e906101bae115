use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use docaiche_core::clock::ManualClock;

use super::*;

const MS: Duration = Duration::from_millis(1);

fn setup() -> (ManualClock, LocalRateLimiter) {
    let clock = ManualClock::new();
    let limiter = LocalRateLimiter::new(Arc::new(clock.clone()));
    (clock, limiter)
}

fn quota(limit: u32, period: Duration) -> Quota {
    Quota::new(NonZeroU32::new(limit).expect("non-zero"), period).expect("valid quota")
}

fn key(name: &str) -> RateLimitKey {
    RateLimitKey::new(name).expect("valid key")
}

fn cost(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero")
}

const ONE: NonZeroU32 = NonZeroU32::MIN;

#[test]
fn burst_of_limit_passes_then_next_is_denied_with_retry_after_exactly_t() {
    let (_clock, limiter) = setup();
    let quota = quota(10, Duration::from_secs(1));
    let key = key("user:a");
    for expected in (0..10).rev() {
        let decision = limiter.check_sync(&key, &quota, ONE);
        assert!(decision.allowed);
        assert_eq!(decision.remaining, expected);
        assert_eq!(decision.limit, 10);
        assert_eq!(decision.retry_after, None);
    }
    let denied = limiter.check_sync(&key, &quota, ONE);
    assert!(!denied.allowed);
    assert_eq!(denied.remaining, 0);
    assert_eq!(denied.retry_after, Some(100 * MS));
    assert_eq!(denied.reset_after, Duration::from_secs(1));
}

#[test]
fn retry_after_is_exact_to_the_nanosecond() {
    let (clock, limiter) = setup();
    let quota = quota(2, Duration::from_secs(1));
    let key = key("user:a");
    assert!(limiter.check_sync(&key, &quota, ONE).allowed);
    assert!(limiter.check_sync(&key, &quota, ONE).allowed);
    clock.advance(123 * MS);
    let denied = limiter.check_sync(&key, &quota, ONE);
    assert_eq!(denied.retry_after, Some(377 * MS));
    clock.advance(377 * MS - Duration::from_nanos(1));
    let still = limiter.check_sync(&key, &quota, ONE);
    assert_eq!(still.retry_after, Some(Duration::from_nanos(1)));
    clock.advance(Duration::from_nanos(1));
    assert!(limiter.check_sync(&key, &quota, ONE).allowed);
}

#[test]
fn steady_rate_of_one_per_t_passes_forever() {
    let (clock, limiter) = setup();
    let quota = quota(5, Duration::from_secs(1));
    let key = key("user:a");
    for _ in 0..5 {
        assert!(limiter.check_sync(&key, &quota, ONE).allowed);
    }
    for round in 0..10_000 {
        clock.advance(200 * MS);
        let decision = limiter.check_sync(&key, &quota, ONE);
        assert!(decision.allowed, "round {round}");
        assert_eq!(decision.remaining, 0);
        // A second request in the same instant is one too many.
        let extra = limiter.peek_sync(&key, &quota, ONE);
        assert_eq!(extra.retry_after, Some(200 * MS));
    }
}

#[test]
fn denied_check_consumes_nothing() {
    let (clock, limiter) = setup();
    let quota = quota(1, Duration::from_secs(1));
    let key = key("user:a");
    assert!(limiter.check_sync(&key, &quota, ONE).allowed);
    for _ in 0..100 {
        assert!(!limiter.check_sync(&key, &quota, ONE).allowed);
    }
    clock.advance(Duration::from_secs(1));
    assert!(limiter.check_sync(&key, &quota, ONE).allowed);
}

#[test]
fn cost_above_one_consumes_n_and_retry_after_is_exact() {
    let (clock, limiter) = setup();
    let quota = quota(10, Duration::from_secs(1));
    let key = key("upload:a");
    let first = limiter.check_sync(&key, &quota, cost(4));
    assert!(first.allowed);
    assert_eq!(first.remaining, 6);
    assert_eq!(first.reset_after, 400 * MS);
    let second = limiter.check_sync(&key, &quota, cost(4));
    assert!(second.allowed);
    assert_eq!(second.remaining, 2);
    // 8 of 10 used: a cost of 4 needs two more units, 200 ms away.
    let denied = limiter.check_sync(&key, &quota, cost(4));
    assert!(!denied.allowed);
    assert_eq!(denied.remaining, 2);
    assert_eq!(denied.retry_after, Some(200 * MS));
    assert_eq!(denied.reset_after, 800 * MS);
    // ...while a cost of 2 still fits.
    assert!(limiter.peek_sync(&key, &quota, cost(2)).allowed);
    clock.advance(200 * MS - Duration::from_nanos(1));
    assert!(!limiter.check_sync(&key, &quota, cost(4)).allowed);
    clock.advance(Duration::from_nanos(1));
    let passed = limiter.check_sync(&key, &quota, cost(4));
    assert!(passed.allowed);
    assert_eq!(passed.remaining, 0);
    assert_eq!(passed.reset_after, Duration::from_secs(1));
}

#[test]
fn cost_equal_to_limit_passes_only_on_a_full_bucket() {
    let (clock, limiter) = setup();
    let quota = quota(10, Duration::from_secs(1));
    let key = key("batch:a");
    assert!(limiter.check_sync(&key, &quota, ONE).allowed);
    let denied = limiter.check_sync(&key, &quota, cost(10));
    assert_eq!(denied.retry_after, Some(100 * MS));
    clock.advance(100 * MS);
    assert!(limiter.check_sync(&key, &quota, cost(10)).allowed);
}

#[test]
fn cost_above_limit_is_always_denied_with_retry_after_equal_to_reset_after() {
    let (clock, limiter) = setup();
    let quota = quota(10, Duration::from_secs(1));
    let key = key("batch:a");
    let fresh = limiter.check_sync(&key, &quota, cost(11));
    assert!(!fresh.allowed);
    assert_eq!(fresh.remaining, 10);
    assert_eq!(fresh.retry_after, Some(fresh.reset_after));
    assert!(limiter.check_sync(&key, &quota, cost(3)).allowed);
    for _ in 0..3 {
        let denied = limiter.check_sync(&key, &quota, cost(11));
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, Some(denied.reset_after));
        clock.advance(Duration::from_secs(3600));
    }
    // It consumed nothing: the bucket is full.
    assert_eq!(limiter.peek_sync(&key, &quota, ONE).remaining, 9);
}

#[test]
fn peek_never_consumes() {
    let (_clock, limiter) = setup();
    let quota = quota(1, Duration::from_secs(1));
    let key = key("user:a");
    for _ in 0..1000 {
        assert!(limiter.peek_sync(&key, &quota, ONE).allowed);
    }
    assert!(limiter.is_empty(), "peek stores nothing for a new key");
    assert!(limiter.check_sync(&key, &quota, ONE).allowed);
    for _ in 0..1000 {
        assert!(!limiter.peek_sync(&key, &quota, ONE).allowed);
    }
}

#[test]
fn peek_agrees_with_the_following_check() {
    let (clock, limiter) = setup();
    let quota = quota(3, Duration::from_millis(300));
    let key = key("user:a");
    // A mix of costs and pauses crossing allow/deny boundaries.
    let steps = [
        (1, 0),
        (2, 0),
        (1, 0),
        (1, 50),
        (1, 50),
        (3, 100),
        (2, 250),
        (4, 0),
        (1, 1),
    ];
    for (n, pause) in steps {
        clock.advance(u32::try_from(pause).map_or(Duration::ZERO, |ms| ms * MS));
        let peeked = limiter.peek_sync(&key, &quota, cost(n));
        let checked = limiter.check_sync(&key, &quota, cost(n));
        assert_eq!(peeked, checked, "cost {n} after {pause} ms");
    }
}

#[test]
fn remaining_and_reset_after_are_exact_at_several_points() {
    let (clock, limiter) = setup();
    let quota = quota(4, Duration::from_secs(2)); // T = 500 ms
    let key = key("user:a");
    // Peek answers what check would, so its figures are after the request.
    let fresh = limiter.peek_sync(&key, &quota, ONE);
    assert_eq!((fresh.remaining, fresh.reset_after), (3, 500 * MS));
    let after_three = limiter.check_sync(&key, &quota, cost(3));
    assert_eq!(
        (after_three.remaining, after_three.reset_after),
        (1, 1500 * MS)
    );
    clock.advance(499 * MS);
    let almost = limiter.peek_sync(&key, &quota, ONE);
    assert_eq!((almost.remaining, almost.reset_after), (0, 1501 * MS));
    clock.advance(MS);
    let one_back = limiter.peek_sync(&key, &quota, ONE);
    assert_eq!((one_back.remaining, one_back.reset_after), (1, 1500 * MS));
    let emptied = limiter.check_sync(&key, &quota, cost(2));
    assert_eq!((emptied.remaining, emptied.reset_after), (0, 2000 * MS));
    // A denial reports the state as it is.
    let denied = limiter.check_sync(&key, &quota, ONE);
    assert_eq!((denied.remaining, denied.reset_after), (0, 2000 * MS));
    clock.advance(1250 * MS);
    let partial = limiter.check_sync(&key, &quota, ONE);
    assert_eq!((partial.remaining, partial.reset_after), (1, 1250 * MS));
    clock.advance(1250 * MS);
    let full = limiter.check_sync(&key, &quota, ONE);
    assert_eq!((full.remaining, full.reset_after), (3, 500 * MS));
}

#[test]
fn different_keys_are_independent() {
    let (_clock, limiter) = setup();
    let quota = quota(2, Duration::from_secs(1));
    let (a, b) = (key("ip:192.0.2.1"), key("ip:192.0.2.2"));
    assert!(limiter.check_sync(&a, &quota, cost(2)).allowed);
    assert!(!limiter.check_sync(&a, &quota, ONE).allowed);
    let other = limiter.check_sync(&b, &quota, ONE);
    assert!(other.allowed);
    assert_eq!(other.remaining, 1);
    assert_eq!(limiter.len(), 2);
}

#[test]
fn quotas_on_the_same_key_share_one_tat() {
    let (_clock, limiter) = setup();
    let slow = quota(10, Duration::from_secs(1)); // T = 100 ms, C = 1 s
    let fast = quota(100, Duration::from_secs(1)); // T = 10 ms, C = 1 s
    let key = key("tenant:acme");
    assert!(limiter.check_sync(&key, &slow, cost(5)).allowed);
    // 500 ms of backlog is half of either bucket.
    let seen_fast = limiter.peek_sync(&key, &fast, ONE);
    assert_eq!((seen_fast.remaining, seen_fast.reset_after), (49, 510 * MS));
    let taken = limiter.check_sync(&key, &fast, cost(50));
    assert!(taken.allowed);
    assert_eq!(taken.reset_after, Duration::from_secs(1));
    let seen_slow = limiter.check_sync(&key, &slow, ONE);
    assert!(!seen_slow.allowed);
    assert_eq!(seen_slow.retry_after, Some(100 * MS));
    // A smaller quota sees a backlog beyond its capacity as empty, not an error.
    let tiny = quota(1, Duration::from_millis(10));
    let denied = limiter.check_sync(&key, &tiny, ONE);
    assert_eq!(denied.remaining, 0);
    assert_eq!(denied.retry_after, Some(1000 * MS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checks_on_one_key_with_a_frozen_clock_allow_exactly_limit() {
    let clock = ManualClock::new();
    let limiter: Arc<dyn RateLimiter> = Arc::new(LocalRateLimiter::new(Arc::new(clock)));
    let quota = quota(100, Duration::from_secs(60));
    let allowed = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (limiter, allowed) = (Arc::clone(&limiter), Arc::clone(&allowed));
            tokio::spawn(async move {
                let key = key("tenant:shared");
                for _ in 0..1000 {
                    let decision = limiter
                        .check(&key, &quota, ONE)
                        .await
                        .expect("local never fails");
                    if decision.allowed {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task completes");
    }
    assert_eq!(allowed.load(Ordering::Relaxed), 100);
}

#[tokio::test]
async fn the_trait_answers_as_the_sync_methods() {
    let (_clock, local) = setup();
    let limiter: &dyn RateLimiter = &local;
    let quota = quota(2, Duration::from_secs(1));
    let key = key("user:a");
    let peeked = limiter
        .peek(&key, &quota, ONE)
        .await
        .expect("local never fails");
    let checked = limiter
        .check(&key, &quota, ONE)
        .await
        .expect("local never fails");
    assert_eq!(peeked, checked);
    assert_eq!(checked, RateLimitDecision::allow(2, 1, 500 * MS));
    assert_eq!(local.peek_sync(&key, &quota, ONE).remaining, 0);
}

#[test]
fn key_count_never_exceeds_max_keys() {
    let clock = ManualClock::new();
    for max in [1, 2, 3, 7, 100, 1000] {
        let max_keys = NonZeroUsize::new(max).expect("non-zero");
        let limiter = LocalRateLimiter::with_max_keys(Arc::new(clock.clone()), max_keys);
        // A quota slow enough that every key stays active throughout.
        let quota = quota(10, Duration::from_secs(3600));
        for index in 0..5 * max {
            let decision = limiter.check_sync(&key(&format!("ip:{index}")), &quota, ONE);
            assert!(
                decision.allowed,
                "a new key always starts with a full bucket"
            );
            assert!(limiter.len() <= max, "max {max}: {} keys", limiter.len());
        }
        assert!(
            limiter.len() > max / 2,
            "eviction keeps most of the bound in use"
        );
    }
}

#[test]
fn sweep_drops_idle_keys_and_keeps_active_ones() {
    let (clock, limiter) = setup();
    let short = quota(1, Duration::from_secs(1));
    let long = quota(1, Duration::from_secs(10));
    for index in 0..100 {
        let quota = if index % 2 == 0 { &short } else { &long };
        assert!(
            limiter
                .check_sync(&key(&format!("k:{index}")), quota, ONE)
                .allowed
        );
    }
    assert_eq!(limiter.sweep(), 0, "nothing is idle yet");
    clock.advance(Duration::from_secs(1));
    assert_eq!(limiter.sweep(), 50);
    assert_eq!(limiter.len(), 50);
    // The long-quota keys still remember their use.
    assert!(!limiter.check_sync(&key("k:1"), &long, ONE).allowed);
    clock.advance(Duration::from_secs(9));
    assert_eq!(limiter.sweep(), 50);
    assert!(limiter.is_empty());
}

#[test]
fn growth_sweeps_idle_keys_without_an_explicit_sweep() {
    let (clock, limiter) = setup();
    let quota = quota(1, Duration::from_millis(1));
    // Each key is idle a millisecond after its check.
    let keys = 4 * MIN_SWEEP_LEN * MAX_SHARDS;
    for index in 0..keys {
        assert!(
            limiter
                .check_sync(&key(&format!("k:{index}")), &quota, ONE)
                .allowed
        );
        clock.advance(MS);
    }
    // Every shard swept its idle keys once it doubled past the minimum.
    let left = limiter.len();
    assert!(
        left <= 2 * MIN_SWEEP_LEN * MAX_SHARDS,
        "{left} of {keys} keys"
    );
}

#[test]
fn eviction_under_pressure_forgets_the_earliest_tats_first() {
    let clock = ManualClock::new();
    let max_keys = NonZeroUsize::new(32).expect("non-zero"); // 32 shards of one key
    let limiter = LocalRateLimiter::with_max_keys(Arc::new(clock.clone()), max_keys);
    let quota = quota(1, Duration::from_secs(3600));
    let mut keys = Vec::new();
    for index in 0..1000 {
        let key = key(&format!("ip:{index}"));
        assert!(limiter.check_sync(&key, &quota, ONE).allowed);
        keys.push(key);
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(limiter.len(), 32);
    // The most recent key is always kept: it was inserted last into its shard.
    assert!(!limiter.peek_sync(&keys[999], &quota, ONE).allowed);
}

#[test]
fn evict_earliest_removes_exactly_count_even_with_ties() {
    let mut state = ShardState {
        map: HashMap::default(),
        capacity: 100,
        sweep_at: 100,
    };
    for index in 0..10u64 {
        state.map.insert(
            StoredKey {
                hash: index,
                key: index.to_string().into(),
            },
            5,
        );
    }
    state.map.insert(
        StoredKey {
            hash: 99,
            key: "early".into(),
        },
        1,
    );
    state.evict_earliest(4);
    assert_eq!(state.map.len(), 7);
    assert!(
        state.map.values().all(|&tat| tat == 5),
        "the earliest went first"
    );
    state.evict_earliest(100);
    assert!(state.map.is_empty());
}

#[test]
fn sweep_gives_table_memory_back() {
    let (clock, limiter) = setup();
    let quota = quota(1, Duration::from_secs(1));
    for index in 0..50_000 {
        assert!(
            limiter
                .check_sync(&key(&format!("k:{index}")), &quota, ONE)
                .allowed
        );
    }
    clock.advance(Duration::from_secs(1));
    assert_eq!(limiter.sweep(), 50_000);
    let retained: usize = limiter
        .shards
        .iter()
        .map(|shard| shard.lock().map.capacity())
        .sum();
    assert!(
        retained <= MIN_RETAINED_CAPACITY * MAX_SHARDS,
        "{retained} slots retained"
    );
}

#[test]
fn agrees_with_governor_on_the_same_sequence() {
    use governor::clock::FakeRelativeClock;

    let clock = ManualClock::new();
    let limiter = LocalRateLimiter::new(Arc::new(clock.clone()));
    let fake = FakeRelativeClock::default();
    let burst = NonZeroU32::new(5).expect("non-zero");
    let reference = governor::RateLimiter::direct_with_clock(
        governor::Quota::with_period(200 * MS)
            .expect("non-zero period")
            .allow_burst(burst),
        fake.clone(),
    );
    let quota = quota(5, Duration::from_secs(1));
    let key = key("user:a");
    // A fixed pseudo-random walk of costs and pauses (an LCG, so the test
    // needs no dependency and fails the same way every time).
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |bound: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % bound
    };
    let mut allowed = 0;
    for step in 0..5_000 {
        let pause = Duration::from_millis(next(150));
        clock.advance(pause);
        fake.advance(pause);
        let n = u32::try_from(next(5) + 1).expect("small");
        let ours = limiter.check_sync(&key, &quota, cost(n)).allowed;
        let theirs = reference.check_n(cost(n)).expect("n within burst").is_ok();
        assert_eq!(ours, theirs, "step {step}: cost {n}");
        allowed += u32::from(ours);
    }
    assert!(
        allowed > 500,
        "the walk exercises both outcomes ({allowed} allowed)"
    );
}

#[test]
fn check_all_takes_every_cost_or_none() {
    let (_clock, limiter) = setup();
    let (tenant, principal) = (key("t:acme"), key("p:acme:alice"));
    let roomy = quota(10, Duration::from_secs(1));
    let tight = quota(2, Duration::from_secs(1));
    let both = [
        LimitCheck::new(&tenant, &roomy, ONE),
        LimitCheck::new(&principal, &tight, ONE),
    ];

    for remaining in [1, 0] {
        let decisions = limiter.check_all_sync(&both);
        assert!(decisions.iter().all(|d| d.allowed));
        assert_eq!(decisions[1].remaining, remaining);
    }
    // The principal is out: nothing is taken from the tenant either.
    let refused = limiter.check_all_sync(&both);
    assert!(refused[0].allowed, "the tenant alone would pass");
    assert!(!refused[1].allowed);
    assert_eq!(refused[1].retry_after, Some(500 * MS));
    assert_eq!(limiter.peek_sync(&tenant, &roomy, ONE).remaining, 7);
    for _ in 0..5 {
        assert!(!limiter.check_all_sync(&both)[1].allowed);
    }
    assert_eq!(
        limiter.peek_sync(&tenant, &roomy, ONE).remaining,
        7,
        "refused rounds never charge the tenant"
    );
}

#[test]
fn check_all_charges_a_key_named_twice_twice() {
    let (_clock, limiter) = setup();
    let shared = key("t:shared");
    let q = quota(3, Duration::from_secs(1));
    let twice = [
        LimitCheck::new(&shared, &q, ONE),
        LimitCheck::new(&shared, &q, ONE),
    ];
    let decisions = limiter.check_all_sync(&twice);
    assert!(decisions.iter().all(|d| d.allowed));
    assert_eq!(decisions[0].remaining, 2);
    assert_eq!(decisions[1].remaining, 1, "the second check sees the first");
    // One unit left: the pair cannot pass, and the unit stays.
    let refused = limiter.check_all_sync(&twice);
    assert!(refused[0].allowed);
    assert!(!refused[1].allowed);
    assert!(limiter.check_sync(&shared, &q, ONE).allowed);
    assert!(!limiter.check_sync(&shared, &q, ONE).allowed);
}

#[test]
fn check_all_agrees_with_check_for_one_limit_and_a_new_key() {
    let (_clock, a) = setup();
    let (_clock, b) = setup();
    let k = key("ip:203.0.113.7");
    let q = quota(2, Duration::from_secs(1));
    for _ in 0..4 {
        let one = a.check_sync(&k, &q, ONE);
        let all = b.check_all_sync(&[LimitCheck::new(&k, &q, ONE)]);
        assert_eq!(all, vec![one]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rounds_charge_every_limit_of_a_round_or_none() {
    let clock = ManualClock::new();
    let limiter: Arc<dyn RateLimiter> = Arc::new(LocalRateLimiter::new(Arc::new(clock)));
    let tenant_quota = quota(100, Duration::from_secs(60));
    let principal_quota = quota(60, Duration::from_secs(60));
    let allowed = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (limiter, allowed) = (Arc::clone(&limiter), Arc::clone(&allowed));
            tokio::spawn(async move {
                let (tenant, principal) = (key("t:shared"), key("p:shared:bob"));
                for _ in 0..200 {
                    let round = [
                        LimitCheck::new(&tenant, &tenant_quota, ONE),
                        LimitCheck::new(&principal, &principal_quota, ONE),
                    ];
                    let decisions = limiter
                        .check_all_now(&round)
                        .expect("local answers now")
                        .expect("local never fails");
                    if decisions.iter().all(|d| d.allowed) {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task completes");
    }
    // Exactly the stricter quota passed, and the tenant was charged for
    // those rounds only: 40 units are left, none lost to refused rounds.
    assert_eq!(allowed.load(Ordering::Relaxed), 60);
    let tenant = key("t:shared");
    assert_eq!(
        limiter
            .peek_now(&tenant, &tenant_quota, ONE)
            .expect("answers")
            .expect("never fails")
            .remaining,
        39
    );
}
