//! The read side of [`UsageStore`](super::UsageStore): series and top-N
//! queries, the decomposition of a range onto the coarsest rows
//! ([`covering_spans`]), and retention per bucket size.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Bucket, MAX_SERIES_BUCKETS, MAX_TOP_N, MAX_TOP_RANGE, RouteClass, UsageCounts};
use crate::error::{Error, Result};
use crate::id::{ApiKeyId, PrincipalId};

/// Which subjects a [`UsageQuery`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageFilter {
    /// Every row of this API key.
    Key(ApiKeyId),
    /// Every row of this account, with a key or without.
    Account(PrincipalId),
    /// Every row of the tenant: every key and every account.
    Tenant,
}

/// A subject's series: see [`UsageStore::series`](super::UsageStore::series).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsageQuery {
    /// Whose rows.
    pub filter: UsageFilter,
    /// Rows whose bucket starts at or after this instant…
    pub from: OffsetDateTime,
    /// …and before this one.
    pub to: OffsetDateTime,
    /// The bucket size to read.
    pub bucket: Bucket,
    /// Only this route class, if set.
    pub route_class: Option<RouteClass>,
}

impl UsageQuery {
    /// A query for `filter` over `[from, to)` at `bucket`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `from >= to` or the range holds more than
    /// [`MAX_SERIES_BUCKETS`] buckets.
    pub fn new(
        filter: UsageFilter,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> Result<Self> {
        if from >= to {
            return Err(Error::invalid_input("usage range must have from before to"));
        }
        if (to - from).whole_seconds() / bucket.seconds() > MAX_SERIES_BUCKETS {
            return Err(Error::invalid_input(
                "usage range holds too many buckets: pick a larger bucket",
            ));
        }
        Ok(Self {
            filter,
            from,
            to,
            bucket,
            route_class: None,
        })
    }

    /// [`UsageQuery::new`] for one API key.
    ///
    /// # Errors
    /// As [`UsageQuery::new`].
    pub fn for_key(
        key: ApiKeyId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        bucket: Bucket,
    ) -> Result<Self> {
        Self::new(UsageFilter::Key(key), from, to, bucket)
    }

    /// Only rows of `route_class`.
    #[must_use]
    pub fn with_route_class(mut self, route_class: RouteClass) -> Self {
        self.route_class = Some(route_class);
        self
    }
}

/// One point of a series: a bucket's counts on one route class.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsagePoint {
    /// Start of the bucket.
    pub start: OffsetDateTime,
    /// The route class.
    pub route_class: RouteClass,
    /// The counts (summed over the subject dimension the filter leaves
    /// open: accounts for a key, keys for an account).
    pub counts: UsageCounts,
}

impl UsagePoint {
    /// A point.
    #[must_use]
    pub const fn new(start: OffsetDateTime, route_class: RouteClass, counts: UsageCounts) -> Self {
        Self {
            start,
            route_class,
            counts,
        }
    }
}

/// What [`TopQuery`] ranks keys by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TopBy {
    /// Every request, whatever its outcome.
    Requests,
    /// Rate-limited requests.
    RateLimited,
}

impl FromStr for TopBy {
    type Err = Error;
    /// `requests`, or `limited` (also `rate_limited`).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "requests" => Ok(Self::Requests),
            "limited" | "rate_limited" => Ok(Self::RateLimited),
            _ => Err(Error::invalid_input("by must be requests or limited")),
        }
    }
}

/// The busiest keys of a tenant: see [`UsageStore::top_keys`](super::UsageStore::top_keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopQuery {
    /// Buckets starting at or after this instant…
    pub from: OffsetDateTime,
    /// …and before this one.
    pub to: OffsetDateTime,
    /// The ranking metric.
    pub by: TopBy,
    /// How many keys, at most.
    pub n: u32,
}

impl TopQuery {
    /// The top `n` keys by `by` over `[from, to)`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `from >= to`, the range is longer than
    /// [`MAX_TOP_RANGE`], or `n` is 0 or above [`MAX_TOP_N`].
    pub fn new(from: OffsetDateTime, to: OffsetDateTime, by: TopBy, n: u32) -> Result<Self> {
        if from >= to {
            return Err(Error::invalid_input("usage range must have from before to"));
        }
        if to - from > MAX_TOP_RANGE {
            return Err(Error::invalid_input("usage range must be at most 400 days"));
        }
        if n == 0 || n > MAX_TOP_N {
            return Err(Error::invalid_input("n must be 1 to 1000"));
        }
        Ok(Self { from, to, by, n })
    }
}

/// One key's totals in a top-N answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyUsage {
    /// The key.
    pub key: ApiKeyId,
    /// Its counts over the range.
    pub counts: UsageCounts,
}

impl KeyUsage {
    /// A key's totals.
    #[must_use]
    pub const fn new(key: ApiKeyId, counts: UsageCounts) -> Self {
        Self { key, counts }
    }
}

/// A half-open range `[from, to)` (Unix seconds) of bucket starts at one
/// bucket size: a piece of [`covering_spans`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BucketSpan {
    /// The bucket size the span reads.
    pub bucket: Bucket,
    /// First bucket start included (Unix seconds).
    pub from: i64,
    /// First bucket start excluded (Unix seconds).
    pub to: i64,
}

/// The fewest rows that add up to every minute bucket starting in
/// `[from, to)`: whole days from day rows, the hours around them from hour
/// rows, the minutes at the ragged ends from minute rows. At most five
/// spans (minute, hour, day, hour, minute), none empty, in time order.
///
/// A top-N over 30 days then reads 30 day rows per key and at most 46 hour
/// and 118 minute rows per key at the edges.
#[must_use]
pub fn covering_spans(from: OffsetDateTime, to: OffsetDateTime) -> Vec<BucketSpan> {
    // Buckets whose start lies in [from, to): round `from` up to a minute.
    let from =
        Bucket::Minute.ceil_seconds(from.unix_timestamp() + i64::from(from.nanosecond() > 0));
    let to = Bucket::Minute.ceil_seconds(to.unix_timestamp() + i64::from(to.nanosecond() > 0));
    let mut spans = Vec::with_capacity(5);
    cover(&mut spans, Bucket::Day, from, to);
    spans.sort_by_key(|s| s.from);
    spans
}

fn finer(bucket: Bucket) -> Option<Bucket> {
    match bucket {
        Bucket::Day => Some(Bucket::Hour),
        Bucket::Hour => Some(Bucket::Minute),
        Bucket::Minute => None,
    }
}

fn cover(spans: &mut Vec<BucketSpan>, bucket: Bucket, from: i64, to: i64) {
    if from >= to {
        return;
    }
    let (inner_from, inner_to) = (bucket.ceil_seconds(from), bucket.floor_seconds(to));
    match finer(bucket) {
        None => spans.push(BucketSpan { bucket, from, to }),
        Some(finer) if inner_from >= inner_to => cover(spans, finer, from, to),
        Some(finer) => {
            cover(spans, finer, from, inner_from);
            spans.push(BucketSpan {
                bucket,
                from: inner_from,
                to: inner_to,
            });
            cover(spans, finer, inner_to, to);
        }
    }
}

/// How long to keep rows of each bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageRetention {
    minute: Duration,
    hour: Duration,
    day: Duration,
}

impl UsageRetention {
    /// Keep minute rows for `minute`, hour rows for `hour`, day rows for
    /// `day`. Applied batch ids are remembered as long as minute rows.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] (`usage.retention`) unless each keeps at
    /// least one bucket of its size and `minute <= hour <= day`.
    pub fn new(minute: Duration, hour: Duration, day: Duration) -> Result<Self> {
        let ok = minute >= Duration::from_secs(60)
            && hour >= Duration::from_secs(3_600)
            && day >= Duration::from_secs(86_400)
            && minute <= hour
            && hour <= day;
        if !ok {
            return Err(Error::misconfigured(
                "usage.retention",
                "keep at least one bucket of each size, minutes no longer than hours, \
                 hours no longer than days",
            ));
        }
        Ok(Self { minute, hour, day })
    }

    /// How long rows of `bucket` are kept.
    #[must_use]
    pub const fn keep(&self, bucket: Bucket) -> Duration {
        match bucket {
            Bucket::Minute => self.minute,
            Bucket::Hour => self.hour,
            Bucket::Day => self.day,
        }
    }

    /// The first bucket start (Unix seconds) still kept at `now`: rows of
    /// `bucket` starting before it are dropped.
    #[must_use]
    pub fn cutoff(&self, bucket: Bucket, now: OffsetDateTime) -> i64 {
        let keep = i64::try_from(self.keep(bucket).as_secs()).unwrap_or(i64::MAX);
        bucket.floor_seconds(now.unix_timestamp().saturating_sub(keep))
    }
}

impl Default for UsageRetention {
    /// Minutes for 2 days, hours for 90 days, days for 2 years.
    fn default() -> Self {
        Self {
            minute: Duration::from_secs(2 * 86_400),
            hour: Duration::from_secs(90 * 86_400),
            day: Duration::from_secs(730 * 86_400),
        }
    }
}

/// What [`UsageStore::apply_retention`](super::UsageStore::apply_retention) removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionReport {
    /// Minute rows dropped.
    pub minute_rows: u64,
    /// Hour rows dropped.
    pub hour_rows: u64,
    /// Day rows dropped.
    pub day_rows: u64,
    /// Applied batch ids forgotten.
    pub batches: u64,
}
