//! The sliding windows a circuit breaker evaluates while closed.

use std::time::Duration;

/// Calls, failures and slow calls counted over some span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, failed: bool, slow: bool) {
        self.calls += 1;
        self.failures += u64::from(failed);
        self.slow += u64::from(slow);
    }

    fn subtract(&mut self, other: Self) {
        self.calls -= other.calls;
        self.failures -= other.failures;
        self.slow -= other.slow;
    }

    /// Failure rate in percent; zero without calls.
    pub(crate) fn failure_rate(self) -> f64 {
        percent(self.failures, self.calls)
    }

    /// Slow-call rate in percent; zero without calls.
    pub(crate) fn slow_rate(self) -> f64 {
        percent(self.slow, self.calls)
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "counts far below 2^52 are exact; a rate needs no more precision"
)]
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Which kind of sliding window, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WindowKind {
    /// The last `calls` calls.
    Count { calls: u32 },
    /// The calls of the last `length`, kept in `buckets` buckets.
    Time { length: Duration, buckets: u32 },
}

/// A sliding window of call outcomes with running totals, so that recording
/// and evaluating are O(1) (amortised) whatever the window's size.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub(crate) fn new(kind: WindowKind) -> Self {
        match kind {
            WindowKind::Count { calls } => Self::Count(CountWindow::new(calls)),
            WindowKind::Time { length, buckets } => Self::Time(TimeWindow::new(length, buckets)),
        }
    }

    /// Record one outcome observed at monotonic time `now`.
    pub(crate) fn record(&mut self, now: Duration, failed: bool, slow: bool) {
        match self {
            Self::Count(w) => w.record(failed, slow),
            Self::Time(w) => w.record(now, failed, slow),
        }
    }

    /// The totals as of monotonic time `now`.
    pub(crate) fn counts(&mut self, now: Duration) -> Counts {
        match self {
            Self::Count(w) => w.counts,
            Self::Time(w) => {
                w.advance(now);
                w.counts
            }
        }
    }
}

/// The last N outcomes in a ring buffer (one byte each: bit 0 failed,
/// bit 1 slow).
#[derive(Debug)]
pub(crate) struct CountWindow {
    outcomes: Box<[u8]>,
    next: usize,
    len: usize,
    counts: Counts,
}

const FAILED: u8 = 1;
const SLOW: u8 = 2;

impl CountWindow {
    fn new(calls: u32) -> Self {
        let size = usize::try_from(calls).unwrap_or(usize::MAX).max(1);
        Self {
            outcomes: vec![0; size].into_boxed_slice(),
            next: 0,
            len: 0,
            counts: Counts::default(),
        }
    }

    fn record(&mut self, failed: bool, slow: bool) {
        let size = self.outcomes.len();
        if self.len == size {
            let old = self.outcomes[self.next];
            self.counts.subtract(Counts {
                calls: 1,
                failures: u64::from(old & FAILED != 0),
                slow: u64::from(old & SLOW != 0),
            });
        } else {
            self.len += 1;
        }
        self.outcomes[self.next] = (u8::from(failed) * FAILED) | (u8::from(slow) * SLOW);
        self.next += 1;
        if self.next == size {
            self.next = 0;
        }
        self.counts.add(failed, slow);
    }
}

/// Outcomes of the last `length` of time in fixed buckets: bucket `i` holds
/// the calls completed in `[i * bucket, (i + 1) * bucket)`. Old buckets are
/// subtracted from the totals as time moves past them.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    bucket_nanos: u64,
    buckets: Box<[Counts]>,
    /// Absolute index of the newest bucket.
    current: u64,
    counts: Counts,
}

impl TimeWindow {
    fn new(length: Duration, buckets: u32) -> Self {
        let buckets = buckets.max(1);
        let length = u64::try_from(length.as_nanos()).unwrap_or(u64::MAX);
        Self {
            bucket_nanos: (length / u64::from(buckets)).max(1),
            buckets: vec![Counts::default(); usize::try_from(buckets).unwrap_or(1)]
                .into_boxed_slice(),
            current: 0,
            counts: Counts::default(),
        }
    }

    fn slot(&self, index: u64) -> usize {
        let len = self.buckets.len() as u64;
        usize::try_from(index % len).expect("a remainder of the bucket count fits usize")
    }

    fn advance(&mut self, now: Duration) {
        let index = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX) / self.bucket_nanos;
        if index <= self.current {
            // Same bucket, or a completion that read the clock just before
            // another one took the lock: count it in the newest bucket.
            return;
        }
        if index - self.current >= self.buckets.len() as u64 {
            self.buckets.fill(Counts::default());
            self.counts = Counts::default();
        } else {
            for expired in self.current + 1..=index {
                let slot = self.slot(expired);
                let old = std::mem::take(&mut self.buckets[slot]);
                self.counts.subtract(old);
            }
        }
        self.current = index;
    }

    fn record(&mut self, now: Duration, failed: bool, slow: bool) {
        self.advance(now);
        let slot = self.slot(self.current);
        self.buckets[slot].add(failed, slow);
        self.counts.add(failed, slow);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_window_keeps_only_the_last_n_outcomes() {
        let mut window = Window::new(WindowKind::Count { calls: 3 });
        window.record(Duration::ZERO, true, true);
        window.record(Duration::ZERO, false, false);
        window.record(Duration::ZERO, false, false);
        assert_eq!(window.counts(Duration::ZERO).failures, 1);
        window.record(Duration::ZERO, false, false);
        let counts = window.counts(Duration::ZERO);
        assert_eq!((counts.calls, counts.failures, counts.slow), (3, 0, 0));
    }

    #[test]
    fn time_window_drops_buckets_older_than_its_length() {
        let mut window = Window::new(WindowKind::Time {
            length: Duration::from_secs(10),
            buckets: 10,
        });
        window.record(Duration::from_millis(500), true, false);
        window.record(Duration::from_millis(5_500), true, false);
        assert_eq!(window.counts(Duration::from_millis(9_999)).failures, 2);
        // Bucket 0 expires once bucket 10 is current.
        assert_eq!(window.counts(Duration::from_secs(10)).failures, 1);
        assert_eq!(window.counts(Duration::from_secs(16)).failures, 0);
        window.record(Duration::from_secs(100), false, true);
        let counts = window.counts(Duration::from_secs(100));
        assert_eq!((counts.calls, counts.failures, counts.slow), (1, 0, 1));
    }
}
