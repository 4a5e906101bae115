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
#[cfg(feature = "sqlite")]
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

/// One part of a top-N statement: the rows of `bucket` whose start lies in
/// `[from, to)`, added, or subtracted when `subtract`.
#[cfg(feature = "postgres")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TopPart {
    /// The bucket size (table) read.
    pub(crate) bucket: Bucket,
    /// First bucket start included (Unix seconds).
    pub(crate) from: i64,
    /// First bucket start excluded (Unix seconds).
    pub(crate) to: i64,
    /// Whether the rows are subtracted.
    pub(crate) subtract: bool,
}

/// Rows per key a list of spans reads (every bucket holding a row).
#[cfg(feature = "postgres")]
fn rows_per_key<'a>(spans: impl IntoIterator<Item = &'a docaiche_core::usage::BucketSpan>) -> i64 {
    spans
        .into_iter()
        .map(|s| (s.to - s.from) / s.bucket.seconds())
        .sum()
}

/// [`covering_spans`] with fewer rows: a ragged edge next to the whole days
/// is read as its whole day *minus* the rest of that day when that is
/// fewer rows per key (22 hours of a day: the day row minus 2 hour rows,
/// 3 rows instead of 22). The sums are the same whenever the rollups
/// agree (the [`UsageStore`](docaiche_core::UsageStore) contract), given
/// that the rest of an edge day is retained: always at the end (those rows
/// are newer than the range's), and at the start unless hour (or minute)
/// retention cut into that day.
#[cfg(feature = "postgres")]
pub(crate) fn top_parts(from: OffsetDateTime, to: OffsetDateTime) -> Vec<TopPart> {
    let spans = covering_spans(from, to);
    let part = |s: &docaiche_core::usage::BucketSpan, subtract| TopPart {
        bucket: s.bucket,
        from: s.from,
        to: s.to,
        subtract,
    };
    let Some(day_at) = spans.iter().position(|s| s.bucket == Bucket::Day) else {
        return spans.iter().map(|s| part(s, false)).collect();
    };
    let day = spans[day_at];
    let (before, after) = (&spans[..day_at], &spans[day_at + 1..]);
    let mut parts = Vec::with_capacity(8);
    let mut days = (day.from, day.to);
    if let Some(first) = before.first() {
        let rest = covering_spans(
            from_unix(day.from - Bucket::Day.seconds()),
            from_unix(first.from),
        );
        if 1 + rows_per_key(&rest) < rows_per_key(before) {
            days.0 -= Bucket::Day.seconds();
            parts.extend(rest.iter().map(|s| part(s, true)));
        } else {
            parts.extend(before.iter().map(|s| part(s, false)));
        }
    }
    if let Some(last) = after.last() {
        let rest = covering_spans(
            from_unix(last.to),
            from_unix(day.to + Bucket::Day.seconds()),
        );
        if 1 + rows_per_key(&rest) < rows_per_key(after) {
            days.1 += Bucket::Day.seconds();
            parts.extend(rest.iter().map(|s| part(s, true)));
        } else {
            parts.extend(after.iter().map(|s| part(s, false)));
        }
    }
    parts.insert(
        0,
        TopPart {
            bucket: Bucket::Day,
            from: days.0,
            to: days.1,
            subtract: false,
        },
    );
    parts
}

/// The top-N statement over `parts` (see [`top_parts`]): tenant `?1`, then
/// each part's `[from, to)`, then the nil key and the limit; placeholders
/// numbered by `param`, sums cast by `sum`.
#[cfg(feature = "postgres")]
pub(crate) fn top_sql_parts(
    param: &str,
    sum: fn(&str) -> String,
    metric_limited: bool,
    parts: &[TopPart],
) -> String {
    let p = |n: usize| format!("{param}{n}");
    let selects: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let sign = if part.subtract { "-" } else { "" };
            format!(
                "SELECT key_id, {sign}allowed AS allowed, {sign}rate_limited AS rate_limited, \
                 {sign}denied AS denied, {sign}invalid_credential AS invalid_credential \
                 FROM {table} WHERE tenant_id = {t} AND bucket_start >= {f} AND bucket_start < {e}",
                table = table(part.bucket),
                t = p(1),
                f = p(2 + 2 * i),
                e = p(3 + 2 * i),
            )
        })
        .collect();
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
    let next = 2 + 2 * parts.len();
    format!(
        "SELECT key_id, {a}, {l}, {d}, {i} FROM ({union}) AS u WHERE key_id <> {nil} \
         GROUP BY key_id HAVING {metric} > 0 ORDER BY {metric} DESC, key_id LIMIT {limit}",
        a = sum("allowed"),
        l = sum("rate_limited"),
        d = sum("denied"),
        i = sum("invalid_credential"),
        union = selects.join(" UNION ALL "),
        nil = p(next),
        limit = p(next + 1),
    )
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use std::collections::HashMap;

    use time::macros::datetime;

    use super::*;

    /// Each minute's signed coverage by `parts`.
    fn coverage(parts: &[TopPart]) -> HashMap<i64, i64> {
        let mut minutes = HashMap::new();
        for part in parts {
            let sign = if part.subtract { -1 } else { 1 };
            let mut t = part.from;
            while t < part.to {
                for m in (t..t + part.bucket.seconds()).step_by(60) {
                    *minutes.entry(m).or_insert(0) += sign;
                }
                t += part.bucket.seconds();
            }
        }
        minutes.retain(|_, n| *n != 0);
        minutes
    }

    #[test]
    fn top_parts_cover_each_minute_of_the_range_exactly_once() {
        let base = datetime!(2026-01-01 0:00 UTC);
        let m = time::Duration::minutes;
        for (from, to) in [
            (base + m(330), base + time::Duration::days(30) - m(120)),
            (base + m(1), base + time::Duration::days(2) + m(1439)),
            (base + m(1439), base + time::Duration::days(1) + m(1)),
            (base, base + time::Duration::days(3)),
            (base + m(600), base + m(700)),
            (base + m(61), base + time::Duration::days(1) + m(1380)),
            (base - m(17), base + time::Duration::days(1) + m(17)),
        ] {
            let parts = top_parts(from, to);
            let covered = coverage(&parts);
            let mut expected = HashMap::new();
            let mut t = from.unix_timestamp();
            while t < to.unix_timestamp() {
                expected.insert(t, 1);
                t += 60;
            }
            assert_eq!(covered, expected, "{from} .. {to}: {parts:?}");
        }
    }

    #[test]
    fn a_day_ragged_by_two_hours_is_its_day_row_minus_two_hour_rows() {
        let base = datetime!(2026-01-01 0:00 UTC);
        let h = time::Duration::hours;
        let parts = top_parts(base + h(5), base + time::Duration::days(30) - h(2));
        let per_key: i64 = parts
            .iter()
            .map(|p| (p.to - p.from) / p.bucket.seconds())
            .sum();
        assert_eq!(per_key, 30 + 5 + 2, "{parts:?}");
        assert!(parts.iter().filter(|p| p.subtract).count() == 2);
    }
}
