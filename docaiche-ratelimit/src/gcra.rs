//! The GCRA (generic cell rate algorithm) in exact integer nanoseconds: the
//! reference semantics of every limiter in this crate.
//!
//! This module does no I/O and reads no clock. [`LocalRateLimiter`] calls it
//! under a shard lock; the Redis limiter's Lua script is a line-by-line port
//! of [`Gcra::decide`], and its Rust side turns the script's answer into a
//! [`RateLimitDecision`] through [`Outcome`] exactly as the local limiter
//! does. A change here is a change to both: keep them in step.
//!
//! # Definitions
//!
//! For a [`Quota`] of `limit` units per `period`, all in nanoseconds (`u64`):
//!
//! | symbol | definition | meaning |
//! |---|---|---|
//! | `T` | `max(1, floor(period / limit))` | emission interval: one unit replenishes every `T` |
//! | `τ` | `T · (limit − 1)` | burst tolerance: how far ahead of `now` the TAT may be *before* a request |
//! | `C` | `T · limit = τ + T` | capacity: how far ahead of `now` the TAT may be *after* an allowed request |
//!
//! `period` above `u64::MAX` nanoseconds (584 years) saturates. `T` is
//! floored, so `C ≤ period`, short of it by less than `limit` nanoseconds;
//! it is clamped to 1 ns for quotas finer than that (which
//! [`Quota::new`] refuses but `Quota::per_second(u32::MAX)` can build).
//!
//! The state of a key is one instant, its **theoretical arrival time** (TAT):
//! the time at which the key's bucket is full again. A key without a stored
//! TAT, or whose TAT is not after `now`, is full. Everything is computed
//! from the **backlog** `b = max(0, TAT − now)`, the time the key is in debt:
//!
//! - a request of cost `n` is **allowed** iff `n ≤ limit` and `b + n·T ≤ C`;
//!   then the new TAT is `now + b + n·T`. A denied request changes nothing.
//! - with `b'` the backlog after the decision (`b + n·T` if allowed, else `b`):
//!   - `remaining = floor((C − b') / T)` (saturating at 0): how many more
//!     unit-cost requests would pass now;
//!   - `reset_after = b'`: time until the bucket is full again;
//!   - when denied, `retry_after = b + n·T − C`, the earliest time a request of
//!     cost `n` passes (at least 1 ns); for `n > limit`, which never passes,
//!     `retry_after = reset_after`, as the [`RateLimiter`] contract says.
//!
//! So a full bucket lets `limit` unit requests through back to back, the next
//! is denied with `retry_after == T`, and one request every `T` passes
//! forever. This is the textbook GCRA with `τ = T·(limit − 1)`, written as
//! `TAT' − now ≤ τ + T` to avoid a signed `TAT − τ`; the Lua script's `tau`
//! argument is this module's `C`.
//!
//! # Quotas vary per call; the TAT does not depend on them
//!
//! A TAT is an absolute instant, so one stored value serves every quota a key
//! is checked under: each request pushes it `n·T` further with the `T` of the
//! quota it was checked under, and each quota admits while the backlog fits
//! its own `C`. Debt is kept in time, not in units: 5 units of a 10/s quota
//! (500 ms of backlog) are 50 units of a 100/s quota. Policies that want
//! independent budgets use distinct keys (the policy layer puts the route
//! class and tier in the key).
//!
//! ```
//! use std::num::NonZeroU32;
//! use docaiche_ratelimit::contracts::Quota;
//! use docaiche_ratelimit::gcra::Gcra;
//!
//! let gcra = Gcra::new(&Quota::per_second(NonZeroU32::new(2).expect("non-zero")));
//! let one = NonZeroU32::MIN;
//! let first = gcra.evaluate(None, 0, one);
//! let second = gcra.evaluate(first.tat(0), 0, one);
//! let third = gcra.evaluate(second.tat(0), 0, one);
//! assert!(first.allowed && second.allowed && !third.allowed);
//! assert_eq!(third.retry_after, Some(500_000_000));
//! ```
//!
//! [`LocalRateLimiter`]: crate::local::LocalRateLimiter
//! [`RateLimiter`]: docaiche_core::RateLimiter

use std::num::NonZeroU32;
use std::time::Duration;

use docaiche_core::rate_limit::{Quota, RateLimitDecision};

/// A [`Quota`] as GCRA parameters in nanoseconds (see the
/// [module docs](self) for the definitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Gcra {
    /// `T`: the emission interval in nanoseconds, at least 1.
    pub emission_interval: u64,
    /// The quota's limit (also the burst size).
    pub limit: u32,
}

impl Gcra {
    /// The parameters of `quota`.
    #[must_use]
    #[inline]
    pub fn new(quota: &Quota) -> Self {
        let limit = quota.limit.get();
        let emission_interval = (nanos(quota.period) / u64::from(limit)).max(1);
        Self {
            emission_interval,
            limit,
        }
    }

    /// `τ = T · (limit − 1)`: the backlog a request may find and still pass
    /// at unit cost.
    #[must_use]
    pub const fn burst_tolerance(&self) -> u64 {
        self.emission_interval.saturating_mul(self.limit as u64 - 1)
    }

    /// `C = T · limit = τ + T`: the largest backlog an allowed request may
    /// leave behind. The Lua script's `tau` argument.
    #[must_use]
    #[inline]
    pub const fn capacity(&self) -> u64 {
        self.emission_interval.saturating_mul(self.limit as u64)
    }

    /// Decide a request of `cost` units against a key whose stored TAT is
    /// `stored_tat` (`None` for an unknown key), at `now`; TAT and `now` are
    /// nanoseconds on the same monotonic axis.
    ///
    /// `check` stores [`Outcome::tat`] when it is `Some`; `peek` discards it.
    #[must_use]
    #[inline]
    pub fn evaluate(&self, stored_tat: Option<u64>, now: u64, cost: NonZeroU32) -> Outcome {
        let backlog = stored_tat.map_or(0, |tat| tat.saturating_sub(now));
        self.decide(backlog, cost)
    }

    /// Decide a request of `cost` units against a key whose backlog
    /// (`max(0, TAT − now)`, nanoseconds) is `backlog`: the whole algorithm.
    /// The Redis script ports this function line by line.
    #[must_use]
    #[inline]
    pub fn decide(&self, backlog: u64, cost: NonZeroU32) -> Outcome {
        let t = self.emission_interval;
        let capacity = self.capacity();
        let cost = cost.get();

        // A cost above the limit can never pass, however long the caller
        // waits: deny, and point at the time the bucket is full again.
        if cost > self.limit {
            return self.outcome(false, backlog, Some(backlog));
        }
        // cost ≤ limit, so cost·T ≤ C: no overflow short of a saturated C.
        let after = backlog.saturating_add(t.saturating_mul(u64::from(cost)));
        if after > capacity {
            return self.outcome(false, backlog, Some(after - capacity));
        }
        self.outcome(true, after, None)
    }

    /// The outcome once decided, from the backlog after the decision. The
    /// Redis limiter calls this with the `{allowed, backlog}` its script
    /// returns, so both limiters derive `remaining`, `reset_after` and
    /// `retry_after` the same way.
    ///
    /// `retry_after` is recomputed from `backlog` and `cost` when denied.
    #[must_use]
    pub fn from_backlog(&self, allowed: bool, backlog: u64, cost: NonZeroU32) -> Outcome {
        if allowed {
            return self.outcome(true, backlog, None);
        }
        let cost = cost.get();
        let retry_after = if cost > self.limit {
            backlog
        } else {
            backlog
                .saturating_add(self.emission_interval.saturating_mul(u64::from(cost)))
                .saturating_sub(self.capacity())
                .max(1)
        };
        self.outcome(false, backlog, Some(retry_after))
    }

    #[inline]
    fn outcome(&self, allowed: bool, backlog: u64, retry_after: Option<u64>) -> Outcome {
        let free = self.capacity().saturating_sub(backlog) / self.emission_interval;
        // free ≤ C / T = limit, so it fits; the fallback is unreachable.
        let remaining = u32::try_from(free).unwrap_or(self.limit).min(self.limit);
        Outcome {
            allowed,
            limit: self.limit,
            remaining,
            backlog,
            retry_after,
        }
    }
}

/// What GCRA decided for one request, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// Whether the request passes (and, for a check, its cost is taken).
    pub allowed: bool,
    /// The quota's limit.
    pub limit: u32,
    /// Unit-cost requests that would still pass now, after this decision.
    pub remaining: u32,
    /// `max(0, TAT − now)` after the decision: the time until the bucket is
    /// full again (`reset_after`).
    pub backlog: u64,
    /// When denied: the earliest time, from now, at which a request of the
    /// same cost passes. `None` when allowed.
    pub retry_after: Option<u64>,
}

impl Outcome {
    /// The TAT a `check` stores for the key, given the `now` the decision
    /// was made at: `Some(now + backlog)` when allowed, `None` when denied
    /// (a denied request changes nothing).
    #[must_use]
    #[inline]
    pub const fn tat(&self, now: u64) -> Option<u64> {
        if self.allowed {
            Some(now.saturating_add(self.backlog))
        } else {
            None
        }
    }

    /// Time until the bucket is full again.
    #[must_use]
    pub const fn reset_after(&self) -> Duration {
        Duration::from_nanos(self.backlog)
    }

    /// As the contract's decision value.
    #[must_use]
    #[inline]
    pub const fn to_decision(&self) -> RateLimitDecision {
        match self.retry_after {
            Some(retry) if !self.allowed => RateLimitDecision::deny(
                self.limit,
                self.remaining,
                self.reset_after(),
                Duration::from_nanos(retry),
            ),
            _ => RateLimitDecision::allow(self.limit, self.remaining, self.reset_after()),
        }
    }
}

/// A duration in whole nanoseconds, saturating at `u64::MAX` (584 years).
#[must_use]
#[inline]
pub fn nanos(duration: Duration) -> u64 {
    // In u64 rather than through `as_nanos()`'s u128: this runs on every
    // decision, twice.
    duration
        .as_secs()
        .checked_mul(1_000_000_000)
        .and_then(|whole| whole.checked_add(u64::from(duration.subsec_nanos())))
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn quota(limit: u32, period: Duration) -> Quota {
        Quota::new(NonZeroU32::new(limit).expect("non-zero"), period).expect("valid quota")
    }

    fn cost(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("non-zero")
    }

    #[test]
    fn definitions_match_the_module_docs() {
        let gcra = Gcra::new(&quota(10, Duration::from_secs(1)));
        assert_eq!(gcra.emission_interval, 100 * MS);
        assert_eq!(gcra.burst_tolerance(), 900 * MS);
        assert_eq!(gcra.capacity(), 1_000 * MS);
        // Floored: 1s / 3 = 333_333_333 ns, so C falls 1 ns short of 1s.
        let thirds = Gcra::new(&quota(3, Duration::from_secs(1)));
        assert_eq!(thirds.emission_interval, 333_333_333);
        assert_eq!(thirds.capacity(), 999_999_999);
    }

    #[test]
    fn emission_interval_is_never_zero() {
        let gcra = Gcra::new(&Quota::per_second(NonZeroU32::MAX));
        assert_eq!(gcra.emission_interval, 1);
        assert!(gcra.evaluate(None, 0, cost(1)).allowed);
    }

    #[test]
    fn full_bucket_allows_limit_then_denies_with_retry_after_t() {
        let gcra = Gcra::new(&quota(4, Duration::from_secs(1)));
        let mut tat = None;
        for expected_remaining in (0..4).rev() {
            let out = gcra.evaluate(tat, 0, cost(1));
            assert!(out.allowed);
            assert_eq!(out.remaining, expected_remaining);
            tat = out.tat(0);
        }
        let denied = gcra.evaluate(tat, 0, cost(1));
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, Some(250 * MS));
        assert_eq!(denied.backlog, 1_000 * MS);
        assert_eq!(denied.tat(0), None);
    }

    #[test]
    fn cost_above_limit_is_denied_with_retry_after_equal_to_reset_after() {
        let gcra = Gcra::new(&quota(4, Duration::from_secs(1)));
        let fresh = gcra.evaluate(None, 0, cost(5));
        assert!(!fresh.allowed);
        assert_eq!(fresh.retry_after, Some(0));
        assert_eq!(fresh.remaining, 4);
        let used = gcra.evaluate(Some(300 * MS), 0, cost(5));
        assert_eq!(used.retry_after, Some(300 * MS));
        assert_eq!(used.to_decision().retry_after, Some(used.reset_after()));
    }

    #[test]
    fn from_backlog_reproduces_decide() {
        let gcra = Gcra::new(&quota(7, Duration::from_millis(700)));
        for backlog in [0, 1, 99 * MS, 100 * MS, 350 * MS, 600 * MS, 700 * MS] {
            for n in 1..=9 {
                let decided = gcra.decide(backlog, cost(n));
                let rebuilt = gcra.from_backlog(decided.allowed, decided.backlog, cost(n));
                assert_eq!(decided, rebuilt, "backlog {backlog} cost {n}");
            }
        }
    }

    #[test]
    fn a_stored_tat_in_the_past_is_a_full_bucket() {
        let gcra = Gcra::new(&quota(2, Duration::from_secs(1)));
        assert_eq!(
            gcra.evaluate(Some(5), 10, cost(1)),
            gcra.evaluate(None, 10, cost(1))
        );
    }

    #[test]
    fn huge_periods_and_times_saturate_instead_of_overflowing() {
        let gcra = Gcra::new(&quota(2, Duration::MAX));
        assert_eq!(gcra.emission_interval, u64::MAX / 2);
        let first = gcra.evaluate(None, 7, cost(2));
        assert!(first.allowed);
        assert_eq!(first.remaining, 0);
        let second = gcra.evaluate(first.tat(7), 7, cost(1));
        assert!(!second.allowed);
        assert_eq!(first.tat(u64::MAX), Some(u64::MAX));
    }

    #[test]
    fn nanos_is_exact_below_584_years_and_saturates_above() {
        assert_eq!(nanos(Duration::new(3, 7)), 3_000_000_007);
        assert_eq!(nanos(Duration::from_nanos(u64::MAX)), u64::MAX);
        assert_eq!(
            nanos(Duration::from_nanos(u64::MAX) + Duration::from_nanos(1)),
            u64::MAX
        );
        assert_eq!(nanos(Duration::MAX), u64::MAX);
    }
}
