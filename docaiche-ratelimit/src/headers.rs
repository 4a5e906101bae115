//! The `RateLimit-Policy` and `RateLimit` response fields of
//! [draft-ietf-httpapi-ratelimit-headers-11], and `Retry-After`.
//!
//! Both fields are Structured Field Lists ([RFC 9651]) of Items whose value
//! is an sf-string naming a quota policy:
//!
//! ```text
//! RateLimit-Policy: "default-tenant";q=600;w=60, "default-principal";q=120;w=60
//! RateLimit: "default-principal";r=17;t=48
//! ```
//!
//! - `RateLimit-Policy` (draft §3) lists every quota the request was
//!   subject to: `q` is the quota in units (§3.1.1) and `w` the window in
//!   whole seconds (§3.1.3: a non-zero Integer, "sub-second precision is not
//!   supported", so a fractional period is rounded up). A per-tenant
//!   concurrency limit is listed too, with `qu="concurrent-requests"`
//!   (§3.1.2) and no window. The value is static per policy, so it is
//!   rendered once when the policy is built.
//! - `RateLimit` (draft §4) carries the service limit that matters now: `r`
//!   is the available quota (§4.1.1) and `t` the effective window in whole
//!   seconds, rounded up (§4.1.2). When several limits apply, only the most
//!   restrictive one (lowest `r`; on a tie, the longer `t`) is reported:
//!   Appendix B.1.2 shows a server omitting a policy because another "is the
//!   one that is closest to being exhausted", and a client that respects the
//!   tightest limit respects them all.
//! - On a 429, the reported item is the violated limit with `r=0` and `t`
//!   equal to `Retry-After`, because §6 says `Retry-After` "SHOULD NOT
//!   reference a point in time earlier than the end of the effective
//!   window" (Appendix B.1.4 shows both naming the same moment).
//!
//! Header injection is impossible by construction: a [`PolicyName`] admits
//! only `[A-Za-z0-9._-]` (a strict subset of what an sf-string allows, so it
//! never needs escaping), and every parameter is an integer.
//!
//! [draft-ietf-httpapi-ratelimit-headers-11]: https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/11/
//! [RFC 9651]: https://www.rfc-editor.org/rfc/rfc9651

use std::fmt::{self, Write as _};
use std::time::Duration;

use docaiche_core::Error;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The `RateLimit` field name (draft §4).
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The `RateLimit-Policy` field name (draft §3).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// The largest Integer a Structured Field may carry (RFC 9651 §3.3.1).
const SF_INTEGER_MAX: u64 = 999_999_999_999_999;

/// A quota policy's name as it appears in the headers, metrics and logs.
///
/// 1 to [`PolicyName::MAX_LEN`] bytes of ASCII letters, digits, `.`, `_` and
/// `-`: safe inside an sf-string without escaping, in a rate-limit key, and
/// as a metrics label.
///
/// Cheap to clone (shared): every request's limiter round and response
/// headers carry the names of its limits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyName(std::sync::Arc<str>);

impl PolicyName {
    /// Longest accepted name, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Validate and wrap.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `name` is empty, too long, or holds any
    /// character other than ASCII letters, digits, `.`, `_` and `-` (a quote,
    /// backslash, comma, semicolon or line break could otherwise forge
    /// header content).
    pub fn new(name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(Self(name.into()))
        } else {
            Err(Error::invalid_input(format!(
                "policy names are 1 to {} characters of A-Z a-z 0-9 . _ -",
                Self::MAX_LEN
            )))
        }
    }

    /// As a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyName({:?})", self.0)
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The unit a quota counts (draft §3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaUnit {
    /// Requests (or request costs): the draft's default, so not written.
    Requests,
    /// Requests in flight at the same time: written `qu="concurrent-requests"`.
    ConcurrentRequests,
}

/// One Item of `RateLimit-Policy`: a quota policy (draft §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuotaPolicyItem {
    /// The policy's name.
    pub name: PolicyName,
    /// `q`: the quota, in units.
    pub quota: u64,
    /// `w`: the window in whole seconds, if the quota has one.
    pub window_secs: Option<u64>,
    /// `qu`: the unit.
    pub unit: QuotaUnit,
}

impl QuotaPolicyItem {
    /// A quota of `quota` requests per `window`, the window rounded up to
    /// whole seconds (at least 1, as §3.1.3 requires).
    #[must_use]
    pub fn requests(name: PolicyName, quota: u32, window: Duration) -> Self {
        Self {
            name,
            quota: u64::from(quota),
            window_secs: Some(ceil_secs(window).max(1)),
            unit: QuotaUnit::Requests,
        }
    }

    /// A limit of `max` concurrent requests (no window).
    #[must_use]
    pub fn concurrent(name: PolicyName, max: u32) -> Self {
        Self {
            name,
            quota: u64::from(max),
            window_secs: None,
            unit: QuotaUnit::ConcurrentRequests,
        }
    }
}

impl fmt::Display for QuotaPolicyItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\";q={}", self.name, self.quota.min(SF_INTEGER_MAX))?;
        if self.unit == QuotaUnit::ConcurrentRequests {
            f.write_str(";qu=\"concurrent-requests\"")?;
        }
        if let Some(w) = self.window_secs {
            write!(f, ";w={}", w.min(SF_INTEGER_MAX))?;
        }
        Ok(())
    }
}

/// One Item of `RateLimit`: the current service limit of a policy
/// (draft §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceLimitItem {
    /// The policy's name.
    pub name: PolicyName,
    /// `r`: the available quota.
    pub remaining: u64,
    /// `t`: the effective window in whole seconds (rounded up), if any.
    pub reset_secs: Option<u64>,
}

impl ServiceLimitItem {
    /// `remaining` units available, the window ending after `reset`
    /// (rounded up to whole seconds).
    #[must_use]
    pub fn new(name: PolicyName, remaining: u32, reset: Duration) -> Self {
        Self {
            name,
            remaining: u64::from(remaining),
            reset_secs: Some(ceil_secs(reset)),
        }
    }

    /// An item without an effective window (a concurrency limit).
    #[must_use]
    pub fn without_window(name: PolicyName, remaining: u32) -> Self {
        Self {
            name,
            remaining: u64::from(remaining),
            reset_secs: None,
        }
    }

    /// Whether `self` is more restrictive than `other`: fewer units left,
    /// or as few and a longer wait.
    #[must_use]
    pub fn is_stricter_than(&self, other: &Self) -> bool {
        (self.remaining, std::cmp::Reverse(self.reset_secs))
            < (other.remaining, std::cmp::Reverse(other.reset_secs))
    }

    /// The `RateLimit` field value.
    #[must_use]
    pub fn to_header_value(&self) -> HeaderValue {
        // One buffer, written without the formatter and handed to the
        // header value without a copy: every allowed response carries this
        // field. The same text as `Display`.
        let name = self.name.as_str();
        let mut digits = itoa::Buffer::new();
        let mut text = String::with_capacity(name.len() + 48);
        text.push('"');
        text.push_str(name);
        text.push_str("\";r=");
        text.push_str(digits.format(self.remaining.min(SF_INTEGER_MAX)));
        if let Some(t) = self.reset_secs {
            text.push_str(";t=");
            text.push_str(digits.format(t.min(SF_INTEGER_MAX)));
        }
        // Names are [A-Za-z0-9._-] and parameters integers: always visible ASCII.
        HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

impl fmt::Display for ServiceLimitItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\";r={}",
            self.name,
            self.remaining.min(SF_INTEGER_MAX)
        )?;
        if let Some(t) = self.reset_secs {
            write!(f, ";t={}", t.min(SF_INTEGER_MAX))?;
        }
        Ok(())
    }
}

/// The `RateLimit-Policy` field value listing `items` (an empty slice gives
/// `None`: the draft requires a non-empty List).
#[must_use]
pub fn policy_header_value(items: &[QuotaPolicyItem]) -> Option<HeaderValue> {
    if items.is_empty() {
        return None;
    }
    let mut value = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            value.push_str(", ");
        }
        // Writing to a String cannot fail.
        let _ = write!(value, "{item}");
    }
    Some(header_value(&value))
}

/// Insert `RateLimit-Policy` (when given) and `RateLimit` (when given),
/// replacing any values the inner service set.
pub fn insert(
    headers: &mut HeaderMap,
    policy: Option<&HeaderValue>,
    current: Option<&ServiceLimitItem>,
) {
    if let Some(policy) = policy {
        headers.insert(RATELIMIT_POLICY, policy.clone());
    }
    if let Some(current) = current {
        headers.insert(RATELIMIT, current.to_header_value());
    }
}

/// Whole seconds, rounded up: what `Retry-After` and `t` carry, so that a
/// client never comes back early.
#[must_use]
pub fn ceil_secs(duration: Duration) -> u64 {
    let whole = duration.as_secs();
    if duration.subsec_nanos() > 0 {
        whole.saturating_add(1)
    } else {
        whole
    }
}

/// A header value from text built only of validated names and integers.
fn header_value(text: &str) -> HeaderValue {
    // Names are [A-Za-z0-9._-] and parameters integers: always visible ASCII.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> PolicyName {
        PolicyName::new(s).expect("valid name")
    }

    #[test]
    fn policy_field_lists_every_quota_with_whole_second_windows() {
        let value = policy_header_value(&[
            QuotaPolicyItem::requests(name("burst"), 100, Duration::from_secs(60)),
            QuotaPolicyItem::requests(name("daily"), 1000, Duration::from_secs(86_400)),
            QuotaPolicyItem::requests(name("fast"), 5, Duration::from_millis(500)),
            QuotaPolicyItem::concurrent(name("heavy"), 4),
        ])
        .expect("non-empty");
        assert_eq!(
            value,
            "\"burst\";q=100;w=60, \"daily\";q=1000;w=86400, \"fast\";q=5;w=1, \
             \"heavy\";q=4;qu=\"concurrent-requests\""
        );
        assert!(policy_header_value(&[]).is_none());
    }

    #[test]
    fn service_limit_rounds_the_window_up() {
        let item = ServiceLimitItem::new(name("default"), 42, Duration::from_millis(16_001));
        assert_eq!(item.to_header_value(), "\"default\";r=42;t=17");
        let exact = ServiceLimitItem::new(name("default"), 0, Duration::from_secs(5));
        assert_eq!(exact.to_header_value(), "\"default\";r=0;t=5");
        let concurrent = ServiceLimitItem::without_window(name("heavy"), 3);
        assert_eq!(concurrent.to_header_value(), "\"heavy\";r=3");
    }

    #[test]
    fn the_stricter_limit_has_fewer_units_then_the_longer_wait() {
        let a = ServiceLimitItem::new(name("a"), 3, Duration::from_secs(10));
        let b = ServiceLimitItem::new(name("b"), 5, Duration::from_secs(1));
        let c = ServiceLimitItem::new(name("c"), 3, Duration::from_secs(20));
        assert!(a.is_stricter_than(&b));
        assert!(c.is_stricter_than(&a));
        assert!(!a.is_stricter_than(&a));
    }

    #[test]
    fn rejects_header_injection_in_policy_names() {
        for bad in [
            "",
            "a\"b",
            "a\\b",
            "a,b",
            "a;q=1",
            "a\r\nX-Evil: 1",
            "a b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(PolicyName::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(PolicyName::new("documents-pro.v2_tenant").is_ok());
    }

    #[test]
    fn integers_are_capped_at_the_structured_field_maximum() {
        let item = ServiceLimitItem {
            name: name("huge"),
            remaining: u64::MAX,
            reset_secs: Some(u64::MAX),
        };
        assert_eq!(
            item.to_string(),
            "\"huge\";r=999999999999999;t=999999999999999"
        );
        assert_eq!(ceil_secs(Duration::MAX), u64::MAX);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_nanos(1)), 1);
    }
}
