//! What to do when the shared limiter is down: a [`RateLimiter`] that wraps
//! another behind a circuit breaker and applies a [`FailurePolicy`].
//!
//! [`ResilientRateLimiter`] asks its primary (in practice a
//! [`RedisRateLimiter`](crate::redis::RedisRateLimiter)) through a
//! [`CircuitBreaker`]. When the primary answers, that answer stands. When it
//! fails with an outage ([`Error::is_dependency_failure`]: unavailable, timed
//! out, or an unexpected reply) or the breaker is open, the policy decides:
//!
//! | policy | decision while the primary is down |
//! |---|---|
//! | [`FailurePolicy::Fallback`] (default) | the local limiter decides, with this instance's share of the quota |
//! | [`FailurePolicy::FailClosed`] | deny, with `retry_after` = when the breaker next tries the primary |
//! | [`FailurePolicy::FailOpen`] | allow (no limit at all: a weakened setting) |
//!
//! FailClosed answers with a denying [`RateLimitDecision`] rather than an
//! error: the rate-limit layer then sends the same 429 with `Retry-After` it
//! sends for any exhausted quota, and the caller need not tell an outage from
//! a limit. Errors that say something about the request (an invalid quota)
//! pass through untouched.
//!
//! ## What a dead primary costs
//!
//! While the breaker is closed, a failing call costs what the primary takes
//! to fail: a refused connection well under a millisecond, a hung Redis the
//! primary's own timeout (50 ms by default). Once enough calls have failed
//! ([`ResilientRateLimiterBuilder::circuit_breaker`]; by default 5 of the last
//! 10) the breaker opens and every decision costs an atomic load, a clock
//! read and the local limiter: microseconds. Every `wait_in_open` (default
//! 1 s) the breaker lets a few trial calls through; when they succeed it
//! closes and decisions are back on the primary. Recovery is automatic.
//!
//! ## The fallback share
//!
//! With `n` instances behind a load balancer, each falling back on its own
//! local limiter with the full quota would let `n` times the limit through.
//! `share` (typically `1 / n`) scales the quota's limit for the local
//! limiter, to at least 1, over the same period, so the instances together
//! stay near the global limit. The local limiter's state is its own: after
//! recovery the primary's state resumes where it was.
//!
//! ## Observability
//!
//! Each switch is logged once (`warn` when decisions leave the primary,
//! `info` when they return), never per request, and counted;
//! [`ResilientRateLimiter::metrics`] also counts decisions by their source
//! and includes the breaker's own metrics.
//!
//! ```
//! use std::num::NonZeroU32;
//! use std::sync::Arc;
//! use docaiche_core::rate_limit::RateLimiter;
//! use docaiche_ratelimit::fallback::{FailurePolicy, ResilientRateLimiter};
//! # use docaiche_core::rate_limit::{Quota, RateLimitDecision, RateLimitKey};
//! # #[derive(Debug)]
//! # struct Down;
//! # #[async_trait::async_trait]
//! # impl RateLimiter for Down {
//! #     async fn check(&self, _: &RateLimitKey, _: &Quota, _: NonZeroU32)
//! #         -> docaiche_core::Result<RateLimitDecision> {
//! #         Err(docaiche_core::Error::unavailable("redis", std::io::Error::other("refused")))
//! #     }
//! #     async fn peek(&self, k: &RateLimitKey, q: &Quota, c: NonZeroU32)
//! #         -> docaiche_core::Result<RateLimitDecision> { self.check(k, q, c).await }
//! # }
//! #
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> docaiche_core::Result<()> {
//! # let redis: Arc<dyn RateLimiter> = Arc::new(Down);
//! let limiter = ResilientRateLimiter::builder(redis)
//!     .policy(FailurePolicy::FailClosed)
//!     .build()?;
//! let quota = Quota::per_second(NonZeroU32::new(10).expect("non-zero"));
//! let key = RateLimitKey::new("tenant:acme")?;
//! let decision = limiter.check(&key, &quota, NonZeroU32::MIN).await?;
//! assert!(!decision.allowed);
//! assert_eq!(limiter.metrics().fail_closed, 1);
//! # Ok(()) }
//! ```

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use docaiche_core::clock::SystemClock;
use docaiche_core::error::{Error, Result};
use docaiche_core::rate_limit::{Quota, RateLimitDecision, RateLimitKey, RateLimiter};
use docaiche_core::resilience::{CircuitBreaker, CircuitBreakerMetrics, CircuitState};

use crate::local::LocalRateLimiter;

/// What a [`ResilientRateLimiter`] does while its primary is down.
#[derive(Clone)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Deny every request: nothing passes unmetered, at the price of an
    /// outage of the limiter becoming an outage of the service.
    FailClosed,
    /// Allow every request without any limit. This weakens the service
    /// (a Redis outage, or an attacker who can cause one, lifts every
    /// limit); choose it only where the limit protects nothing that matters.
    FailOpen,
    /// Ask `local` with this instance's `share` of the quota (the default,
    /// with an in-process limiter and a share of 1).
    Fallback {
        /// The limiter deciding while the primary is down, usually a
        /// [`LocalRateLimiter`].
        local: Arc<dyn RateLimiter>,
        /// This instance's share of each quota's limit, in `(0, 1]`:
        /// `1 / instances` keeps the instances together near the global
        /// limit.
        share: f64,
    },
}

impl FailurePolicy {
    /// A stable snake-case name for logs.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::FailClosed => "fail_closed",
            Self::FailOpen => "fail_open",
            Self::Fallback { .. } => "fallback",
        }
    }
}

impl fmt::Debug for FailurePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FailClosed => f.write_str("FailClosed"),
            Self::FailOpen => f.write_str("FailOpen"),
            Self::Fallback { local, share } => f
                .debug_struct("Fallback")
                .field("local", local)
                .field("share", share)
                .finish(),
        }
    }
}

/// Where a decision came from; carried by every
/// [`RateLimitDecision::source`] this limiter returns.
pub use docaiche_core::rate_limit::DecisionSource;

/// A snapshot of a [`ResilientRateLimiter`]'s counters.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ResilientRateLimiterMetrics {
    /// Decisions the primary made.
    pub primary: u64,
    /// Decisions the local limiter made.
    pub fallback: u64,
    /// Requests allowed by [`FailurePolicy::FailOpen`].
    pub fail_open: u64,
    /// Requests denied by [`FailurePolicy::FailClosed`].
    pub fail_closed: u64,
    /// Times decisions left the primary for the policy.
    pub switches_to_policy: u64,
    /// Times decisions came back to the primary.
    pub switches_to_primary: u64,
    /// Where the last decision came from ([`DecisionSource::Primary`] before
    /// any).
    pub current: DecisionSource,
    /// The circuit breaker's metrics.
    pub breaker: CircuitBreakerMetrics,
}

/// A [`RateLimiter`] that survives the loss of its primary by a
/// [`FailurePolicy`]; see the [module docs](self).
pub struct ResilientRateLimiter {
    primary: Arc<dyn RateLimiter>,
    breaker: CircuitBreaker,
    policy: FailurePolicy,
    fail_closed_retry_after: Duration,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    primary: AtomicU64,
    fallback: AtomicU64,
    fail_open: AtomicU64,
    fail_closed: AtomicU64,
    switches_to_policy: AtomicU64,
    switches_to_primary: AtomicU64,
    /// Whether the last decision was the policy's.
    degraded: AtomicBool,
}

/// Builds a [`ResilientRateLimiter`]; from [`ResilientRateLimiter::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ResilientRateLimiterBuilder {
    primary: Arc<dyn RateLimiter>,
    breaker: Option<CircuitBreaker>,
    policy: Option<FailurePolicy>,
    fail_closed_retry_after: Duration,
}

/// The name of the default breaker (and of the dependency in its errors).
const BREAKER_NAME: &str = "redis";

impl ResilientRateLimiter {
    /// A builder wrapping `primary`.
    pub fn builder(primary: Arc<dyn RateLimiter>) -> ResilientRateLimiterBuilder {
        ResilientRateLimiterBuilder {
            primary,
            breaker: None,
            policy: None,
            fail_closed_retry_after: Duration::from_secs(1),
        }
    }

    /// The counters and the breaker's metrics.
    #[must_use]
    pub fn metrics(&self) -> ResilientRateLimiterMetrics {
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let current = if c.degraded.load(Ordering::Relaxed) {
            match self.policy {
                FailurePolicy::FailClosed => DecisionSource::FailClosed,
                FailurePolicy::FailOpen => DecisionSource::FailOpen,
                FailurePolicy::Fallback { .. } => DecisionSource::Fallback,
            }
        } else {
            DecisionSource::Primary
        };
        ResilientRateLimiterMetrics {
            primary: load(&c.primary),
            fallback: load(&c.fallback),
            fail_open: load(&c.fail_open),
            fail_closed: load(&c.fail_closed),
            switches_to_policy: load(&c.switches_to_policy),
            switches_to_primary: load(&c.switches_to_primary),
            current,
            breaker: self.breaker.metrics(),
        }
    }

    /// The breaker guarding the primary (shared with this limiter).
    #[must_use]
    pub fn circuit_breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The policy applied while the primary is down.
    #[must_use]
    pub fn policy(&self) -> &FailurePolicy {
        &self.policy
    }

    async fn decide(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
        peek: bool,
    ) -> Result<RateLimitDecision> {
        let answer = self
            .breaker
            .call(|| async {
                if peek {
                    self.primary.peek(key, quota, cost).await
                } else {
                    self.primary.check(key, quota, cost).await
                }
            })
            .await;
        let outage = match answer {
            Ok(decision) => {
                self.on_primary();
                return Ok(decision);
            }
            Err(error) if is_outage(&error) => error,
            Err(error) => return Err(error),
        };
        if let Some(decision) = self.apply_policy_now(&outage, key, quota, cost, peek) {
            return decision;
        }
        // A fallback limiter that cannot decide synchronously.
        if let FailurePolicy::Fallback { local, share } = &self.policy {
            let quota = share_of(quota, *share)?;
            let decision = if peek {
                local.peek(key, &quota, cost).await
            } else {
                local.check(key, &quota, cost).await
            };
            return decision.map(|d| d.with_source(DecisionSource::Fallback));
        }
        Err(outage)
    }

    /// The fast path: while the breaker is open, the policy decides at once
    /// (the primary would not be asked anyway). `None` when the primary must
    /// be asked, or the fallback cannot decide synchronously.
    fn decide_now(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
        peek: bool,
    ) -> Option<Result<RateLimitDecision>> {
        if self.breaker.state() == CircuitState::Closed {
            return None;
        }
        // Open, or half-open: a refusal means the primary is not asked now.
        // A granted half-open trial is handed back (dropping the permit
        // frees its slot) for the asynchronous path to take again.
        let refused = self.breaker.try_acquire().err()?;
        if !is_outage(&refused) {
            return Some(Err(refused));
        }
        self.apply_policy_now(&refused, key, quota, cost, peek)
    }

    /// Apply the failure policy for `outage`; `None` only for a fallback
    /// limiter that has no synchronous answer.
    fn apply_policy_now(
        &self,
        outage: &Error,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
        peek: bool,
    ) -> Option<Result<RateLimitDecision>> {
        match &self.policy {
            FailurePolicy::FailClosed => {
                self.on_policy(outage);
                self.counters.fail_closed.fetch_add(1, Ordering::Relaxed);
                let retry_after = match outage {
                    Error::CircuitOpen { retry_after, .. } if !retry_after.is_zero() => {
                        *retry_after
                    }
                    _ => self.fail_closed_retry_after,
                };
                let decision =
                    RateLimitDecision::deny(quota.limit.get(), 0, retry_after, retry_after);
                Some(Ok(decision.with_source(DecisionSource::FailClosed)))
            }
            FailurePolicy::FailOpen => {
                self.on_policy(outage);
                self.counters.fail_open.fetch_add(1, Ordering::Relaxed);
                let remaining = quota.limit.get().saturating_sub(cost.get());
                let decision =
                    RateLimitDecision::allow(quota.limit.get(), remaining, Duration::ZERO);
                Some(Ok(decision.with_source(DecisionSource::FailOpen)))
            }
            FailurePolicy::Fallback { local, share } => {
                self.on_policy(outage);
                self.counters.fallback.fetch_add(1, Ordering::Relaxed);
                let quota = match share_of(quota, *share) {
                    Ok(quota) => quota,
                    Err(error) => return Some(Err(error)),
                };
                let decision = if peek {
                    local.peek_now(key, &quota, cost)
                } else {
                    local.check_now(key, &quota, cost)
                }?;
                Some(decision.map(|d| d.with_source(DecisionSource::Fallback)))
            }
        }
    }

    fn on_primary(&self) {
        let c = &self.counters;
        c.primary.fetch_add(1, Ordering::Relaxed);
        // `load` first: the common case (healthy, not degraded) stays a read.
        if c.degraded.load(Ordering::Relaxed) && c.degraded.swap(false, Ordering::AcqRel) {
            c.switches_to_primary.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                policy = self.policy.as_str(),
                "rate limiter back on its primary"
            );
        }
    }

    fn on_policy(&self, cause: &Error) {
        let c = &self.counters;
        if !c.degraded.load(Ordering::Relaxed) && !c.degraded.swap(true, Ordering::AcqRel) {
            c.switches_to_policy.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                policy = self.policy.as_str(),
                error = %cause.log_chain(),
                "rate limiter primary unavailable; applying the failure policy"
            );
        }
    }
}

/// Whether `error` means the primary is down (rather than that the request
/// is wrong).
fn is_outage(error: &Error) -> bool {
    error.is_dependency_failure() || matches!(error, Error::CircuitOpen { .. })
}

/// `quota` with its limit scaled by `share`, at least 1, over the same period.
fn share_of(quota: &Quota, share: f64) -> Result<Quota> {
    if share >= 1.0 {
        return Ok(*quota);
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "`build` checked share is in (0, 1]: the product is in [0, limit]"
    )]
    let scaled = (f64::from(quota.limit.get()) * share).floor() as u32;
    Quota::new(
        NonZeroU32::new(scaled).unwrap_or(NonZeroU32::MIN),
        quota.period,
    )
}

impl ResilientRateLimiterBuilder {
    /// The policy while the primary is down (default:
    /// [`FailurePolicy::Fallback`] to a
    /// [`LocalRateLimiter`] with a share of 1).
    pub fn policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The breaker guarding the primary. The default opens when at least 5
    /// of the last 10 calls failed and stays open 1 s, then admits 3 trial
    /// calls:
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use docaiche_core::resilience::CircuitBreaker;
    /// let breaker = CircuitBreaker::builder("redis")
    ///     .count_window(10)
    ///     .minimum_calls(5)
    ///     .failure_rate_threshold(50.0)
    ///     .wait_in_open(Duration::from_secs(1))
    ///     .permitted_calls_in_half_open(3)
    ///     .build()?;
    /// # Ok::<(), docaiche_core::Error>(())
    /// ```
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// The `retry_after` of a [`FailurePolicy::FailClosed`] denial when the
    /// breaker gives none (the call itself failed; default 1 s).
    pub fn fail_closed_retry_after(mut self, retry_after: Duration) -> Self {
        self.fail_closed_retry_after = retry_after;
        self
    }

    /// Build the limiter.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] when a fallback share is not in `(0, 1]`.
    pub fn build(self) -> Result<ResilientRateLimiter> {
        let policy = match self.policy {
            Some(policy) => policy,
            None => FailurePolicy::Fallback {
                local: Arc::new(LocalRateLimiter::new(Arc::new(SystemClock::new()))),
                share: 1.0,
            },
        };
        if let FailurePolicy::Fallback { share, .. } = &policy
            && !(*share > 0.0 && *share <= 1.0)
        {
            return Err(Error::misconfigured(
                "rate_limit.fallback.share",
                "must be in (0, 1], e.g. 1 / the number of instances",
            ));
        }
        let breaker = match self.breaker {
            Some(breaker) => breaker,
            None => CircuitBreaker::builder(BREAKER_NAME)
                .count_window(10)
                .minimum_calls(5)
                .failure_rate_threshold(50.0)
                .wait_in_open(Duration::from_secs(1))
                .permitted_calls_in_half_open(3)
                .build()?,
        };
        Ok(ResilientRateLimiter {
            primary: self.primary,
            breaker,
            policy,
            fail_closed_retry_after: self.fail_closed_retry_after,
            counters: Counters::default(),
        })
    }
}

#[async_trait::async_trait]
impl RateLimiter for ResilientRateLimiter {
    async fn check(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Result<RateLimitDecision> {
        self.decide(key, quota, cost, false).await
    }

    async fn peek(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Result<RateLimitDecision> {
        self.decide(key, quota, cost, true).await
    }

    fn check_now(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Option<Result<RateLimitDecision>> {
        self.decide_now(key, quota, cost, false)
    }

    fn peek_now(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Option<Result<RateLimitDecision>> {
        self.decide_now(key, quota, cost, true)
    }
}

impl fmt::Debug for ResilientRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResilientRateLimiter")
            .field("primary", &self.primary)
            .field("breaker", &self.breaker)
            .field("policy", &self.policy)
            .field("fail_closed_retry_after", &self.fail_closed_retry_after)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use docaiche_core::clock::ManualClock;
    use docaiche_core::resilience::CircuitState;

    /// A primary that is up (a real local limiter) or down (unavailable).
    #[derive(Debug)]
    struct Switchable {
        up: AtomicBool,
        inner: LocalRateLimiter,
    }

    impl Switchable {
        fn new(clock: &ManualClock) -> Arc<Self> {
            Arc::new(Self {
                up: AtomicBool::new(true),
                inner: LocalRateLimiter::new(Arc::new(clock.clone())),
            })
        }

        fn answer(&self) -> Result<()> {
            if self.up.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(Error::unavailable(
                    "redis",
                    std::io::Error::other("refused"),
                ))
            }
        }
    }

    #[async_trait::async_trait]
    impl RateLimiter for Switchable {
        async fn check(
            &self,
            key: &RateLimitKey,
            quota: &Quota,
            cost: NonZeroU32,
        ) -> Result<RateLimitDecision> {
            self.answer()?;
            self.inner.check(key, quota, cost).await
        }

        async fn peek(
            &self,
            key: &RateLimitKey,
            quota: &Quota,
            cost: NonZeroU32,
        ) -> Result<RateLimitDecision> {
            self.answer()?;
            self.inner.peek(key, quota, cost).await
        }
    }

    fn key() -> RateLimitKey {
        RateLimitKey::new("tenant:acme").expect("valid key")
    }

    fn quota(limit: u32) -> Quota {
        Quota::per_second(NonZeroU32::new(limit).expect("non-zero"))
    }

    fn limiter(
        clock: &ManualClock,
        primary: Arc<Switchable>,
        policy: FailurePolicy,
    ) -> ResilientRateLimiter {
        let breaker = CircuitBreaker::builder("redis")
            .count_window(4)
            .minimum_calls(2)
            .failure_rate_threshold(50.0)
            .wait_in_open(Duration::from_secs(1))
            .permitted_calls_in_half_open(1)
            .clock(Arc::new(clock.clone()))
            .build()
            .expect("valid breaker");
        ResilientRateLimiter::builder(primary)
            .policy(policy)
            .circuit_breaker(breaker)
            .build()
            .expect("valid limiter")
    }

    #[tokio::test]
    async fn an_open_breaker_lets_the_policy_decide_synchronously_and_marks_the_source() {
        let clock = ManualClock::new();
        let primary = Switchable::new(&clock);
        let local = Arc::new(LocalRateLimiter::new(Arc::new(clock.clone())));
        let limiter = limiter(
            &clock,
            Arc::clone(&primary),
            FailurePolicy::Fallback { local, share: 1.0 },
        );
        // Closed: the primary has to be asked, and only asynchronously.
        assert!(
            limiter
                .check_now(&key(), &quota(8), NonZeroU32::MIN)
                .is_none()
        );
        let d = limiter.check(&key(), &quota(8), NonZeroU32::MIN).await;
        assert_eq!(d.expect("decision").source, DecisionSource::Primary);

        primary.up.store(false, Ordering::SeqCst);
        for _ in 0..2 {
            let d = limiter.check(&key(), &quota(8), NonZeroU32::MIN).await;
            assert_eq!(d.expect("decision").source, DecisionSource::Fallback);
        }
        assert_eq!(limiter.circuit_breaker().state(), CircuitState::Open);
        let d = limiter
            .check_now(&key(), &quota(8), NonZeroU32::MIN)
            .expect("an open breaker decides at once")
            .expect("decision");
        assert!(d.allowed);
        assert_eq!(d.source, DecisionSource::Fallback);
        let before = limiter.metrics().fallback;
        let peeked = limiter
            .peek_now(&key(), &quota(8), NonZeroU32::MIN)
            .expect("an open breaker decides at once")
            .expect("decision");
        let again = limiter
            .peek_now(&key(), &quota(8), NonZeroU32::MIN)
            .expect("an open breaker decides at once")
            .expect("decision");
        assert_eq!(peeked.remaining, d.remaining - 1, "what check would leave");
        assert_eq!(again.remaining, peeked.remaining, "peek consumed nothing");
        assert_eq!(limiter.metrics().fallback, before + 2);

        // Half-open: the trial call goes to the primary, asynchronously.
        primary.up.store(true, Ordering::SeqCst);
        clock.advance(Duration::from_secs(1));
        assert!(
            limiter
                .check_now(&key(), &quota(8), NonZeroU32::MIN)
                .is_none()
        );
        let d = limiter.check(&key(), &quota(8), NonZeroU32::MIN).await;
        assert_eq!(d.expect("decision").source, DecisionSource::Primary);
        assert_eq!(limiter.circuit_breaker().state(), CircuitState::Closed);
    }

    #[tokio::test]
    async fn fail_closed_and_fail_open_decide_synchronously_once_open() {
        for (policy, allowed, source) in [
            (FailurePolicy::FailClosed, false, DecisionSource::FailClosed),
            (FailurePolicy::FailOpen, true, DecisionSource::FailOpen),
        ] {
            let clock = ManualClock::new();
            let primary = Switchable::new(&clock);
            let limiter = limiter(&clock, Arc::clone(&primary), policy);
            primary.up.store(false, Ordering::SeqCst);
            for _ in 0..2 {
                let d = limiter.check(&key(), &quota(8), NonZeroU32::MIN).await;
                assert_eq!(d.expect("decision").source, source);
            }
            let d = limiter
                .check_now(&key(), &quota(8), NonZeroU32::MIN)
                .expect("an open breaker decides at once")
                .expect("decision");
            assert_eq!((d.allowed, d.source), (allowed, source));
            if !allowed {
                assert_eq!(d.retry_after, Some(Duration::from_secs(1)));
            }
        }
    }

    #[tokio::test]
    async fn a_healthy_primary_decides() {
        let clock = ManualClock::new();
        let limiter = limiter(&clock, Switchable::new(&clock), FailurePolicy::FailClosed);
        let d = limiter.check(&key(), &quota(2), NonZeroU32::MIN).await;
        assert!(d.expect("decision").allowed);
        let m = limiter.metrics();
        assert_eq!((m.primary, m.switches_to_policy), (1, 0));
        assert_eq!(m.current, DecisionSource::Primary);
    }

    #[tokio::test]
    async fn fail_closed_denies_with_the_breakers_retry_after() {
        let clock = ManualClock::new();
        let primary = Switchable::new(&clock);
        primary.up.store(false, Ordering::SeqCst);
        let limiter = limiter(&clock, primary, FailurePolicy::FailClosed);
        for _ in 0..3 {
            let d = limiter.check(&key(), &quota(5), NonZeroU32::MIN).await;
            assert!(!d.expect("a decision, not an error").allowed);
        }
        assert_eq!(limiter.circuit_breaker().state(), CircuitState::Open);
        let d = limiter
            .check(&key(), &quota(5), NonZeroU32::MIN)
            .await
            .expect("decision");
        assert_eq!(d.retry_after, Some(Duration::from_secs(1)));
        let m = limiter.metrics();
        assert_eq!((m.fail_closed, m.switches_to_policy), (4, 1));
        assert_eq!(m.current, DecisionSource::FailClosed);
    }

    #[tokio::test]
    async fn fail_open_allows_everything() {
        let clock = ManualClock::new();
        let primary = Switchable::new(&clock);
        primary.up.store(false, Ordering::SeqCst);
        let limiter = limiter(&clock, primary, FailurePolicy::FailOpen);
        for _ in 0..10 {
            let d = limiter.check(&key(), &quota(1), NonZeroU32::MIN).await;
            assert!(d.expect("decision").allowed);
        }
        assert_eq!(limiter.metrics().fail_open, 10);
    }

    #[tokio::test]
    async fn fallback_enforces_this_instances_share_then_recovers_through_half_open() {
        let clock = ManualClock::new();
        let primary = Switchable::new(&clock);
        let local = Arc::new(LocalRateLimiter::new(Arc::new(clock.clone())));
        let limiter = limiter(
            &clock,
            Arc::clone(&primary),
            FailurePolicy::Fallback { local, share: 0.25 },
        );
        primary.up.store(false, Ordering::SeqCst);
        // 8 per second, a quarter of it locally: 2 pass, then denied.
        let allowed = {
            let mut allowed = 0;
            for _ in 0..6 {
                let d = limiter.check(&key(), &quota(8), NonZeroU32::MIN).await;
                allowed += u32::from(d.expect("decision").allowed);
            }
            allowed
        };
        assert_eq!(allowed, 2);
        assert_eq!(limiter.circuit_breaker().state(), CircuitState::Open);
        let m = limiter.metrics();
        assert_eq!((m.fallback, m.switches_to_policy), (6, 1));

        primary.up.store(true, Ordering::SeqCst);
        clock.advance(Duration::from_secs(1));
        let d = limiter.check(&key(), &quota(8), NonZeroU32::MIN).await;
        assert!(d.expect("decision").allowed);
        assert_eq!(limiter.circuit_breaker().state(), CircuitState::Closed);
        let m = limiter.metrics();
        assert_eq!((m.primary, m.switches_to_primary), (1, 1));
        assert_eq!(m.current, DecisionSource::Primary);
    }

    #[tokio::test]
    async fn errors_about_the_request_pass_through() {
        #[derive(Debug)]
        struct Picky;
        #[async_trait::async_trait]
        impl RateLimiter for Picky {
            async fn check(
                &self,
                _: &RateLimitKey,
                _: &Quota,
                _: NonZeroU32,
            ) -> Result<RateLimitDecision> {
                Err(Error::invalid_input("quota too long"))
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
        let limiter = ResilientRateLimiter::builder(Arc::new(Picky))
            .policy(FailurePolicy::FailOpen)
            .build()
            .expect("valid limiter");
        let err = limiter
            .check(&key(), &quota(1), NonZeroU32::MIN)
            .await
            .expect_err("invalid input");
        assert!(matches!(err, Error::InvalidInput { .. }));
        assert_eq!(limiter.metrics().fail_open, 0);
    }

    #[test]
    fn shares_outside_zero_to_one_are_refused() {
        let clock = ManualClock::new();
        for share in [0.0, -1.0, 1.5, f64::NAN] {
            let local = Arc::new(LocalRateLimiter::new(Arc::new(clock.clone())));
            let built = ResilientRateLimiter::builder(Switchable::new(&clock))
                .policy(FailurePolicy::Fallback { local, share })
                .build();
            assert!(built.is_err(), "share {share} accepted");
        }
    }

    #[test]
    fn a_share_scales_the_limit_to_at_least_one() {
        let q = quota(10);
        assert_eq!(share_of(&q, 0.5).expect("quota").limit.get(), 5);
        assert_eq!(share_of(&q, 0.01).expect("quota").limit.get(), 1);
        assert_eq!(share_of(&q, 1.0).expect("quota"), q);
    }
}
