//! Memory of the in-process limiter: what a key costs, and that it all comes
//! back once the keys are idle and swept.
//!
//! `stats_alloc` is this binary's global allocator (it holds the `unsafe`;
//! the crate stays `forbid(unsafe_code)`) and counts the bytes asked of the
//! system allocator, so the figures exclude allocator overhead (size classes,
//! headers). The binary holds one test so that nothing else allocates while
//! it measures; it inserts 1,000,000 keys (about 5 s in a debug build). Run
//! with `--nocapture` to see the figures.

use std::alloc::System;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use docaiche_core::clock::ManualClock;
use docaiche_ratelimit::contracts::{Quota, RateLimitKey};
use docaiche_ratelimit::local::LocalRateLimiter;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, Stats, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Distinct keys inserted.
const KEYS: usize = 1_000_000;

/// What the limiter may keep once everything is swept: the shards' small
/// retained tables (at most 16 entries × 64 shards) and change.
const RETAINED_MARGIN: i64 = 64 * 1024;

/// Bytes held now minus bytes held at the region's start. `stats_alloc`
/// already folds reallocations into `bytes_allocated` / `bytes_deallocated`
/// (`bytes_reallocated` is the same change again, so it is not added).
fn net(stats: &Stats) -> i64 {
    let allocated = i64::try_from(stats.bytes_allocated).expect("fits");
    let deallocated = i64::try_from(stats.bytes_deallocated).expect("fits");
    allocated - deallocated
}

#[test]
fn a_million_idle_keys_are_given_back_after_sweep() {
    let clock = ManualClock::new();
    let max_keys = NonZeroUsize::new(2 * KEYS).expect("non-zero");
    let limiter = LocalRateLimiter::with_max_keys(Arc::new(clock.clone()), max_keys);
    // One unit an hour: every key stays active until the clock moves.
    let quota = Quota::new(NonZeroU32::MIN, Duration::from_secs(3600)).expect("valid quota");

    let region = Region::new(GLOBAL);
    for index in 0..KEYS {
        // 21 bytes, the size of "ip:2001:db8::1:ffff" or "tenant:acme:docs:42".
        let key = RateLimitKey::new(format!("client:{index:014}")).expect("valid key");
        let decision = limiter.check_sync(&key, &quota, NonZeroU32::MIN);
        assert!(decision.allowed);
    }
    assert_eq!(limiter.len(), KEYS, "no key was evicted under the bound");
    let filled = net(&region.change());
    let keys = i64::try_from(KEYS).expect("fits");
    eprintln!(
        "memory: {KEYS} keys hold {filled} bytes net, {} bytes per key (21-byte keys)",
        filled / keys
    );

    clock.advance(Duration::from_secs(3600));
    let swept = limiter.sweep();
    let after = net(&region.change());
    eprintln!("memory: swept {swept} idle keys; {after} bytes net remain");
    assert_eq!(swept, KEYS);
    assert!(limiter.is_empty());
    assert!(
        after <= RETAINED_MARGIN,
        "{after} bytes still held after sweeping every key"
    );
    // Some memory per key was really held: the measurement measures.
    assert!(filled / keys >= 21);
}
