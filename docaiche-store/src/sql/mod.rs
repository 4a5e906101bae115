//! What the SQLite and PostgreSQL adapters share: the pool configuration and
//! its live figures, the row shapes both schemas have in common, the
//! conversions between rows and `docaiche-core` records, and the mapping of
//! `sqlx` errors onto [`docaiche_core::Error`].
//!
//! Both schemas (in `migrations/sqlite` and `migrations/postgres`) use the
//! same tables, columns and indexes with the same conventions, so one row
//! type decodes from either engine:
//!
//! - timestamps are Unix microseconds (`BIGINT` / `INTEGER`): both engines
//!   compare them natively, and the precision is PostgreSQL's own. Records
//!   coming back from a store therefore carry microsecond-truncated times;
//! - strings callers choose (filenames, job kinds, key names, error messages)
//!   are stored as the bytes of their UTF-8 (`BYTEA` / `BLOB`), because
//!   PostgreSQL `text` cannot hold NUL and the contracts require NUL to
//!   round-trip. The cost: those columns read as `\x…` in `psql`;
//! - JSON (payloads, results, scopes, audit events) is serde_json text, which
//!   escapes NUL as `\u0000` (`jsonb` would refuse it);
//! - a document's risk flags are their snake_case names, sorted and
//!   comma-separated (`java_script,open_action`, `''` for none): readable
//!   in `psql`, and independent of the enum's declaration order.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use docaiche_core::api_key::{ApiKeyLookup, ApiKeyRecord};
use docaiche_core::audit::AuditEvent;
use docaiche_core::document::{DocumentMeta, DocumentText};
use docaiche_core::extract::RiskFlag;
use docaiche_core::job::{JobLease, JobRecord, JobState};
use docaiche_core::page::Page;
use docaiche_core::resilience::CircuitBreaker;
use docaiche_core::{
    ApiKeyId, DocumentId, Error, JobId, PermissionSet, PrincipalId, Result, TenantId,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub(crate) mod account;
pub(crate) mod custom_role;
pub(crate) mod mfa;
pub(crate) mod stats;
pub(crate) mod tenant;
pub(crate) mod usage;
pub(crate) mod web_session;

pub use stats::PoolStats;

/// Connection pool settings, read from configuration.
///
/// Durations are whole milliseconds so that a TOML or JSON file spells them
/// plainly (`acquire_timeout_ms = 3000`).
///
/// ```
/// let pool: docaiche_store::sql::PoolConfig =
///     serde_json::from_str(r#"{ "max_connections": 20, "acquire_timeout_ms": 500 }"#).unwrap();
/// assert_eq!(pool.max_connections, 20);
/// assert_eq!(pool.min_connections, 0, "unset fields keep their defaults");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Connections kept open even when idle.
    pub min_connections: u32,
    /// Most connections open at once (≥ 1).
    pub max_connections: u32,
    /// How long a query waits for a free connection before failing with
    /// `Unavailable`.
    pub acquire_timeout_ms: u64,
    /// Idle connections above `min_connections` close after this long
    /// (`None`: never).
    pub idle_timeout_ms: Option<u64>,
    /// Connections are replaced after this long (`None`: never).
    pub max_lifetime_ms: Option<u64>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            min_connections: 0,
            max_connections: 10,
            acquire_timeout_ms: 5_000,
            idle_timeout_ms: Some(600_000),
            max_lifetime_ms: Some(1_800_000),
        }
    }
}

impl PoolConfig {
    /// Settings with at most `max_connections` connections and the other
    /// defaults.
    #[must_use]
    pub fn with_max_connections(mut self, max_connections: u32) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// Set the acquire timeout.
    #[must_use]
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Check the settings.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if `max_connections` is 0 or below
    /// `min_connections`, or the acquire timeout is 0.
    pub fn validate(&self, setting: &'static str) -> Result<()> {
        if self.max_connections == 0 || self.max_connections < self.min_connections {
            return Err(Error::misconfigured(
                setting,
                "max_connections must be at least 1 and at least min_connections",
            ));
        }
        if self.acquire_timeout_ms == 0 {
            return Err(Error::misconfigured(
                setting,
                "acquire_timeout_ms must be above 0",
            ));
        }
        Ok(())
    }

    pub(crate) fn apply<DB: sqlx::Database>(
        &self,
        options: sqlx::pool::PoolOptions<DB>,
    ) -> sqlx::pool::PoolOptions<DB> {
        options
            .min_connections(self.min_connections)
            .max_connections(self.max_connections)
            .acquire_timeout(Duration::from_millis(self.acquire_timeout_ms))
            .idle_timeout(self.idle_timeout_ms.map(Duration::from_millis))
            .max_lifetime(self.max_lifetime_ms.map(Duration::from_millis))
    }
}

/// A pool with acquisitions counted and timed (sqlx reports sizes but not
/// waiters or acquire latency, so the adapters acquire through this).
///
/// With a circuit breaker, acquisitions run through it: once connecting
/// keeps failing (the database is down, the pool times out), callers get
/// `CircuitOpen` at once instead of each waiting out the acquire timeout.
/// Only acquisition is guarded: a query that fails on a live connection is
/// not counted (it says more about the query than about the database).
#[derive(Debug)]
pub(crate) struct MeteredPool<DB: sqlx::Database> {
    pub(crate) pool: sqlx::Pool<DB>,
    pub(crate) meter: Arc<stats::Meter>,
    pub(crate) breaker: Option<CircuitBreaker>,
}

impl<DB: sqlx::Database> Clone for MeteredPool<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            meter: self.meter.clone(),
            breaker: self.breaker.clone(),
        }
    }
}

impl<DB: sqlx::Database> MeteredPool<DB> {
    pub(crate) fn new(pool: sqlx::Pool<DB>) -> Self {
        Self {
            pool,
            meter: Arc::new(stats::Meter::default()),
            breaker: None,
        }
    }

    /// A connection, through the circuit breaker if there is one.
    pub(crate) async fn acquire(
        &self,
        dependency: &'static str,
    ) -> Result<sqlx::pool::PoolConnection<DB>> {
        match &self.breaker {
            Some(breaker) => breaker.call(|| self.acquire_metered(dependency)).await,
            None => self.acquire_metered(dependency).await,
        }
    }

    /// A connection, with the wait counted.
    async fn acquire_metered(
        &self,
        dependency: &'static str,
    ) -> Result<sqlx::pool::PoolConnection<DB>> {
        let _waiting = self.meter.start_wait();
        let started = Instant::now();
        let result = self.pool.acquire().await;
        self.meter.finish_wait(started.elapsed(), result.is_ok());
        result.map_err(|e| db_error(dependency, e))
    }

    pub(crate) fn stats(&self) -> PoolStats {
        self.meter.snapshot(
            self.pool.size(),
            u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            self.pool.options().get_max_connections(),
        )
    }
}

/// Map a sqlx error onto the core error. Callers that expect a unique
/// violation check [`is_unique_violation`] first.
pub(crate) fn db_error(dependency: &'static str, error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Error::unavailable(dependency, error),
        sqlx::Error::Database(db) if is_transient(db.code().as_deref()) => {
            Error::unavailable(dependency, error)
        }
        _ => Error::internal_with(format!("{dependency} query failed"), error),
    }
}

/// SQLSTATE / SQLite codes that mean "try again": serialization failures,
/// deadlocks, connection loss, shutdown, a busy or locked SQLite database.
fn is_transient(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "40001"
                | "40P01"
                | "57P01"
                | "57P02"
                | "57P03"
                | "53300"
                | "08000"
                | "08003"
                | "08006"
                | "5"
                | "6"
                | "261"
                | "517"
                | "262"
        )
    )
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A tenant's usage from its `COUNT(*)` and `SUM(size)` (never negative).
pub(crate) fn storage_usage(documents: i64, bytes: i64) -> docaiche_core::document::StorageUsage {
    docaiche_core::document::StorageUsage::new(
        u64::try_from(documents).unwrap_or(0),
        u64::try_from(bytes).unwrap_or(0),
    )
}

/// Unix microseconds of `t`.
pub(crate) fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000)).unwrap_or(i64::MAX)
}

/// Expiry rounded up to the microsecond: a revocation may last a fraction
/// of a microsecond longer, never shorter.
pub(crate) fn micros_ceil(t: OffsetDateTime) -> i64 {
    let floor = micros(t);
    if t.nanosecond().is_multiple_of(1_000) {
        floor
    } else {
        floor.saturating_add(1)
    }
}

/// `t` cut to the microsecond, as it will read back from a store.
pub(crate) fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    from_micros(micros(t)).unwrap_or(t)
}

pub(crate) fn from_micros(us: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .map_err(|e| Error::internal_with("stored timestamp out of range", e))
}

pub(crate) fn opt_time(us: Option<i64>) -> Result<Option<OffsetDateTime>> {
    us.map(from_micros).transpose()
}

/// `now + by`, saturating.
pub(crate) fn after(now: OffsetDateTime, by: Duration) -> OffsetDateTime {
    now.checked_add(time::Duration::try_from(by).unwrap_or(time::Duration::MAX))
        .unwrap_or(now)
}

pub(crate) fn utf8(bytes: Vec<u8>, what: &'static str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| Error::internal_with(what, e))
}

fn unsigned<T: TryFrom<i64>>(value: i64, what: &'static str) -> Result<T> {
    T::try_from(value).map_err(|_| Error::internal(what))
}

pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn tenant(value: String) -> Result<TenantId> {
    TenantId::new(value).map_err(|e| Error::internal_with("stored tenant id is invalid", e))
}

fn principal(value: String) -> Result<PrincipalId> {
    PrincipalId::new(value).map_err(|e| Error::internal_with("stored principal id is invalid", e))
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::internal_with("json encoding failed", e))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &'static str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::internal_with(what, e))
}

/// Parse a keyset cursor: the UUID of the last item of the previous page.
pub(crate) fn parse_cursor(after: Option<&str>) -> Result<Option<uuid::Uuid>> {
    after
        .map(|c| {
            uuid::Uuid::parse_str(c).map_err(|_| Error::invalid_input("malformed page cursor"))
        })
        .transpose()
}

/// The nil UUID sorts before every UUIDv7, so "after nil" is the first page.
pub(crate) fn cursor_or_start(after: Option<uuid::Uuid>) -> uuid::Uuid {
    after.unwrap_or(uuid::Uuid::nil())
}

/// `limit + 1`, the rows to fetch to learn whether another page follows.
pub(crate) fn fetch_limit(limit: u32) -> i64 {
    i64::from(limit) + 1
}

/// Cut one page from rows fetched with [`fetch_limit`].
pub(crate) fn page_of<T>(
    mut items: Vec<T>,
    limit: u32,
    id_of: impl Fn(&T) -> uuid::Uuid,
) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| id_of(last).to_string())
    } else {
        None
    };
    Page::new(items, next)
}

/// A document's metadata columns (never the content).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DocumentRow {
    pub(crate) id: uuid::Uuid,
    pub(crate) tenant_id: String,
    pub(crate) owner_id: String,
    pub(crate) filename: Option<Vec<u8>>,
    pub(crate) content_type: Vec<u8>,
    pub(crate) size: i64,
    pub(crate) sha256: Vec<u8>,
    pub(crate) has_text: bool,
    pub(crate) risks: String,
    pub(crate) created_at: i64,
}

/// Metadata columns, in the order of [`DocumentRow`].
pub(crate) const DOCUMENT_COLUMNS: &str = "id, tenant_id, owner_id, filename, content_type, \
     size, sha256, (text_pages IS NOT NULL) AS has_text, risks, created_at";

impl DocumentRow {
    pub(crate) fn into_meta(self) -> Result<DocumentMeta> {
        let mut meta = DocumentMeta::new(
            DocumentId::from_uuid(self.id),
            tenant(self.tenant_id)?,
            principal(self.owner_id)?,
            utf8(self.content_type, "stored content type is not utf-8")?,
            unsigned(self.size, "stored document size is negative")?,
            utf8(self.sha256, "stored sha256 is not utf-8")?,
            from_micros(self.created_at)?,
        );
        meta.filename = self
            .filename
            .map(|f| utf8(f, "stored filename is not utf-8"))
            .transpose()?;
        meta.has_text = self.has_text;
        meta.risks = risks_from_column(&self.risks)?;
        Ok(meta)
    }
}

/// The stored text and its stored risk flags (`text_pages`, `risks`).
pub(crate) fn text_from_columns(text: &str, risks: &str) -> Result<DocumentText> {
    let pages: Vec<String> = from_json(text, "stored document text is not json")?;
    Ok(DocumentText::new(pages).with_risks(risks_from_column(risks)?))
}

/// The `risks` column of `risks`: canonical names, comma-separated.
pub(crate) fn risks_column(risks: &[RiskFlag]) -> String {
    RiskFlag::canonical(risks.iter().copied())
        .iter()
        .map(|flag| flag.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The flags of a `risks` column, canonical.
///
/// # Errors
/// `Internal` for a name this build does not know (a corrupted row, or one
/// written by a newer version): never a flag made up or dropped.
pub(crate) fn risks_from_column(column: &str) -> Result<Vec<RiskFlag>> {
    if column.is_empty() {
        return Ok(Vec::new());
    }
    column
        .split(',')
        .map(|name| {
            RiskFlag::from_name(name).ok_or_else(|| Error::internal("stored risk flag is unknown"))
        })
        .collect::<Result<Vec<_>>>()
        .map(RiskFlag::canonical)
}

/// An API key record's columns.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    pub(crate) id: uuid::Uuid,
    pub(crate) tenant_id: String,
    pub(crate) principal_id: String,
    pub(crate) name: Vec<u8>,
    pub(crate) lookup: String,
    pub(crate) hash: Vec<u8>,
    pub(crate) hash_version: i64,
    pub(crate) scopes: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) last_used_at: Option<i64>,
    pub(crate) revoked_at: Option<i64>,
    pub(crate) replaced_by: Option<uuid::Uuid>,
}

pub(crate) const API_KEY_COLUMNS: &str = "id, tenant_id, principal_id, name, lookup, hash, \
     hash_version, scopes, created_at, expires_at, last_used_at, revoked_at, replaced_by";

/// How much of a record's stored scopes a read fetches, in characters:
/// room for [`MAX_SCOPES`](docaiche_core::MAX_SCOPES) names of at most
/// [`MAX_PERMISSION_LEN`](docaiche_core::MAX_PERMISSION_LEN) bytes each
/// with their quotes and commas. A record written before the bound (with
/// 200 000 scopes, say) then costs a read no more than a valid one.
pub(crate) const SCOPES_READ_CHARS: usize =
    docaiche_core::MAX_SCOPES * (docaiche_core::MAX_PERMISSION_LEN + 3) + 2;

/// [`API_KEY_COLUMNS`] for reads: the scopes cut to [`SCOPES_READ_CHARS`]
/// (`substr`, the same in SQLite and PostgreSQL).
pub(crate) static API_KEY_SELECT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "id, tenant_id, principal_id, name, lookup, hash, hash_version, \
         substr(scopes, 1, {SCOPES_READ_CHARS}) AS scopes, created_at, expires_at, \
         last_used_at, revoked_at, replaced_by"
    )
});

impl ApiKeyRow {
    pub(crate) fn into_record(self) -> Result<ApiKeyRecord> {
        let lookup = ApiKeyLookup::new(self.lookup)
            .map_err(|e| Error::internal_with("stored api key lookup is invalid", e))?;
        let mut record = ApiKeyRecord::new(
            ApiKeyId::from_uuid(self.id),
            tenant(self.tenant_id)?,
            principal(self.principal_id)?,
            lookup,
            from_micros(self.created_at)?,
        )
        .with_hash(
            unsigned(self.hash_version, "stored hash version out of range")?,
            self.hash,
        )
        .with_name(utf8(self.name, "stored api key name is not utf-8")?)
        .with_scopes(
            // At most MAX_SCOPES grants, from a column read cut to
            // SCOPES_READ_CHARS.
            PermissionSet::from_json_bounded(&self.scopes, docaiche_core::MAX_SCOPES)
                .map_err(|e| Error::internal_with("stored scopes are not json", e))?,
        );
        record.expires_at = opt_time(self.expires_at)?;
        record.last_used_at = opt_time(self.last_used_at)?;
        record.revoked_at = opt_time(self.revoked_at)?;
        record.replaced_by = self.replaced_by.map(ApiKeyId::from_uuid);
        Ok(record)
    }
}

/// A job's columns.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobRow {
    pub(crate) id: uuid::Uuid,
    pub(crate) tenant_id: String,
    pub(crate) kind: Vec<u8>,
    pub(crate) payload: String,
    pub(crate) state: String,
    pub(crate) attempts: i64,
    pub(crate) max_attempts: i64,
    pub(crate) progress: i64,
    pub(crate) result: Option<String>,
    pub(crate) last_error: Option<Vec<u8>>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) run_after: i64,
    pub(crate) lease_token: Option<uuid::Uuid>,
    pub(crate) lease_expires_at: Option<i64>,
}

pub(crate) const JOB_COLUMNS: &str = "id, tenant_id, kind, payload, state, attempts, \
     max_attempts, progress, result, last_error, created_at, updated_at, run_after, \
     lease_token, lease_expires_at";

pub(crate) fn job_state(state: &str) -> Result<JobState> {
    JobState::from_name(state).ok_or_else(|| Error::internal("stored job state is unknown"))
}

impl JobRow {
    pub(crate) fn into_record(self) -> Result<JobRecord> {
        let mut job = JobRecord::new(
            JobId::from_uuid(self.id),
            tenant(self.tenant_id)?,
            utf8(self.kind, "stored job kind is not utf-8")?,
            from_json(&self.payload, "stored job payload is not json")?,
            unsigned(self.max_attempts, "stored max_attempts out of range")?,
            from_micros(self.created_at)?,
        );
        job.state = job_state(&self.state)?;
        job.attempts = unsigned(self.attempts, "stored attempts out of range")?;
        job.progress = unsigned(self.progress, "stored progress out of range")?;
        job.result = self
            .result
            .map(|r| from_json(&r, "stored job result is not json"))
            .transpose()?;
        job.last_error = self
            .last_error
            .map(|e| utf8(e, "stored job error is not utf-8"))
            .transpose()?;
        job.updated_at = from_micros(self.updated_at)?;
        job.run_after = from_micros(self.run_after)?;
        Ok(job)
    }

    /// The row of a job just claimed, as a lease.
    pub(crate) fn into_lease(self) -> Result<JobLease> {
        let token = self
            .lease_token
            .ok_or_else(|| Error::internal("claimed job has no lease token"))?;
        let expires_at = from_micros(
            self.lease_expires_at
                .ok_or_else(|| Error::internal("claimed job has no lease expiry"))?,
        )?;
        Ok(JobLease::new(self.into_record()?, token, expires_at))
    }
}

/// What a lease-taking statement learned about the job's row.
pub(crate) const LEASE_LOST: &str = "lease expired";

/// An audit event's stored form.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub(crate) seq: i64,
    pub(crate) event: String,
}

impl AuditRow {
    pub(crate) fn into_event(self) -> Result<(u64, AuditEvent)> {
        Ok((
            unsigned(self.seq, "stored audit sequence is negative")?,
            from_json(&self.event, "stored audit event is not json")?,
        ))
    }
}

/// The outcome column of an audit event (its serde name).
pub(crate) fn audit_outcome(event: &AuditEvent) -> Result<String> {
    match serde_json::to_value(event.outcome) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(Error::internal(
            "audit outcome does not serialize as a string",
        )),
    }
}

/// A page of audit events after sequence `after` (cursor: the sequence).
pub(crate) fn audit_cursor(after: Option<&str>) -> Result<i64> {
    after.map_or(Ok(0), |c| {
        c.parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| Error::invalid_input("malformed page cursor"))
    })
}

pub(crate) fn audit_page(rows: Vec<AuditRow>, limit: u32) -> Result<Page<AuditEvent>> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut last = None;
    for row in rows.into_iter().take(limit) {
        let (seq, event) = row.into_event()?;
        last = Some(seq);
        items.push(event);
    }
    Ok(Page::new(
        items,
        if more {
            last.map(|s| s.to_string())
        } else {
            None
        },
    ))
}

/// A named health detail without secrets.
pub(crate) fn pool_detail(stats: &PoolStats) -> String {
    format!(
        "pool size={} idle={} waiting={} max={}",
        stats.size, stats.idle, stats.waiting, stats.max_connections
    )
}

impl fmt::Display for PoolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}..={} connections, acquire timeout {} ms",
            self.min_connections, self.max_connections, self.acquire_timeout_ms
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use docaiche_core::ErrorCode;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn timestamps_truncate_down_and_expiries_round_up() {
        let t = datetime!(2026-11-23 12:00:00.123_456_789 UTC);
        assert_eq!(truncate(t), datetime!(2026-11-23 12:00:00.123_456 UTC));
        assert_eq!(micros_ceil(t), micros(t) + 1);
        let exact = datetime!(2026-11-23 12:00:00.5 UTC);
        assert_eq!(micros_ceil(exact), micros(exact));
        // Before 1970 the floor still goes down, not toward zero.
        let old = datetime!(1969-12-31 23:59:59.999_999_5 UTC);
        assert_eq!(micros(old), -1);
        assert_eq!(from_micros(micros(exact)).unwrap(), exact);
        assert_eq!(
            from_micros(i64::MAX).map(|_| ()).unwrap_err().code(),
            ErrorCode::Internal
        );
    }

    #[test]
    fn risk_flags_are_stored_by_name_and_unknown_names_are_internal_errors() {
        assert_eq!(risks_column(&[]), "");
        assert_eq!(risks_from_column("").unwrap(), []);
        let flags = [RiskFlag::Xfa, RiskFlag::JavaScript, RiskFlag::Xfa];
        assert_eq!(risks_column(&flags), "java_script,xfa");
        assert_eq!(
            risks_from_column("xfa,java_script").unwrap(),
            [RiskFlag::JavaScript, RiskFlag::Xfa]
        );
        for flag in RiskFlag::ALL {
            assert_eq!(risks_from_column(&risks_column(&[flag])).unwrap(), [flag]);
        }
        for bad in [
            "teleport",
            "java_script,",
            ",",
            "JavaScript",
            "java_script, uri",
        ] {
            assert_eq!(
                risks_from_column(bad).unwrap_err().code(),
                ErrorCode::Internal,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cursors_are_validated() {
        assert_eq!(parse_cursor(None).unwrap(), None);
        assert_eq!(
            parse_cursor(Some("' OR 1=1 --")).unwrap_err().code(),
            ErrorCode::InvalidInput
        );
        assert_eq!(audit_cursor(Some("41")).unwrap(), 41);
        for bad in ["-1", "1e3", "", "9999999999999999999999"] {
            assert_eq!(
                audit_cursor(Some(bad)).unwrap_err().code(),
                ErrorCode::InvalidInput,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_more_rows_came_back() {
        let ids: Vec<uuid::Uuid> = (0..4).map(|_| uuid::Uuid::now_v7()).collect();
        let page = page_of(ids.clone(), 3, |id| *id);
        assert_eq!(page.items, ids[..3]);
        assert_eq!(page.next, Some(ids[2].to_string()));
        let last = page_of(ids[..3].to_vec(), 3, |id| *id);
        assert_eq!(last.next, None);
    }

    #[test]
    fn outages_are_unavailable_and_the_rest_internal() {
        assert_eq!(
            db_error("db", sqlx::Error::PoolTimedOut).code(),
            ErrorCode::Unavailable
        );
        assert_eq!(
            db_error("db", sqlx::Error::RowNotFound).code(),
            ErrorCode::Internal
        );
        assert!(is_transient(Some("40P01")) && is_transient(Some("5")));
        assert!(!is_transient(Some("23505")) && !is_transient(None));
    }

    #[test]
    fn pool_settings_are_checked() {
        let ok = PoolConfig::default();
        assert!(ok.validate("pool").is_ok());
        let mut bad = ok.clone();
        bad.min_connections = 20;
        assert_eq!(
            bad.validate("pool").unwrap_err().code(),
            ErrorCode::Misconfigured
        );
        let zero = PoolConfig::default().with_acquire_timeout(Duration::ZERO);
        assert!(zero.validate("pool").is_err());
    }
}
