//! Time, injected. Everything in DocAIche that reads the time or waits goes
//! through a [`Clock`], so tests move time by hand with [`ManualClock`]
//! instead of sleeping.
//!
//! ```
//! use std::time::Duration;
//! use docaiche_core::clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::new();
//! let start = clock.monotonic();
//! clock.advance(Duration::from_secs(30));
//! assert_eq!(clock.monotonic() - start, Duration::from_secs(30));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use time::OffsetDateTime;

/// A boxed, sendable future: what [`Clock::sleep`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A source of time.
///
/// Contract: [`Clock::monotonic`] never goes backwards; [`Clock::now`] may
/// (wall clocks are adjusted) and is used only for timestamps that leave the
/// process (records, tokens), never to measure durations.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The wall-clock time, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// Time elapsed since a fixed, arbitrary origin. Monotonic.
    fn monotonic(&self) -> Duration;

    /// A future that completes once `duration` has elapsed on this clock.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The real clock: `SystemTime` for [`Clock::now`], a TSC-backed monotonic
/// clock for [`Clock::monotonic`] and tokio's timer for [`Clock::sleep`]
/// (so `sleep` needs a tokio runtime with the time driver enabled).
///
/// `monotonic` is read on every rate-limit decision and circuit-breaker
/// call, so its price matters: it uses [`quanta`] (the clock `governor` and
/// `moka` read), which reads the CPU's invariant time-stamp counter where
/// there is one (a few nanoseconds) and falls back to the operating
/// system's monotonic clock (what `std::time::Instant` reads) where there
/// is not. Both never go backwards.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: quanta::Instant,
}

impl SystemClock {
    /// A system clock whose monotonic origin is now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            origin: quanta::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn monotonic(&self) -> Duration {
        quanta::Instant::now().saturating_duration_since(self.origin)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that moves only when told to: for tests.
///
/// Sleepers wake when [`ManualClock::advance`] moves time past their deadline.
/// With [`ManualClock::with_auto_advance`], a sleep instead advances the clock
/// by its own duration at once, which suits code that sleeps between retries:
/// the test runs instantly and [`ManualClock::sleeps`] tells how long the code
/// would have waited.
///
/// Clones share the same time.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualState>>,
}

struct ManualState {
    wall: OffsetDateTime,
    monotonic: Duration,
    auto_advance: bool,
    next_sleeper: u64,
    sleepers: BTreeMap<(Duration, u64), Waker>,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    /// A manual clock at 2026-01-01T00:00:00Z, monotonic time zero.
    #[must_use]
    pub fn new() -> Self {
        Self::starting_at(time::macros::datetime!(2026-01-01 0:00 UTC))
    }

    /// A manual clock at the given wall-clock time.
    #[must_use]
    pub fn starting_at(wall: OffsetDateTime) -> Self {
        Self {
            inner: Arc::new(Mutex::new(ManualState {
                wall,
                monotonic: Duration::ZERO,
                auto_advance: false,
                next_sleeper: 0,
                sleepers: BTreeMap::new(),
                sleeps: Vec::new(),
            })),
        }
    }

    /// Make every `sleep` advance the clock by its duration immediately.
    #[must_use]
    pub fn with_auto_advance(self) -> Self {
        self.state().auto_advance = true;
        self
    }

    /// Move time forward, waking every sleeper whose deadline has passed.
    pub fn advance(&self, by: Duration) {
        let wakers = {
            let mut state = self.state();
            state.monotonic += by;
            state.wall += by;
            let now = state.monotonic;
            // Keys are (deadline, seq): everything strictly before
            // (now, u64::MAX) is due.
            let pending = state.sleepers.split_off(&(now, u64::MAX));
            std::mem::replace(&mut state.sleepers, pending)
        };
        for (_, waker) in wakers {
            waker.wake();
        }
    }

    /// Every duration passed to [`Clock::sleep`] so far, in call order.
    #[must_use]
    pub fn sleeps(&self) -> Vec<Duration> {
        self.state().sleeps.clone()
    }

    /// How many sleepers are waiting for time to advance.
    #[must_use]
    pub fn pending_sleepers(&self) -> usize {
        self.state().sleepers.len()
    }

    fn state(&self) -> MutexGuard<'_, ManualState> {
        // A panic while holding this lock leaves plain numbers behind, which
        // are still consistent: recover rather than poison every test after.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("ManualClock")
            .field("wall", &state.wall)
            .field("monotonic", &state.monotonic)
            .field("auto_advance", &state.auto_advance)
            .finish_non_exhaustive()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        self.state().wall
    }

    fn monotonic(&self) -> Duration {
        self.state().monotonic
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let (auto, deadline, seq) = {
            let mut state = self.state();
            state.sleeps.push(duration);
            state.next_sleeper += 1;
            (
                state.auto_advance,
                state.monotonic + duration,
                state.next_sleeper,
            )
        };
        if auto {
            self.advance(duration);
            return Box::pin(std::future::ready(()));
        }
        Box::pin(ManualSleep {
            clock: self.clone(),
            deadline,
            seq,
        })
    }
}

struct ManualSleep {
    clock: ManualClock,
    deadline: Duration,
    seq: u64,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.clock.state();
        if state.monotonic >= self.deadline {
            return Poll::Ready(());
        }
        state
            .sleepers
            .insert((self.deadline, self.seq), cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        self.clock
            .state()
            .sleepers
            .remove(&(self.deadline, self.seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleepers_wake_only_when_time_passes_their_deadline() {
        let clock = ManualClock::new();
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep(Duration::from_secs(10)).await }
        });
        while clock.pending_sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_secs(9));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1));
        sleeper.await.expect("sleeper completes");
        assert_eq!(clock.pending_sleepers(), 0);
    }

    #[tokio::test]
    async fn auto_advance_moves_time_by_the_sleep() {
        let clock = ManualClock::new().with_auto_advance();
        let before = clock.now();
        clock.sleep(Duration::from_millis(250)).await;
        clock.sleep(Duration::from_millis(500)).await;
        assert_eq!(clock.monotonic(), Duration::from_millis(750));
        assert_eq!(clock.now() - before, time::Duration::milliseconds(750));
        assert_eq!(
            clock.sleeps(),
            vec![Duration::from_millis(250), Duration::from_millis(500)]
        );
    }

    #[tokio::test]
    async fn dropped_sleepers_are_forgotten() {
        let clock = ManualClock::new();
        let mut sleep = clock.sleep(Duration::from_secs(1));
        let waker = futures_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert_eq!(clock.pending_sleepers(), 1);
        drop(sleep);
        assert_eq!(clock.pending_sleepers(), 0);
    }

    fn futures_waker() -> Waker {
        Waker::noop().clone()
    }

    #[test]
    fn system_clock_is_monotonic() {
        let clock = SystemClock::new();
        let a = clock.monotonic();
        let b = clock.monotonic();
        assert!(b >= a);
    }
}
