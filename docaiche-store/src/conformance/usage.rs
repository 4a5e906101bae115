//! The [`UsageStore`] suite.

use std::sync::Arc;
use std::time::Duration;

use docaiche_core::usage::{
    Bucket, KeyUsage, RouteClass, TopBy, TopQuery, UsageBatch, UsageCounts, UsageFilter,
    UsageFlusher, UsageOutcome, UsageQuery, UsageRecorder, UsageRetention, UsageRow, UsageStore,
    UsageSubject,
};
use docaiche_core::{ApiKeyId, ErrorCode, ManualClock, PrincipalId, TenantId};
use time::OffsetDateTime;
use time::macros::datetime;

use super::{Case, Harness, concurrently};

const SUITE: &str = "UsageStore";

/// Where the cases put their rows: far from the present, so that
/// [`UsageStore::apply_retention`] run by the retention case (which drops
/// rows before March 2001) never touches them.
const BASE: OffsetDateTime = datetime!(2031-05-14 10:00 UTC);

/// Run the whole [`UsageStore`] contract against `store`.
///
/// The retention case calls `apply_retention` with a `now` in 2001: it
/// drops every row (of any tenant) starting before February 2001, and batch
/// ids made before then. Point the suite at a test database.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_usage_store(store: Arc<dyn UsageStore>, harness: &Harness) {
    counts_through_the_recorder_are_exact(&store, harness).await;
    a_batch_is_applied_once(&*store, harness).await;
    tenants_never_see_each_other(&*store, harness).await;
    rollups_agree_and_series_are_ordered(&*store, harness).await;
    top_keys_rank_and_cover_ragged_ranges_exactly(&*store, harness).await;
    invalid_batches_are_refused(&*store, harness).await;
    concurrent_batches_add_up(&store, harness).await;
    retention_drops_old_rows_per_bucket(&*store, harness).await;
}

fn route(name: &str) -> RouteClass {
    RouteClass::new(name).unwrap_or_else(|e| panic!("conformance {SUITE}: route class: {e}"))
}

fn account(h: &Harness) -> PrincipalId {
    PrincipalId::new(h.unique("u")).unwrap_or_else(|e| panic!("conformance {SUITE}: {e}"))
}

fn row(
    tenant: &TenantId,
    subject: &UsageSubject,
    route_class: &RouteClass,
    start: OffsetDateTime,
    counts: UsageCounts,
) -> UsageRow {
    UsageRow::new(
        tenant.clone(),
        subject.clone(),
        route_class.clone(),
        start,
        counts,
    )
}

fn minutes(n: i64) -> time::Duration {
    time::Duration::minutes(n)
}

async fn total(
    case: Case,
    store: &dyn UsageStore,
    tenant: &TenantId,
    query: &UsageQuery,
) -> UsageCounts {
    let mut sum = UsageCounts::default();
    for point in case.ok(store.series(tenant, query).await, "series") {
        sum.merge(&point.counts);
    }
    sum
}

fn query(
    case: Case,
    filter: UsageFilter,
    from: OffsetDateTime,
    to: OffsetDateTime,
    bucket: Bucket,
) -> UsageQuery {
    case.ok(UsageQuery::new(filter, from, to, bucket), "usage query")
}

fn top(case: Case, from: OffsetDateTime, to: OffsetDateTime, by: TopBy, n: u32) -> TopQuery {
    case.ok(TopQuery::new(from, to, by, n), "top query")
}

async fn counts_through_the_recorder_are_exact(store: &Arc<dyn UsageStore>, h: &Harness) {
    let case = Case::new(SUITE, "counts_through_the_recorder_are_exact");
    let tenant = h.tenant();
    let key = ApiKeyId::new();
    let subject = UsageSubject::for_key_of(key, account(h));
    let documents = route("documents");
    let (n, m, k, j) = (1_234_u64, 56_u64, 7_u64, 3_u64);
    let recorder = Arc::new(UsageRecorder::new());
    let clock = ManualClock::starting_at(BASE + time::Duration::seconds(15));
    let mut flusher = UsageFlusher::new(recorder.clone(), store.clone(), Arc::new(clock.clone()));
    for (outcome, times) in [
        (UsageOutcome::Allowed, n),
        (UsageOutcome::RateLimited, m),
        (UsageOutcome::Denied, k),
        (UsageOutcome::InvalidCredential, j),
    ] {
        for _ in 0..times {
            recorder.record(&tenant, &subject, &documents, outcome);
        }
    }
    clock.advance(Duration::from_secs(10));
    let report = case.ok(flusher.flush().await, "flush");
    case.eq(&report.batches, &1, "batches written");
    let expected = UsageCounts::new(n, m, k, j);
    for bucket in Bucket::ALL {
        let from = bucket.floor(BASE);
        let q = query(
            case,
            UsageFilter::Key(key),
            from,
            from + bucket.duration(),
            bucket,
        );
        let points = case.ok(store.series(&tenant, &q).await, "series");
        case.eq(&points.len(), &1, "one point per bucket and route class");
        case.eq(
            &points[0].counts,
            &expected,
            "the exact counts at every bucket size",
        );
        case.eq(&points[0].start, &from, "the bucket start");
        case.eq(&points[0].route_class, &documents, "the route class");
    }
    let q = top(case, BASE, BASE + minutes(1), TopBy::Requests, 10);
    case.eq(
        &case.ok(store.top_keys(&tenant, &q).await, "top_keys"),
        &vec![KeyUsage::new(key, expected)],
        "top keys over the flushed minute",
    );
    case.check(recorder.stats().lost_batches == 0, "nothing lost");
}

async fn a_batch_is_applied_once(store: &dyn UsageStore, h: &Harness) {
    let case = Case::new(SUITE, "a_batch_is_applied_once");
    let tenant = h.tenant();
    let key = ApiKeyId::new();
    let subject = UsageSubject::for_key(key);
    let batch = UsageBatch::new(
        BASE,
        vec![row(
            &tenant,
            &subject,
            &route("documents"),
            BASE,
            UsageCounts::new(5, 1, 0, 0),
        )],
    );
    case.eq(
        &case.ok(store.record_batch(&batch).await, "record_batch"),
        &true,
        "first time applies",
    );
    case.eq(
        &case.ok(store.record_batch(&batch).await, "record_batch again"),
        &false,
        "a retry is a no-op",
    );
    let day = Bucket::Day.floor(BASE);
    let q = query(
        case,
        UsageFilter::Key(key),
        day,
        day + time::Duration::DAY,
        Bucket::Day,
    );
    case.eq(
        &total(case, store, &tenant, &q).await,
        &UsageCounts::new(5, 1, 0, 0),
        "counted once",
    );
    let again = UsageBatch::new(BASE, batch.rows.clone());
    case.eq(
        &case.ok(store.record_batch(&again).await, "record_batch"),
        &true,
        "a new id applies",
    );
    case.eq(
        &total(case, store, &tenant, &q).await,
        &UsageCounts::new(10, 2, 0, 0),
        "added",
    );
    let empty = UsageBatch::new(BASE, Vec::new());
    case.ok(store.record_batch(&empty).await, "an empty batch");
}

async fn tenants_never_see_each_other(store: &dyn UsageStore, h: &Harness) {
    let case = Case::new(SUITE, "tenants_never_see_each_other");
    let (acme, globex) = (h.tenant(), h.tenant());
    let key = ApiKeyId::new();
    let alice = account(h);
    let subject = UsageSubject::for_key_of(key, alice.clone());
    let r = route("documents");
    let batch = UsageBatch::new(
        BASE,
        vec![
            row(&acme, &subject, &r, BASE, UsageCounts::new(3, 0, 0, 0)),
            row(&globex, &subject, &r, BASE, UsageCounts::new(0, 9, 0, 0)),
        ],
    );
    case.ok(store.record_batch(&batch).await, "record_batch");
    for (tenant, expected) in [
        (&acme, UsageCounts::new(3, 0, 0, 0)),
        (&globex, UsageCounts::new(0, 9, 0, 0)),
    ] {
        for filter in [
            UsageFilter::Key(key),
            UsageFilter::Account(alice.clone()),
            UsageFilter::Tenant,
        ] {
            let q = query(case, filter, BASE, BASE + minutes(60), Bucket::Minute);
            case.eq(
                &total(case, store, tenant, &q).await,
                &expected,
                "only the tenant's own rows",
            );
        }
        let q = top(case, BASE, BASE + minutes(60), TopBy::Requests, 5);
        let ranked = case.ok(store.top_keys(tenant, &q).await, "top_keys");
        case.eq(
            &ranked,
            &vec![KeyUsage::new(key, expected)],
            "top keys of the tenant only",
        );
    }
    let stranger = h.tenant();
    let q = query(
        case,
        UsageFilter::Key(key),
        BASE,
        BASE + minutes(60),
        Bucket::Minute,
    );
    case.check(
        case.ok(store.series(&stranger, &q).await, "series")
            .is_empty(),
        "a tenant without rows sees nothing",
    );
}

async fn rollups_agree_and_series_are_ordered(store: &dyn UsageStore, h: &Harness) {
    let case = Case::new(SUITE, "rollups_agree_and_series_are_ordered");
    let tenant = h.tenant();
    let key = ApiKeyId::new();
    let alice = account(h);
    let with_account = UsageSubject::for_key_of(key, alice.clone());
    let account_only = UsageSubject::for_account(alice.clone());
    let (docs, admin) = (route("documents"), route("admin"));
    // 23:58 and 23:59 of one day, 00:00 and 01:30 of the next.
    let day_end = Bucket::Day.floor(BASE) + time::Duration::DAY;
    let starts = [
        day_end - minutes(2),
        day_end - minutes(1),
        day_end,
        day_end + minutes(90),
    ];
    let mut rows = Vec::new();
    for (i, start) in starts.iter().enumerate() {
        let n = u64::try_from(i).unwrap_or(0) + 1;
        rows.push(row(
            &tenant,
            &with_account,
            &docs,
            *start,
            UsageCounts::new(n, 0, 0, 0),
        ));
        rows.push(row(
            &tenant,
            &with_account,
            &admin,
            *start,
            UsageCounts::new(0, 0, n, 0),
        ));
        rows.push(row(
            &tenant,
            &account_only,
            &docs,
            *start,
            UsageCounts::new(0, 0, 0, n),
        ));
    }
    // In two batches, so that the later one adds to rows the first made.
    let second = rows.split_off(6);
    for rows in [rows, second] {
        case.ok(
            store.record_batch(&UsageBatch::new(BASE, rows)).await,
            "record_batch",
        );
    }
    let from = day_end - time::Duration::DAY;
    let to = day_end + time::Duration::DAY;
    let hours = query(case, UsageFilter::Key(key), from, to, Bucket::Hour);
    let points = case.ok(store.series(&tenant, &hours).await, "series by hour");
    let shape: Vec<(OffsetDateTime, &str, UsageCounts)> = points
        .iter()
        .map(|p| (p.start, p.route_class.as_str(), p.counts))
        .collect();
    case.eq(
        &shape,
        &vec![
            (day_end - minutes(60), "admin", UsageCounts::new(0, 0, 3, 0)),
            (
                day_end - minutes(60),
                "documents",
                UsageCounts::new(3, 0, 0, 0),
            ),
            (day_end, "admin", UsageCounts::new(0, 0, 3, 0)),
            (day_end, "documents", UsageCounts::new(3, 0, 0, 0)),
            (day_end + minutes(60), "admin", UsageCounts::new(0, 0, 4, 0)),
            (
                day_end + minutes(60),
                "documents",
                UsageCounts::new(4, 0, 0, 0),
            ),
        ],
        "hour rows are the sums of their minutes, ordered by start then route class",
    );
    let days =
        query(case, UsageFilter::Key(key), from, to, Bucket::Day).with_route_class(docs.clone());
    let shape: Vec<(OffsetDateTime, UsageCounts)> = case
        .ok(store.series(&tenant, &days).await, "series by day")
        .iter()
        .map(|p| (p.start, p.counts))
        .collect();
    case.eq(
        &shape,
        &vec![
            (from, UsageCounts::new(3, 0, 0, 0)),
            (day_end, UsageCounts::new(7, 0, 0, 0)),
        ],
        "day rows, one route class",
    );
    let by_account = query(case, UsageFilter::Account(alice), from, to, Bucket::Day);
    case.eq(
        &total(case, store, &tenant, &by_account).await,
        &UsageCounts::new(10, 0, 10, 10),
        "an account's rows, with its keys and without",
    );
    let whole = query(case, UsageFilter::Tenant, from, to, Bucket::Day);
    case.eq(
        &total(case, store, &tenant, &whole).await,
        &total(case, store, &tenant, &by_account).await,
        "the whole tenant's rows: here, every row is the account's",
    );
    let minutes_q = query(
        case,
        UsageFilter::Key(key),
        day_end - minutes(1),
        day_end + minutes(1),
        Bucket::Minute,
    );
    case.eq(
        &case
            .ok(store.series(&tenant, &minutes_q).await, "series by minute")
            .len(),
        &4,
        "minute rows whose start lies in [from, to)",
    );
}

async fn top_keys_rank_and_cover_ragged_ranges_exactly(store: &dyn UsageStore, h: &Harness) {
    let case = Case::new(SUITE, "top_keys_rank_and_cover_ragged_ranges_exactly");
    let tenant = h.tenant();
    let r = route("documents");
    let mut keys: Vec<ApiKeyId> = (0..4).map(|_| ApiKeyId::new()).collect();
    keys.sort();
    let (a, b, c, d) = (keys[0], keys[1], keys[2], keys[3]);
    let start = Bucket::Day.floor(BASE);
    // Spread over three days: minutes at the ragged ends, whole hours and
    // a whole day in the middle.
    let at = |m: i64| start + minutes(m);
    let rows = vec![
        // a: 10 requests, 1 limited; b: 10 requests, 5 limited (ties a on requests).
        row(
            &tenant,
            &UsageSubject::for_key(a),
            &r,
            at(10),
            UsageCounts::new(9, 1, 0, 0),
        ),
        row(
            &tenant,
            &UsageSubject::for_key(b),
            &r,
            at(1_500),
            UsageCounts::new(5, 5, 0, 0),
        ),
        // c: 12 requests over the whole range, 0 limited.
        row(
            &tenant,
            &UsageSubject::for_key(c),
            &r,
            at(10),
            UsageCounts::new(4, 0, 0, 0),
        ),
        row(
            &tenant,
            &UsageSubject::for_key(c),
            &r,
            at(2 * 1_440 + 600),
            UsageCounts::new(8, 0, 0, 0),
        ),
        // d: only outside the range (before it).
        row(
            &tenant,
            &UsageSubject::for_key(d),
            &r,
            at(9),
            UsageCounts::new(50, 50, 0, 0),
        ),
        // Account-only usage never ranks as a key.
        row(
            &tenant,
            &UsageSubject::for_account(account(h)),
            &r,
            at(20),
            UsageCounts::new(99, 99, 0, 0),
        ),
    ];
    case.ok(
        store.record_batch(&UsageBatch::new(BASE, rows)).await,
        "record_batch",
    );
    let (from, to) = (at(10), at(2 * 1_440 + 601));
    let by_requests = case.ok(
        store
            .top_keys(&tenant, &top(case, from, to, TopBy::Requests, 10))
            .await,
        "top_keys",
    );
    case.eq(
        &by_requests,
        &vec![
            KeyUsage::new(c, UsageCounts::new(12, 0, 0, 0)),
            KeyUsage::new(a, UsageCounts::new(9, 1, 0, 0)),
            KeyUsage::new(b, UsageCounts::new(5, 5, 0, 0)),
        ],
        "by requests, ties by key id, exact over minute, hour and day rows",
    );
    let by_limited = case.ok(
        store
            .top_keys(&tenant, &top(case, from, to, TopBy::RateLimited, 10))
            .await,
        "top_keys",
    );
    case.eq(
        &by_limited.iter().map(|k| k.key).collect::<Vec<_>>(),
        &vec![b, a],
        "by limited, keys never limited left out",
    );
    let one = case.ok(
        store
            .top_keys(&tenant, &top(case, from, to, TopBy::Requests, 1))
            .await,
        "top_keys",
    );
    case.eq(&one.len(), &1, "at most n keys");
    let narrow = case.ok(
        store
            .top_keys(
                &tenant,
                &top(case, at(11), at(2 * 1_440 + 600), TopBy::Requests, 10),
            )
            .await,
        "top_keys",
    );
    case.eq(
        &narrow,
        &vec![KeyUsage::new(b, UsageCounts::new(5, 5, 0, 0))],
        "a range is exact to the minute at both ends",
    );
}

async fn invalid_batches_are_refused(store: &dyn UsageStore, h: &Harness) {
    let case = Case::new(SUITE, "invalid_batches_are_refused");
    let tenant = h.tenant();
    let key = ApiKeyId::new();
    let subject = UsageSubject::for_key(key);
    let r = route("documents");
    let batch = UsageBatch::new(
        BASE,
        vec![
            row(&tenant, &subject, &r, BASE, UsageCounts::new(1, 0, 0, 0)),
            row(
                &tenant,
                &subject,
                &r,
                BASE + time::Duration::seconds(30),
                UsageCounts::new(1, 0, 0, 0),
            ),
        ],
    );
    case.err(
        store.record_batch(&batch).await,
        ErrorCode::InvalidInput,
        "a row not on a minute",
    );
    let q = query(
        case,
        UsageFilter::Key(key),
        BASE,
        BASE + minutes(5),
        Bucket::Minute,
    );
    case.check(
        case.ok(store.series(&tenant, &q).await, "series")
            .is_empty(),
        "a refused batch changes nothing",
    );
}

async fn concurrent_batches_add_up(store: &Arc<dyn UsageStore>, h: &Harness) {
    let case = Case::new(SUITE, "concurrent_batches_add_up");
    let tenant = h.tenant();
    let key = ApiKeyId::new();
    let subject = UsageSubject::for_key(key);
    let r = route("documents");
    let rows: Vec<UsageRow> = (0..5)
        .map(|i| {
            row(
                &tenant,
                &subject,
                &r,
                BASE + minutes(i),
                UsageCounts::new(1, 1, 0, 0),
            )
        })
        .collect();
    let same = UsageBatch::new(BASE, rows.clone());
    let applied = concurrently(case, 8, |i| {
        let store = store.clone();
        let batch = if i < 4 {
            same.clone()
        } else {
            UsageBatch::new(BASE, rows.clone())
        };
        async move { store.record_batch(&batch).await }
    })
    .await;
    let mut fresh = 0;
    for result in applied {
        if case.ok(result, "concurrent record_batch") {
            fresh += 1;
        }
    }
    case.eq(
        &fresh,
        &5,
        "one of four copies of a batch, and four other batches, applied",
    );
    let day = Bucket::Day.floor(BASE);
    let q = query(
        case,
        UsageFilter::Key(key),
        day,
        day + time::Duration::DAY,
        Bucket::Day,
    );
    case.eq(
        &total(case, store.as_ref(), &tenant, &q).await,
        &UsageCounts::new(25, 25, 0, 0),
        "every applied batch counted",
    );
}

async fn retention_drops_old_rows_per_bucket(store: &dyn UsageStore, h: &Harness) {
    let case = Case::new(SUITE, "retention_drops_old_rows_per_bucket");
    let tenant = h.tenant();
    let key = ApiKeyId::new();
    let subject = UsageSubject::for_key(key);
    let r = route("documents");
    let old = datetime!(2001-01-01 12:00 UTC);
    let recent = datetime!(2001-01-30 12:00 UTC);
    let batch = UsageBatch::new(
        old,
        vec![
            row(&tenant, &subject, &r, old, UsageCounts::new(1, 0, 0, 0)),
            row(&tenant, &subject, &r, recent, UsageCounts::new(2, 0, 0, 0)),
        ],
    );
    case.ok(store.record_batch(&batch).await, "record_batch");
    let retention = case.ok(
        UsageRetention::new(
            Duration::from_secs(2 * 86_400),
            Duration::from_secs(10 * 86_400),
            Duration::from_secs(60 * 86_400),
        ),
        "retention",
    );
    let now = datetime!(2001-01-31 12:00 UTC);
    let report = case.ok(
        store.apply_retention(now, &retention).await,
        "apply_retention",
    );
    case.check(
        report.minute_rows >= 1 && report.hour_rows >= 1,
        "old minute and hour rows dropped",
    );
    for (bucket, kept_old) in [(Bucket::Minute, 0), (Bucket::Hour, 0), (Bucket::Day, 1)] {
        for (at, expected) in [(old, kept_old), (recent, 1)] {
            let from = bucket.floor(at);
            let q = query(
                case,
                UsageFilter::Key(key),
                from,
                from + time::Duration::DAY,
                bucket,
            );
            case.eq(
                &case.ok(store.series(&tenant, &q).await, "series").len(),
                &expected,
                "rows kept per bucket size",
            );
        }
    }
    case.ok(
        store.apply_retention(now, &retention).await,
        "apply_retention is idempotent",
    );
}
