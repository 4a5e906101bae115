//! Embedded SQLite adapters: every store trait in one database file, with
//! SQLite compiled into the binary (nothing to install).
//!
//! [`SqliteStore::connect`] opens (or creates) the database, applies the
//! embedded migrations and hands out one adapter per trait:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use bytes::Bytes;
//! use docaiche_core::{DocumentStore, PrincipalId, TenantId};
//! use docaiche_core::document::NewDocument;
//! use docaiche_store::sqlite::{SqliteConfig, SqliteStore};
//!
//! let store = SqliteStore::connect(&SqliteConfig::in_memory()).await?;
//! let documents = store.documents();
//! let tenant = TenantId::new("acme")?;
//! let doc = NewDocument::new(PrincipalId::new("alice")?, "application/pdf", "ab12", Bytes::from_static(b"%PDF"));
//! let meta = documents.put(&tenant, doc).await?;
//! assert!(documents.get(&tenant, &meta.id).await?.is_some());
//! assert!(documents.get(&TenantId::new("other")?, &meta.id).await?.is_none());
//! # Ok::<(), docaiche_core::Error>(()) }).unwrap();
//! ```
//!
//! Design notes:
//!
//! - The database runs in WAL mode with `synchronous = FULL`, so an `Ok`
//!   from a write (an audit event, a revocation) has reached the disk. The
//!   cost is one fsync per committed write.
//! - Writes are single statements (autocommit), except `record_usage`, whose
//!   transaction opens with `BEGIN IMMEDIATE`. SQLite then waits for the
//!   write lock (`busy_timeout`) instead of failing a read transaction that
//!   tries to upgrade, so several connections (and processes) share one
//!   file safely.
//! - `claim` is one `UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING`:
//!   SQLite runs it under its single writer lock, so a job goes to exactly
//!   one caller. SQLite has no `SKIP LOCKED`; claimers of one file queue on
//!   that lock, which is what an embedded queue can offer.
//! - An in-memory database lives in its one connection, so
//!   [`SqliteConfig::in_memory`] pins the pool to a single connection that
//!   never idles out.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use docaiche_core::health::{ComponentHealth, HealthCheck, HealthStatus};
use docaiche_core::resilience::CircuitBreaker;
use docaiche_core::{Clock, Error, Result, SystemClock};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use crate::sql::{MeteredPool, PoolConfig, PoolStats, db_error, pool_detail};

/// One adapter struct over the shared pool.
macro_rules! adapter {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            shared: Arc<Shared>,
        }

        impl $name {
            pub(crate) const fn new(shared: Arc<Shared>) -> Self {
                Self { shared }
            }
        }
    };
}

mod accounts;
mod custom_roles;
#[doc(hidden)]
mod data_keys;
mod jobs;
mod mfa;
pub mod queries;
mod stores;
mod tenants;
mod usage;
mod web_sessions;

pub use accounts::SqliteAccountStore;
pub use custom_roles::SqliteCustomRoleStore;
pub use data_keys::SqliteDataKeyStore;
pub use jobs::SqliteJobQueue;
pub use mfa::SqliteMfaStore;
pub use tenants::SqliteTenantStore;
pub use usage::SqliteUsageStore;
pub use web_sessions::SqliteWebSessionStore;

pub use stores::{SqliteApiKeyStore, SqliteAuditSink, SqliteDocumentStore, SqliteRevocationStore};

const DEPENDENCY: &str = "sqlite";

/// The embedded migrations (`migrations/sqlite`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Apply the embedded migrations to `pool` (idempotent: applied ones are
/// skipped). [`SqliteStore::connect`] calls this; call it yourself to
/// migrate ahead of a deployment with [`SqliteStore::connect_without_migrating`].
///
/// # Errors
/// `Unavailable` if the database cannot be reached; `Internal` if a migration
/// fails or the database holds migrations this build does not know.
pub async fn migrate(pool: &SqlitePool) -> Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| Error::internal_with("sqlite migration failed", e))
}

/// Where the database is and how to pool connections to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// Path of the database file, or `:memory:`.
    pub path: String,
    /// Create the file if it does not exist.
    pub create_if_missing: bool,
    /// How long a statement waits for another connection's write lock.
    pub busy_timeout_ms: u64,
    /// Pool settings (ignored for `:memory:`, which uses one connection).
    pub pool: PoolConfig,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            path: "docaiche.db".to_owned(),
            create_if_missing: true,
            busy_timeout_ms: 5_000,
            pool: PoolConfig::default().with_max_connections(4),
        }
    }
}

impl SqliteConfig {
    /// A database file at `path`, created if missing.
    pub fn file(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }

    /// A private in-memory database (lost when the store is dropped).
    #[must_use]
    pub fn in_memory() -> Self {
        Self::file(":memory:")
    }

    fn is_memory(&self) -> bool {
        self.path == ":memory:"
    }
}

/// The shared state behind every adapter of one [`SqliteStore`].
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) pool: MeteredPool<Sqlite>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Shared {
    pub(crate) async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Sqlite>> {
        self.pool.acquire(DEPENDENCY).await
    }
}

pub(crate) fn err(e: sqlx::Error) -> Error {
    db_error(DEPENDENCY, e)
}

/// A connected, migrated SQLite database: hands out the adapters, reports
/// its pool and health.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

impl SqliteStore {
    /// Open the database and apply the migrations.
    ///
    /// # Errors
    /// `Misconfigured` for invalid pool settings; `Unavailable` if the file
    /// cannot be opened; `Internal` if a migration fails.
    pub async fn connect(config: &SqliteConfig) -> Result<Self> {
        let store = Self::connect_without_migrating(config).await?;
        migrate(&store.shared.pool.pool).await?;
        Ok(store)
    }

    /// Open the database without touching its schema (run [`migrate`]
    /// separately).
    ///
    /// # Errors
    /// As [`SqliteStore::connect`], without the migration.
    pub async fn connect_without_migrating(config: &SqliteConfig) -> Result<Self> {
        config.pool.validate("sqlite.pool")?;
        let options = if config.is_memory() {
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(err)?
        } else {
            SqliteConnectOptions::new()
                .filename(&config.path)
                .create_if_missing(config.create_if_missing)
                .journal_mode(SqliteJournalMode::Wal)
        }
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_millis(config.busy_timeout_ms));
        let pool_options = if config.is_memory() {
            SqlitePoolOptions::new()
                .min_connections(1)
                .max_connections(1)
                .acquire_timeout(Duration::from_millis(config.pool.acquire_timeout_ms))
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            config.pool.apply(SqlitePoolOptions::new())
        };
        let pool = pool_options.connect_with(options).await.map_err(err)?;
        Ok(Self::from_pool(pool))
    }

    /// Adapters over an existing pool (already migrated).
    #[must_use]
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self {
            shared: Arc::new(Shared {
                pool: MeteredPool::new(pool),
                clock: Arc::new(SystemClock::new()),
            }),
        }
    }

    /// Read time from `clock` (a `ManualClock` in tests). Affects adapters
    /// handed out afterwards.
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self {
            shared: Arc::new(Shared {
                pool: self.shared.pool.clone(),
                clock,
            }),
        }
    }

    /// Guard connection acquisition with `breaker` (see the module docs of
    /// [`sql`](crate::sql)): while it is open, calls fail at once with
    /// `CircuitOpen`. Affects adapters handed out afterwards.
    #[must_use]
    pub fn with_circuit_breaker(self, breaker: CircuitBreaker) -> Self {
        let mut pool = self.shared.pool.clone();
        pool.breaker = Some(breaker);
        Self {
            shared: Arc::new(Shared {
                pool,
                clock: self.shared.clock.clone(),
            }),
        }
    }

    /// Apply the embedded migrations (see [`migrate`]).
    ///
    /// # Errors
    /// As [`migrate`].
    pub async fn migrate(&self) -> Result<()> {
        migrate(&self.shared.pool.pool).await
    }

    /// The underlying pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.shared.pool.pool
    }

    /// Live pool figures.
    #[must_use]
    pub fn pool_stats(&self) -> PoolStats {
        self.shared.pool.stats()
    }

    /// The [`DocumentStore`](docaiche_core::DocumentStore).
    #[must_use]
    pub fn documents(&self) -> SqliteDocumentStore {
        SqliteDocumentStore::new(self.shared.clone())
    }

    /// The [`AccountStore`](docaiche_core::AccountStore).
    #[must_use]
    pub fn accounts(&self) -> SqliteAccountStore {
        SqliteAccountStore::new(self.shared.clone())
    }

    /// The [`CustomRoleStore`](docaiche_core::CustomRoleStore).
    #[must_use]
    pub fn custom_roles(&self) -> SqliteCustomRoleStore {
        SqliteCustomRoleStore::new(self.shared.clone())
    }

    /// The [`MfaStore`](docaiche_core::MfaStore) (tables
    /// `mfa_enrolments` and `mfa_recovery_codes`).
    #[must_use]
    pub fn mfa(&self) -> SqliteMfaStore {
        SqliteMfaStore::new(self.shared.clone())
    }

    /// The [`WebSessionStore`](docaiche_core::WebSessionStore) (table
    /// `web_sessions`): browser sessions every instance on this database
    /// shares.
    #[must_use]
    pub fn web_sessions(&self) -> SqliteWebSessionStore {
        SqliteWebSessionStore::new(self.shared.clone())
    }

    /// The [`TenantStore`](docaiche_core::TenantStore) (table `tenants`).
    #[must_use]
    pub fn tenants(&self) -> SqliteTenantStore {
        SqliteTenantStore::new(self.shared.clone())
    }

    /// The [`ApiKeyStore`](docaiche_core::ApiKeyStore).
    #[must_use]
    pub fn api_keys(&self) -> SqliteApiKeyStore {
        SqliteApiKeyStore::new(self.shared.clone())
    }

    /// The [`TokenRevocationStore`](docaiche_core::TokenRevocationStore).
    #[must_use]
    pub fn revocations(&self) -> SqliteRevocationStore {
        SqliteRevocationStore::new(self.shared.clone())
    }

    /// The [`JobQueue`](docaiche_core::JobQueue).
    #[must_use]
    pub fn jobs(&self) -> SqliteJobQueue {
        SqliteJobQueue::new(self.shared.clone())
    }

    /// The [`AuditSink`](docaiche_core::AuditSink).
    #[must_use]
    pub fn audit(&self) -> SqliteAuditSink {
        SqliteAuditSink::new(self.shared.clone())
    }

    /// The [`DataKeyStore`](crate::encryption::DataKeyStore) of encryption
    /// at rest: wrapped per-subject data keys beside the documents.
    #[must_use]
    pub fn data_keys(&self) -> SqliteDataKeyStore {
        SqliteDataKeyStore::new(self.shared.clone())
    }

    /// The [`UsageStore`](docaiche_core::UsageStore) (tables `usage_*`).
    #[must_use]
    pub fn usage(&self) -> SqliteUsageStore {
        SqliteUsageStore::new(self.shared.clone())
    }

    /// A [`HealthCheck`] named `sqlite`.
    #[must_use]
    pub fn health_check(&self) -> SqliteHealthCheck {
        SqliteHealthCheck {
            shared: self.shared.clone(),
        }
    }
}

/// Health of a [`SqliteStore`]: down when `SELECT 1` fails, degraded when
/// every connection is busy and callers are waiting.
#[derive(Debug, Clone)]
pub struct SqliteHealthCheck {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl HealthCheck for SqliteHealthCheck {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(DEPENDENCY)
    }

    async fn check(&self) -> ComponentHealth {
        let started = Instant::now();
        let stats = self.shared.pool.stats();
        let status = if stats.is_saturated() {
            // Busy, not broken: probing would only queue behind the waiters.
            HealthStatus::Degraded
        } else {
            let probe = async {
                let mut conn = self.shared.conn().await?;
                sqlx::query("SELECT 1")
                    .execute(&mut *conn)
                    .await
                    .map_err(err)
            };
            if probe.await.is_ok() {
                HealthStatus::Up
            } else {
                HealthStatus::Down
            }
        };
        ComponentHealth::new(DEPENDENCY, status, started.elapsed()).with_detail(pool_detail(&stats))
    }
}
