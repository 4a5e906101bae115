//! A circuit breaker with resilience4j's semantics.
//!
//! ```text
//!            failure or slow rate ≥ threshold
//!            (over ≥ minimum_calls in the window)
//!   Closed ───────────────────────────────────────▶ Open
//!     ▲                                               │ wait_in_open elapsed
//!     │ trial rates below thresholds                  ▼
//!     └──────────────────────────────────────────── HalfOpen
//!                 trial rates at/above thresholds ───▶ Open
//! ```
//!
//! * **Closed** admits every call and records its outcome in a sliding window,
//!   either the last N calls ([`CircuitBreakerBuilder::count_window`]) or the
//!   last span of time split in buckets ([`CircuitBreakerBuilder::time_window`]).
//!   Once the window holds at least `minimum_calls`, a failure rate or a
//!   slow-call rate at or above its threshold opens the breaker.
//! * **Open** refuses every call at once with [`Error::CircuitOpen`], whose
//!   `retry_after` is the open time left, until `wait_in_open` has elapsed.
//! * **HalfOpen** admits exactly `permitted_calls_in_half_open` trial calls
//!   and refuses the rest. When all trials have finished, their rates decide:
//!   at or above a threshold opens again, below closes with a fresh window.
//!
//! Only errors for which [`Error::is_dependency_failure`] holds count as
//! failures: a `NotFound` or an `InvalidInput` says something about the
//! request, not about the dependency, so for the breaker it is a success. A
//! call is slow when it took at least `slow_call_duration` on the breaker's
//! [`Clock`], whether it succeeded or failed.
//!
//! ## How durations are measured
//!
//! A [`Permit`] is timed from [`CircuitBreaker::try_acquire`] to its report.
//! [`CircuitBreaker::call`] and the layer time a call **from the first poll
//! that finds it waiting** to its completion, like
//! [`Timeout`](crate::resilience::Timeout) starts its deadline: a call that
//! completes within its first poll (a cache hit, an in-memory backend) is
//! never slow and costs no clock read. A dependency that is slow makes its
//! callers wait, so this loses nothing but the CPU time of a first poll that
//! blocks, which is a bug of its own.
//!
//! ## Cost
//!
//! The breaker's state and a generation number share one atomic word, so a
//! closed breaker admits a call with one atomic load and no clock read, and
//! an open one refuses it with an atomic load, a clock read and an atomic
//! increment, without taking a lock. Recording an outcome takes one
//! uncontended mutex and integer arithmetic; the sliding windows keep running
//! totals, so neither recording nor evaluating depends on the window's size.
//! Reading the clock is the main cost otherwise (about 35 ns per
//! `Instant::now` on a small cloud VM), hence the timing rule above: a call
//! that waits reads it twice (when it starts waiting and when it completes),
//! an outcome placed in a time window once, a call that completes at once
//! into a count window never.
//!
//! Outcomes of calls admitted under an earlier generation (before the breaker
//! last changed state) are ignored, so a slow call started before the breaker
//! opened cannot close it again.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use docaiche_core::clock::ManualClock;
//! use docaiche_core::resilience::{CircuitBreaker, CircuitState};
//! use docaiche_core::Error;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let clock = ManualClock::new();
//! let breaker = CircuitBreaker::builder("postgres")
//!     .count_window(10)
//!     .minimum_calls(4)
//!     .failure_rate_threshold(50.0)
//!     .wait_in_open(Duration::from_secs(30))
//!     .clock(Arc::new(clock.clone()))
//!     .build()?;
//!
//! for _ in 0..4 {
//!     let outage = Error::unavailable("postgres", std::io::Error::other("refused"));
//!     let _ = breaker.call(|| async { Err::<(), _>(outage) }).await;
//! }
//! assert_eq!(breaker.state(), CircuitState::Open);
//!
//! // Refused without running the closure, with a Retry-After hint.
//! let err = breaker.call(|| async { Ok(1) }).await.unwrap_err();
//! assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::Either;
use pin_project_lite::pin_project;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

pub mod future;
mod layer;
mod service;
#[cfg(test)]
mod tests;
mod window;

pub use layer::CircuitBreakerLayer;
pub use service::CircuitBreakerService;

use window::{Counts, Window, WindowKind};

/// The state of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[expect(
    clippy::exhaustive_enums,
    reason = "the three states are the circuit-breaker model itself"
)]
pub enum CircuitState {
    /// Calls pass and their outcomes are recorded.
    Closed,
    /// Calls are refused until the wait in open elapses.
    Open,
    /// A limited number of trial calls decide between closed and open.
    HalfOpen,
}

impl CircuitState {
    /// A stable snake-case name for logs and metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    const fn bits(self) -> u64 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const STATE_MASK: u64 = 0b11;
const CLOSED: u64 = 0;
const OPEN: u64 = 1;

/// A snapshot of a breaker's counters, from [`CircuitBreaker::metrics`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CircuitBreakerMetrics {
    /// The state when the snapshot was taken.
    pub state: CircuitState,
    /// Calls counted: in the sliding window while closed (and, frozen, while
    /// open); the finished trial calls while half-open.
    pub calls: u64,
    /// How many of [`calls`](Self::calls) failed.
    pub failures: u64,
    /// How many of [`calls`](Self::calls) were slow.
    pub slow_calls: u64,
    /// Failure rate of [`calls`](Self::calls), in percent.
    pub failure_rate: f64,
    /// Slow-call rate of [`calls`](Self::calls), in percent.
    pub slow_call_rate: f64,
    /// How many times the breaker has opened since it was built.
    pub transitions_to_open: u64,
    /// How many calls were refused (open, or half-open with every trial slot
    /// taken) since it was built.
    pub rejected_calls: u64,
}

/// A circuit breaker protecting one dependency.
///
/// Cheap to clone: clones share the same state (an `Arc` inside), so one
/// breaker can guard direct calls ([`CircuitBreaker::call`]) and a tower stack
/// ([`CircuitBreakerLayer`]) at once. See the [module docs](self).
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

/// Builds a [`CircuitBreaker`]; from [`CircuitBreaker::builder`].
///
/// Defaults follow resilience4j: a count window of 100 calls, 100 minimum
/// calls, 50 % failure-rate threshold, 100 % slow-call-rate threshold with
/// calls of 60 s or more counted as slow, 60 s wait in open, 10 trial calls
/// in half-open, and the [`SystemClock`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct CircuitBreakerBuilder {
    name: Cow<'static, str>,
    config: Config,
    clock: Option<Arc<dyn Clock>>,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    window: WindowKind,
    failure_rate_threshold: f64,
    slow_call_rate_threshold: f64,
    slow_call_duration: Duration,
    minimum_calls: u32,
    wait_in_open: Duration,
    permitted_calls_in_half_open: u32,
}

/// The thresholds in basis points (1/100 of a percent), so that evaluating
/// the window after every call is integer arithmetic.
#[derive(Debug, Clone, Copy)]
struct Thresholds {
    failure: u64,
    slow: u64,
}

impl Thresholds {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "`build` checked both percentages are in (0, 100]: at most 10 000"
    )]
    fn new(config: &Config) -> Self {
        let basis_points = |percent: f64| (percent * 100.0).round() as u64;
        Self {
            failure: basis_points(config.failure_rate_threshold),
            slow: basis_points(config.slow_call_rate_threshold),
        }
    }

    /// Whether a rate reaches its threshold: `part / calls ≥ bp / 10 000`.
    fn tripped_by(self, counts: Counts) -> bool {
        let reaches = |part: u64, threshold: u64| {
            part.saturating_mul(10_000) >= threshold.saturating_mul(counts.calls)
        };
        counts.calls > 0
            && (reaches(counts.failures, self.failure) || reaches(counts.slow, self.slow))
    }
}

impl CircuitBreakerBuilder {
    /// Evaluate the last `calls` calls (a count-based sliding window).
    pub fn count_window(mut self, calls: u32) -> Self {
        self.config.window = WindowKind::Count { calls };
        self
    }

    /// Evaluate the calls of the last `length` of time, kept in `buckets`
    /// buckets (a time-based sliding window). Old calls leave the window a
    /// bucket at a time, so more buckets forget more smoothly.
    pub fn time_window(mut self, length: Duration, buckets: u32) -> Self {
        self.config.window = WindowKind::Time { length, buckets };
        self
    }

    /// Open when at least this percentage of the window's calls failed
    /// (`0 < percent <= 100`).
    pub fn failure_rate_threshold(mut self, percent: f64) -> Self {
        self.config.failure_rate_threshold = percent;
        self
    }

    /// Open when at least this percentage of the window's calls were slow
    /// (`0 < percent <= 100`).
    pub fn slow_call_rate_threshold(mut self, percent: f64) -> Self {
        self.config.slow_call_rate_threshold = percent;
        self
    }

    /// A call taking at least this long is slow.
    pub fn slow_call_duration(mut self, duration: Duration) -> Self {
        self.config.slow_call_duration = duration;
        self
    }

    /// Rates are not evaluated until the window holds this many calls.
    pub fn minimum_calls(mut self, calls: u32) -> Self {
        self.config.minimum_calls = calls;
        self
    }

    /// How long the breaker stays open before admitting trial calls.
    pub fn wait_in_open(mut self, wait: Duration) -> Self {
        self.config.wait_in_open = wait;
        self
    }

    /// How many trial calls the half-open breaker admits.
    pub fn permitted_calls_in_half_open(mut self, calls: u32) -> Self {
        self.config.permitted_calls_in_half_open = calls;
        self
    }

    /// The clock that measures call durations, windows and the wait in open.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Build the breaker, closed.
    ///
    /// # Errors
    ///
    /// [`Error::Misconfigured`] when a threshold is not in `(0, 100]`, a count
    /// or duration is zero, a time window is shorter than one nanosecond per
    /// bucket, or `minimum_calls` exceeds a count window (it could never open).
    pub fn build(self) -> Result<CircuitBreaker> {
        let c = &self.config;
        let bad = |setting: &'static str, reason: &'static str| {
            Err(Error::misconfigured(
                format!("circuit_breaker.{setting}"),
                reason,
            ))
        };
        for (setting, value) in [
            ("failure_rate_threshold", c.failure_rate_threshold),
            ("slow_call_rate_threshold", c.slow_call_rate_threshold),
        ] {
            if !(value > 0.0 && value <= 100.0) {
                return bad(setting, "must be a percentage in (0, 100]");
            }
        }
        match c.window {
            WindowKind::Count { calls: 0 } => return bad("count_window", "must be at least 1"),
            WindowKind::Count { calls } if c.minimum_calls > calls => {
                return bad(
                    "minimum_calls",
                    "must not exceed the count window, or the breaker can never open",
                );
            }
            WindowKind::Time { buckets: 0, .. } => {
                return bad("time_window", "needs at least 1 bucket");
            }
            WindowKind::Time { length, buckets } if length.as_nanos() < u128::from(buckets) => {
                return bad("time_window", "must be at least 1 ns per bucket");
            }
            _ => {}
        }
        if c.minimum_calls == 0 {
            return bad("minimum_calls", "must be at least 1");
        }
        if c.permitted_calls_in_half_open == 0 {
            return bad("permitted_calls_in_half_open", "must be at least 1");
        }
        if c.wait_in_open.is_zero() {
            return bad("wait_in_open", "must be positive");
        }
        if c.slow_call_duration.is_zero() {
            return bad("slow_call_duration", "must be positive");
        }
        let config = self.config;
        Ok(CircuitBreaker {
            shared: Arc::new(Shared {
                name: self.name,
                thresholds: Thresholds::new(&config),
                time_window: matches!(config.window, WindowKind::Time { .. }),
                config,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
                word: AtomicU64::new(CLOSED),
                open_until: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                inner: Mutex::new(Inner {
                    state: CircuitState::Closed,
                    epoch: 0,
                    window: Window::new(config.window),
                    trials: Trials::default(),
                    open_until: Duration::ZERO,
                    transitions_to_open: 0,
                }),
            }),
        })
    }
}

impl CircuitBreaker {
    /// A builder for a breaker protecting the dependency `name` (which
    /// [`Error::CircuitOpen`] and the logs report).
    pub fn builder(name: impl Into<Cow<'static, str>>) -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            name: name.into(),
            config: Config {
                window: WindowKind::Count { calls: 100 },
                failure_rate_threshold: 50.0,
                slow_call_rate_threshold: 100.0,
                slow_call_duration: Duration::from_secs(60),
                minimum_calls: 100,
                wait_in_open: Duration::from_secs(60),
                permitted_calls_in_half_open: 10,
            },
            clock: None,
        }
    }

    /// The name of the protected dependency.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current state. An open breaker whose wait has elapsed reports (and
    /// becomes) half-open.
    #[must_use]
    pub fn state(&self) -> CircuitState {
        let shared = &*self.shared;
        let word = shared.word.load(Ordering::Acquire);
        if word & STATE_MASK == CLOSED {
            return CircuitState::Closed;
        }
        let now = shared.clock.monotonic();
        let mut inner = shared.lock();
        if inner.state == CircuitState::Open && now >= inner.open_until {
            shared.to_half_open(&mut inner);
        }
        inner.state
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn metrics(&self) -> CircuitBreakerMetrics {
        let shared = &*self.shared;
        let now = shared.clock.monotonic();
        let mut inner = shared.lock();
        if inner.state == CircuitState::Open && now >= inner.open_until {
            shared.to_half_open(&mut inner);
        }
        let counts = match inner.state {
            CircuitState::HalfOpen => inner.trials.counts,
            CircuitState::Closed | CircuitState::Open => inner.window.counts(now),
        };
        CircuitBreakerMetrics {
            state: inner.state,
            calls: counts.calls,
            failures: counts.failures,
            slow_calls: counts.slow,
            failure_rate: counts.failure_rate(),
            slow_call_rate: counts.slow_rate(),
            transitions_to_open: inner.transitions_to_open,
            rejected_calls: shared.rejected.load(Ordering::Relaxed),
        }
    }

    /// Ask to make one call; the returned [`Permit`] records its outcome.
    ///
    /// Use this when the protected work is not a single future (a stream, a
    /// callback); otherwise [`CircuitBreaker::call`] is simpler.
    ///
    /// # Errors
    ///
    /// [`Error::CircuitOpen`] when the breaker is open, or half-open with
    /// every trial slot taken.
    pub fn try_acquire(&self) -> Result<Permit> {
        let mut ticket = self.shared.acquire()?;
        // The caller's work is opaque to us: time it from admission.
        self.shared.start_waiting(&mut ticket);
        Ok(Permit {
            shared: Arc::clone(&self.shared),
            ticket: Some(ticket),
        })
    }

    /// Run `operation` through the breaker and record its outcome.
    ///
    /// The breaker admits or refuses the call when `call` is made; the
    /// returned future runs the operation. If it is dropped before the
    /// operation finishes, nothing is recorded and a half-open trial slot is
    /// freed.
    ///
    /// # Errors
    ///
    /// The future resolves to [`Error::CircuitOpen`], without `operation`
    /// having been called, when the breaker refuses the call; otherwise to
    /// whatever `operation` returns.
    pub fn call<T, F, Fut>(&self, operation: F) -> impl Future<Output = Result<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        // A plain function returning a hand-written future rather than an
        // `async fn`: one state machine less to move the result through.
        match self.shared.acquire() {
            Ok(ticket) => Either::Left(Timed {
                operation: operation(),
                guard: TicketGuard {
                    shared: &self.shared,
                    ticket: Some(ticket),
                },
            }),
            Err(error) => Either::Right(std::future::ready(Err(error))),
        }
    }

    /// Like [`CircuitBreaker::try_acquire`], but the call is timed from its
    /// first wait (for futures driven by [`Permit::start_waiting`]).
    pub(crate) fn try_acquire_untimed(&self) -> Result<Permit> {
        let ticket = self.shared.acquire()?;
        Ok(Permit {
            shared: Arc::clone(&self.shared),
            ticket: Some(ticket),
        })
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.shared.word.load(Ordering::Relaxed);
        f.debug_struct("CircuitBreaker")
            .field("name", &self.shared.name)
            .field("state", &state_of(word))
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

fn state_of(word: u64) -> CircuitState {
    match word & STATE_MASK {
        CLOSED => CircuitState::Closed,
        OPEN => CircuitState::Open,
        _ => CircuitState::HalfOpen,
    }
}

fn is_failure<T>(result: &Result<T>) -> bool {
    matches!(result, Err(e) if e.is_dependency_failure())
}

/// Permission to make one call, from [`CircuitBreaker::try_acquire`].
///
/// Report the outcome with [`Permit::success`], [`Permit::failure`] or
/// [`Permit::record`]. A permit dropped without a report counts nothing, and
/// frees its slot if it was a half-open trial.
#[must_use = "a permit records nothing unless its outcome is reported"]
pub struct Permit {
    shared: Arc<Shared>,
    ticket: Option<Ticket>,
}

impl Permit {
    /// The call succeeded (or failed for a reason that is not the
    /// dependency's fault).
    pub fn success(mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.complete(&ticket, false);
        }
    }

    /// The call failed because of the dependency.
    pub fn failure(mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.complete(&ticket, true);
        }
    }

    /// Record `result`: a failure if it is an error for which
    /// [`Error::is_dependency_failure`] holds, a success otherwise.
    pub fn record<T>(mut self, result: &Result<T>) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.complete(&ticket, is_failure(result));
        }
    }
}

impl Permit {
    /// The call is about to wait: time it from now, if not yet timed.
    pub(crate) fn start_waiting(&mut self) {
        if let Some(ticket) = &mut self.ticket {
            self.shared.start_waiting(ticket);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.abandon(&ticket);
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("dependency", &self.shared.name)
            .field("ticket", &self.ticket)
            .finish()
    }
}

/// What a permit remembers about its admission.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    epoch: u64,
    trial: bool,
    /// When the call started waiting; `None` until then (see "How durations
    /// are measured" in the module docs).
    start: Option<Duration>,
}

/// The borrowed counterpart of [`Permit`] used by [`CircuitBreaker::call`],
/// which saves the `Arc` clone.
struct TicketGuard<'a> {
    shared: &'a Shared,
    ticket: Option<Ticket>,
}

pin_project! {
    /// The operation of [`CircuitBreaker::call`], timed from its first wait.
    struct Timed<'a, Fut> {
        #[pin]
        operation: Fut,
        guard: TicketGuard<'a>,
    }
}

impl<T, Fut> Future for Timed<'_, Fut>
where
    Fut: Future<Output = Result<T>>,
{
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let guard = this.guard;
        match this.operation.poll(cx) {
            Poll::Ready(result) => {
                if let Some(ticket) = guard.ticket.take() {
                    guard.shared.complete(&ticket, is_failure(&result));
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                if let Some(ticket) = &mut guard.ticket {
                    guard.shared.start_waiting(ticket);
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for TicketGuard<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.abandon(&ticket);
        }
    }
}

struct Shared {
    name: Cow<'static, str>,
    config: Config,
    thresholds: Thresholds,
    /// Whether outcomes are placed in time (so completing reads the clock).
    time_window: bool,
    clock: Arc<dyn Clock>,
    /// `epoch << 2 | state`: read without the lock on every call.
    word: AtomicU64,
    /// Monotonic nanoseconds until which an open breaker refuses without
    /// taking the lock.
    open_until: AtomicU64,
    rejected: AtomicU64,
    inner: Mutex<Inner>,
}

struct Inner {
    state: CircuitState,
    epoch: u64,
    window: Window,
    trials: Trials,
    open_until: Duration,
    transitions_to_open: u64,
}

#[derive(Debug, Default)]
struct Trials {
    admitted: u32,
    counts: Counts,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while the lock is held; if something ever did, the
        // counters are still consistent numbers, so carry on.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[inline]
    fn acquire(&self) -> Result<Ticket> {
        let word = self.word.load(Ordering::Acquire);
        if word & STATE_MASK == CLOSED {
            return Ok(Ticket {
                epoch: word >> 2,
                trial: false,
                start: None,
            });
        }
        self.acquire_slow(word)
    }

    #[cold]
    fn acquire_slow(&self, word: u64) -> Result<Ticket> {
        let now = self.clock.monotonic();
        if word & STATE_MASK == OPEN {
            let until = Duration::from_nanos(self.open_until.load(Ordering::Acquire));
            if now < until {
                return Err(self.reject(until - now));
            }
        }
        let mut inner = self.lock();
        if inner.state == CircuitState::Open {
            if now < inner.open_until {
                let wait = inner.open_until - now;
                return Err(self.reject(wait));
            }
            self.to_half_open(&mut inner);
        }
        match inner.state {
            CircuitState::Closed => Ok(Ticket {
                epoch: inner.epoch,
                trial: false,
                start: None,
            }),
            CircuitState::HalfOpen
                if inner.trials.admitted < self.config.permitted_calls_in_half_open =>
            {
                inner.trials.admitted += 1;
                Ok(Ticket {
                    epoch: inner.epoch,
                    trial: true,
                    start: None,
                })
            }
            // Every trial slot is taken. If the trials fail the breaker opens
            // for `wait_in_open` again, so that is the honest upper bound.
            CircuitState::HalfOpen | CircuitState::Open => {
                Err(self.reject(self.config.wait_in_open))
            }
        }
    }

    fn reject(&self, retry_after: Duration) -> Error {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        Error::CircuitOpen {
            dependency: self.name.clone(),
            retry_after,
        }
    }

    /// Mark the call as waiting from now on (once).
    fn start_waiting(&self, ticket: &mut Ticket) {
        if ticket.start.is_none() {
            ticket.start = Some(self.clock.monotonic());
        }
    }

    fn complete(&self, ticket: &Ticket, failed: bool) {
        // Read the clock only when something needs it: timing a call that
        // waited, placing the outcome in a time window, or opening.
        let mut read = None;
        let slow = match ticket.start {
            Some(start) => {
                let end = self.clock.monotonic();
                read = Some(end);
                end.saturating_sub(start) >= self.config.slow_call_duration
            }
            None => false,
        };
        if read.is_none() && self.time_window {
            read = Some(self.clock.monotonic());
        }
        let now = || read.unwrap_or_else(|| self.clock.monotonic());
        let mut inner = self.lock();
        if inner.epoch != ticket.epoch {
            // Admitted before the last transition: its outcome belongs to a
            // state that no longer exists.
            return;
        }
        match inner.state {
            CircuitState::Closed => {
                // A count window ignores the time: `ZERO` saves the read.
                let at = if self.time_window {
                    now()
                } else {
                    Duration::ZERO
                };
                inner.window.record(at, failed, slow);
                let counts = inner.window.counts(at);
                if counts.calls >= u64::from(self.config.minimum_calls)
                    && self.thresholds.tripped_by(counts)
                {
                    self.to_open(&mut inner, now(), counts);
                }
            }
            CircuitState::HalfOpen if ticket.trial => {
                inner.trials.counts.add(failed, slow);
                let counts = inner.trials.counts;
                if counts.calls >= u64::from(self.config.permitted_calls_in_half_open) {
                    if self.thresholds.tripped_by(counts) {
                        self.to_open(&mut inner, now(), counts);
                    } else {
                        self.to_closed(&mut inner, counts);
                    }
                }
            }
            CircuitState::HalfOpen | CircuitState::Open => {}
        }
    }

    fn abandon(&self, ticket: &Ticket) {
        if !ticket.trial {
            return;
        }
        let mut inner = self.lock();
        if inner.epoch == ticket.epoch && inner.state == CircuitState::HalfOpen {
            inner.trials.admitted -= 1;
        }
    }

    fn publish(&self, inner: &mut Inner, state: CircuitState) {
        inner.state = state;
        inner.epoch += 1;
        self.word
            .store((inner.epoch << 2) | state.bits(), Ordering::Release);
    }

    fn to_open(&self, inner: &mut Inner, now: Duration, counts: Counts) {
        inner.open_until = now + self.config.wait_in_open;
        inner.transitions_to_open += 1;
        // Store the deadline before the state word, so that a caller who sees
        // "open" in the word also sees this deadline.
        self.open_until
            .store(nanos(inner.open_until), Ordering::Release);
        let from = inner.state;
        self.publish(inner, CircuitState::Open);
        tracing::warn!(
            dependency = %self.name,
            from = from.as_str(),
            calls = counts.calls,
            failure_rate = counts.failure_rate(),
            slow_call_rate = counts.slow_rate(),
            wait_in_open = ?self.config.wait_in_open,
            "circuit breaker opened"
        );
    }

    fn to_half_open(&self, inner: &mut Inner) {
        inner.trials = Trials::default();
        self.publish(inner, CircuitState::HalfOpen);
        tracing::info!(
            dependency = %self.name,
            trial_calls = self.config.permitted_calls_in_half_open,
            "circuit breaker half-open"
        );
    }

    fn to_closed(&self, inner: &mut Inner, trials: Counts) {
        inner.window = Window::new(self.config.window);
        inner.trials = Trials::default();
        self.publish(inner, CircuitState::Closed);
        tracing::info!(
            dependency = %self.name,
            trial_calls = trials.calls,
            failure_rate = trials.failure_rate(),
            slow_call_rate = trials.slow_rate(),
            "circuit breaker closed"
        );
    }
}
