//! The [`RateLimiter`] contract: GCRA-style quotas with costs and a
//! side-effect-free `peek`.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A quota: at most `limit` units per `period`, with bursts of up to `limit`.
///
/// In GCRA terms the emission interval is `period / limit` and the burst
/// tolerance lets `limit` units through back to back. Deserialization goes
/// through [`Quota::new`], so a quota read from configuration is as valid as
/// one built in code (`{"limit": 100, "period": 60}`, period in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawQuota", into = "RawQuota")]
#[non_exhaustive]
pub struct Quota {
    /// Units allowed per period (also the burst size).
    pub limit: NonZeroU32,
    /// The period over which `limit` replenishes.
    pub period: Duration,
}

impl Quota {
    /// `limit` units per `period`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `period` is zero or shorter than a
    /// nanosecond per unit.
    pub fn new(limit: NonZeroU32, period: Duration) -> Result<Self> {
        if period.is_zero() || period.as_nanos() < u128::from(limit.get()) {
            return Err(Error::invalid_input(
                "quota period must be at least 1ns per unit",
            ));
        }
        Ok(Self { limit, period })
    }

    /// `limit` units per second.
    #[must_use]
    pub const fn per_second(limit: NonZeroU32) -> Self {
        Self {
            limit,
            period: Duration::from_secs(1),
        }
    }

    /// `limit` units per minute.
    #[must_use]
    pub const fn per_minute(limit: NonZeroU32) -> Self {
        Self {
            limit,
            period: Duration::from_secs(60),
        }
    }

    /// The time one unit takes to replenish (never zero).
    #[must_use]
    pub fn emission_interval(&self) -> Duration {
        self.period / self.limit.get()
    }
}

/// The serialized form of [`Quota`]: the period in (fractional) seconds.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuota {
    limit: NonZeroU32,
    period: f64,
}

impl TryFrom<RawQuota> for Quota {
    type Error = Error;

    fn try_from(raw: RawQuota) -> Result<Self> {
        let period = Duration::try_from_secs_f64(raw.period).map_err(|_| {
            Error::invalid_input("quota period must be a non-negative number of seconds")
        })?;
        Self::new(raw.limit, period)
    }
}

impl From<Quota> for RawQuota {
    fn from(quota: Quota) -> Self {
        Self {
            limit: quota.limit,
            period: quota.period.as_secs_f64(),
        }
    }
}

/// The key a limit applies to, e.g. `tenant:acme:docs` or `ip:203.0.113.7`.
/// Built by the policy layer; opaque to limiters, which may hash-tag it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RateLimitKey(String);

impl RateLimitKey {
    /// Longest accepted key, in bytes.
    pub const MAX_LEN: usize = 256;

    /// Validate and wrap.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if empty, longer than [`Self::MAX_LEN`], or
    /// containing control characters, whitespace or `{}` (reserved for Redis
    /// Cluster hash tags).
    pub fn new(key: impl Into<String>) -> Result<Self> {
        Self::try_from_string(key.into())
            .map_err(|_| Error::invalid_input("invalid rate limit key"))
    }

    /// [`Self::new`] for a `String` the caller built, handing it back when
    /// it is not a valid key (to be escaped, say) rather than dropping it.
    ///
    /// # Errors
    /// The string itself, when [`Self::is_valid`] refuses it.
    pub fn try_from_string(key: String) -> std::result::Result<Self, String> {
        if Self::is_valid(&key) {
            Ok(Self(key))
        } else {
            Err(key)
        }
    }

    /// Whether `key` is a valid key as it is: 1 to [`Self::MAX_LEN`] bytes,
    /// none of them a control character, whitespace, `{` or `}`.
    #[must_use]
    pub fn is_valid(key: &str) -> bool {
        /// The ASCII bytes a key may hold: graphic, not a brace. Every
        /// request builds its keys, so ASCII (the usual case) is checked a
        /// byte at a time by table; any other byte sends the key to the
        /// `char` pass.
        const ASCII_OK: [bool; 256] = {
            let mut table = [false; 256];
            let mut b = 0x21;
            while b < 0x7f {
                table[b] = b != b'{' as usize && b != b'}' as usize;
                b += 1;
            }
            table
        };
        let allowed = |c: char| !c.is_control() && !c.is_whitespace() && c != '{' && c != '}';
        !key.is_empty()
            && key.len() <= Self::MAX_LEN
            && (key.bytes().all(|b| ASCII_OK[usize::from(b)])
                || (!key.is_ascii() && key.chars().all(allowed)))
    }

    /// As a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RateLimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RateLimitKey({:?})", self.0)
    }
}

impl fmt::Display for RateLimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The outcome of a rate-limit check: everything the `RateLimit`,
/// `RateLimit-Policy` and `Retry-After` headers and the audit record need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RateLimitDecision {
    /// Whether the request may proceed (and, for `check`, its cost was taken).
    pub allowed: bool,
    /// The quota's limit.
    pub limit: u32,
    /// Units still available right now after this decision.
    pub remaining: u32,
    /// Time until the full quota is available again.
    pub reset_after: Duration,
    /// When denied: the earliest time a request of the same cost can pass.
    pub retry_after: Option<Duration>,
    /// Who decided: the limiter itself, or a failure policy standing in for
    /// it while it was unavailable.
    #[serde(default)]
    pub source: DecisionSource,
}

/// Who made a [`RateLimitDecision`].
///
/// A limiter answers for itself ([`Primary`](Self::Primary)); a wrapper
/// that survives its outage (such as `docaiche_ratelimit`'s
/// `ResilientRateLimiter`) marks the decisions its failure policy made, so
/// that layers can count degraded decisions per policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DecisionSource {
    /// The limiter asked for the decision made it.
    #[default]
    Primary,
    /// A local limiter decided, with this instance's share of the quota.
    Fallback,
    /// Allowed without a decision: the policy fails open.
    FailOpen,
    /// Denied without a decision: the policy fails closed.
    FailClosed,
}

impl DecisionSource {
    /// A stable snake-case name for logs and metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Fallback => "fallback",
            Self::FailOpen => "fail_open",
            Self::FailClosed => "fail_closed",
        }
    }

    /// Whether a failure policy, not the limiter, decided.
    #[must_use]
    pub const fn is_degraded(self) -> bool {
        !matches!(self, Self::Primary)
    }
}

impl fmt::Display for DecisionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RateLimitDecision {
    /// An allowing decision.
    #[must_use]
    pub const fn allow(limit: u32, remaining: u32, reset_after: Duration) -> Self {
        Self {
            allowed: true,
            limit,
            remaining,
            reset_after,
            retry_after: None,
            source: DecisionSource::Primary,
        }
    }

    /// A denying decision.
    #[must_use]
    pub const fn deny(
        limit: u32,
        remaining: u32,
        reset_after: Duration,
        retry_after: Duration,
    ) -> Self {
        Self {
            allowed: false,
            limit,
            remaining,
            reset_after,
            retry_after: Some(retry_after),
            source: DecisionSource::Primary,
        }
    }

    /// The same decision, marked as made by `source`.
    #[must_use]
    pub const fn with_source(mut self, source: DecisionSource) -> Self {
        self.source = source;
        self
    }

    /// The decision as a `Result`: `Err(Error::RateLimited)` when denied.
    ///
    /// # Errors
    /// [`Error::RateLimited`] with the retry-after when not allowed.
    pub fn into_result(self) -> Result<Self> {
        if self.allowed {
            Ok(self)
        } else {
            Err(Error::RateLimited {
                retry_after: self.retry_after.unwrap_or(self.reset_after),
            })
        }
    }
}

/// A rate limiter.
///
/// Contract:
/// - `check` is atomic per key: concurrent checks never let more than the
///   quota through. A denied check consumes nothing.
/// - `cost` is the number of units the request uses (≥ 1). A cost above the
///   quota's limit can never pass and is denied with
///   `retry_after == reset_after` rather than an error.
/// - `peek` answers what `check` would, without consuming anything.
/// - Keys are opaque and may be attacker-influenced (client addresses, key
///   prefixes): implementations bound the memory they keep per key.
/// - An outage is `Err(Unavailable)`; what to do then (fail closed, open, or
///   fall back) is the caller's policy, not the limiter's.
/// - [`check_now`](Self::check_now) and [`peek_now`](Self::peek_now) are an
///   optional synchronous fast path: a limiter that can decide without
///   waiting (an in-process one) answers there, and callers that try them
///   first (the rate-limit layer does) skip the boxed future. When they
///   answer, they answer exactly as `check` and `peek` would.
/// - [`check_all_now`](Self::check_all_now) is an optional all-or-nothing
///   check of several limits (an in-process limiter answers it under its
///   locks); `None`, the default, leaves the caller to `peek` every limit
///   and then `check` each.
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync + fmt::Debug + 'static {
    /// Take `cost` units from `key` under `quota` if available.
    ///
    /// # Errors
    /// `Unavailable` when the backing store cannot be reached.
    async fn check(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Result<RateLimitDecision>;

    /// What `check` would answer, without consuming.
    ///
    /// # Errors
    /// `Unavailable` when the backing store cannot be reached.
    async fn peek(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Result<RateLimitDecision>;

    /// [`check`](Self::check) without waiting, when this limiter can decide
    /// synchronously; `None` (the default) means "await `check`".
    ///
    /// An answer here has taken the cost exactly as `check` would; `None`
    /// has done nothing.
    #[inline]
    fn check_now(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Option<Result<RateLimitDecision>> {
        let _ = (key, quota, cost);
        None
    }

    /// [`peek`](Self::peek) without waiting, when this limiter can decide
    /// synchronously; `None` (the default) means "await `peek`".
    #[inline]
    fn peek_now(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Option<Result<RateLimitDecision>> {
        let _ = (key, quota, cost);
        None
    }

    /// Check several limits at once, all or nothing, without waiting, when
    /// this limiter can: if every limit has its cost available, every cost
    /// is taken; if any refuses, none is. `None` (the default) means "not
    /// supported here": nothing was done, and the caller falls back to
    /// [`peek`](Self::peek) of every limit, then [`check`](Self::check) of
    /// each.
    ///
    /// The answers are in the order of `checks`. When every cost was taken
    /// they are what `check` would have answered, one after another; when
    /// none was, each is what `peek` would answer (so the refusing ones
    /// carry their `retry_after`). A key named twice is charged twice, the
    /// second check seeing the first.
    #[inline]
    fn check_all_now(&self, checks: &[LimitCheck<'_>]) -> Option<Result<Vec<RateLimitDecision>>> {
        let _ = checks;
        None
    }
}

/// One limit of [`RateLimiter::check_all_now`]: a key, its quota and the
/// cost to take.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct LimitCheck<'a> {
    /// The key charged.
    pub key: &'a RateLimitKey,
    /// Its quota.
    pub quota: &'a Quota,
    /// The units to take.
    pub cost: NonZeroU32,
}

impl<'a> LimitCheck<'a> {
    /// Take `cost` units from `key` under `quota`.
    #[must_use]
    pub const fn new(key: &'a RateLimitKey, quota: &'a Quota, cost: NonZeroU32) -> Self {
        Self { key, quota, cost }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_refuse_control_whitespace_and_braces_in_any_script() {
        for ok in [
            "rl:default:t:acme",
            "ip:203.0.113.7",
            "p:acme:ключ",
            "k:日本",
            "~!@#$%^&*()_+-=[]|;':\",./<>?",
        ] {
            assert!(RateLimitKey::new(ok).is_ok(), "{ok:?}");
            assert!(RateLimitKey::is_valid(ok), "{ok:?}");
            let key = RateLimitKey::try_from_string(ok.to_owned()).expect("valid");
            assert_eq!(key.as_str(), ok);
        }
        let long = "k".repeat(RateLimitKey::MAX_LEN + 1);
        for bad in [
            "",
            "a b",
            "tab\there",
            "nl\n",
            "del\u{7f}",
            "{hash}tag",
            "ключ key",
            "nbsp\u{a0}x",
            "ключ\u{2028}",
            "c1\u{85}",
            long.as_str(),
        ] {
            assert!(RateLimitKey::new(bad).is_err(), "{bad:?}");
            assert!(!RateLimitKey::is_valid(bad), "{bad:?}");
            // The refused string comes back whole, to be escaped.
            assert_eq!(
                RateLimitKey::try_from_string(bad.to_owned()),
                Err(bad.to_owned())
            );
        }
        // Every single byte agrees with the rule as written.
        for b in 0u8..=0x7f {
            let c = char::from(b);
            let expected = !c.is_control() && !c.is_whitespace() && c != '{' && c != '}';
            assert_eq!(RateLimitKey::is_valid(&c.to_string()), expected, "{b:#x}");
        }
    }
}
