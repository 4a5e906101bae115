//! Counters of the rate-limit layer, per policy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::policy::PolicySet;

/// Allowed, limited and error counts per policy, shared by every layer and
/// service built from one [`RateLimitLayer`](super::RateLimitLayer).
///
/// Lock-free: the set of policies is fixed when the layer is built, so each
/// request touches one atomic counter. Read with [`Self::snapshot`].
#[derive(Debug, Clone)]
pub struct RateLimitMetrics {
    counters: Arc<BTreeMap<String, Counters>>,
}

#[derive(Debug, Default)]
struct Counters {
    allowed: AtomicU64,
    limited: AtomicU64,
    errors: AtomicU64,
    fallback: AtomicU64,
}

impl Counters {
    fn snapshot(&self, policy: &str) -> PolicyMetrics {
        PolicyMetrics {
            policy: policy.to_owned(),
            allowed: self.allowed.load(Ordering::Relaxed),
            limited: self.limited.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            fallback: self.fallback.load(Ordering::Relaxed),
        }
    }
}

/// The counters of one policy at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyMetrics {
    /// The policy's name (after tier resolution).
    pub policy: String,
    /// Requests that passed every limit.
    pub allowed: u64,
    /// Requests refused with a 429 (a rate or concurrency limit).
    pub limited: u64,
    /// Requests for which the limiter failed, whatever
    /// `on_limiter_error` then did with them.
    pub errors: u64,
    /// Of the allowed and limited requests, those a failure policy decided
    /// (at least in part) while the shared limiter was down: the local
    /// fallback limiter, fail-open or fail-closed
    /// ([`ResilientRateLimiter`](crate::fallback::ResilientRateLimiter)).
    pub fallback: u64,
}

/// Which counter to bump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Allowed,
    Limited,
    Error,
}

impl RateLimitMetrics {
    pub(crate) fn new(policies: &PolicySet) -> Self {
        let counters = policies
            .policies()
            .map(|p| (p.name().as_str().to_owned(), Counters::default()))
            .collect();
        Self {
            counters: Arc::new(counters),
        }
    }

    pub(crate) fn record(&self, policy: &str, outcome: Outcome, degraded: bool) {
        if let Some(c) = self.counters.get(policy) {
            if degraded {
                c.fallback.fetch_add(1, Ordering::Relaxed);
            }
            let counter = match outcome {
                Outcome::Allowed => &c.allowed,
                Outcome::Limited => &c.limited,
                Outcome::Error => &c.errors,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every policy's counters, sorted by policy name.
    #[must_use]
    pub fn snapshot(&self) -> Vec<PolicyMetrics> {
        self.counters
            .iter()
            .map(|(policy, c)| c.snapshot(policy))
            .collect()
    }

    /// One policy's counters.
    #[must_use]
    pub fn policy(&self, name: &str) -> Option<PolicyMetrics> {
        self.counters
            .get_key_value(name)
            .map(|(policy, c)| c.snapshot(policy))
    }
}
