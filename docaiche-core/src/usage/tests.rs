#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use time::macros::datetime;

use super::*;
use crate::ManualClock;

fn span(bucket: Bucket, from: OffsetDateTime, to: OffsetDateTime) -> BucketSpan {
    BucketSpan {
        bucket,
        from: from.unix_timestamp(),
        to: to.unix_timestamp(),
    }
}

#[test]
fn a_ragged_month_reads_days_hours_and_minutes_once_each() {
    let (from, to) = (
        datetime!(2026-01-01 10:30:00 UTC),
        datetime!(2026-01-31 05:15:00 UTC),
    );
    assert_eq!(
        covering_spans(from, to),
        vec![
            span(Bucket::Minute, from, datetime!(2026-01-01 11:00 UTC)),
            span(
                Bucket::Hour,
                datetime!(2026-01-01 11:00 UTC),
                datetime!(2026-01-02 0:00 UTC)
            ),
            span(
                Bucket::Day,
                datetime!(2026-01-02 0:00 UTC),
                datetime!(2026-01-31 0:00 UTC)
            ),
            span(
                Bucket::Hour,
                datetime!(2026-01-31 0:00 UTC),
                datetime!(2026-01-31 5:00 UTC)
            ),
            span(Bucket::Minute, datetime!(2026-01-31 5:00 UTC), to),
        ]
    );
}

#[test]
fn spans_cover_every_minute_exactly_once() {
    let base = datetime!(2026-03-01 0:00 UTC).unix_timestamp();
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..200 {
        let from = base + rng.i64(0..5 * 86_400);
        let to = from + rng.i64(1..4 * 86_400);
        let spans = covering_spans(from_unix(from), from_unix(to));
        let mut covered = 0;
        for s in &spans {
            assert!(s.from < s.to);
            assert_eq!(s.from % s.bucket.seconds(), 0);
            assert_eq!(s.to % s.bucket.seconds(), 0);
            covered += (s.to - s.from) / 60;
        }
        for pair in spans.windows(2) {
            assert_eq!(pair[0].to, pair[1].from, "contiguous");
        }
        let expected = (Bucket::Minute.ceil_seconds(to) - Bucket::Minute.ceil_seconds(from)) / 60;
        assert_eq!(covered, expected);
    }
}

#[test]
fn rollup_adds_minutes_into_their_hour_and_day() {
    let tenant = TenantId::new("acme").unwrap();
    let subject = UsageSubject::for_key(ApiKeyId::new());
    let route = RouteClass::new("documents").unwrap();
    let row = |start, n| {
        UsageRow::new(
            tenant.clone(),
            subject.clone(),
            route.clone(),
            start,
            UsageCounts::new(n, 1, 0, 0),
        )
    };
    let batch = UsageBatch::new(
        datetime!(2026-01-01 12:00 UTC),
        vec![
            row(datetime!(2026-01-01 10:01 UTC), 1),
            row(datetime!(2026-01-01 10:59 UTC), 2),
            row(datetime!(2026-01-01 11:00 UTC), 4),
        ],
    );
    let hours = batch.rollup(Bucket::Hour);
    assert_eq!(hours.len(), 2);
    assert_eq!(hours[0].counts, UsageCounts::new(3, 2, 0, 0));
    assert_eq!(hours[0].start, datetime!(2026-01-01 10:00 UTC));
    let days = batch.rollup(Bucket::Day);
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].counts, UsageCounts::new(7, 3, 0, 0));
    assert!(batch.validate().is_ok());
    let unaligned = UsageBatch::new(
        batch.created_at,
        vec![row(datetime!(2026-01-01 10:01:30 UTC), 1)],
    );
    assert!(unaligned.validate().is_err());
}

#[test]
fn route_classes_are_short_lowercase_names() {
    for ok in ["documents", "a", "admin-keys", "v1_extract"] {
        assert!(RouteClass::new(ok).is_ok(), "{ok}");
    }
    for bad in ["", "Documents", "1abc", "a/b", "a b", "_x", &"a".repeat(33)] {
        assert!(RouteClass::new(bad).is_err(), "{bad:?}");
    }
    assert!(serde_json::from_str::<RouteClass>(r#""x'; --""#).is_err());
}

#[test]
fn queries_refuse_empty_and_oversized_ranges() {
    let t = datetime!(2026-01-01 0:00 UTC);
    let key = ApiKeyId::new();
    assert!(UsageQuery::for_key(key, t, t, Bucket::Minute).is_err());
    assert!(UsageQuery::for_key(key, t, t + time::Duration::days(8), Bucket::Minute).is_err());
    assert!(UsageQuery::for_key(key, t, t + time::Duration::days(8), Bucket::Hour).is_ok());
    assert!(TopQuery::new(t, t + time::Duration::DAY, TopBy::Requests, 0).is_err());
    assert!(TopQuery::new(t, t + time::Duration::DAY, TopBy::Requests, 1001).is_err());
    assert!(TopQuery::new(t, t + time::Duration::days(401), TopBy::Requests, 10).is_err());
    assert_eq!("limited".parse::<TopBy>().unwrap(), TopBy::RateLimited);
    assert!(
        UsageRetention::new(
            std::time::Duration::from_secs(7_200),
            std::time::Duration::from_secs(3_600),
            std::time::Duration::from_secs(86_400)
        )
        .is_err()
    );
}

#[test]
fn recorded_counts_come_back_exactly_per_series_and_outcome() {
    let recorder = UsageRecorder::new();
    let tenant = TenantId::new("acme").unwrap();
    let other = TenantId::new("globex").unwrap();
    let key = UsageSubject::for_key(ApiKeyId::new());
    let route = RouteClass::new("documents").unwrap();
    for _ in 0..1_000 {
        recorder.record(&tenant, &key, &route, UsageOutcome::Allowed);
    }
    for _ in 0..7 {
        recorder.record(&tenant, &key, &route, UsageOutcome::RateLimited);
        recorder.record(&other, &key, &route, UsageOutcome::Denied);
    }
    recorder.record(&tenant, &key, &route, UsageOutcome::InvalidCredential);
    let at = datetime!(2026-01-01 10:00:42 UTC);
    let batch = recorder.take_batch(at).unwrap();
    assert_eq!(batch.rows.len(), 2);
    for row in &batch.rows {
        assert_eq!(row.start, datetime!(2026-01-01 10:00 UTC));
        let expected = if row.tenant == tenant {
            UsageCounts::new(1_000, 7, 0, 1)
        } else {
            UsageCounts::new(0, 0, 7, 0)
        };
        assert_eq!(row.counts, expected);
    }
    assert_eq!(recorder.stats().series, 2, "active series keep their slot");
    assert!(recorder.take_batch(at).is_none());
    assert_eq!(recorder.stats().series, 0, "idle series are forgotten");
}

#[test]
fn concurrent_records_are_all_counted() {
    let recorder = Arc::new(UsageRecorder::new());
    let tenant = TenantId::new("acme").unwrap();
    let route = RouteClass::new("documents").unwrap();
    let keys: Vec<_> = (0..16)
        .map(|_| UsageSubject::for_key(ApiKeyId::new()))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for i in 0..10_000 {
                    recorder.record(&tenant, &keys[i % 16], &route, UsageOutcome::Allowed);
                }
            });
        }
    });
    let batch = recorder.take_batch(datetime!(2026-01-01 0:00 UTC)).unwrap();
    assert_eq!(batch.rows.len(), 16);
    assert_eq!(batch.total().allowed, 40_000);
}

#[test]
fn series_beyond_the_bound_are_counted_as_overflow_not_stored() {
    let recorder = UsageRecorder::new().with_max_series(NonZeroUsize::new(3).unwrap());
    let tenant = TenantId::new("acme").unwrap();
    let route = RouteClass::new("documents").unwrap();
    for _ in 0..5 {
        let subject = UsageSubject::for_key(ApiKeyId::new());
        recorder.record(&tenant, &subject, &route, UsageOutcome::Allowed);
        recorder.record(&tenant, &subject, &route, UsageOutcome::Allowed);
    }
    let stats = recorder.stats();
    assert_eq!((stats.series, stats.overflowed), (3, 4));
    assert_eq!(
        recorder
            .take_batch(datetime!(2026-01-01 0:00 UTC))
            .unwrap()
            .total()
            .allowed,
        6
    );
}

/// A store that dedupes batch ids and can be told to fail, or to fail
/// after applying (an answer lost on the way back).
#[derive(Debug, Default)]
struct FlakyStore {
    applied: Mutex<(HashSet<uuid::Uuid>, UsageCounts)>,
    fail: AtomicBool,
    fail_after_apply: AtomicBool,
}

#[async_trait::async_trait]
impl UsageStore for FlakyStore {
    async fn record_batch(&self, batch: &UsageBatch) -> Result<bool> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::unavailable("flaky", std::io::Error::other("down")));
        }
        let mut applied = self.applied.lock().unwrap();
        let fresh = applied.0.insert(batch.id);
        if fresh {
            applied.1.merge(&batch.total());
        }
        if self.fail_after_apply.swap(false, Ordering::SeqCst) {
            return Err(Error::unavailable("flaky", std::io::Error::other("down")));
        }
        Ok(fresh)
    }
    async fn series(&self, _: &TenantId, _: &UsageQuery) -> Result<Vec<UsagePoint>> {
        Ok(Vec::new())
    }
    async fn top_keys(&self, _: &TenantId, _: &TopQuery) -> Result<Vec<KeyUsage>> {
        Ok(Vec::new())
    }
    async fn apply_retention(
        &self,
        _: OffsetDateTime,
        _: &UsageRetention,
    ) -> Result<RetentionReport> {
        Ok(RetentionReport::default())
    }
}

fn one(recorder: &UsageRecorder, n: usize) {
    let tenant = TenantId::new("acme").unwrap();
    let subject = UsageSubject::for_account(PrincipalId::new("alice").unwrap());
    let route = RouteClass::new("documents").unwrap();
    for _ in 0..n {
        recorder.record(&tenant, &subject, &route, UsageOutcome::Allowed);
    }
}

#[tokio::test]
async fn a_failed_flush_is_retried_with_the_same_batch_and_counted_once() {
    let recorder = Arc::new(UsageRecorder::new());
    let store = Arc::new(FlakyStore::default());
    let clock = ManualClock::new();
    let mut flusher = UsageFlusher::new(recorder.clone(), store.clone(), Arc::new(clock.clone()));
    one(&recorder, 5);
    store.fail_after_apply.store(true, Ordering::SeqCst);
    assert!(flusher.flush().await.is_err(), "the answer was lost");
    assert_eq!(flusher.pending_batches(), 1);
    one(&recorder, 3);
    store.fail.store(true, Ordering::SeqCst);
    assert!(flusher.flush().await.is_err());
    store.fail.store(false, Ordering::SeqCst);
    let report = flusher.flush().await.unwrap();
    assert_eq!((report.batches, report.pending), (2, 0));
    assert_eq!(store.applied.lock().unwrap().1.allowed, 8, "exactly once");
    let stats = recorder.stats();
    assert_eq!(
        (
            stats.failed_flushes,
            stats.lost_batches,
            stats.flushed_batches
        ),
        (2, 0, 2)
    );
}

#[tokio::test]
async fn past_the_pending_bound_the_oldest_batch_is_dropped_and_counted() {
    let recorder = Arc::new(UsageRecorder::new());
    let store = Arc::new(FlakyStore::default());
    store.fail.store(true, Ordering::SeqCst);
    let mut flusher = UsageFlusher::new(
        recorder.clone(),
        store.clone(),
        Arc::new(ManualClock::new()),
    )
    .with_max_pending_batches(NonZeroUsize::new(1).unwrap());
    one(&recorder, 2);
    assert!(flusher.flush().await.is_err());
    one(&recorder, 3);
    assert!(flusher.flush().await.is_err());
    let stats = recorder.stats();
    assert_eq!(
        (stats.lost_batches, stats.lost_requests),
        (1, 2),
        "one interval lost, and said so"
    );
    store.fail.store(false, Ordering::SeqCst);
    flusher.flush().await.unwrap();
    assert_eq!(store.applied.lock().unwrap().1.allowed, 3);
}

#[tokio::test]
async fn run_flushes_on_interval_boundaries_of_the_injected_clock_and_on_shutdown() {
    let recorder = Arc::new(UsageRecorder::new());
    let store = Arc::new(FlakyStore::default());
    let clock = ManualClock::starting_at(datetime!(2026-01-01 10:00:03 UTC));
    let flusher = UsageFlusher::new(recorder.clone(), store.clone(), Arc::new(clock.clone()))
        .with_interval(std::time::Duration::from_secs(10))
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(flusher.run(async move {
        let _ = stopped.await;
    }));
    while clock.pending_sleepers() == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        clock.sleeps(),
        vec![std::time::Duration::from_secs(7)],
        "aligned"
    );
    one(&recorder, 4);
    clock.advance(std::time::Duration::from_secs(7));
    while recorder.stats().flushed_batches == 0 {
        tokio::task::yield_now().await;
    }
    one(&recorder, 1);
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(store.applied.lock().unwrap().1.allowed, 5);
    assert!(
        UsageFlusher::new(recorder, store, Arc::new(clock))
            .with_interval(std::time::Duration::from_secs(7))
            .is_err()
    );
}
