//! `[store]` and `[revocation]` into stores: SQLite or PostgreSQL for API
//! keys, accounts, documents and the rest, the token revocation store (the
//! store or Redis), the console's web sessions (beside the revocations:
//! the same rule), and their readiness checks.

use std::sync::Arc;

use docaiche_core::health::HealthCheck;
use docaiche_core::{
    ApiKeyStore, AuditSink, DocumentStore, Error, InvalidationBus, TokenRevocationStore,
};
use docaiche_store::encryption::DataKeyStore;

use crate::config::{Config, EnvLookup, StoreBackend};
use crate::wiring::Secrets;

/// The stores of `[store]` and `[revocation]`, and their readiness checks.
#[derive(Debug, Clone)]
pub(crate) struct Stores {
    /// Password accounts (`bootstrap-admin`, `POST /v1/auth/token`).
    pub(crate) accounts: Arc<dyn docaiche_core::AccountStore>,
    /// Tenant-defined roles (`/v1/roles`).
    pub(crate) custom_roles: Arc<dyn docaiche_core::CustomRoleStore>,
    /// Second-factor (TOTP) enrolments of accounts (the console's
    /// sign-in), shared by every instance on the same database.
    pub(crate) mfa: Arc<dyn docaiche_core::MfaStore>,
    /// API key records.
    pub(crate) api_keys: Arc<dyn ApiKeyStore>,
    /// The tenant registry (`/v1/tenants`, suspension, quotas).
    pub(crate) tenants: Arc<dyn docaiche_core::TenantStore>,
    /// Revoked JWT ids (the store's, or Redis).
    pub(crate) revocations: Arc<dyn TokenRevocationStore>,
    /// The admin console's browser sessions, where the revocations are
    /// (`[revocation] backend`: the store's database, or Redis), so that
    /// every instance sharing them sees a sign-in and a sign-out.
    pub(crate) web_sessions: Arc<dyn docaiche_core::WebSessionStore>,
    /// Audit events.
    pub(crate) audit: Arc<dyn AuditSink>,
    /// Documents, unencrypted: wrap with [`encrypted_documents`](super::encrypted_documents).
    pub(crate) documents: Arc<dyn DocumentStore>,
    /// Wrapped per-subject data keys of encryption at rest, and where they
    /// live (`"sqlite"` or `"postgres"`: beside the documents).
    pub(crate) data_keys: (Arc<dyn DataKeyStore>, &'static str),
    /// Background jobs (document extraction), shared by every instance on
    /// the same database.
    pub(crate) jobs: Arc<dyn docaiche_core::JobQueue>,
    /// Per-key usage counters (`crate::usage`), beside the keys.
    pub(crate) usage: Arc<dyn docaiche_core::usage::UsageStore>,
    /// Where revoked, deleted and rotated API keys are announced to the
    /// other instances (`[revocation] announce_api_keys`), if anywhere.
    pub(crate) invalidations: Option<Arc<dyn InvalidationBus>>,
    /// The store's readiness check (and Redis's, for revocations).
    pub(crate) health_checks: Vec<Arc<dyn HealthCheck>>,
    /// The store's connection pools, for `/metrics`.
    pub(crate) pools: Vec<crate::metrics::PoolProbe>,
    /// The store's database, for tables beside the store's own (privacy
    /// requests) and what its contracts do not cover.
    pub(crate) sql: StorePool,
}

/// The database of `[store]`.
#[derive(Debug, Clone)]
pub(crate) enum StorePool {
    /// The SQLite store (its pool: `store.pool()`).
    Sqlite(docaiche_store::sqlite::SqliteStore),
    /// The PostgreSQL store's pool (in `store.schema`).
    #[cfg(feature = "postgres")]
    Postgres(docaiche_store::postgres::sqlx::PgPool),
}

impl Stores {
    /// Open (and migrate) the configured store, then the revocation store.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming the setting (a backend the build
    /// lacks, a URL that cannot be resolved); the store's error when it
    /// cannot be opened or migrated.
    pub(crate) async fn open(
        config: &Config,
        secrets: &Secrets,
        env: EnvLookup<'_>,
    ) -> Result<Self, Error> {
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut stores = match config.store.backend {
            StoreBackend::Sqlite => {
                let _ = secrets;
                Self::sqlite(config).await?
            }
            #[cfg(feature = "postgres")]
            StoreBackend::Postgres => postgres::open(config, secrets, env).await?,
            #[cfg(not(feature = "postgres"))]
            StoreBackend::Postgres => {
                return Err(Error::misconfigured(
                    "store.backend",
                    crate::config::missing_feature("postgres"),
                ));
            }
        };
        tracing::info!(backend = config.store.backend.as_str(), "store ready");
        if let Some(_setting) = config.revocation.redis_setting() {
            #[cfg(feature = "redis")]
            {
                let (url, setting) = config.revocation.redis_url(&config.rate_limit);
                let url = url.ok_or_else(|| {
                    Error::misconfigured(
                        "revocation.url_source",
                        "is required with revocation.backend or \
                         revocation.announce_api_keys = \"redis\"",
                    )
                })?;
                let url = secrets.resolve(setting, url, env).await?;
                let redis = docaiche_store::redis::RedisStore::builder(url.expose_secret())
                    .build()
                    .map_err(|e| match e {
                        Error::Misconfigured { reason, .. } => Error::Misconfigured {
                            setting: setting.into(),
                            reason,
                        },
                        other => other,
                    })?;
                if config.revocation.backend == crate::config::RevocationBackend::Redis {
                    stores.revocations = Arc::new(redis.revocations());
                    // Each session expires at the console's absolute timeout.
                    let lifetime =
                        docaiche_auth::web_session::WebSessionConfig::default().absolute_timeout;
                    stores.web_sessions = Arc::new(redis.web_sessions(lifetime));
                }
                if config.revocation.announce_api_keys == crate::config::AnnounceBackend::Redis {
                    stores.invalidations = Some(Arc::new(redis.invalidations()));
                }
                stores.health_checks.push(Arc::new(redis.health_check()));
            }
            #[cfg(not(feature = "redis"))]
            return Err(Error::misconfigured(
                _setting,
                crate::config::missing_feature("redis"),
            ));
        }
        let _ = env;
        tracing::info!(
            backend = config.revocation.backend.as_str(),
            announce_api_keys = config.revocation.announce_api_keys.as_str(),
            "revocation store ready"
        );
        Ok(stores)
    }

    /// The SQLite database `<data_dir>/docaiche.db` (created 0600 and
    /// migrated if missing).
    async fn sqlite(config: &Config) -> Result<Self, Error> {
        use docaiche_store::sqlite::{SqliteConfig, SqliteStore};
        let path = config.storage.data_dir.join("docaiche.db");
        // Before SQLite creates it with the umask's mode (0644 by default).
        crate::storage::ensure_private_file(&path).map_err(|e| {
            Error::misconfigured(
                "storage.data_dir",
                format!("cannot create {}: {e}", path.display()),
            )
        })?;
        let store = SqliteStore::connect(&SqliteConfig::file(path.to_string_lossy())).await?;
        Ok(Self {
            accounts: Arc::new(store.accounts()),
            custom_roles: Arc::new(store.custom_roles()),
            mfa: Arc::new(store.mfa()),
            api_keys: Arc::new(store.api_keys()),
            tenants: Arc::new(store.tenants()),
            revocations: Arc::new(store.revocations()),
            web_sessions: Arc::new(store.web_sessions()),
            audit: Arc::new(store.audit()),
            documents: Arc::new(store.documents()),
            data_keys: (Arc::new(store.data_keys()), "sqlite"),
            jobs: Arc::new(store.jobs()),
            usage: Arc::new(store.usage()),
            invalidations: None,
            health_checks: vec![Arc::new(store.health_check())],
            sql: StorePool::Sqlite(store.clone()),
            pools: crate::metrics::pools(store),
        })
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::sync::Arc;
    use std::time::Duration;

    use docaiche_core::Error;
    use docaiche_store::postgres::{PgConfig, PgStore};
    use docaiche_store::sql::PoolConfig;

    use super::{Secrets, Stores};
    use crate::config::{Config, EnvLookup};

    /// The PostgreSQL store of `[store]` (migrated on connect).
    pub(super) async fn open(
        config: &Config,
        secrets: &Secrets,
        env: EnvLookup<'_>,
    ) -> Result<Stores, Error> {
        let section = &config.store;
        let url_source = section.url_source.as_deref().ok_or_else(|| {
            Error::misconfigured(
                "store.url_source",
                "is required with store.backend = \"postgres\"",
            )
        })?;
        let url = secrets.resolve("store.url_source", url_source, env).await?;
        let mut pg = PgConfig::new(url.expose_secret().clone());
        if let Some(replica) = &section.replica_url_source {
            pg.replica_url = Some(
                secrets
                    .resolve("store.replica_url_source", replica, env)
                    .await?,
            );
        }
        let mut pool = PoolConfig::default()
            .with_max_connections(section.max_connections)
            .with_acquire_timeout(Duration::from_millis(section.acquire_timeout_ms));
        pool.min_connections = section.min_connections;
        pg.pool = pool;
        pg.row_level_security = section.row_level_security;
        pg.schema.clone_from(&section.schema);
        pg.application_name.clone_from(&section.application_name);
        // The library names its settings `postgres.*`; ours are `store.*`.
        let store = PgStore::connect(&pg).await.map_err(|e| match e {
            Error::Misconfigured { setting, reason } => Error::Misconfigured {
                setting: match setting.as_ref() {
                    "postgres.url" => "store.url_source".into(),
                    "postgres.replica_url" => "store.replica_url_source".into(),
                    other => other.replacen("postgres.", "store.", 1).into(),
                },
                reason,
            },
            other => other,
        })?;
        tracing::info!(
            row_level_security = section.row_level_security,
            replica = section.replica_url_source.is_some(),
            max_connections = section.max_connections,
            "PostgreSQL store connected"
        );
        Ok(Stores {
            accounts: Arc::new(store.accounts()),
            custom_roles: Arc::new(store.custom_roles()),
            mfa: Arc::new(store.mfa()),
            api_keys: Arc::new(store.api_keys()),
            tenants: Arc::new(store.tenants()),
            revocations: Arc::new(store.revocations()),
            web_sessions: Arc::new(store.web_sessions()),
            audit: Arc::new(store.audit()),
            documents: Arc::new(store.documents()),
            // Beside the documents, shared by every instance.
            data_keys: (Arc::new(store.data_keys()), "postgres"),
            jobs: Arc::new(store.jobs()),
            usage: Arc::new(store.usage()),
            invalidations: None,
            health_checks: vec![Arc::new(store.health_check())],
            sql: super::StorePool::Postgres(store.pool().clone()),
            pools: crate::metrics::pools(store),
        })
    }
}
