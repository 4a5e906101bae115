//! [`MemoryUsageStore`]: the reference [`UsageStore`], here fed by a
//! recorder and its flusher.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use docaiche_core::usage::{
//!     Bucket, RouteClass, TopBy, TopQuery, UsageFlusher, UsageOutcome, UsageQuery,
//!     UsageRecorder, UsageStore, UsageSubject,
//! };
//! use docaiche_core::{ApiKeyId, Clock, ManualClock, TenantId};
//! use docaiche_store::MemoryUsageStore;
//!
//! let store = Arc::new(MemoryUsageStore::new());
//! let recorder = Arc::new(UsageRecorder::new());
//! let clock = ManualClock::new();
//! let mut flusher = UsageFlusher::new(recorder.clone(), store.clone(), Arc::new(clock.clone()));
//!
//! let (tenant, key) = (TenantId::new("acme")?, ApiKeyId::new());
//! let route = RouteClass::new("documents")?;
//! for outcome in [UsageOutcome::Allowed, UsageOutcome::Allowed, UsageOutcome::RateLimited] {
//!     recorder.record(&tenant, &UsageSubject::for_key(key), &route, outcome);
//! }
//! flusher.flush().await?; // normally: tokio::spawn(flusher.run(shutdown))
//!
//! let today = Bucket::Day.floor(clock.now());
//! let tomorrow = today + time::Duration::DAY;
//! let series = store.series(&tenant, &UsageQuery::for_key(key, today, tomorrow, Bucket::Hour)?).await?;
//! assert_eq!((series[0].counts.allowed, series[0].counts.rate_limited), (2, 1));
//! let top = store.top_keys(&tenant, &TopQuery::new(today, tomorrow, TopBy::RateLimited, 10)?).await?;
//! assert_eq!(top[0].key, key);
//! # Ok::<(), docaiche_core::Error>(()) }).unwrap();
//! ```

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::Mutex;

use docaiche_core::usage::{
    Bucket, KeyUsage, RetentionReport, RouteClass, TopQuery, UsageBatch, UsageCounts, UsageFilter,
    UsagePoint, UsageQuery, UsageRetention, UsageStore, UsageSubject, covering_spans, from_unix,
};
use docaiche_core::{ApiKeyId, Result, TenantId};
use time::OffsetDateTime;

use super::{capacity_exceeded, lock};

const STORE: &str = "memory usage store";

/// (tenant, bucket start in Unix seconds, subject, route class).
type RowKey = (TenantId, i64, UsageSubject, RouteClass);

#[derive(Debug, Default)]
struct State {
    /// Minute, hour and day rows, in [`Bucket::ALL`] order.
    rows: [BTreeMap<RowKey, UsageCounts>; 3],
    /// Applied batch ids → when the batch was made.
    batches: HashMap<uuid::Uuid, OffsetDateTime>,
}

impl State {
    fn len(&self) -> usize {
        self.rows.iter().map(BTreeMap::len).sum()
    }

    /// Rows of `tenant` in `table` starting in `[from, to)`.
    fn range<'a>(
        &'a self,
        table: usize,
        tenant: &TenantId,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = (&'a RowKey, &'a UsageCounts)> + use<'a> {
        let tenant = tenant.clone();
        self.rows[table]
            .range((tenant.clone(), from, min_subject(), min_route())..)
            .take_while(move |((t, start, _, _), _)| *t == tenant && *start < to)
    }
}

fn min_subject() -> UsageSubject {
    // The smallest subject in `Ord`: no key, the smallest account id.
    UsageSubject::from_parts(None, Some(min_principal())).unwrap_or_else(|_| unreachable!())
}

fn min_principal() -> docaiche_core::PrincipalId {
    docaiche_core::PrincipalId::new("0").unwrap_or_else(|_| unreachable!("\"0\" is a valid id"))
}

fn min_route() -> RouteClass {
    RouteClass::new("a").unwrap_or_else(|_| unreachable!("\"a\" is a valid route class"))
}

const fn table(bucket: Bucket) -> usize {
    match bucket {
        Bucket::Minute => 0,
        Bucket::Hour => 1,
        _ => 2,
    }
}

/// Usage counters in memory: a reference [`UsageStore`] for tests and
/// one-process deployments.
///
/// Bounded to `max_rows` rows over the three bucket sizes (default
/// 1 000 000). A batch that would pass the bound is refused whole with
/// `Unavailable` ([`CapacityExceeded`](super::CapacityExceeded)), so the
/// flusher keeps it for a retry after [`UsageStore::apply_retention`]
/// frees rows; counts are never dropped silently.
#[derive(Debug)]
pub struct MemoryUsageStore {
    max_rows: usize,
    state: Mutex<State>,
}

impl Default for MemoryUsageStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryUsageStore {
    /// Default bound on rows.
    pub const DEFAULT_MAX_ROWS: usize = 1_000_000;

    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self {
            max_rows: Self::DEFAULT_MAX_ROWS,
            state: Mutex::new(State::default()),
        }
    }

    /// Set the bound on rows (minute, hour and day rows together).
    #[must_use]
    pub const fn with_max_rows(mut self, max_rows: NonZeroUsize) -> Self {
        self.max_rows = max_rows.get();
        self
    }
}

#[async_trait::async_trait]
impl UsageStore for MemoryUsageStore {
    async fn record_batch(&self, batch: &UsageBatch) -> Result<bool> {
        batch.validate()?;
        let rollups = Bucket::ALL.map(|bucket| batch.rollup(bucket));
        let mut state = lock(&self.state);
        if state.batches.contains_key(&batch.id) {
            return Ok(false);
        }
        let new_rows = rollups
            .iter()
            .enumerate()
            .flat_map(|(t, rows)| rows.iter().map(move |row| (t, row)))
            .filter(|(t, row)| {
                !state.rows[*t].contains_key(&(
                    row.tenant.clone(),
                    row.start.unix_timestamp(),
                    row.subject.clone(),
                    row.route_class.clone(),
                ))
            })
            .count();
        if state.len().saturating_add(new_rows) > self.max_rows {
            return Err(capacity_exceeded(STORE, self.max_rows, "rows"));
        }
        for (t, rows) in rollups.into_iter().enumerate() {
            for row in rows {
                state.rows[t]
                    .entry((
                        row.tenant,
                        row.start.unix_timestamp(),
                        row.subject,
                        row.route_class,
                    ))
                    .or_default()
                    .merge(&row.counts);
            }
        }
        state.batches.insert(batch.id, batch.created_at);
        Ok(true)
    }

    async fn series(&self, tenant: &TenantId, query: &UsageQuery) -> Result<Vec<UsagePoint>> {
        let from = query
            .bucket
            .ceil_seconds(query.from.unix_timestamp() + i64::from(query.from.nanosecond() > 0));
        let to = query
            .bucket
            .ceil_seconds(query.to.unix_timestamp() + i64::from(query.to.nanosecond() > 0));
        let state = lock(&self.state);
        let mut points: BTreeMap<(i64, RouteClass), UsageCounts> = BTreeMap::new();
        for ((_, start, subject, route), counts) in
            state.range(table(query.bucket), tenant, from, to)
        {
            let matches = match &query.filter {
                UsageFilter::Key(key) => subject.key() == Some(key),
                UsageFilter::Account(account) => subject.account() == Some(account),
                UsageFilter::Tenant => true,
                _ => false,
            };
            if matches && query.route_class.as_ref().is_none_or(|r| r == route) {
                points
                    .entry((*start, route.clone()))
                    .or_default()
                    .merge(counts);
            }
        }
        Ok(points
            .into_iter()
            .map(|((start, route), counts)| UsagePoint::new(from_unix(start), route, counts))
            .collect())
    }

    async fn top_keys(&self, tenant: &TenantId, query: &TopQuery) -> Result<Vec<KeyUsage>> {
        let state = lock(&self.state);
        let mut totals: HashMap<ApiKeyId, UsageCounts> = HashMap::new();
        for span in covering_spans(query.from, query.to) {
            for ((_, _, subject, _), counts) in
                state.range(table(span.bucket), tenant, span.from, span.to)
            {
                if let Some(key) = subject.key() {
                    totals.entry(*key).or_default().merge(counts);
                }
            }
        }
        let mut ranked: Vec<KeyUsage> = totals
            .into_iter()
            .filter(|(_, counts)| counts.metric(query.by) > 0)
            .map(|(key, counts)| KeyUsage::new(key, counts))
            .collect();
        ranked.sort_by(|a, b| {
            b.counts
                .metric(query.by)
                .cmp(&a.counts.metric(query.by))
                .then(a.key.cmp(&b.key))
        });
        ranked.truncate(usize::try_from(query.n).unwrap_or(usize::MAX));
        Ok(ranked)
    }

    async fn apply_retention(
        &self,
        now: OffsetDateTime,
        retention: &UsageRetention,
    ) -> Result<RetentionReport> {
        let mut state = lock(&self.state);
        let mut dropped = [0_u64; 3];
        for bucket in Bucket::ALL {
            let cutoff = retention.cutoff(bucket, now);
            let rows = &mut state.rows[table(bucket)];
            let before = rows.len();
            rows.retain(|(_, start, _, _), _| *start >= cutoff);
            dropped[table(bucket)] = u64::try_from(before - rows.len()).unwrap_or(u64::MAX);
        }
        let batch_cutoff = from_unix(retention.cutoff(Bucket::Minute, now));
        let before = state.batches.len();
        state.batches.retain(|_, created| *created >= batch_cutoff);
        let mut report = RetentionReport::default();
        report.minute_rows = dropped[0];
        report.hour_rows = dropped[1];
        report.day_rows = dropped[2];
        report.batches = u64::try_from(before - state.batches.len()).unwrap_or(u64::MAX);
        Ok(report)
    }
}

#[cfg(all(test, feature = "conformance"))]
mod tests {
    use std::sync::Arc;

    use super::MemoryUsageStore;
    use crate::conformance::{Harness, run_usage_store};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_usage_store_conforms() {
        run_usage_store(Arc::new(MemoryUsageStore::new()), &Harness::without_time()).await;
    }
}
