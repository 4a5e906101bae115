//! What the SQLite and PostgreSQL [`UsageStore`](docaiche_core::UsageStore)s
//! share: table names, the top-N range slots, row decoding.

use docaiche_core::usage::{
    Bucket, RouteClass, UsageCounts, UsagePoint, covering_spans, from_unix,
};
use docaiche_core::{Error, Result};
use time::OffsetDateTime;

/// The table of `bucket`'s rows (a constant: safe to format into SQL).
pub(crate) const fn table(bucket: Bucket) -> &'static str {
    match bucket {
        Bucket::Minute => "usage_minute",
        Bucket::Hour => "usage_hour",
        _ => "usage_day",
    }
}

/// The column a series filter compares.
pub(crate) const KEY_COLUMN: &str = "key_id";
/// See [`KEY_COLUMN`].
pub(crate) const ACCOUNT_COLUMN: &str = "account";
/// See [`KEY_COLUMN`]: a whole-tenant series compares the tenant twice
/// (the filter and the scope), which the primary key's prefix serves.
pub(crate) const TENANT_COLUMN: &str = "tenant_id";

/// The first whole second at or after `t`: a bucket is in `[from, to)` when
/// its start (whole seconds) is.
pub(crate) fn ceil_seconds(t: OffsetDateTime) -> i64 {
    t.unix_timestamp() + i64::from(t.nanosecond() > 0)
}

/// The five `[from, to)` slots of the top-N query, in its parameter order:
/// day, hour, hour, minute, minute; unused slots are empty (`[0, 0)`).
pub(crate) fn top_slots(from: OffsetDateTime, to: OffsetDateTime) -> [(i64, i64); 5] {
    let mut slots = [(0, 0); 5];
    let (mut hour, mut minute) = (1, 3);
    for span in covering_spans(from, to) {
        let slot = match span.bucket {
            Bucket::Day => 0,
            Bucket::Hour => {
                hour += 1;
                hour - 1
            }
            _ => {
                minute += 1;
                minute - 1
            }
        };
        slots[slot] = (span.from, span.to);
    }
    slots
}

/// The top-N statement over the three tables; `?` placeholders numbered by
/// `param` (`?N` for SQLite, `$N` for PostgreSQL), sums cast by `sum`.
pub(crate) fn top_sql(param: &str, sum: fn(&str) -> String, metric_limited: bool) -> String {
    let p = |n: u32| format!("{param}{n}");
    let part = |table: &str, from: u32| {
        format!(
            "SELECT key_id, allowed, rate_limited, denied, invalid_credential FROM {table} \
             WHERE tenant_id = {} AND bucket_start >= {} AND bucket_start < {}",
            p(1),
            p(from),
            p(from + 1)
        )
    };
    let metric = if metric_limited {
        sum("rate_limited")
    } else {
        format!(
            "{} + {} + {} + {}",
            sum("allowed"),
            sum("rate_limited"),
            sum("denied"),
            sum("invalid_credential")
        )
    };
    format!(
        "SELECT key_id, {a}, {l}, {d}, {i} FROM ({day} UNION ALL {h1} UNION ALL {h2} \
         UNION ALL {m1} UNION ALL {m2}) AS u WHERE key_id <> {nil} GROUP BY key_id \
         HAVING {metric} > 0 ORDER BY {metric} DESC, key_id LIMIT {limit}",
        a = sum("allowed"),
        l = sum("rate_limited"),
        d = sum("denied"),
        i = sum("invalid_credential"),
        day = part("usage_day", 2),
        h1 = part("usage_hour", 4),
        h2 = part("usage_hour", 6),
        m1 = part("usage_minute", 8),
        m2 = part("usage_minute", 10),
        nil = p(12),
        limit = p(13),
    )
}

/// The series statement for `bucket`, filtered on `column`.
pub(crate) fn series_sql(
    param: &str,
    sum: fn(&str) -> String,
    bucket: Bucket,
    column: &str,
) -> String {
    let p = |n: u32| format!("{param}{n}");
    format!(
        "SELECT bucket_start, route_class, {a}, {l}, {d}, {i} FROM {table} \
         WHERE tenant_id = {p1} AND {column} = {p2} AND bucket_start >= {p3} \
         AND bucket_start < {p4} AND ({p5} IS NULL OR route_class = {p5}) \
         GROUP BY bucket_start, route_class ORDER BY bucket_start, route_class",
        a = sum("allowed"),
        l = sum("rate_limited"),
        d = sum("denied"),
        i = sum("invalid_credential"),
        table = table(bucket),
        p1 = p(1),
        p2 = p(2),
        p3 = p(3),
        p4 = p(4),
        p5 = p(5),
    )
}

/// A stored count back as `u64` (negative only if written by something
/// else: refused).
pub(crate) fn count(value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::internal("stored usage count is negative"))
}

pub(crate) fn counts(a: i64, l: i64, d: i64, i: i64) -> Result<UsageCounts> {
    Ok(UsageCounts::new(count(a)?, count(l)?, count(d)?, count(i)?))
}

/// A series row back as a point.
pub(crate) fn point(start: i64, route: String, c: UsageCounts) -> Result<UsagePoint> {
    let route = RouteClass::new(route)
        .map_err(|e| Error::internal_with("stored route class is invalid", e))?;
    Ok(UsagePoint::new(from_unix(start), route, c))
}
