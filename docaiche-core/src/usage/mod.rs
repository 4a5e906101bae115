//! Per-key usage analytics: the [`UsageStore`] contract, the vocabulary it
//! speaks, and the in-process [`UsageRecorder`] that counts requests off the
//! request path and flushes them in batches.
//!
//! Every authenticated request is counted once, per tenant, per
//! [`UsageSubject`] (an API key and/or an account), per [`RouteClass`] and
//! per [`UsageOutcome`], in per-minute buckets that stores roll up into hours
//! and days ([`Bucket`]).
//!
//! ```
//! use docaiche_core::usage::{RouteClass, UsageOutcome, UsageRecorder, UsageSubject};
//! use docaiche_core::{ApiKeyId, Clock, ManualClock, PrincipalId, TenantId};
//!
//! # fn main() -> docaiche_core::Result<()> {
//! let tenant = TenantId::new("acme")?;
//! let subject = UsageSubject::for_key_of(ApiKeyId::new(), PrincipalId::new("alice")?);
//! let documents = RouteClass::new("documents")?;
//!
//! // On the request path: one shard lock and an increment, no await.
//! let recorder = UsageRecorder::new();
//! recorder.record(&tenant, &subject, &documents, UsageOutcome::Allowed);
//! recorder.record(&tenant, &subject, &documents, UsageOutcome::Allowed);
//! recorder.record(&tenant, &subject, &documents, UsageOutcome::RateLimited);
//!
//! // Off it: a `UsageFlusher` takes one batch per interval and writes it to
//! // a `UsageStore` (docaiche-store has memory, SQLite and PostgreSQL ones).
//! let clock = ManualClock::new();
//! let batch = recorder.take_batch(clock.now()).expect("counts were recorded");
//! assert_eq!(batch.rows.len(), 1);
//! assert_eq!((batch.total().allowed, batch.total().rate_limited), (2, 1));
//! assert!(recorder.take_batch(clock.now()).is_none(), "drained");
//! # Ok(()) }
//! ```
//!
//! ## Design decisions
//!
//! - **Eager rollup.** A store adds each batch to the minute, hour *and*
//!   day rows in one transaction, so the three bucket sizes always agree and
//!   a late batch (a flush retried after an outage) lands in every rollup;
//!   there is no rollup watermark to fall behind. "Rolling up" over time is
//!   then only retention: [`UsageStore::apply_retention`] drops minute rows
//!   first, hour rows later, day rows last. The cost: three upserts per
//!   counter row instead of one.
//! - **Exactly once per batch.** Each [`UsageBatch`] carries an id; a store
//!   remembers applied ids (for the minute retention) and applies a batch
//!   at most once, so the flusher retries a failed write with the *same*
//!   batch and a write that committed but whose answer was lost is not
//!   counted twice.
//! - **Ranges decompose onto the coarsest rows.** A top-N over thirty days
//!   reads thirty day rows per key plus the hour and minute rows of the
//!   ragged edges ([`covering_spans`]), not 720 hour rows per key.
//! - **The recorder lives here, in `docaiche-core`**, beside the contract:
//!   the layers that see outcomes (`docaiche-auth`'s authentication layer,
//!   `docaiche-ratelimit`'s limiter) may depend on `docaiche-core` only, and
//!   a team with its own `UsageStore` needs nothing else.

mod query;
mod recorder;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::id::{ApiKeyId, PrincipalId, TenantId};

pub use query::{
    BucketSpan, KeyUsage, RetentionReport, TopBy, TopQuery, UsageFilter, UsagePoint, UsageQuery,
    UsageRetention, covering_spans,
};
pub use recorder::{
    DEFAULT_FLUSH_INTERVAL, DEFAULT_MAX_PENDING_BATCHES, DEFAULT_MAX_SERIES, FlushReport,
    UsageFlusher, UsageRecorder, UsageRecorderStats,
};

/// Longest [`RouteClass`], in bytes.
pub const MAX_ROUTE_CLASS_LEN: usize = 32;

/// Most buckets a [`UsageQuery`] may span (a week of minutes is 10 080).
pub const MAX_SERIES_BUCKETS: i64 = 10_080;

/// Largest `n` of a [`TopQuery`].
pub const MAX_TOP_N: u32 = 1_000;

/// Longest range of a [`TopQuery`]: 400 days.
pub const MAX_TOP_RANGE: time::Duration = time::Duration::days(400);

/// How a counted request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UsageOutcome {
    /// Authenticated, within its rate limit and authorized.
    Allowed,
    /// Refused by a rate limit (429).
    RateLimited,
    /// Authenticated but refused by authorization (403).
    Denied,
    /// The credential named a key or account but did not verify (401).
    InvalidCredential,
}

impl UsageOutcome {
    /// Every outcome, in column order.
    pub const ALL: [Self; 4] = [
        Self::Allowed,
        Self::RateLimited,
        Self::Denied,
        Self::InvalidCredential,
    ];

    /// A stable snake-case name for logs and metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::RateLimited => "rate_limited",
            Self::Denied => "denied",
            Self::InvalidCredential => "invalid_credential",
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Self::Allowed => 0,
            Self::RateLimited => 1,
            Self::Denied => 2,
            Self::InvalidCredential => 3,
        }
    }
}

impl fmt::Display for UsageOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Request counts by [`UsageOutcome`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UsageCounts {
    /// Allowed requests.
    pub allowed: u64,
    /// Rate-limited requests.
    pub rate_limited: u64,
    /// Requests denied by authorization.
    pub denied: u64,
    /// Requests with a credential that did not verify.
    pub invalid_credential: u64,
}

impl UsageCounts {
    /// Counts with these values.
    #[must_use]
    pub const fn new(
        allowed: u64,
        rate_limited: u64,
        denied: u64,
        invalid_credential: u64,
    ) -> Self {
        Self {
            allowed,
            rate_limited,
            denied,
            invalid_credential,
        }
    }

    /// Every request, whatever its outcome (saturating).
    #[must_use]
    pub const fn requests(&self) -> u64 {
        self.allowed
            .saturating_add(self.rate_limited)
            .saturating_add(self.denied)
            .saturating_add(self.invalid_credential)
    }

    /// The count of one outcome.
    #[must_use]
    pub const fn get(&self, outcome: UsageOutcome) -> u64 {
        match outcome {
            UsageOutcome::Allowed => self.allowed,
            UsageOutcome::RateLimited => self.rate_limited,
            UsageOutcome::Denied => self.denied,
            UsageOutcome::InvalidCredential => self.invalid_credential,
        }
    }

    /// Add `n` requests with `outcome` (saturating).
    pub const fn add(&mut self, outcome: UsageOutcome, n: u64) {
        let slot = match outcome {
            UsageOutcome::Allowed => &mut self.allowed,
            UsageOutcome::RateLimited => &mut self.rate_limited,
            UsageOutcome::Denied => &mut self.denied,
            UsageOutcome::InvalidCredential => &mut self.invalid_credential,
        };
        *slot = slot.saturating_add(n);
    }

    /// Add every count of `other` (saturating).
    pub const fn merge(&mut self, other: &Self) {
        self.allowed = self.allowed.saturating_add(other.allowed);
        self.rate_limited = self.rate_limited.saturating_add(other.rate_limited);
        self.denied = self.denied.saturating_add(other.denied);
        self.invalid_credential = self
            .invalid_credential
            .saturating_add(other.invalid_credential);
    }

    /// Whether every count is zero.
    #[must_use]
    pub const fn is_zero(&self) -> bool {
        self.requests() == 0
    }

    /// The metric a [`TopBy`] ranks by.
    #[must_use]
    pub const fn metric(&self, by: TopBy) -> u64 {
        match by {
            TopBy::Requests => self.requests(),
            TopBy::RateLimited => self.rate_limited,
        }
    }
}

/// Who made a counted request: an API key, an account, or a key acting for
/// an account. Never neither (the constructors make that impossible).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsageSubject {
    key: Option<ApiKeyId>,
    account: Option<PrincipalId>,
}

impl UsageSubject {
    /// An API key, with no account.
    #[must_use]
    pub const fn for_key(key: ApiKeyId) -> Self {
        Self {
            key: Some(key),
            account: None,
        }
    }

    /// An API key acting for `account` (the key's principal).
    #[must_use]
    pub const fn for_key_of(key: ApiKeyId, account: PrincipalId) -> Self {
        Self {
            key: Some(key),
            account: Some(account),
        }
    }

    /// An account authenticated without a key (password, bearer token).
    #[must_use]
    pub const fn for_account(account: PrincipalId) -> Self {
        Self {
            key: None,
            account: Some(account),
        }
    }

    /// Rebuild a subject from its parts, as read back from a store.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if both parts are absent.
    pub fn from_parts(key: Option<ApiKeyId>, account: Option<PrincipalId>) -> Result<Self> {
        if key.is_none() && account.is_none() {
            return Err(Error::invalid_input(
                "a usage subject needs an api key or an account",
            ));
        }
        Ok(Self { key, account })
    }

    /// The API key, if any.
    #[must_use]
    pub const fn key(&self) -> Option<&ApiKeyId> {
        self.key.as_ref()
    }

    /// The account, if any.
    #[must_use]
    pub const fn account(&self) -> Option<&PrincipalId> {
        self.account.as_ref()
    }
}

impl fmt::Debug for UsageSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageSubject")
            .field("key", &self.key)
            .field("account", &self.account)
            .finish()
    }
}

/// A class of routes usage is counted by (`documents`, `extract`, `admin`):
/// a short name the server chooses, 1 to [`MAX_ROUTE_CLASS_LEN`] bytes of
/// lowercase ASCII letters, digits, `_` and `-`, starting with a letter.
///
/// Route classes are a small, fixed vocabulary of the server (not request
/// paths): they multiply the number of series a store keeps.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RouteClass(String);

impl RouteClass {
    /// Validate and wrap `value`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if it is empty, too long or has other
    /// characters than `a-z 0-9 _ -`, or does not start with a letter.
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let valid = !value.is_empty()
            && value.len() <= MAX_ROUTE_CLASS_LEN
            && value.starts_with(|c: char| c.is_ascii_lowercase())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            return Err(Error::invalid_input(
                "route class must be 1 to 32 bytes of a-z, 0-9, _ and -, starting with a letter",
            ));
        }
        Ok(Self(value))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RouteClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RouteClass({:?})", self.0)
    }
}

impl fmt::Display for RouteClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RouteClass {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for RouteClass {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A bucket size. Buckets are aligned on the Unix epoch in UTC: a minute
/// starts at second 0, an hour at minute 0, a day at midnight UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Bucket {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl Bucket {
    /// Every bucket size, finest first.
    pub const ALL: [Self; 3] = [Self::Minute, Self::Hour, Self::Day];

    /// The bucket's length in seconds.
    #[must_use]
    pub const fn seconds(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    /// The bucket's length.
    #[must_use]
    pub const fn duration(self) -> time::Duration {
        time::Duration::seconds(self.seconds())
    }

    /// A stable name (`minute`, `hour`, `day`), also what [`FromStr`] reads.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    /// Start (Unix seconds) of the bucket holding Unix second `t`.
    #[must_use]
    pub const fn floor_seconds(self, t: i64) -> i64 {
        t - t.rem_euclid(self.seconds())
    }

    /// Start of the first bucket starting at or after Unix second `t`.
    #[must_use]
    pub const fn ceil_seconds(self, t: i64) -> i64 {
        let floor = self.floor_seconds(t);
        if floor == t {
            t
        } else {
            floor + self.seconds()
        }
    }

    /// Start of the bucket holding `t` (sub-second parts dropped).
    #[must_use]
    pub fn floor(self, t: OffsetDateTime) -> OffsetDateTime {
        from_unix(self.floor_seconds(t.unix_timestamp()))
    }

    /// Whether `t` is the start of a bucket of this size.
    #[must_use]
    pub fn is_aligned(self, t: OffsetDateTime) -> bool {
        t.nanosecond() == 0 && t.unix_timestamp().rem_euclid(self.seconds()) == 0
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Bucket {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "minute" => Ok(Self::Minute),
            "hour" => Ok(Self::Hour),
            "day" => Ok(Self::Day),
            _ => Err(Error::invalid_input(
                "bucket must be one of minute, hour, day",
            )),
        }
    }
}

/// An instant from Unix seconds, clamped into `time`'s range (stores hold
/// seconds they wrote, so clamping never happens for their own rows).
#[must_use]
pub fn from_unix(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(if seconds < 0 {
        OffsetDateTime::UNIX_EPOCH
    } else {
        time::macros::datetime!(9999-12-31 23:59:59 UTC)
    })
}

/// One counter row: a subject's counts on one route class in one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsageRow {
    /// The tenant of the subject.
    pub tenant: TenantId,
    /// Who made the requests.
    pub subject: UsageSubject,
    /// Which class of routes.
    pub route_class: RouteClass,
    /// Start of the bucket (in a [`UsageBatch`], of a minute).
    pub start: OffsetDateTime,
    /// The counts.
    pub counts: UsageCounts,
}

impl UsageRow {
    /// A row.
    #[must_use]
    pub const fn new(
        tenant: TenantId,
        subject: UsageSubject,
        route_class: RouteClass,
        start: OffsetDateTime,
        counts: UsageCounts,
    ) -> Self {
        Self {
            tenant,
            subject,
            route_class,
            start,
            counts,
        }
    }
}

/// Counter rows to add, written by one flush: see [`UsageStore::record_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsageBatch {
    /// Unique per batch (a UUIDv7 from [`UsageBatch::new`]); a store applies
    /// a batch id at most once.
    pub id: uuid::Uuid,
    /// When the batch was made (how long its id is remembered is measured
    /// from here).
    pub created_at: OffsetDateTime,
    /// Minute rows; a series may appear more than once (counts add up).
    pub rows: Vec<UsageRow>,
}

impl UsageBatch {
    /// A batch with a fresh id.
    #[must_use]
    pub fn new(created_at: OffsetDateTime, rows: Vec<UsageRow>) -> Self {
        Self::with_id(uuid::Uuid::now_v7(), created_at, rows)
    }

    /// A batch with a given id (a retry, or a test).
    #[must_use]
    pub const fn with_id(id: uuid::Uuid, created_at: OffsetDateTime, rows: Vec<UsageRow>) -> Self {
        Self {
            id,
            created_at,
            rows,
        }
    }

    /// Check what every store must refuse: a row whose `start` is not the
    /// start of a minute or lies before 1970.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the problem.
    pub fn validate(&self) -> Result<()> {
        for row in &self.rows {
            if !Bucket::Minute.is_aligned(row.start) || row.start < OffsetDateTime::UNIX_EPOCH {
                return Err(Error::invalid_input(
                    "usage rows must start on a whole minute, after 1970",
                ));
            }
        }
        Ok(())
    }

    /// The batch's rows added up per series and `bucket`, `start` floored
    /// to the bucket, rows with no counts left out, ordered by tenant,
    /// start, subject and route class. What an adapter adds to its `bucket`
    /// rows.
    #[must_use]
    pub fn rollup(&self, bucket: Bucket) -> Vec<UsageRow> {
        let mut sums: std::collections::BTreeMap<
            (&TenantId, i64, &UsageSubject, &RouteClass),
            UsageCounts,
        > = std::collections::BTreeMap::new();
        for row in &self.rows {
            let start = bucket.floor_seconds(row.start.unix_timestamp());
            sums.entry((&row.tenant, start, &row.subject, &row.route_class))
                .or_default()
                .merge(&row.counts);
        }
        sums.into_iter()
            .filter(|(_, counts)| !counts.is_zero())
            .map(|((tenant, start, subject, route), counts)| {
                UsageRow::new(
                    tenant.clone(),
                    subject.clone(),
                    route.clone(),
                    from_unix(start),
                    counts,
                )
            })
            .collect()
    }

    /// Sum of every row's counts.
    #[must_use]
    pub fn total(&self) -> UsageCounts {
        let mut total = UsageCounts::default();
        for row in &self.rows {
            total.merge(&row.counts);
        }
        total
    }
}

/// Usage counters in per-minute, per-hour and per-day rows.
///
/// Contract:
/// - **Tenant scoping.** [`series`](Self::series) and
///   [`top_keys`](Self::top_keys) read only the caller's tenant: another
///   tenant's rows never contribute, whatever the filter names.
///   [`record_batch`](Self::record_batch) and
///   [`apply_retention`](Self::apply_retention) are the flusher's and the
///   maintenance job's, across tenants; every row carries its tenant.
/// - **Exactly once per batch.** `record_batch` adds the batch's counts to
///   the minute, hour and day rows of every series in one atomic step, and
///   applies a batch id at most once: it returns `Ok(true)` when it applied
///   the batch and `Ok(false)` when the id was already applied (nothing
///   changes). Ids are remembered at least as long as minute rows are kept.
///   So a retry after an error is always safe, and counts are exact.
/// - **Rollups agree.** After `record_batch` returns, the hour row of a
///   series is the sum of its minute rows in that hour and the day row the
///   sum of its hour rows (until retention drops the finer rows).
/// - **Ranges.** A bucket is in `[from, to)` when its *start* is.
///   `top_keys` sums every minute of the range from the coarsest rows that
///   cover it exactly ([`covering_spans`]), or from an edge day's row
///   minus the rest of that day when that reads fewer rows (both add up
///   to the same while rollups agree); the finer rows of the ragged ends'
///   days must still be retained for an exact answer.
/// - **Ordering.** `series` returns points ordered by bucket start, then
///   route class; `top_keys` ranks by the metric, highest first, then by
///   key id, and leaves out keys whose metric is zero. Rows without a key
///   (account-only usage) never appear in `top_keys`.
/// - **Inputs.** Every field of a batch is validated by its type; a row not
///   starting on a minute is refused ([`UsageBatch::validate`]). Counts
///   never wrap: in memory they saturate; SQL stores hold signed 64-bit
///   columns and fail a write that would pass `i64::MAX` (9.2 × 10¹⁸).
/// - **Errors.** `InvalidInput` for a batch that fails validation;
///   `Unavailable` on outage (the batch was not applied: retry it).
#[async_trait::async_trait]
pub trait UsageStore: Send + Sync + fmt::Debug + 'static {
    /// Add `batch` to the minute, hour and day rows, once per batch id.
    /// Returns whether it was applied now (`false`: applied before).
    ///
    /// # Errors
    /// `InvalidInput` (see [`UsageBatch::validate`]); `Unavailable` on
    /// outage, with nothing applied.
    async fn record_batch(&self, batch: &UsageBatch) -> Result<bool>;

    /// The series of `query`'s subject in `tenant`, one point per bucket and
    /// route class that has a row, ordered by start then route class.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn series(&self, tenant: &TenantId, query: &UsageQuery) -> Result<Vec<UsagePoint>>;

    /// The `query.n` keys of `tenant` with the highest metric over the range.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn top_keys(&self, tenant: &TenantId, query: &TopQuery) -> Result<Vec<KeyUsage>>;

    /// Drop rows older than `retention` keeps them at `now`
    /// ([`UsageRetention::cutoff`]), and batch ids older than the minute
    /// retention. Idempotent.
    ///
    /// # Errors
    /// `Unavailable` on outage (some rows may be dropped already; run it
    /// again).
    async fn apply_retention(
        &self,
        now: OffsetDateTime,
        retention: &UsageRetention,
    ) -> Result<RetentionReport>;
}

#[cfg(test)]
mod tests;
