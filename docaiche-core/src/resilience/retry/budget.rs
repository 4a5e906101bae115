use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// One retry, in the budget's fixed-point units (so that a ratio of 0.2
/// deposits exactly 200).
const UNIT: i64 = 1_000;
/// Buckets per window: deposits and withdrawals leave the window a tenth of
/// it at a time.
const BUCKETS: usize = 10;
/// [`BUCKETS`] for index arithmetic.
const BUCKETS_U64: u64 = 10;

/// A shared allowance of retries, in proportion to original calls.
///
/// Each original call deposits `retry_ratio` of a retry; each retry withdraws
/// one; deposits and withdrawals older than `window` expire. On top of that,
/// `min_retries_per_window` retries are always allowed per window, so a
/// quiet service can still retry. With the budget empty, [`Retry`](super::Retry)
/// returns the last error instead of retrying.
///
/// Cheap to clone; clones share the allowance, so one budget per dependency
/// caps retries across every caller.
///
/// ```
/// use std::sync::Arc;
/// use docaiche_core::clock::ManualClock;
/// use docaiche_core::resilience::RetryBudget;
///
/// # fn main() -> Result<(), docaiche_core::Error> {
/// let budget = RetryBudget::builder()
///     .retry_ratio(0.5)
///     .min_retries_per_window(0)
///     .clock(Arc::new(ManualClock::new()))
///     .build()?;
/// budget.deposit();
/// budget.deposit();
/// assert!(budget.try_withdraw());
/// assert!(!budget.try_withdraw());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<BudgetInner>,
}

struct BudgetInner {
    clock: Arc<dyn Clock>,
    bucket_nanos: u64,
    deposit: i64,
    reserve: i64,
    ledger: Mutex<Ledger>,
}

/// Net units (deposits minus withdrawals) per bucket, with a running total.
struct Ledger {
    current: u64,
    buckets: [i64; BUCKETS],
    total: i64,
}

/// Builds a [`RetryBudget`].
///
/// Defaults (tower's `TpsBudget`): a 10 s window, 10 retries per window
/// always allowed, and 0.2 retries per call, on the [`SystemClock`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RetryBudgetBuilder {
    window: Duration,
    min_retries_per_window: u32,
    retry_ratio: f64,
    clock: Option<Arc<dyn Clock>>,
}

impl RetryBudgetBuilder {
    /// How long deposits and withdrawals count.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Retries always allowed per window, whatever the traffic.
    pub fn min_retries_per_window(mut self, retries: u32) -> Self {
        self.min_retries_per_window = retries;
        self
    }

    /// Retries earned per original call (0.2: one retry per five calls).
    pub fn retry_ratio(mut self, ratio: f64) -> Self {
        self.retry_ratio = ratio;
        self
    }

    /// The clock that moves the window.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validate and build.
    ///
    /// # Errors
    ///
    /// [`Error::Misconfigured`] when the window is shorter than 10 ns or the
    /// ratio is not a number in `[0, 1000]`.
    pub fn build(self) -> Result<RetryBudget> {
        let bucket_nanos =
            u64::try_from(self.window.as_nanos() / u128::from(BUCKETS_U64)).unwrap_or(u64::MAX);
        if bucket_nanos == 0 {
            return Err(Error::misconfigured(
                "retry_budget.window",
                "must be at least 10 ns",
            ));
        }
        if !(0.0..=1_000.0).contains(&self.retry_ratio) {
            return Err(Error::misconfigured(
                "retry_budget.retry_ratio",
                "must be a number in [0, 1000]",
            ));
        }
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the ratio is checked to be in [0, 1000], so this is at most 10^6"
        )]
        let deposit = (self.retry_ratio * UNIT as f64).round() as i64;
        Ok(RetryBudget {
            inner: Arc::new(BudgetInner {
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
                bucket_nanos,
                deposit,
                reserve: i64::from(self.min_retries_per_window) * UNIT,
                ledger: Mutex::new(Ledger {
                    current: 0,
                    buckets: [0; BUCKETS],
                    total: 0,
                }),
            }),
        })
    }
}

impl RetryBudget {
    /// A builder with the defaults.
    pub fn builder() -> RetryBudgetBuilder {
        RetryBudgetBuilder {
            window: Duration::from_secs(10),
            min_retries_per_window: 10,
            retry_ratio: 0.2,
            clock: None,
        }
    }

    /// Record an original call.
    pub fn deposit(&self) {
        let mut ledger = self.ledger();
        let slot = ledger.slot();
        ledger.buckets[slot] += self.inner.deposit;
        ledger.total += self.inner.deposit;
    }

    /// Take one retry from the budget; `false` (taking nothing) when empty.
    #[must_use = "a `false` means the retry must not happen"]
    pub fn try_withdraw(&self) -> bool {
        let mut ledger = self.ledger();
        if self.inner.reserve + ledger.total < UNIT {
            return false;
        }
        let slot = ledger.slot();
        ledger.buckets[slot] -= UNIT;
        ledger.total -= UNIT;
        true
    }

    /// How many retries the budget would grant now.
    #[must_use]
    pub fn available(&self) -> u64 {
        let ledger = self.ledger();
        u64::try_from((self.inner.reserve + ledger.total) / UNIT).unwrap_or(0)
    }

    /// The ledger, with expired buckets dropped.
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        let now = u64::try_from(self.inner.clock.monotonic().as_nanos()).unwrap_or(u64::MAX);
        let index = now / self.inner.bucket_nanos;
        // Plain integers inside: still consistent after a panic elsewhere.
        let mut ledger = self
            .inner
            .ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        ledger.advance(index);
        ledger
    }
}

impl Ledger {
    fn slot(&self) -> usize {
        usize::try_from(self.current % BUCKETS_U64).expect("a remainder of 10 fits usize")
    }

    fn advance(&mut self, index: u64) {
        if index <= self.current {
            return;
        }
        if index - self.current >= BUCKETS_U64 {
            self.buckets = [0; BUCKETS];
            self.total = 0;
        } else {
            for expired in self.current + 1..=index {
                self.current = expired;
                let slot = self.slot();
                self.total -= std::mem::take(&mut self.buckets[slot]);
            }
        }
        self.current = index;
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("available", &self.available())
            .finish_non_exhaustive()
    }
}
