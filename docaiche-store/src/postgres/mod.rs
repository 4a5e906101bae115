//! PostgreSQL adapters: every store trait over one pooled database, a job
//! queue that several server instances share (`FOR UPDATE SKIP LOCKED`),
//! optional row-level security as a second wall between tenants, and an
//! optional read replica.
//!
//! ```no_run
//! # async fn run() -> docaiche_core::Result<()> {
//! use std::time::Duration;
//! use docaiche_core::{JobQueue, TenantId};
//! use docaiche_core::job::NewJob;
//! use docaiche_store::postgres::{PgConfig, PgStore};
//!
//! let mut config = PgConfig::new("postgres://docaiche@db.internal/docaiche");
//! config.row_level_security = true;
//! let store = PgStore::connect(&config).await?; // migrates, then serves
//! let jobs = store.jobs();
//! jobs.enqueue(&TenantId::new("acme")?, NewJob::new("extract", serde_json::json!({}))).await?;
//! if let Some(lease) = jobs.claim(&["extract"], Duration::from_secs(30)).await? {
//!     jobs.complete(&lease, serde_json::json!({ "pages": 3 })).await?;
//! }
//! println!("{:?}", store.pool_stats());
//! # Ok(()) }
//! ```
//!
//! Design notes:
//!
//! - **NUL-safe strings.** PostgreSQL `text` cannot hold NUL, yet the store
//!   contracts require every string to round-trip. Caller-chosen strings
//!   (filenames, media types, job kinds, key names, error messages, audit
//!   actions) are therefore stored as `bytea` holding their UTF-8, and JSON
//!   as `text` holding serde_json output (which escapes NUL). Ids chosen by
//!   the server or validated by `docaiche-core` (tenant, principal, lookup,
//!   token ids) stay `text`.
//! - **Time comes from the injected [`Clock`]**, not from the server's
//!   `now()`, so leases and retry delays follow the same clock as the rest
//!   of the process (and tests run on a `ManualClock`). The cost: instances
//!   sharing a queue must keep their clocks in sync (NTP); a skew of a few
//!   milliseconds is harmless against leases of seconds.
//! - **Row-level security** ([`PgConfig::row_level_security`]): the
//!   migrations create one policy per table keyed on the transaction-local
//!   setting `docaiche.tenant_id`; with the switch on, [`PgStore::connect`]
//!   enables (and forces) RLS on the tables, and every statement runs in a
//!   transaction that first calls `set_config('docaiche.tenant_id', $1,
//!   true)`. A query that forgot its `tenant_id` predicate then still sees
//!   only its tenant's rows. Four narrow openings exist by contract:
//!   `find_by_lookup` may see the one row whose lookup id it names,
//!   `claim` (workers serve every tenant) may see jobs of every tenant,
//!   [`PgDataKeyStore`]'s `list` (the rewrap pass after a KEK rotation) may
//!   read, never write, every tenant's *wrapped* data keys; and
//!   [`PgUsageStore`]'s `record_batch` and `apply_retention` (the usage
//!   flusher and retention job) may write every tenant's usage counters. The
//!   cost: a `BEGIN`, a `set_config` and a `COMMIT` round trip per call; and
//!   the application must connect as a role that is not a superuser and
//!   does not have `BYPASSRLS`, or PostgreSQL skips the policies; with the
//!   switch on, connecting checks both (and that the tables have RLS
//!   enabled) and refuses with `Misconfigured` rather than pretend.
//!   Platform tables stay outside it: `tenants`, the revocation tables and
//!   `web_sessions` (read by the session key before any tenant is known;
//!   see [`PgWebSessionStore`]).
//! - **Read replica** ([`PgConfig::replica_url`]): reads that may lag a
//!   little (`get`, `head`, `list`, `get_text`, `find_by_lookup`, job `get`,
//!   `is_revoked`, audit reads) go to the replica pool. If the replica
//!   cannot hand out a connection, the read falls back to the primary and
//!   the replica is skipped for [`PgConfig::replica_retry_ms`]; the health
//!   check reports `Degraded` meanwhile. Reads on a lagging replica may miss
//!   a write made a moment ago: point `replica_url` only at a replica whose
//!   lag you accept for these reads.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use docaiche_core::health::{ComponentHealth, HealthCheck, HealthStatus};
use docaiche_core::resilience::CircuitBreaker;
use docaiche_core::{Clock, Error, Result, SecretString, SystemClock};
use serde::{Deserialize, Serialize};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

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

#[doc(hidden)]
pub mod accounts;
mod custom_roles;
mod data_keys;
mod jobs;
#[doc(hidden)]
pub mod mfa;
#[doc(hidden)]
pub mod queries;
mod stores;
#[doc(hidden)]
pub mod tenants;
mod usage;
mod web_sessions;

pub use accounts::PgAccountStore;
pub use custom_roles::PgCustomRoleStore;
pub use data_keys::PgDataKeyStore;
pub use jobs::PgJobQueue;
pub use mfa::PgMfaStore;
/// The `sqlx` these adapters are built on, so callers of [`PgStore::pool`]
/// name the same version (`docaiche_store::postgres::sqlx::query(…)`).
pub use sqlx;
pub use stores::{PgApiKeyStore, PgAuditSink, PgDocumentStore, PgRevocationStore};
pub use tenants::PgTenantStore;
pub use usage::PgUsageStore;
pub use web_sessions::PgWebSessionStore;

const DEPENDENCY: &str = "postgres";

/// The embedded migrations (`migrations/postgres`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The tables row-level security applies to.
const RLS_TABLES: [&str; 12] = [
    "documents",
    "api_keys",
    "jobs",
    "audit_events",
    "data_keys",
    "accounts",
    "custom_roles",
    "mfa_enrolments",
    "mfa_recovery_codes",
    "usage_minute",
    "usage_hour",
    "usage_day",
];

/// Apply the embedded migrations to `pool` (idempotent; concurrent callers
/// serialize on an advisory lock). [`PgStore::connect`] calls this.
///
/// # Errors
/// `Unavailable` if the database cannot be reached; `Internal` if a
/// migration fails.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => db_error(DEPENDENCY, e),
        other => Error::internal_with("postgres migration failed", other),
    })
}

/// Switch row-level security on for the store's tables (`ENABLE` and
/// `FORCE`, so the tables' owner is subject to it too). Needs the tables'
/// owner; idempotent. [`PgStore::connect`] calls it when
/// [`PgConfig::row_level_security`] is set.
///
/// # Errors
/// `Unavailable` on outage; `Internal` if the role may not alter the tables.
pub async fn enable_row_level_security(pool: &PgPool) -> Result<()> {
    for table in RLS_TABLES {
        // Table names are constants of this crate, never input.
        sqlx::query(&format!(
            "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"
        ))
        .execute(pool)
        .await
        .map_err(err)?;
    }
    Ok(())
}

/// Fail unless row-level security would really be enforced for `pool`'s
/// role: every table has it enabled, and the role is neither a superuser
/// nor `BYPASSRLS` (PostgreSQL skips the policies for those, silently).
///
/// # Errors
/// `Misconfigured` naming what is wrong; `Unavailable` on outage.
pub async fn verify_row_level_security(pool: &PgPool) -> Result<()> {
    let bypasses: bool = sqlx::query_scalar(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(pool)
    .await
    .map_err(err)?;
    if bypasses {
        return Err(Error::misconfigured(
            "postgres.row_level_security",
            "the connecting role is a superuser or has BYPASSRLS, so the policies \
             would not apply: connect as an ordinary role",
        ));
    }
    for table in RLS_TABLES {
        let enabled: Option<bool> =
            sqlx::query_scalar("SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass($1)")
                .bind(table)
                .fetch_optional(pool)
                .await
                .map_err(err)?;
        if enabled != Some(true) {
            return Err(Error::misconfigured(
                "postgres.row_level_security",
                format!(
                    "row-level security is not enabled on `{table}`: run \
                     enable_row_level_security as the tables' owner"
                ),
            ));
        }
    }
    Ok(())
}

/// Where the database is, how to pool connections, and the security and
/// replica switches.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PgConfig {
    /// Connection URL of the primary (may hold a password: never logged).
    pub url: SecretString,
    /// Connection URL of a read replica, if any.
    pub replica_url: Option<SecretString>,
    /// Primary pool settings.
    pub pool: PoolConfig,
    /// Replica pool settings (default: a 1 s acquire timeout, so a dead
    /// replica costs a read at most that before it falls back).
    pub replica_pool: PoolConfig,
    /// After a replica failure, how long reads skip it.
    pub replica_retry_ms: u64,
    /// Enforce tenant isolation in the database too (see the module docs).
    pub row_level_security: bool,
    /// Schema holding the tables (`search_path` of every connection);
    /// `None` keeps the server's default.
    pub schema: Option<String>,
    /// `application_name` of the connections (shown in `pg_stat_activity`);
    /// replica connections append `-replica`.
    pub application_name: String,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self {
            url: SecretString::new(String::new()),
            replica_url: None,
            pool: PoolConfig::default(),
            replica_pool: PoolConfig::default().with_acquire_timeout(Duration::from_secs(1)),
            replica_retry_ms: 30_000,
            row_level_security: false,
            schema: None,
            application_name: "docaiche".to_owned(),
        }
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &self.url)
            .field("replica_url", &self.replica_url)
            .field("pool", &self.pool)
            .field("replica_pool", &self.replica_pool)
            .field("replica_retry_ms", &self.replica_retry_ms)
            .field("row_level_security", &self.row_level_security)
            .field("schema", &self.schema)
            .field("application_name", &self.application_name)
            .finish()
    }
}

impl PgConfig {
    /// The primary at `url`, with default settings.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::new(url.into()),
            ..Self::default()
        }
    }

    fn options(
        &self,
        url: &SecretString,
        setting: &'static str,
        application_name: &str,
    ) -> Result<PgConnectOptions> {
        let options = PgConnectOptions::from_str(url.expose_secret())
            // The parse error may quote the URL: say only which setting.
            .map_err(|_| Error::misconfigured(setting, "not a valid postgres:// URL"))?
            .application_name(application_name);
        Ok(match &self.schema {
            Some(schema) => options.options([("search_path", schema.as_str())]),
            None => options,
        })
    }

    fn validate(&self) -> Result<()> {
        let urls = [
            ("postgres.url", Some(&self.url)),
            ("postgres.replica_url", self.replica_url.as_ref()),
        ];
        for (setting, url) in urls {
            if let Some(url) = url {
                let url = url.expose_secret();
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(Error::misconfigured(setting, "must be a postgres:// URL"));
                }
            }
        }
        self.pool.validate("postgres.pool")?;
        self.replica_pool.validate("postgres.replica_pool")?;
        if let Some(schema) = &self.schema {
            let valid = !schema.is_empty()
                && schema.len() <= 63
                && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && schema
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(Error::misconfigured(
                    "postgres.schema",
                    "must be 1 to 63 lowercase letters, digits or _, not starting with a digit",
                ));
            }
        }
        Ok(())
    }
}

/// A read replica and whether it is currently skipped.
#[derive(Debug)]
struct Replica {
    pool: MeteredPool<Postgres>,
    retry_after: Duration,
    /// Monotonic milliseconds (since `epoch`) until which reads skip it.
    down_until_ms: AtomicU64,
    epoch: Instant,
    reads: AtomicU64,
    fallbacks: AtomicU64,
}

impl Replica {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn is_down(&self) -> bool {
        self.now_ms() < self.down_until_ms.load(Ordering::Relaxed)
    }

    fn mark_down(&self) {
        let until = self
            .now_ms()
            .saturating_add(u64::try_from(self.retry_after.as_millis()).unwrap_or(u64::MAX));
        self.down_until_ms.store(until, Ordering::Relaxed);
    }
}

/// What a statement's transaction is scoped to, for row-level security.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// One tenant's rows.
    Tenant(&'a str),
    /// Audit events without a tenant (the policy's `-` sentinel).
    NoTenant,
    /// The one api key row with this lookup id.
    Lookup(&'a str),
    /// Every tenant's jobs (`claim`).
    Worker,
    /// Reading every tenant's wrapped data keys (`DataKeyStore::list`).
    KeyRewrap,
    /// Writing and expiring every tenant's usage counters (the flusher,
    /// the retention job).
    UsageWriter,
}

/// A connection, inside a scoped transaction when row-level security is on.
pub(crate) enum Exec<'c> {
    Plain(&'c mut PgConnection),
    Tx(Transaction<'c, Postgres>),
}

impl Exec<'_> {
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        match self {
            Self::Plain(conn) => conn,
            Self::Tx(tx) => tx,
        }
    }

    /// Commit the scoped transaction, if any.
    pub(crate) async fn finish(self) -> Result<()> {
        if let Self::Tx(tx) = self {
            tx.commit().await.map_err(err)?;
        }
        Ok(())
    }
}

/// Set the row-level security settings for the current transaction.
pub(crate) async fn set_scope(conn: &mut PgConnection, scope: Scope<'_>) -> Result<()> {
    let (name, value) = match scope {
        Scope::Tenant(tenant) => ("docaiche.tenant_id", tenant),
        Scope::NoTenant => ("docaiche.tenant_id", "-"),
        Scope::Lookup(lookup) => ("docaiche.api_key_lookup", lookup),
        Scope::Worker => ("docaiche.job_worker", "on"),
        Scope::KeyRewrap => ("docaiche.data_key_rewrap", "on"),
        Scope::UsageWriter => ("docaiche.usage_writer", "on"),
    };
    sqlx::query("SELECT set_config($1, $2, true)")
        .bind(name)
        .bind(value)
        .execute(conn)
        .await
        .map_err(err)?;
    Ok(())
}

/// The shared state behind every adapter of one [`PgStore`].
#[derive(Debug)]
pub(crate) struct Shared {
    primary: MeteredPool<Postgres>,
    replica: Option<Arc<Replica>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rls: bool,
}

impl Shared {
    /// A primary connection.
    pub(crate) async fn write(&self) -> Result<PoolConnection<Postgres>> {
        self.primary.acquire(DEPENDENCY).await
    }

    /// A replica connection when one is configured and up, else a primary
    /// one.
    pub(crate) async fn read(&self) -> Result<PoolConnection<Postgres>> {
        if let Some(replica) = &self.replica
            && !replica.is_down()
        {
            match replica.pool.acquire("postgres replica").await {
                Ok(conn) => {
                    replica.reads.fetch_add(1, Ordering::Relaxed);
                    return Ok(conn);
                }
                Err(_) => {
                    replica.mark_down();
                    replica.fallbacks.fetch_add(1, Ordering::Relaxed);
                }
            }
        } else if let Some(replica) = &self.replica {
            replica.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        self.write().await
    }

    /// Scope `conn` for row-level security (a transaction with the settings
    /// made), or use it as it is when RLS is off.
    pub(crate) async fn scoped<'c>(
        &self,
        conn: &'c mut PgConnection,
        scope: Scope<'_>,
    ) -> Result<Exec<'c>> {
        if !self.rls {
            return Ok(Exec::Plain(conn));
        }
        let mut tx = conn.begin().await.map_err(err)?;
        set_scope(&mut tx, scope).await?;
        Ok(Exec::Tx(tx))
    }
}

pub(crate) fn err(e: sqlx::Error) -> Error {
    db_error(DEPENDENCY, e)
}

/// Live figures of a [`PgStore`]'s pools and read routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PgPoolStats {
    /// The primary pool.
    pub primary: PoolStats,
    /// The replica pool, if configured.
    pub replica: Option<PoolStats>,
    /// Reads served by the replica.
    pub replica_reads: u64,
    /// Reads that went to the primary because the replica was down.
    pub replica_fallbacks: u64,
    /// Whether reads currently skip the replica after a failure.
    pub replica_down: bool,
}

/// A connected PostgreSQL database: hands out the adapters, reports its
/// pools and health.
#[derive(Debug, Clone)]
pub struct PgStore {
    shared: Arc<Shared>,
}

impl PgStore {
    /// Connect, apply the migrations, and switch row-level security on if
    /// configured. The replica (if any) is connected lazily, so a replica
    /// that is down does not stop start-up.
    ///
    /// # Errors
    /// `Misconfigured` for invalid settings; `Unavailable` if the primary
    /// cannot be reached; `Internal` if a migration fails.
    pub async fn connect(config: &PgConfig) -> Result<Self> {
        let store = Self::connect_unchecked(config).await?;
        migrate(&store.shared.primary.pool).await?;
        if config.row_level_security {
            enable_row_level_security(&store.shared.primary.pool).await?;
            verify_row_level_security(&store.shared.primary.pool).await?;
        }
        Ok(store)
    }

    /// Connect without touching the schema (run [`migrate`] and
    /// [`enable_row_level_security`] separately, e.g. as the tables'
    /// owner, while the service connects as a less privileged role).
    ///
    /// With [`PgConfig::row_level_security`] set, checks that the tables
    /// have it enabled and that the connecting role does not bypass it.
    ///
    /// # Errors
    /// As [`PgStore::connect`], without the migration; `Misconfigured` if
    /// row-level security is requested but would not be enforced.
    pub async fn connect_without_migrating(config: &PgConfig) -> Result<Self> {
        let store = Self::connect_unchecked(config).await?;
        if config.row_level_security {
            verify_row_level_security(&store.shared.primary.pool).await?;
        }
        Ok(store)
    }

    async fn connect_unchecked(config: &PgConfig) -> Result<Self> {
        config.validate()?;
        let primary = config
            .pool
            .apply(PgPoolOptions::new())
            .connect_with(config.options(&config.url, "postgres.url", &config.application_name)?)
            .await
            .map_err(err)?;
        let replica = match &config.replica_url {
            Some(url) => Some(Arc::new(Replica {
                pool: MeteredPool::new(
                    config
                        .replica_pool
                        .apply(PgPoolOptions::new())
                        .connect_lazy_with(config.options(
                            url,
                            "postgres.replica_url",
                            &format!("{}-replica", config.application_name),
                        )?),
                ),
                retry_after: Duration::from_millis(config.replica_retry_ms),
                down_until_ms: AtomicU64::new(0),
                epoch: Instant::now(),
                reads: AtomicU64::new(0),
                fallbacks: AtomicU64::new(0),
            })),
            None => None,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                primary: MeteredPool::new(primary),
                replica,
                clock: Arc::new(SystemClock::new()),
                rls: config.row_level_security,
            }),
        })
    }

    /// Read time from `clock` (a `ManualClock` in tests). Affects adapters
    /// handed out afterwards.
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        let shared = Shared {
            primary: self.shared.primary.clone(),
            replica: self.shared.replica.clone(),
            clock,
            rls: self.shared.rls,
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Guard connection acquisition on the primary with `breaker`: while
    /// it is open, calls fail at once with `CircuitOpen` instead of each
    /// waiting out the acquire timeout. (The replica has its own fallback.)
    /// Affects adapters handed out afterwards.
    #[must_use]
    pub fn with_circuit_breaker(self, breaker: CircuitBreaker) -> Self {
        let mut primary = self.shared.primary.clone();
        primary.breaker = Some(breaker);
        Self {
            shared: Arc::new(Shared {
                primary,
                replica: self.shared.replica.clone(),
                clock: self.shared.clock.clone(),
                rls: self.shared.rls,
            }),
        }
    }

    /// Apply the embedded migrations (see [`migrate`]).
    ///
    /// # Errors
    /// As [`migrate`].
    pub async fn migrate(&self) -> Result<()> {
        migrate(&self.shared.primary.pool).await
    }

    /// The primary pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.shared.primary.pool
    }

    /// The replica pool, if configured.
    #[must_use]
    pub fn replica_pool(&self) -> Option<&PgPool> {
        self.shared.replica.as_ref().map(|r| &r.pool.pool)
    }

    /// Live pool figures and read routing counters.
    #[must_use]
    pub fn pool_stats(&self) -> PgPoolStats {
        let replica = self.shared.replica.as_ref();
        PgPoolStats {
            primary: self.shared.primary.stats(),
            replica: replica.map(|r| r.pool.stats()),
            replica_reads: replica.map_or(0, |r| r.reads.load(Ordering::Relaxed)),
            replica_fallbacks: replica.map_or(0, |r| r.fallbacks.load(Ordering::Relaxed)),
            replica_down: replica.is_some_and(|r| r.is_down()),
        }
    }

    /// The [`DocumentStore`](docaiche_core::DocumentStore).
    #[must_use]
    pub fn documents(&self) -> PgDocumentStore {
        PgDocumentStore::new(self.shared.clone())
    }

    /// The [`AccountStore`](docaiche_core::AccountStore).
    #[must_use]
    pub fn accounts(&self) -> PgAccountStore {
        PgAccountStore::new(self.shared.clone())
    }

    /// The [`CustomRoleStore`](docaiche_core::CustomRoleStore).
    #[must_use]
    pub fn custom_roles(&self) -> PgCustomRoleStore {
        PgCustomRoleStore::new(self.shared.clone())
    }

    /// The [`MfaStore`](docaiche_core::MfaStore) (tables
    /// `mfa_enrolments` and `mfa_recovery_codes`).
    #[must_use]
    pub fn mfa(&self) -> PgMfaStore {
        PgMfaStore::new(self.shared.clone())
    }

    /// The [`WebSessionStore`](docaiche_core::WebSessionStore) (table
    /// `web_sessions`): browser sessions every instance on this database
    /// shares.
    #[must_use]
    pub fn web_sessions(&self) -> PgWebSessionStore {
        PgWebSessionStore::new(self.shared.clone())
    }

    /// The [`TenantStore`](docaiche_core::TenantStore) (table `tenants`).
    #[must_use]
    pub fn tenants(&self) -> PgTenantStore {
        PgTenantStore::new(self.shared.clone())
    }

    /// The [`ApiKeyStore`](docaiche_core::ApiKeyStore).
    #[must_use]
    pub fn api_keys(&self) -> PgApiKeyStore {
        PgApiKeyStore::new(self.shared.clone())
    }

    /// The [`TokenRevocationStore`](docaiche_core::TokenRevocationStore).
    #[must_use]
    pub fn revocations(&self) -> PgRevocationStore {
        PgRevocationStore::new(self.shared.clone())
    }

    /// The [`JobQueue`](docaiche_core::JobQueue).
    #[must_use]
    pub fn jobs(&self) -> PgJobQueue {
        PgJobQueue::new(self.shared.clone())
    }

    /// The [`AuditSink`](docaiche_core::AuditSink).
    #[must_use]
    pub fn audit(&self) -> PgAuditSink {
        PgAuditSink::new(self.shared.clone())
    }

    /// The [`DataKeyStore`](crate::encryption::DataKeyStore) of encryption
    /// at rest (table `data_keys`), to keep data keys beside the documents.
    #[must_use]
    pub fn data_keys(&self) -> PgDataKeyStore {
        PgDataKeyStore::new(self.shared.clone())
    }

    /// The [`UsageStore`](docaiche_core::UsageStore) (tables `usage_*`).
    #[must_use]
    pub fn usage(&self) -> PgUsageStore {
        PgUsageStore::new(self.shared.clone())
    }

    /// A [`HealthCheck`] named `postgres`.
    #[must_use]
    pub fn health_check(&self) -> PgHealthCheck {
        PgHealthCheck {
            shared: self.shared.clone(),
        }
    }
}

/// Health of a [`PgStore`]: down when `SELECT 1` on the primary fails;
/// degraded when every primary connection is busy with callers waiting, or
/// when reads are falling back from a failed replica.
#[derive(Debug, Clone)]
pub struct PgHealthCheck {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl HealthCheck for PgHealthCheck {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(DEPENDENCY)
    }

    async fn check(&self) -> ComponentHealth {
        let started = Instant::now();
        let stats = self.shared.primary.stats();
        let replica_down = self.shared.replica.as_ref().is_some_and(|r| r.is_down());
        let status = if stats.is_saturated() {
            // Busy, not broken: probing would only queue behind the waiters.
            HealthStatus::Degraded
        } else {
            let probe = async {
                let mut conn = self.shared.write().await?;
                sqlx::query("SELECT 1")
                    .execute(&mut *conn)
                    .await
                    .map_err(err)
            };
            match probe.await {
                Err(_) => HealthStatus::Down,
                Ok(_) if replica_down => HealthStatus::Degraded,
                Ok(_) => HealthStatus::Up,
            }
        };
        let mut detail = pool_detail(&stats);
        if replica_down {
            detail.push_str("; replica down, reads on the primary");
        }
        ComponentHealth::new(DEPENDENCY, status, started.elapsed()).with_detail(detail)
    }
}
