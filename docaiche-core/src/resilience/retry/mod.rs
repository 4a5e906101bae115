//! Retries with exponential backoff, full jitter and a retry budget.
//!
//! * **What is retried.** Only errors for which [`Error::is_retryable`] holds
//!   (transient outages and timeouts). An open circuit, a rejected document or
//!   a permission error comes back at once.
//! * **How long to wait.** Before retry `n` (the first retry is `n = 0`) the
//!   wait is drawn uniformly from `[0, min(max_delay, base_delay ×
//!   multiplierⁿ)]`: "full jitter" from the AWS architecture blog's *Exponential
//!   Backoff And Jitter*. Without jitter, clients that failed together retry
//!   together and hit a recovering dependency in synchronized waves.
//! * **How much in total.** A [`RetryBudget`] caps retries at a ratio of
//!   original calls (plus a small reserve per time window), as Finagle and
//!   tower's `TpsBudget` do. Per-call `max_attempts` alone multiplies load by
//!   `max_attempts` exactly when the dependency is already struggling; a
//!   budget keeps that amplification to `1 + ratio`.
//! * **Time** comes from the [`Clock`]: waits are [`Clock::sleep`], so tests
//!   with [`ManualClock`](crate::clock::ManualClock) run instantly and can
//!   inspect every wait.
//!
//! [`Retry`] wraps closures; [`RetryLayer`] wraps tower services (cloning the
//! request for each attempt).
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//! use docaiche_core::clock::ManualClock;
//! use docaiche_core::resilience::{Retry, RetryBudget, RetryPolicy};
//! use docaiche_core::Error;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let clock = Arc::new(ManualClock::new().with_auto_advance());
//! let policy = RetryPolicy::builder()
//!     .max_attempts(4)
//!     .base_delay(Duration::from_millis(50))
//!     .max_delay(Duration::from_secs(2))
//!     .build()?;
//! let budget = RetryBudget::builder().clock(clock.clone()).build()?;
//! let retry = Retry::new(policy, clock.clone()).with_budget(budget);
//!
//! let attempts = AtomicU32::new(0);
//! let value = retry
//!     .call(|| async {
//!         if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
//!             Err(Error::unavailable("redis", std::io::Error::other("reset")))
//!         } else {
//!             Ok("cached")
//!         }
//!     })
//!     .await?;
//! assert_eq!(value, "cached");
//! assert_eq!(clock.sleeps().len(), 2);
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};

mod budget;
pub mod future;
mod layer;
mod service;
#[cfg(test)]
mod tests;

pub use budget::{RetryBudget, RetryBudgetBuilder};
pub use layer::RetryLayer;
pub use service::RetryService;

/// How many attempts, and how long to wait between them.
///
/// Built with [`RetryPolicy::builder`]; `Copy`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
}

/// Builds a [`RetryPolicy`].
///
/// Defaults: 3 attempts, 100 ms base delay, 10 s maximum delay, multiplier 2.
#[derive(Debug, Clone, Copy)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RetryPolicyBuilder {
    policy: RetryPolicy,
}

impl RetryPolicyBuilder {
    /// Attempts in total, the first included (1 disables retries).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.policy.max_attempts = attempts;
        self
    }

    /// The cap of the first retry's wait.
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.policy.base_delay = delay;
        self
    }

    /// No wait is ever longer than this.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.policy.max_delay = delay;
        self
    }

    /// Growth of the cap from one retry to the next (`>= 1`, finite).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.policy.multiplier = multiplier;
        self
    }

    /// Validate and build.
    ///
    /// # Errors
    ///
    /// [`Error::Misconfigured`] when `max_attempts` is zero, `base_delay`
    /// exceeds `max_delay`, or the multiplier is below 1 or not finite.
    pub fn build(self) -> Result<RetryPolicy> {
        let p = self.policy;
        if p.max_attempts == 0 {
            return Err(Error::misconfigured(
                "retry.max_attempts",
                "must be at least 1 (the first attempt counts)",
            ));
        }
        if p.base_delay > p.max_delay {
            return Err(Error::misconfigured(
                "retry.base_delay",
                "must not exceed retry.max_delay",
            ));
        }
        if !(p.multiplier.is_finite() && p.multiplier >= 1.0) {
            return Err(Error::misconfigured(
                "retry.multiplier",
                "must be a finite number of at least 1",
            ));
        }
        Ok(p)
    }
}

impl RetryPolicy {
    /// A builder with the defaults.
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            policy: Self {
                max_attempts: 3,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(10),
                multiplier: 2.0,
            },
        }
    }

    /// Attempts in total, the first included.
    #[must_use]
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The longest wait before retry `retry` (0 for the first retry):
    /// `min(max_delay, base_delay × multiplier^retry)`.
    #[must_use]
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        if self.base_delay.is_zero() {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let secs = self.base_delay.as_secs_f64() * self.multiplier.powi(exponent);
        // An overflow (infinite or too large for a Duration) is past any cap.
        Duration::try_from_secs_f64(secs).map_or(self.max_delay, |cap| cap.min(self.max_delay))
    }

    /// The wait before retry `retry` (0 for the first retry): uniformly random
    /// in `[0, backoff_cap(retry)]`.
    #[must_use]
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = u64::try_from(self.backoff_cap(retry).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=cap))
    }
}

/// Runs operations with a [`RetryPolicy`], sleeping on a [`Clock`], and
/// optionally within a [`RetryBudget`].
///
/// Cheap to clone (an `Arc` inside); clones share the budget.
#[derive(Clone)]
pub struct Retry {
    inner: Arc<RetryInner>,
}

struct RetryInner {
    policy: RetryPolicy,
    clock: Arc<dyn Clock>,
    budget: Option<RetryBudget>,
}

impl Retry {
    /// Retry with `policy`, waiting on `clock`, without a budget.
    #[must_use]
    pub fn new(policy: RetryPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(RetryInner {
                policy,
                clock,
                budget: None,
            }),
        }
    }

    /// Also stay within `budget`: every call deposits, every retry withdraws,
    /// and with the budget empty the last error is returned.
    #[must_use]
    pub fn with_budget(self, budget: RetryBudget) -> Self {
        Self {
            inner: Arc::new(RetryInner {
                policy: self.inner.policy,
                clock: Arc::clone(&self.inner.clock),
                budget: Some(budget),
            }),
        }
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &RetryPolicy {
        &self.inner.policy
    }

    /// The budget, if any.
    #[must_use]
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.inner.budget.as_ref()
    }

    /// Run `operation` until it succeeds, fails with an error that is not
    /// retryable, uses `max_attempts`, or the budget runs dry.
    ///
    /// # Errors
    ///
    /// The last attempt's error.
    pub async fn call<T, F, Fut>(&self, mut operation: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.deposit();
        let mut attempts = 0;
        loop {
            let error = match operation().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            attempts += 1;
            match self.next_delay(&error, attempts) {
                Some(delay) => self.inner.clock.sleep(delay).await,
                None => return Err(error),
            }
        }
    }

    pub(crate) fn deposit(&self) {
        if let Some(budget) = &self.inner.budget {
            budget.deposit();
        }
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }

    /// After `attempts` attempts ending in `error`: how long to wait before
    /// the next one, or `None` to give up (withdrawing from the budget when
    /// a retry is granted).
    pub(crate) fn next_delay(&self, error: &Error, attempts: u32) -> Option<Duration> {
        if !error.is_retryable() || attempts >= self.inner.policy.max_attempts {
            return None;
        }
        if let Some(budget) = &self.inner.budget
            && !budget.try_withdraw()
        {
            tracing::debug!(error = %error, attempts, "retry budget exhausted, not retrying");
            return None;
        }
        let delay = self.inner.policy.backoff(attempts - 1);
        tracing::debug!(error = %error, attempts, ?delay, "retrying");
        Some(delay)
    }
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("policy", &self.inner.policy)
            .field("clock", &self.inner.clock)
            .field("budget", &self.inner.budget)
            .finish()
    }
}
