//! Durable privacy requests and legal holds in PostgreSQL
//! ([`PgComplianceStore`], feature `postgres`) or SQLite
//! ([`SqliteComplianceStore`], feature `sqlite`), over sqlx pools.
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> docaiche_core::Result<()> {
//! use std::sync::Arc;
//! use docaiche_compliance::privacy::sql::SqliteComplianceStore;
//! use docaiche_compliance::privacy::{
//!     PrivacyRequest, PrivacyRequestStore, Regulation, RequestKind,
//! };
//! use docaiche_compliance::retention::{LegalHold, LegalHoldRegistry};
//! use docaiche_core::{PrincipalId, TenantId};
//! use sqlx::sqlite::SqlitePoolOptions;
//!
//! // Your application's pool (a file in production; here, in memory).
//! let pool = SqlitePoolOptions::new()
//!     .max_connections(1)
//!     .connect("sqlite::memory:")
//!     .await
//!     .map_err(|e| docaiche_core::Error::unavailable("sqlite", e))?;
//! let store = Arc::new(SqliteComplianceStore::new(pool).await?); // creates its tables
//!
//! let acme = TenantId::new("acme")?;
//! let now = time::OffsetDateTime::now_utc();
//! let request = PrivacyRequest::new(acme.clone(), PrincipalId::new("alice")?,
//!     RequestKind::Erase, Regulation::Gdpr, PrincipalId::new("dpo")?, now);
//! store.insert(&request).await?;
//! assert_eq!(store.get(&acme, &request.id).await?, Some(request.clone()));
//! assert_eq!(store.get(&TenantId::new("globex")?, &request.id).await?, None);
//!
//! let hold = LegalHold::new(acme.clone(), "case 2026-17", PrincipalId::new("counsel")?, now)
//!     .on_subject(PrincipalId::new("alice")?);
//! store.place(hold.clone()).await?;
//! assert!(store.is_held(&acme, "documents", Some(&request.subject)).await?);
//! assert!(store.release(&acme, &hold.id, now).await?);
//! assert!(store.active(&acme).await?.is_empty());
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```
//!
//! Both stores implement [`PrivacyRequestStore`] and
//! [`LegalHoldRegistry`] to their contracts, and:
//!
//! - create their two tables on [`new`](SqliteComplianceStore::new) when
//!   missing (`CREATE TABLE IF NOT EXISTS`; on PostgreSQL under an advisory
//!   lock, so several instances may start at once), in the schema the
//!   pool's `search_path` selects; [`PG_MIGRATION`] and
//!   [`SQLITE_MIGRATION`] are the statements, for operators who migrate
//!   out of band;
//! - scope every statement by tenant: a request or hold of another tenant
//!   is not found, not updated, not deleted and not released. Ids are
//!   unique across tenants (a duplicate is `Conflict` whatever its
//!   tenant);
//! - bind every value (no SQL is built from input);
//! - bound each tenant to [`DEFAULT_MAX_REQUESTS`] requests and
//!   [`DEFAULT_MAX_HOLDS`] holds (settable), so a listing is bounded: an
//!   insert past the bound is `Unavailable`;
//! - answer `Unavailable` when the database cannot be reached.
//!
//! A row keeps the record as JSON (the exact value, times with their
//! offsets) beside the columns queries filter on; a hold's `released_at`
//! column is authoritative, so a release is one conditional `UPDATE`
//! that keeps the first release time.

use std::fmt;

use async_trait::async_trait;
use docaiche_core::{Error, PrincipalId, Result, TenantId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::request::{PrivacyRequest, PrivacyRequestStore};
use crate::retention::{LegalHold, LegalHoldRegistry};

/// Default bound on the privacy requests of one tenant.
pub const DEFAULT_MAX_REQUESTS: usize = 100_000;

/// Default bound on the legal holds of one tenant.
pub const DEFAULT_MAX_HOLDS: usize = 10_000;

/// The PostgreSQL schema of [`PgComplianceStore`] (idempotent; run by
/// [`PgComplianceStore::new`]).
pub const PG_MIGRATION: &str = r"
SELECT pg_advisory_xact_lock(8031965420318);
CREATE TABLE IF NOT EXISTS compliance_privacy_requests (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS compliance_privacy_requests_tenant
    ON compliance_privacy_requests (tenant, seq);
CREATE TABLE IF NOT EXISTS compliance_legal_holds (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    subject TEXT,
    resource_kind TEXT,
    released_at TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS compliance_legal_holds_tenant
    ON compliance_legal_holds (tenant, seq);
";

/// The SQLite schema of [`SqliteComplianceStore`] (idempotent; run by
/// [`SqliteComplianceStore::new`]).
pub const SQLITE_MIGRATION: &str = r"
CREATE TABLE IF NOT EXISTS compliance_privacy_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS compliance_privacy_requests_tenant
    ON compliance_privacy_requests (tenant, seq);
CREATE TABLE IF NOT EXISTS compliance_legal_holds (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    subject TEXT,
    resource_kind TEXT,
    released_at TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS compliance_legal_holds_tenant
    ON compliance_legal_holds (tenant, seq);
";

// One set of statements for both databases: sqlx's SQLite driver reads
// `$N` as the N-th argument, as PostgreSQL does.
const INSERT_REQUEST: &str = "INSERT INTO compliance_privacy_requests \
     (id, tenant, subject, kind, status, body) \
     SELECT $1, $2, $3, $4, $5, $6 \
     WHERE (SELECT COUNT(*) FROM compliance_privacy_requests WHERE tenant = $2) < $7";
const GET_REQUEST: &str =
    "SELECT body FROM compliance_privacy_requests WHERE tenant = $1 AND id = $2";
const UPDATE_REQUEST: &str = "UPDATE compliance_privacy_requests \
     SET subject = $3, kind = $4, status = $5, body = $6 WHERE tenant = $1 AND id = $2";
const DELETE_REQUEST: &str =
    "DELETE FROM compliance_privacy_requests WHERE tenant = $1 AND id = $2";
const LIST_REQUESTS: &str =
    "SELECT body FROM compliance_privacy_requests WHERE tenant = $1 ORDER BY seq LIMIT $2";
const PLACE_HOLD: &str = "INSERT INTO compliance_legal_holds \
     (id, tenant, subject, resource_kind, released_at, body) \
     SELECT $1, $2, $3, $4, $5, $6 \
     WHERE (SELECT COUNT(*) FROM compliance_legal_holds WHERE tenant = $2) < $7";
const RELEASE_HOLD: &str = "UPDATE compliance_legal_holds \
     SET released_at = COALESCE(released_at, $3) WHERE tenant = $1 AND id = $2";
const ALL_HOLDS: &str = "SELECT body, released_at FROM compliance_legal_holds \
     WHERE tenant = $1 ORDER BY seq LIMIT $2";
const ACTIVE_HOLDS: &str = "SELECT body, released_at FROM compliance_legal_holds \
     WHERE tenant = $1 AND released_at IS NULL ORDER BY seq LIMIT $2";

/// A bound reached (the tenant's requests or holds).
#[derive(Debug)]
struct Full(&'static str);

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the tenant holds the maximum number of {}", self.0)
    }
}

impl std::error::Error for Full {}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn limit(max: usize) -> i64 {
    i64::try_from(max).unwrap_or(i64::MAX)
}

fn request_json(request: &PrivacyRequest) -> Result<String> {
    serde_json::to_string(request)
        .map_err(|e| Error::internal_with("privacy request does not serialise", e))
}

fn request_of(tenant: &TenantId, body: &str) -> Result<PrivacyRequest> {
    // No source: serde's message may quote the stored (personal) value.
    let request: PrivacyRequest = serde_json::from_str(body)
        .map_err(|_| Error::internal("a stored privacy request is unreadable"))?;
    if &request.tenant != tenant {
        return Err(Error::internal(
            "a stored privacy request names another tenant",
        ));
    }
    Ok(request)
}

fn hold_json(hold: &LegalHold) -> Result<String> {
    serde_json::to_string(hold)
        .map_err(|e| Error::internal_with("legal hold does not serialise", e))
}

fn time_text(at: OffsetDateTime) -> Result<String> {
    at.format(&Rfc3339)
        .map_err(|e| Error::invalid_input(format!("time is not representable in RFC 3339: {e}")))
}

fn hold_of(tenant: &TenantId, body: &str, released_at: Option<&str>) -> Result<LegalHold> {
    let mut hold: LegalHold = serde_json::from_str(body)
        .map_err(|_| Error::internal("a stored legal hold is unreadable"))?;
    if &hold.tenant != tenant {
        return Err(Error::internal("a stored legal hold names another tenant"));
    }
    // The column is authoritative: a release only ever writes it.
    hold.released_at = released_at
        .map(|text| OffsetDateTime::parse(text, &Rfc3339))
        .transpose()
        .map_err(|_| Error::internal("a stored legal hold release time is unreadable"))?;
    Ok(hold)
}

/// At most `max` rows were expected; a listing past the bound (inserts
/// racing the bound check) is refused rather than truncated.
fn bounded<T>(rows: Vec<T>, max: usize, what: &'static str) -> Result<Vec<T>> {
    if rows.len() > max {
        return Err(Error::internal(format!(
            "a tenant holds more {what} than the configured bound"
        )));
    }
    Ok(rows)
}

fn subject_text(subject: Option<&PrincipalId>) -> Option<String> {
    subject.map(|s| s.as_str().to_owned())
}

/// The stores over one pool type: the SQL is shared, the migration is the
/// database's own.
macro_rules! compliance_store {
    (
        $(#[$doc:meta])*
        $name:ident, $pool:ty, $migration:expr, $dependency:literal, $feature:literal
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
        pub struct $name {
            pool: $pool,
            max_requests: usize,
            max_holds: usize,
        }

        impl $name {
            /// A store over `pool`, after creating its tables if they are
            /// missing (idempotent).
            ///
            /// # Errors
            /// `Unavailable` if the database cannot be reached or migrated.
            pub async fn new(pool: $pool) -> Result<Self> {
                sqlx::raw_sql($migration)
                    .execute(&pool)
                    .await
                    .map_err(Self::db)?;
                Ok(Self {
                    pool,
                    max_requests: DEFAULT_MAX_REQUESTS,
                    max_holds: DEFAULT_MAX_HOLDS,
                })
            }

            /// Set the bound on the privacy requests of one tenant (at
            /// least 1; default [`DEFAULT_MAX_REQUESTS`]).
            #[must_use]
            pub fn with_max_requests(mut self, max: usize) -> Self {
                self.max_requests = max.max(1);
                self
            }

            /// Set the bound on the legal holds of one tenant (at least 1;
            /// default [`DEFAULT_MAX_HOLDS`]).
            #[must_use]
            pub fn with_max_holds(mut self, max: usize) -> Self {
                self.max_holds = max.max(1);
                self
            }

            /// The pool.
            #[must_use]
            pub const fn pool(&self) -> &$pool {
                &self.pool
            }

            fn db(error: sqlx::Error) -> Error {
                Error::unavailable($dependency, error)
            }
        }

        #[async_trait]
        impl PrivacyRequestStore for $name {
            async fn insert(&self, request: &PrivacyRequest) -> Result<()> {
                let body = request_json(request)?;
                let inserted = sqlx::query(INSERT_REQUEST)
                    .bind(request.id.to_string())
                    .bind(request.tenant.as_str())
                    .bind(request.subject.as_str())
                    .bind(request.kind.as_str())
                    .bind(request.status.as_str())
                    .bind(body)
                    .bind(limit(self.max_requests))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| {
                        if is_unique_violation(&e) {
                            Error::conflict("privacy request id exists")
                        } else {
                            Self::db(e)
                        }
                    })?;
                if inserted.rows_affected() == 0 {
                    return Err(Error::unavailable($dependency, Full("privacy requests")));
                }
                Ok(())
            }

            async fn get(&self, tenant: &TenantId, id: &Uuid) -> Result<Option<PrivacyRequest>> {
                let body: Option<(String,)> = sqlx::query_as(GET_REQUEST)
                    .bind(tenant.as_str())
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(Self::db)?;
                body.map(|(body,)| request_of(tenant, &body)).transpose()
            }

            async fn update(&self, request: &PrivacyRequest) -> Result<bool> {
                let body = request_json(request)?;
                let updated = sqlx::query(UPDATE_REQUEST)
                    .bind(request.tenant.as_str())
                    .bind(request.id.to_string())
                    .bind(request.subject.as_str())
                    .bind(request.kind.as_str())
                    .bind(request.status.as_str())
                    .bind(body)
                    .execute(&self.pool)
                    .await
                    .map_err(Self::db)?;
                Ok(updated.rows_affected() > 0)
            }

            async fn list(&self, tenant: &TenantId) -> Result<Vec<PrivacyRequest>> {
                let rows: Vec<(String,)> = sqlx::query_as(LIST_REQUESTS)
                    .bind(tenant.as_str())
                    .bind(limit(self.max_requests.saturating_add(1)))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(Self::db)?;
                bounded(rows, self.max_requests, "privacy requests")?
                    .iter()
                    .map(|(body,)| request_of(tenant, body))
                    .collect()
            }

            async fn delete(&self, tenant: &TenantId, id: &Uuid) -> Result<bool> {
                let deleted = sqlx::query(DELETE_REQUEST)
                    .bind(tenant.as_str())
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err(Self::db)?;
                Ok(deleted.rows_affected() > 0)
            }
        }

        #[async_trait]
        impl LegalHoldRegistry for $name {
            async fn place(&self, hold: LegalHold) -> Result<()> {
                let body = hold_json(&hold)?;
                let released_at = hold.released_at.map(time_text).transpose()?;
                let inserted = sqlx::query(PLACE_HOLD)
                    .bind(hold.id.to_string())
                    .bind(hold.tenant.as_str())
                    .bind(subject_text(hold.subject.as_ref()))
                    .bind(hold.resource_kind.as_deref())
                    .bind(released_at)
                    .bind(body)
                    .bind(limit(self.max_holds))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| {
                        if is_unique_violation(&e) {
                            Error::conflict("legal hold id exists")
                        } else {
                            Self::db(e)
                        }
                    })?;
                if inserted.rows_affected() == 0 {
                    return Err(Error::unavailable($dependency, Full("legal holds")));
                }
                Ok(())
            }

            async fn release(
                &self,
                tenant: &TenantId,
                id: &Uuid,
                at: OffsetDateTime,
            ) -> Result<bool> {
                let released = sqlx::query(RELEASE_HOLD)
                    .bind(tenant.as_str())
                    .bind(id.to_string())
                    .bind(time_text(at)?)
                    .execute(&self.pool)
                    .await
                    .map_err(Self::db)?;
                Ok(released.rows_affected() > 0)
            }

            async fn all(&self, tenant: &TenantId) -> Result<Vec<LegalHold>> {
                self.holds(ALL_HOLDS, tenant).await
            }

            async fn active(&self, tenant: &TenantId) -> Result<Vec<LegalHold>> {
                self.holds(ACTIVE_HOLDS, tenant).await
            }
        }

        impl $name {
            async fn holds(&self, query: &'static str, tenant: &TenantId) -> Result<Vec<LegalHold>> {
                let rows: Vec<(String, Option<String>)> = sqlx::query_as(query)
                    .bind(tenant.as_str())
                    .bind(limit(self.max_holds.saturating_add(1)))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(Self::db)?;
                bounded(rows, self.max_holds, "legal holds")?
                    .iter()
                    .map(|(body, released_at)| hold_of(tenant, body, released_at.as_deref()))
                    .collect()
            }
        }
    };
}

#[cfg(feature = "postgres")]
compliance_store!(
    /// Privacy requests and legal holds in PostgreSQL (tables
    /// `compliance_privacy_requests` and `compliance_legal_holds` in the
    /// schema the pool's `search_path` selects). See the [module](self).
    PgComplianceStore,
    sqlx::PgPool,
    PG_MIGRATION,
    "compliance store (postgres)",
    "postgres"
);

#[cfg(feature = "sqlite")]
compliance_store!(
    /// Privacy requests and legal holds in SQLite (tables
    /// `compliance_privacy_requests` and `compliance_legal_holds`). See the
    /// [module](self).
    SqliteComplianceStore,
    sqlx::SqlitePool,
    SQLITE_MIGRATION,
    "compliance store (sqlite)",
    "sqlite"
);
