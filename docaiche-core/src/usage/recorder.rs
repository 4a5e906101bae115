//! [`UsageRecorder`] (the hot path) and [`UsageFlusher`] (the batch writer).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hashbrown::HashTable;
use time::OffsetDateTime;

use super::{
    Bucket, RouteClass, UsageBatch, UsageCounts, UsageOutcome, UsageRow, UsageStore, UsageSubject,
};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::id::TenantId;

/// Default bound on distinct series held between two flushes.
pub const DEFAULT_MAX_SERIES: usize = 100_000;

/// Default number of unwritten batches kept for retry.
pub const DEFAULT_MAX_PENDING_BATCHES: usize = 6;

/// Default flush interval.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

struct Series {
    tenant: TenantId,
    subject: UsageSubject,
    route_class: RouteClass,
    counts: [u64; 4],
}

impl Series {
    fn is(&self, tenant: &TenantId, subject: &UsageSubject, route_class: &RouteClass) -> bool {
        self.route_class == *route_class && self.subject == *subject && self.tenant == *tenant
    }
}

type Shard = Mutex<HashTable<Series>>;

fn lock(shard: &Shard) -> MutexGuard<'_, HashTable<Series>> {
    // Counters are plain numbers: a panic elsewhere leaves them consistent.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts requests per tenant, subject, route class and outcome, in memory,
/// until a [`UsageFlusher`] takes them as a [`UsageBatch`].
///
/// [`record`](Self::record) is the hot path: it hashes the series (foldhash),
/// locks one of several shards (a `std` mutex, uncontended unless two
/// threads hit the same shard at once) and increments a counter. It never
/// awaits, never fails, and allocates only the first time a series is seen
/// in an interval (a series active in consecutive intervals stays in its
/// shard: the steady state allocates nothing).
///
/// Memory is bounded: at most `max_series` distinct series are held
/// ([`with_max_series`](Self::with_max_series), default
/// [`DEFAULT_MAX_SERIES`]); a request of a new series beyond it is not
/// counted, and [`UsageRecorderStats::overflowed`] says how many were not.
///
/// Share it as an `Arc<UsageRecorder>`.
pub struct UsageRecorder {
    shards: Box<[Shard]>,
    hasher: foldhash::fast::RandomState,
    series: AtomicUsize,
    max_series: usize,
    overflowed: AtomicU64,
    flushed_batches: AtomicU64,
    failed_flushes: AtomicU64,
    lost_batches: AtomicU64,
    lost_requests: AtomicU64,
}

impl fmt::Debug for UsageRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageRecorder")
            .field("shards", &self.shards.len())
            .field("max_series", &self.max_series)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for UsageRecorder {
    fn default() -> Self {
        Self::new()
    }
}

/// A snapshot of a [`UsageRecorder`]'s counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsageRecorderStats {
    /// Distinct series held now.
    pub series: usize,
    /// Requests not counted because the series bound was reached.
    pub overflowed: u64,
    /// Batches written to the store.
    pub flushed_batches: u64,
    /// Flush attempts that failed (the batch was kept for the next one).
    pub failed_flushes: u64,
    /// Batches dropped unwritten after too many failed flushes.
    pub lost_batches: u64,
    /// Requests in the dropped batches.
    pub lost_requests: u64,
}

impl UsageRecorder {
    /// A recorder with [`DEFAULT_MAX_SERIES`] and a shard count of four per
    /// available CPU (a power of two).
    #[must_use]
    pub fn new() -> Self {
        let cpus = std::thread::available_parallelism().map_or(4, NonZeroUsize::get);
        let shards = (cpus * 4).next_power_of_two();
        Self {
            shards: (0..shards).map(|_| Mutex::new(HashTable::new())).collect(),
            hasher: foldhash::fast::RandomState::default(),
            series: AtomicUsize::new(0),
            max_series: DEFAULT_MAX_SERIES,
            overflowed: AtomicU64::new(0),
            flushed_batches: AtomicU64::new(0),
            failed_flushes: AtomicU64::new(0),
            lost_batches: AtomicU64::new(0),
            lost_requests: AtomicU64::new(0),
        }
    }

    /// Hold at most `max_series` distinct series between flushes.
    #[must_use]
    pub const fn with_max_series(mut self, max_series: NonZeroUsize) -> Self {
        self.max_series = max_series.get();
        self
    }

    fn hash(&self, tenant: &TenantId, subject: &UsageSubject, route_class: &RouteClass) -> u64 {
        self.hasher
            .hash_one((tenant.as_str(), subject, route_class.as_str()))
    }

    fn shard(&self, hash: u64) -> &Shard {
        // The table uses the low bits (and the top 7): pick the shard from
        // the middle ones. Truncation is the point.
        #[allow(clippy::cast_possible_truncation)]
        let index = (hash >> 32) as usize & (self.shards.len() - 1);
        &self.shards[index]
    }

    /// Count one request.
    ///
    /// Never blocks beyond a shard lock held for an increment (or, once per
    /// interval and series, an insert), never fails, never awaits.
    pub fn record(
        &self,
        tenant: &TenantId,
        subject: &UsageSubject,
        route_class: &RouteClass,
        outcome: UsageOutcome,
    ) {
        let hash = self.hash(tenant, subject, route_class);
        let mut table = lock(self.shard(hash));
        if let Some(series) = table.find_mut(hash, |s| s.is(tenant, subject, route_class)) {
            let slot = &mut series.counts[outcome.index()];
            *slot = slot.saturating_add(1);
            return;
        }
        if self.series.fetch_add(1, Ordering::Relaxed) >= self.max_series {
            self.series.fetch_sub(1, Ordering::Relaxed);
            self.overflowed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut counts = [0; 4];
        counts[outcome.index()] = 1;
        let series = Series {
            tenant: tenant.clone(),
            subject: subject.clone(),
            route_class: route_class.clone(),
            counts,
        };
        table.insert_unique(hash, series, |s| {
            self.hasher
                .hash_one((s.tenant.as_str(), &s.subject, s.route_class.as_str()))
        });
    }

    /// Take every count recorded so far as one batch of minute rows
    /// starting at the minute of `minute_of`, made at `minute_of`; `None`
    /// when nothing was recorded. Series idle since the last take are
    /// forgotten (their memory freed); active ones keep their slot.
    #[must_use]
    pub fn take_batch(&self, minute_of: OffsetDateTime) -> Option<UsageBatch> {
        let start = Bucket::Minute.floor(minute_of);
        let mut rows = Vec::new();
        let mut forgotten = 0;
        for shard in &self.shards {
            lock(shard).retain(|series| {
                if series.counts == [0; 4] {
                    forgotten += 1;
                    return false;
                }
                let [allowed, limited, denied, invalid] = std::mem::take(&mut series.counts);
                rows.push(UsageRow::new(
                    series.tenant.clone(),
                    series.subject.clone(),
                    series.route_class.clone(),
                    start,
                    UsageCounts::new(allowed, limited, denied, invalid),
                ));
                true
            });
        }
        self.series.fetch_sub(forgotten, Ordering::Relaxed);
        (!rows.is_empty()).then(|| UsageBatch::new(minute_of, rows))
    }

    /// The recorder's counters (for a metrics endpoint).
    #[must_use]
    pub fn stats(&self) -> UsageRecorderStats {
        UsageRecorderStats {
            series: self.series.load(Ordering::Relaxed),
            overflowed: self.overflowed.load(Ordering::Relaxed),
            flushed_batches: self.flushed_batches.load(Ordering::Relaxed),
            failed_flushes: self.failed_flushes.load(Ordering::Relaxed),
            lost_batches: self.lost_batches.load(Ordering::Relaxed),
            lost_requests: self.lost_requests.load(Ordering::Relaxed),
        }
    }
}

/// What one [`UsageFlusher::flush`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushReport {
    /// Batches the store applied (or had applied already).
    pub batches: usize,
    /// Rows in those batches.
    pub rows: usize,
    /// Batches still waiting for a later flush.
    pub pending: usize,
}

/// Takes a [`UsageRecorder`]'s counts once per interval and writes them to a
/// [`UsageStore`], timed by an injected [`Clock`].
///
/// A failed write keeps the batch, unchanged (same id, so the store's
/// exactly-once rule holds across the retry), and the next flush writes it
/// before the new one. At most `max_pending` batches wait
/// ([`with_max_pending_batches`](Self::with_max_pending_batches), default
/// [`DEFAULT_MAX_PENDING_BATCHES`]: a minute of outage at the default
/// interval); beyond that the oldest is dropped and counted in
/// [`UsageRecorderStats::lost_batches`] and
/// [`lost_requests`](UsageRecorderStats::lost_requests), and a warning is
/// logged. Set it to 1 and a lost flush loses exactly one interval.
///
/// Counts land in the minute of their interval's midpoint; [`run`](Self::run)
/// aligns intervals on the wall clock (the interval divides a minute), so
/// an interval never straddles two minutes.
pub struct UsageFlusher {
    recorder: Arc<UsageRecorder>,
    store: Arc<dyn UsageStore>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    max_pending: usize,
    pending: VecDeque<UsageBatch>,
    interval_start: OffsetDateTime,
}

impl fmt::Debug for UsageFlusher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageFlusher")
            .field("store", &self.store)
            .field("interval", &self.interval)
            .field("max_pending", &self.max_pending)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl UsageFlusher {
    /// A flusher of `recorder` into `store` every [`DEFAULT_FLUSH_INTERVAL`].
    #[must_use]
    pub fn new(
        recorder: Arc<UsageRecorder>,
        store: Arc<dyn UsageStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let interval_start = clock.now();
        Self {
            recorder,
            store,
            clock,
            interval: DEFAULT_FLUSH_INTERVAL,
            max_pending: DEFAULT_MAX_PENDING_BATCHES,
            pending: VecDeque::new(),
            interval_start,
        }
    }

    /// Flush every `interval` instead.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] (`usage.flush_interval`) unless it is a
    /// whole number of seconds that divides a minute (1, 2, 3, 4, 5, 6, 10,
    /// 12, 15, 20, 30 or 60 s).
    pub fn with_interval(mut self, interval: Duration) -> Result<Self> {
        let secs = interval.as_secs();
        if interval.subsec_nanos() != 0 || secs == 0 || 60 % secs != 0 {
            return Err(Error::misconfigured(
                "usage.flush_interval",
                "must be a whole number of seconds dividing a minute (1 to 60 s)",
            ));
        }
        self.interval = interval;
        Ok(self)
    }

    /// Keep at most `max_pending` unwritten batches.
    #[must_use]
    pub const fn with_max_pending_batches(mut self, max_pending: NonZeroUsize) -> Self {
        self.max_pending = max_pending.get();
        self
    }

    /// Batches waiting to be written.
    #[must_use]
    pub fn pending_batches(&self) -> usize {
        self.pending.len()
    }

    /// Take the recorder's counts as a batch, then write every pending
    /// batch, oldest first, stopping at the first failure.
    ///
    /// # Errors
    /// The store's error; the batch that failed and every later one stay
    /// pending for the next call.
    pub async fn flush(&mut self) -> Result<FlushReport> {
        let now = self.clock.now();
        let midpoint = self.interval_start + (now - self.interval_start) / 2;
        self.interval_start = now;
        if let Some(mut batch) = self.recorder.take_batch(midpoint) {
            batch.created_at = now;
            self.pending.push_back(batch);
        }
        while self.pending.len() > self.max_pending {
            if let Some(lost) = self.pending.pop_front() {
                let requests = lost.total().requests();
                self.recorder.lost_batches.fetch_add(1, Ordering::Relaxed);
                self.recorder
                    .lost_requests
                    .fetch_add(requests, Ordering::Relaxed);
                tracing::warn!(
                    batch = %lost.id,
                    requests,
                    "usage batch dropped after repeated flush failures"
                );
            }
        }
        let mut report = FlushReport::default();
        while let Some(batch) = self.pending.front() {
            match self.store.record_batch(batch).await {
                Ok(_) => {
                    report.batches += 1;
                    report.rows += batch.rows.len();
                    self.recorder
                        .flushed_batches
                        .fetch_add(1, Ordering::Relaxed);
                    self.pending.pop_front();
                }
                Err(e) => {
                    self.recorder.failed_flushes.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e.log_chain(), pending = self.pending.len(), "usage flush failed");
                    return Err(e);
                }
            }
        }
        report.pending = self.pending.len();
        Ok(report)
    }

    /// Flush at every interval boundary of the wall clock until `shutdown`
    /// completes, then flush once more (a failure then is logged and the
    /// counts are lost, counted in the recorder's stats). Spawn it:
    /// `tokio::spawn(flusher.run(shutdown_signal))`.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let now = self.clock.now();
            let interval = i128::from(self.interval.as_secs()) * 1_000_000_000;
            let into = now.unix_timestamp_nanos().rem_euclid(interval);
            let wait = u64::try_from(interval - into).unwrap_or(0);
            let sleep = self.clock.sleep(Duration::from_nanos(wait));
            match futures_util::future::select(sleep, shutdown.as_mut()).await {
                futures_util::future::Either::Left(_) => {
                    // Failures are counted and logged by flush, and retried.
                    let _ = self.flush().await;
                }
                futures_util::future::Either::Right(_) => {
                    if self.flush().await.is_err() {
                        for lost in self.pending.drain(..) {
                            self.recorder.lost_batches.fetch_add(1, Ordering::Relaxed);
                            self.recorder
                                .lost_requests
                                .fetch_add(lost.total().requests(), Ordering::Relaxed);
                        }
                    }
                    return;
                }
            }
        }
    }
}
