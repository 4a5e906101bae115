//! The server's backends, chosen by configuration: the secret provider
//! chain (`[secrets]`: env → file → Vault KV v2), the store (`[store]`:
//! SQLite or PostgreSQL), the JWT revocation store (`[revocation]`: the
//! store or Redis) and the key wrapper of encryption at rest
//! (`[encryption]`: the local key of `[keys]` or Vault Transit), assembled
//! into an [`EncryptedDocumentStore`] over the store's documents.
//!
//! Backends a build lacks (`postgres`, `redis`, `vault` features) are
//! refused by `Config::validate` first; the refusals here repeat them for
//! callers that skip validation.
//!
//! Secrets are resolved once, at start-up. A missing required secret is an
//! [`Error::Misconfigured`] naming the setting and the secret (never its
//! value), which stops start-up.

use std::sync::Arc;

use docaiche_core::health::HealthCheck;
use docaiche_core::{
    ApiKeyStore, AuditSink, DocumentStore, Error, InvalidationBus, KeyWrapper, SecretBytes,
    SecretProvider, SecretString, TokenRevocationStore,
};
use docaiche_store::encryption::{DataKeyStore, EncryptedDocumentStore};
use docaiche_store::key_wrapper::LocalKeyWrapper;
use docaiche_store::{EnvSecretProvider, FileSecretProvider, SecretChain};

use crate::config::{
    AuthProvider, AuthSection, Config, EnvLookup, KeySource, KeyWrapperKind, SecretRef,
    SecretSource, StoreBackend,
};

/// Where the named secrets come from, and the clients `*_source`
/// references may need.
#[derive(Debug, Clone)]
pub(crate) struct Secrets {
    /// The provider chain; `None` in development without any configured
    /// source (secrets are then generated under the data directory).
    chain: Option<Arc<dyn SecretProvider>>,
    /// The setting the chain comes from (`secrets.sources` or the older
    /// `auth.provider`), for messages.
    setting: &'static str,
    /// The Vault KV provider, when Vault is configured.
    #[cfg(feature = "vault")]
    vault_kv: Option<Arc<docaiche_store::vault::VaultSecretProvider>>,
    /// The Vault client, when Vault is configured.
    #[cfg(feature = "vault")]
    vault: Option<docaiche_store::vault::VaultClient>,
}

/// The secret names the server reads through the chain.
pub(crate) fn required_secret_names(auth: &AuthSection) -> Vec<String> {
    let mut names: Vec<String> = auth
        .pepper_versions
        .iter()
        .map(|&v| AuthSection::pepper_secret(v))
        .collect();
    names.push(AuthSection::JWT_SECRET.to_owned());
    names
}

impl Secrets {
    /// The chain `config` asks for: `secrets.sources` in order, else the
    /// older `auth.provider` (`env` or `file:/dir`), else none (development).
    /// The `env` source reads a snapshot of the `DOCAICHE_SECRET_*`
    /// variables of the required secrets through `env`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming the setting: an invalid entry, an
    /// unreadable directory, Vault asked for but not configured or not
    /// built in, or its credentials missing.
    pub(crate) async fn from_config(config: &Config, env: EnvLookup<'_>) -> Result<Self, Error> {
        #[cfg(feature = "vault")]
        let vault = if config.uses_vault() {
            Some(vault::client(config, env)?)
        } else {
            None
        };
        #[cfg(feature = "vault")]
        let vault_kv = vault
            .clone()
            .map(|client| Arc::new(docaiche_store::vault::VaultSecretProvider::new(client)));

        let (setting, sources) = if config.secrets.sources.is_empty() {
            let sources = match config
                .auth
                .provider()
                .map_err(|reason| Error::misconfigured("auth.provider", reason))?
            {
                AuthProvider::Generated => Vec::new(),
                AuthProvider::Env => vec![SecretSource::Env],
                AuthProvider::Dir(dir) => vec![SecretSource::Dir(dir)],
            };
            ("auth.provider", sources)
        } else {
            let chain = config
                .secrets
                .chain()
                .map_err(|reason| Error::misconfigured("secrets.sources", reason))?;
            ("secrets.sources", chain)
        };
        let mut providers: Vec<Arc<dyn SecretProvider>> = Vec::new();
        for source in sources {
            match source {
                SecretSource::Env => providers.push(Arc::new(env_snapshot(&config.auth, env)?)),
                SecretSource::Dir(dir) => {
                    let provider = FileSecretProvider::new(&dir).map_err(|_| {
                        Error::misconfigured(
                            setting,
                            format!("{} is not a readable directory", dir.display()),
                        )
                    })?;
                    providers.push(Arc::new(provider));
                }
                SecretSource::Vault => {
                    #[cfg(feature = "vault")]
                    {
                        let kv = vault_kv.clone().ok_or_else(|| {
                            Error::misconfigured("secrets.vault.address", "Vault is not configured")
                        })?;
                        providers.push(kv);
                    }
                    #[cfg(not(feature = "vault"))]
                    return Err(Error::misconfigured(
                        setting,
                        crate::config::missing_feature("vault"),
                    ));
                }
            }
        }
        let chain: Option<Arc<dyn SecretProvider>> = if providers.is_empty() {
            None
        } else {
            Some(Arc::new(SecretChain::new(providers)))
        };
        Ok(Self {
            chain,
            setting,
            #[cfg(feature = "vault")]
            vault_kv,
            #[cfg(feature = "vault")]
            vault,
        })
    }

    /// The chain, or `None` for generated development secrets.
    pub(crate) fn chain(&self) -> Option<&Arc<dyn SecretProvider>> {
        self.chain.as_ref()
    }

    /// The Vault client, if Vault is configured.
    #[cfg(feature = "vault")]
    pub(crate) const fn vault(&self) -> Option<&docaiche_store::vault::VaultClient> {
        self.vault.as_ref()
    }

    /// Check that every secret the server needs is in the chain, so that a
    /// missing one stops start-up with its name (and where it was looked
    /// for) rather than failing a request later.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming the first missing secret; the
    /// provider's error (e.g. Vault unreachable) as is.
    pub(crate) async fn require(&self, names: &[String]) -> Result<(), Error> {
        let Some(chain) = &self.chain else {
            return Ok(());
        };
        for name in names {
            if chain.get(name).await?.is_none() {
                let variable = EnvSecretProvider::new()
                    .variable_name(name)
                    .unwrap_or_else(|_| name.clone());
                return Err(Error::misconfigured(
                    self.setting,
                    format!(
                        "the required secret `{name}` is in none of the sources ({}); set \
                         {variable}, or the file `{name}` under a file: source, or the KV \
                         secret `{name}`",
                        chain.describe()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The value a `*_source` setting refers to: `env:NAME` through `env`,
    /// `file:/path`, or `vault:path` from the Vault KV mount. A literal
    /// (allowed in development only, `validate` refuses it in production)
    /// is its own value.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming `setting` when the secret is missing
    /// (never repeating a value).
    pub(crate) async fn resolve(
        &self,
        setting: &'static str,
        value: &str,
        env: EnvLookup<'_>,
    ) -> Result<SecretString, Error> {
        match plain_reference(setting, value, env)? {
            Resolved::Value(secret) => Ok(secret),
            Resolved::Vault(path) => {
                #[cfg(feature = "vault")]
                {
                    let kv = self.vault_kv.as_ref().ok_or_else(|| {
                        Error::misconfigured(
                            setting,
                            "is a vault: reference, but [secrets.vault] is not configured",
                        )
                    })?;
                    let found = kv.get(&path).await?.ok_or_else(|| {
                        Error::misconfigured(
                            setting,
                            format!("the Vault secret `{path}` is missing"),
                        )
                    })?;
                    // Borrowed: the only copy made is the one inside the Secret.
                    let text = std::str::from_utf8(found.value.expose_secret())
                        .map_err(|_| Error::misconfigured(setting, "the secret is not UTF-8"))?;
                    Ok(SecretString::new(text.trim_end().to_owned()))
                }
                #[cfg(not(feature = "vault"))]
                {
                    let _ = path;
                    Err(Error::misconfigured(
                        setting,
                        crate::config::missing_feature("vault"),
                    ))
                }
            }
        }
    }
}

/// A reference resolved without Vault, or the Vault path still to read.
enum Resolved {
    /// The value.
    Value(SecretString),
    /// A `vault:` path.
    Vault(String),
}

/// Resolve an `env:` or `file:` reference (or a literal); `vault:` is left
/// to the caller.
fn plain_reference(
    setting: &'static str,
    value: &str,
    env: EnvLookup<'_>,
) -> Result<Resolved, Error> {
    if !SecretRef::looks_like_reference(value) {
        return Ok(Resolved::Value(SecretString::new(value.to_owned())));
    }
    match SecretRef::parse(value).map_err(|reason| Error::misconfigured(setting, reason))? {
        SecretRef::Env(name) => env(&name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| Resolved::Value(SecretString::new(v.trim().to_owned())))
            .ok_or_else(|| {
                Error::misconfigured(setting, format!("environment variable {name} is not set"))
            }),
        SecretRef::File(path) => std::fs::read_to_string(&path)
            .map(|v| Resolved::Value(SecretString::new(v.trim_end().to_owned())))
            .map_err(|e| {
                Error::misconfigured(setting, format!("cannot read {}: {e}", path.display()))
            }),
        SecretRef::Vault(path) => Ok(Resolved::Vault(path)),
    }
}

/// An [`EnvSecretProvider`] over a snapshot of the variables of the
/// required secrets, read through `env` (the process environment in
/// `main`, a map in tests).
fn env_snapshot(auth: &AuthSection, env: EnvLookup<'_>) -> Result<EnvSecretProvider, Error> {
    let naming = EnvSecretProvider::new();
    let mut vars = Vec::new();
    let audit = crate::audit::SECRET_NAMES.iter().map(|&n| n.to_owned());
    let privacy = crate::privacy::SECRET_NAMES.iter().map(|&n| n.to_owned());
    for name in required_secret_names(auth)
        .into_iter()
        .chain(audit)
        .chain(privacy)
    {
        let variable = naming.variable_name(&name)?;
        if let Some(value) = env(&variable).filter(|v| !v.is_empty()) {
            vars.push((variable, SecretString::new(value)));
        }
    }
    Ok(EnvSecretProvider::from_vars(vars))
}

/// The stores of `[store]` and `[revocation]`, and their readiness checks.
#[derive(Debug, Clone)]
pub(crate) struct Stores {
    /// Password accounts (`bootstrap-admin`, `POST /v1/auth/token`).
    pub(crate) accounts: Arc<dyn docaiche_core::AccountStore>,
    /// API key records.
    pub(crate) api_keys: Arc<dyn ApiKeyStore>,
    /// Revoked JWT ids (the store's, or Redis).
    pub(crate) revocations: Arc<dyn TokenRevocationStore>,
    /// Audit events.
    pub(crate) audit: Arc<dyn AuditSink>,
    /// Documents, unencrypted: wrap with [`encrypted_documents`].
    pub(crate) documents: Arc<dyn DocumentStore>,
    /// Wrapped per-subject data keys of encryption at rest, and where they
    /// live (`"sqlite"` or `"postgres"`: beside the documents).
    pub(crate) data_keys: (Arc<dyn DataKeyStore>, &'static str),
    /// Background jobs (document extraction), shared by every instance on
    /// the same database.
    pub(crate) jobs: Arc<dyn docaiche_core::JobQueue>,
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
            api_keys: Arc::new(store.api_keys()),
            revocations: Arc::new(store.revocations()),
            audit: Arc::new(store.audit()),
            documents: Arc::new(store.documents()),
            data_keys: (Arc::new(store.data_keys()), "sqlite"),
            jobs: Arc::new(store.jobs()),
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
            api_keys: Arc::new(store.api_keys()),
            revocations: Arc::new(store.revocations()),
            audit: Arc::new(store.audit()),
            documents: Arc::new(store.documents()),
            // Beside the documents, shared by every instance.
            data_keys: (Arc::new(store.data_keys()), "postgres"),
            jobs: Arc::new(store.jobs()),
            invalidations: None,
            health_checks: vec![Arc::new(store.health_check())],
            sql: super::StorePool::Postgres(store.pool().clone()),
            pools: crate::metrics::pools(store),
        })
    }
}

/// Length of a local key-encryption key.
const KEY_LEN: usize = docaiche_store::key_wrapper::KEY_LEN;

/// The key wrapper `[encryption]` asks for: the local key of `[keys]`
/// (32 raw bytes, or 64 hex digits, in a file, a variable or a KV secret),
/// or Vault Transit.
///
/// # Errors
/// [`Error::Misconfigured`] naming the setting whose key is missing or
/// malformed, or the Transit key that is missing or not derived.
pub(crate) async fn key_wrapper(
    config: &Config,
    secrets: &Secrets,
    env: EnvLookup<'_>,
) -> Result<Arc<dyn KeyWrapper>, Error> {
    match config.encryption.key_wrapper {
        KeyWrapperKind::Local => {
            let (setting, bytes) = match config.key_source() {
                // Development: the generated key file (created if missing).
                KeySource::Generated(path) => {
                    let (key, _) = crate::keys::generated_secret(&path, || {
                        crate::keys::random_key().map(|k| k.to_vec())
                    })
                    .map_err(|e| {
                        Error::internal_with(
                            format!("cannot create the development key file {}", path.display()),
                            e,
                        )
                    })?;
                    ("keys.source", key.expose_secret().clone())
                }
                KeySource::LocalFile(path) => (
                    "keys.local_key_file",
                    read_key_file("keys.local_key_file", &path)?,
                ),
                KeySource::Reference(SecretRef::File(path)) => {
                    ("keys.source", read_key_file("keys.source", &path)?)
                }
                KeySource::Reference(_) => {
                    let source = config.keys.source.as_deref().unwrap_or_default();
                    let text = secrets.resolve("keys.source", source, env).await?;
                    ("keys.source", text.expose_secret().as_bytes().to_vec())
                }
            };
            let key = decode_key(setting, bytes)?;
            let wrapper = LocalKeyWrapper::from_key_bytes(1, key)
                .map_err(|e| Error::misconfigured(setting, e.to_string()))?;
            Ok(Arc::new(wrapper))
        }
        #[cfg(feature = "vault")]
        KeyWrapperKind::Vault => {
            let client = secrets.vault().cloned().ok_or_else(|| {
                Error::misconfigured("secrets.vault.address", "Vault is not configured")
            })?;
            let wrapper = docaiche_store::vault::TransitKeyWrapper::connect(
                client,
                config.encryption.transit_key.clone(),
            )
            .await
            .map_err(|e| match e {
                Error::Misconfigured { reason, .. } => Error::Misconfigured {
                    setting: "encryption.transit_key".into(),
                    reason,
                },
                other => other,
            })?;
            Ok(Arc::new(wrapper))
        }
        #[cfg(not(feature = "vault"))]
        KeyWrapperKind::Vault => Err(Error::misconfigured(
            "encryption.key_wrapper",
            crate::config::missing_feature("vault"),
        )),
    }
}

/// Read a key file.
fn read_key_file(setting: &'static str, path: &std::path::Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::misconfigured(setting, format!("cannot read {}: {e}", path.display())))
}

/// 32 raw bytes, or 64 hex digits (surrounding whitespace ignored).
fn decode_key(setting: &'static str, bytes: Vec<u8>) -> Result<SecretBytes, Error> {
    let bytes = SecretBytes::new(bytes);
    let raw = bytes.expose_secret();
    if raw.len() == KEY_LEN {
        return Ok(bytes);
    }
    let text = raw.trim_ascii();
    let mut key = SecretBytes::new(vec![0_u8; KEY_LEN]);
    if hex::decode_to_slice(text, key.expose_secret_mut()).is_ok() {
        return Ok(key);
    }
    Err(Error::misconfigured(
        setting,
        "the key is neither 32 raw bytes nor 64 hex digits",
    ))
}

/// The documents store the routes use: `inner` encrypted at rest with
/// data keys kept (wrapped by `wrapper`) in `data_keys`, beside the
/// documents (SQLite or PostgreSQL), with the library's default cache of
/// unwrapped keys.
pub(crate) fn encrypted_documents(
    inner: Arc<dyn DocumentStore>,
    data_keys: Arc<dyn DataKeyStore>,
    wrapper: Arc<dyn KeyWrapper>,
) -> EncryptedDocumentStore {
    EncryptedDocumentStore::new(inner, data_keys, wrapper)
}

#[cfg(feature = "vault")]
mod vault {
    use docaiche_core::Error;
    use docaiche_store::vault::{VaultAuth, VaultClient, VaultConfig};

    use super::{Resolved, plain_reference};
    use crate::config::{Config, EnvLookup};

    /// A credential from an `env:` or `file:` reference (or a development
    /// literal); `vault:` is refused (Vault cannot hold its own login).
    fn credential(
        setting: &'static str,
        value: Option<&str>,
        env: EnvLookup<'_>,
    ) -> Result<docaiche_core::SecretString, Error> {
        let value = value.ok_or_else(|| Error::misconfigured(setting, "is required"))?;
        match plain_reference(setting, value, env)? {
            Resolved::Value(secret) => Ok(secret),
            Resolved::Vault(_) => Err(Error::misconfigured(
                setting,
                "cannot be a vault: reference; use env:NAME or file:/path",
            )),
        }
    }

    /// The Vault client of `[secrets.vault]`. Sends nothing: the first
    /// read logs in.
    pub(super) fn client(config: &Config, env: EnvLookup<'_>) -> Result<VaultClient, Error> {
        let section = &config.secrets.vault;
        let address = section
            .address
            .clone()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| Error::misconfigured("secrets.vault.address", "is required"))?;
        let auth = if section.token_source.is_some() {
            VaultAuth::token(credential(
                "secrets.vault.token_source",
                section.token_source.as_deref(),
                env,
            )?)
        } else {
            let mut auth = VaultAuth::approle(
                credential(
                    "secrets.vault.role_id_source",
                    section.role_id_source.as_deref(),
                    env,
                )?,
                credential(
                    "secrets.vault.secret_id_source",
                    section.secret_id_source.as_deref(),
                    env,
                )?,
            );
            if let VaultAuth::AppRole { mount, .. } = &mut auth {
                mount.clone_from(&section.approle_mount);
            }
            auth
        };
        let mut vault = VaultConfig::new(address, auth)
            .with_kv_mount(section.kv_mount.clone())
            .with_kv_prefix(section.kv_prefix.clone())
            .with_transit_mount(section.transit_mount.clone());
        if let Some(namespace) = &section.namespace {
            vault = vault.with_namespace(namespace.clone());
        }
        // The library names its settings `vault.*`; ours are `secrets.vault.*`.
        VaultClient::new(vault).map_err(|e| match e {
            Error::Misconfigured { setting, reason } => Error::Misconfigured {
                setting: format!("secrets.{setting}").into(),
                reason,
            },
            other => other,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use axum::body::Bytes;
    use docaiche_core::document::NewDocument;
    use docaiche_core::{PrincipalId, TenantId};

    use super::*;
    use crate::config::Environment;
    use crate::test_support::TestDir;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn setting_of(err: &Error) -> String {
        match err {
            Error::Misconfigured { setting, .. } => setting.to_string(),
            other => panic!("expected Misconfigured, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_missing_required_secret_stops_production_start_up_by_name() {
        let dir = TestDir::new("backends-missing-secret");
        let mut config = Config::from_toml_str(
            r#"
            environment = "production"
            [storage]
            data_dir = "/var/lib/docaiche"
            [cors]
            allowed_origins = []
            [http]
            https = "refuse"
            trusted_proxies = ["10.0.0.0/24"]
            [keys]
            local_key_file = "/etc/docaiche/master.key"
            [secrets]
            sources = ["env"]
            [metrics]
            bind = "10.0.0.5:9100"
            "#,
        )
        .unwrap();
        config.validate().expect("a valid production configuration");
        config.storage.data_dir = dir.path().to_path_buf();
        // The pepper is there, the JWT signing key is not.
        let pepper = "p".repeat(40);
        let env = env_of(&[("DOCAICHE_SECRET_API_KEY_PEPPER_V1", &pepper)]);
        let err = crate::app::open_auth(&config, &env).await.unwrap_err();
        assert_eq!(setting_of(&err), "secrets.sources");
        let text = err.to_string();
        assert!(text.contains("`jwt/signing-key`"), "{text}");
        assert!(text.contains("DOCAICHE_SECRET_JWT_SIGNING_KEY"), "{text}");
        assert!(!text.contains(&pepper), "{text}");
        // Nothing was generated in its place.
        assert!(!dir.path().join("keys").exists());

        // Both present: start-up gets past the secrets.
        let pem = String::from_utf8(crate::keys::ed25519_pem().unwrap()).unwrap();
        let audit_key = "a".repeat(32);
        let env = env_of(&[
            ("DOCAICHE_SECRET_API_KEY_PEPPER_V1", &pepper),
            ("DOCAICHE_SECRET_JWT_SIGNING_KEY", &pem),
            ("DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY", &audit_key),
        ]);
        crate::app::open_auth(&config, &env)
            .await
            .expect("secrets found");
        assert_eq!(config.environment, Environment::Production);
    }

    #[tokio::test]
    async fn file_and_env_sources_are_tried_in_order() {
        let dir = TestDir::new("backends-chain");
        let secrets_dir = dir.path().join("secrets");
        std::fs::create_dir_all(secrets_dir.join("api-key")).unwrap();
        std::fs::write(secrets_dir.join("api-key/pepper-v1"), "f".repeat(40)).unwrap();
        let mut config = Config::default();
        config.secrets.sources = vec!["env".into(), format!("file:{}", secrets_dir.display())];
        let env = env_of(&[("DOCAICHE_SECRET_API_KEY_PEPPER_V1", &"e".repeat(40))]);
        let secrets = Secrets::from_config(&config, &env).await.unwrap();
        let chain = secrets.chain().unwrap();
        let pepper = chain.get("api-key/pepper-v1").await.unwrap().unwrap();
        assert_eq!(pepper.value.expose_secret(), "e".repeat(40).as_bytes());
        let secrets = Secrets::from_config(&config, &|_| None).await.unwrap();
        let chain = secrets.chain().unwrap();
        let pepper = chain.get("api-key/pepper-v1").await.unwrap().unwrap();
        assert_eq!(pepper.value.expose_secret(), "f".repeat(40).as_bytes());
        // Only the required secrets' variables are read.
        let env = env_of(&[("DOCAICHE_SECRET_OTHER", "x")]);
        let secrets = Secrets::from_config(&config, &env).await.unwrap();
        assert!(
            secrets
                .chain()
                .unwrap()
                .get("other")
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn references_resolve_without_echoing_values() {
        let dir = TestDir::new("backends-resolve");
        let file = dir.path().join("url");
        std::fs::write(&file, "postgres://u:hunter2@db/x\n").unwrap();
        let secrets = Secrets::from_config(&Config::default(), &|_| None)
            .await
            .unwrap();
        let env = env_of(&[("DB_URL", "postgres://u:hunter2@db/y")]);
        let from_env = secrets
            .resolve("store.url_source", "env:DB_URL", &env)
            .await;
        assert_eq!(
            from_env.unwrap().expose_secret(),
            "postgres://u:hunter2@db/y"
        );
        let from_file = secrets
            .resolve(
                "store.url_source",
                &format!("file:{}", file.display()),
                &env,
            )
            .await;
        assert_eq!(
            from_file.unwrap().expose_secret(),
            "postgres://u:hunter2@db/x"
        );
        let err = secrets
            .resolve("store.url_source", "env:ABSENT", &env)
            .await
            .unwrap_err();
        assert_eq!(setting_of(&err), "store.url_source");
        assert!(err.to_string().contains("ABSENT"));
        // vault: without [secrets.vault] (or without the feature): refused.
        let err = secrets
            .resolve("store.url_source", "vault:db/url", &env)
            .await
            .unwrap_err();
        assert_eq!(setting_of(&err), "store.url_source");
    }

    #[test]
    fn local_keys_are_32_raw_bytes_or_64_hex_digits() {
        let raw = decode_key("k", vec![7; 32]).unwrap();
        assert_eq!(raw.expose_secret(), &vec![7; 32]);
        let hex = decode_key("k", format!("{}\n", "0a".repeat(32)).into_bytes()).unwrap();
        assert_eq!(hex.expose_secret(), &vec![10; 32]);
        for bad in [
            vec![1; 31],
            vec![1; 33],
            "zz".repeat(32).into_bytes(),
            Vec::new(),
        ] {
            let err = decode_key("keys.local_key_file", bad).unwrap_err();
            assert_eq!(setting_of(&err), "keys.local_key_file");
        }
    }

    #[tokio::test]
    async fn a_document_put_through_the_states_store_is_ciphertext_in_the_store() {
        let dir = TestDir::new("backends-encrypted");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        crate::storage::prepare_data_dir(dir.path()).unwrap();
        crate::keys::prepare(&config.key_source()).unwrap();
        let state = crate::app::AppState::from_config(&config, &|_| None)
            .await
            .unwrap();

        let tenant = TenantId::new("acme").unwrap();
        let owner = PrincipalId::new("alice").unwrap();
        let plaintext = Bytes::from_static(b"%PDF-1.7 the quarterly figures");
        let doc = NewDocument::new(owner, "application/pdf", "q3.pdf", plaintext.clone());
        let meta = state.documents.put(&tenant, doc).await.unwrap();
        let back = state
            .documents
            .get(&tenant, &meta.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back.content, plaintext);

        // The SQLite database underneath holds only ciphertext.
        let db = dir.path().join("docaiche.db");
        let store = docaiche_store::sqlite::SqliteStore::connect(
            &docaiche_store::sqlite::SqliteConfig::file(db.to_string_lossy()),
        )
        .await
        .unwrap();
        let raw = store
            .documents()
            .get(&tenant, &meta.id)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(raw.content, plaintext);
        assert!(
            !raw.content
                .windows(b"quarterly".len())
                .any(|w| w == b"quarterly"),
            "plaintext leaked into the store"
        );
        assert!(raw.content.starts_with(b"DCE1"));
    }

    #[tokio::test]
    async fn a_missing_local_key_file_is_refused_by_name() {
        let dir = TestDir::new("backends-key-file");
        let mut config = Config::default();
        config.keys.local_key_file = Some(dir.path().join("absent.key"));
        let secrets = Secrets::from_config(&config, &|_| None).await.unwrap();
        let err = key_wrapper(&config, &secrets, &|_| None).await.unwrap_err();
        assert_eq!(setting_of(&err), "keys.local_key_file");
        std::fs::write(dir.path().join("absent.key"), [3; 32]).unwrap();
        key_wrapper(&config, &secrets, &|_| None)
            .await
            .expect("a key");
    }

    /// A name no other test run uses.
    #[cfg(any(feature = "postgres", feature = "vault"))]
    fn unique(label: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{label}_{}_{nanos}", std::process::id())
    }

    /// A request with `key` as its API key and `body` as JSON.
    #[cfg(feature = "postgres")]
    fn with_key(method: &str, uri: &str, key: &str, body: &str) -> http::Request<axum::body::Body> {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header("x-api-key", key)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap()
    }

    /// A connection for the test's own SQL, through the store crate's
    /// `sqlx` (no `psql` binary needed).
    #[cfg(feature = "postgres")]
    pub(crate) async fn admin(url: &str) -> docaiche_store::postgres::sqlx::PgPool {
        docaiche_store::postgres::sqlx::PgPool::connect(url)
            .await
            .expect("connect to the test database")
    }

    /// Drops the test schema, even when the test fails.
    #[cfg(feature = "postgres")]
    pub(crate) struct Schema {
        /// The connection that created it.
        pub(crate) admin: docaiche_store::postgres::sqlx::PgPool,
        /// Its name.
        pub(crate) name: String,
    }

    #[cfg(feature = "postgres")]
    impl Drop for Schema {
        fn drop(&mut self) {
            // `Drop` cannot await: a thread of its own with a small runtime.
            let (admin, name) = (self.admin.clone(), self.name.clone());
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    // A fresh connection: the pool's may belong to the
                    // test's (finished) runtime.
                    let options = admin.connect_options();
                    let pool =
                        docaiche_store::postgres::sqlx::PgPool::connect_with((*options).clone())
                            .await
                            .map_err(std::io::Error::other)?;
                    docaiche_store::postgres::sqlx::query(&format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE"
                    ))
                    .execute(&pool)
                    .await
                    .map_err(std::io::Error::other)?;
                    pool.close().await;
                    Ok::<(), std::io::Error>(())
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop the test schema {}", self.name);
            }
        }
    }

    /// A fresh schema `<label>_<pid>_<nanos>` on the test PostgreSQL at
    /// `url` (dropped with the returned [`Schema`]), `config.store` pointed
    /// at it through `env:TEST_DATABASE_URL` (three connections), and the
    /// environment lookup that resolves that reference. The caller adds its
    /// own settings and validates.
    #[cfg(feature = "postgres")]
    pub(crate) async fn on_test_schema(
        url: &str,
        label: &str,
        config: &mut Config,
    ) -> (
        Schema,
        impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) {
        let schema = Schema {
            name: unique(label),
            admin: admin(url).await,
        };
        docaiche_store::postgres::sqlx::query(&format!("CREATE SCHEMA {}", schema.name))
            .execute(&schema.admin)
            .await
            .expect("create the test schema");
        config.store.backend = StoreBackend::Postgres;
        config.store.url_source = Some("env:TEST_DATABASE_URL".into());
        config.store.schema = Some(schema.name.clone());
        config.store.max_connections = 3;
        let url = url.to_owned();
        let env = move |name: &str| (name == "TEST_DATABASE_URL").then(|| url.clone());
        (schema, env)
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_app_state_runs_on_postgres_and_serves_api_keys_over_http() {
        const SUITE: &str = "server-postgres";
        let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
            return;
        };
        let dir = TestDir::new("backends-postgres");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        let (schema, env) = on_test_schema(&url, "server_test", &mut config).await;
        config.validate().expect("valid");
        crate::storage::prepare_data_dir(dir.path()).unwrap();
        crate::keys::prepare(&config.key_source()).unwrap();
        let state = crate::app::AppState::from_config(&config, &env)
            .await
            .expect("state on PostgreSQL");

        let admin = state
            .auth
            .bootstrap_key("acme", "admin", "first")
            .await
            .unwrap();
        let key = admin.key.expose_secret().to_owned();
        let app = crate::app::router(state.clone());
        let body = r#"{"name":"reader","scopes":["documents:read"]}"#;
        let (status, _, created) =
            crate::app::tests::send(app.clone(), with_key("POST", "/v1/keys", &key, body)).await;
        assert_eq!(
            status,
            http::StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&created)
        );
        let (status, _, listed) =
            crate::app::tests::send(app.clone(), with_key("GET", "/v1/keys", &key, "")).await;
        assert_eq!(status, http::StatusCode::OK);
        let listed = crate::app::tests::json(&listed);
        let names: Vec<&str> = listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|k| k["name"].as_str())
            .collect();
        assert!(
            names.contains(&"reader") && names.contains(&"first"),
            "{listed}"
        );

        // The rows are in the test schema on PostgreSQL, not in SQLite.
        let rows: i64 = docaiche_store::postgres::sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {}.api_keys",
            schema.name
        ))
        .fetch_one(&schema.admin)
        .await
        .unwrap();
        assert_eq!(rows, 2);
        assert!(!dir.path().join("docaiche.db").exists());

        // Readiness reports the database with its pool figures.
        let (status, _, ready) =
            crate::app::tests::send(app, crate::app::tests::get_request("/health/ready")).await;
        assert_eq!(status, http::StatusCode::OK);
        let text = String::from_utf8_lossy(&ready);
        assert!(
            text.contains("postgres") && text.contains("pool size="),
            "{text}"
        );

        // Documents go through the encrypting store into PostgreSQL.
        let tenant = TenantId::new("acme").unwrap();
        let plaintext = Bytes::from_static(b"postgres plaintext marker");
        let doc = NewDocument::new(
            PrincipalId::new("alice").unwrap(),
            "text/plain",
            "a.txt",
            plaintext.clone(),
        );
        let meta = state.documents.put(&tenant, doc).await.unwrap();
        let back = state
            .documents
            .get(&tenant, &meta.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back.content, plaintext);
        // Its data key is in PostgreSQL too, wrapped: another instance (or
        // this one after a restart) reads the document.
        let keys: i64 = docaiche_store::postgres::sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {}.data_keys WHERE tenant_id = 'acme' AND subject_id = 'alice'",
            schema.name
        ))
        .fetch_one(&schema.admin)
        .await
        .unwrap();
        assert_eq!(keys, 1);
        // A second instance writes an audit trail of its own: a file
        // trail has one writer.
        let mut second = config.clone();
        second.audit.path = Some(dir.path().join("second").join("audit.jsonl"));
        let restarted = crate::app::AppState::from_config(&second, &env)
            .await
            .expect("a second instance on PostgreSQL");
        let again = restarted
            .documents
            .get(&tenant, &meta.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.content, plaintext);
        crate::report::mark_ran(SUITE, &format!("schema {}", schema.name));
    }

    #[cfg(feature = "redis")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jwt_revocations_live_on_redis() {
        use docaiche_core::{AuthMethod, Principal};

        const SUITE: &str = "server-redis";
        let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_REDIS_URL") else {
            return;
        };
        let dir = TestDir::new("backends-redis");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.revocation.backend = crate::config::RevocationBackend::Redis;
        config.revocation.url_source = Some("env:TEST_REDIS_URL".into());
        config.validate().expect("valid");
        let redis_url = url.clone();
        let env = move |name: &str| (name == "TEST_REDIS_URL").then(|| redis_url.clone());
        crate::storage::prepare_data_dir(dir.path()).unwrap();
        crate::keys::prepare(&config.key_source()).unwrap();
        let state = crate::app::AppState::from_config(&config, &env)
            .await
            .expect("state with Redis revocations");

        let alice = Principal::new(
            PrincipalId::new("alice").unwrap(),
            TenantId::new("acme").unwrap(),
            AuthMethod::Password,
        );
        let issued = state.auth.issuer.issue(&alice).unwrap();
        let bearer = |token: &str| {
            http::Request::get("/v1/whoami")
                .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let app = crate::app::router(state);
        let token = issued.token.expose_secret().clone();
        let (status, _, _) = crate::app::tests::send(app.clone(), bearer(&token)).await;
        assert_eq!(status, http::StatusCode::OK);

        // Revoked on Redis by another instance: refused here.
        let other = docaiche_store::redis::RedisStore::builder(url.as_str())
            .build()
            .unwrap();
        other
            .revocations()
            .revoke(&issued.token_id, issued.expires_at)
            .await
            .unwrap();
        let (status, _, _) = crate::app::tests::send(app.clone(), bearer(&token)).await;
        assert_eq!(status, http::StatusCode::UNAUTHORIZED);

        let (status, _, ready) =
            crate::app::tests::send(app, crate::app::tests::get_request("/health/ready")).await;
        assert_eq!(status, http::StatusCode::OK);
        let text = String::from_utf8_lossy(&ready);
        assert!(text.contains("redis_store"), "{text}");
        crate::report::mark_ran(SUITE, "JWT revocations on Redis");
    }

    #[cfg(feature = "redis")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revoked_api_key_is_refused_by_every_instance_at_once_over_redis() {
        use std::time::Duration;

        use crate::config::AnnounceBackend;

        const SUITE: &str = "server-redis";
        let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_REDIS_URL") else {
            return;
        };
        // Three instances on one database: two announce over Redis, the
        // third does not (the cache TTL, 30 s, bounds it).
        let dir = TestDir::new("backends-announce");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.revocation.announce_api_keys = AnnounceBackend::Redis;
        config.revocation.url_source = Some("env:TEST_REDIS_URL".into());
        config.validate().expect("valid");
        let mut deaf = config.clone();
        deaf.revocation = crate::config::RevocationSection::default();
        let redis_url = url.clone();
        let env = move |name: &str| (name == "TEST_REDIS_URL").then(|| redis_url.clone());
        crate::storage::prepare_data_dir(dir.path()).unwrap();
        crate::keys::prepare(&config.key_source()).unwrap();
        // One audit trail per instance: a file trail has one writer.
        let own_trail = |config: &Config, name: &str| {
            let mut config = config.clone();
            config.audit.path = Some(dir.path().join(name).join("audit.jsonl"));
            config
        };
        let a = crate::app::AppState::from_config(&config, &env)
            .await
            .expect("instance a");
        let b = crate::app::AppState::from_config(&own_trail(&config, "b"), &env)
            .await
            .expect("instance b");
        let c = crate::app::AppState::from_config(&own_trail(&deaf, "c"), &env)
            .await
            .expect("instance c");
        assert!(c.auth.invalidation_listener().is_none());
        let listening = b.auth.invalidation_listener().expect("b listens");
        tokio::time::timeout(Duration::from_secs(5), listening.subscribed())
            .await
            .expect("b subscribed to the announcements");

        let admin = a.auth.bootstrap_key("acme", "admin", "ops").await.unwrap();
        let victim = a.auth.bootstrap_key("acme", "bob", "ci").await.unwrap();
        let with_key = |method: http::Method, path: &str, key: &SecretString| {
            http::Request::builder()
                .method(method)
                .uri(path)
                .header("x-api-key", key.expose_secret().as_str())
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let whoami = || with_key(http::Method::GET, "/v1/whoami", &victim.key);
        let (app_a, app_b, app_c) = (
            crate::app::router(a),
            crate::app::router(b),
            crate::app::router(c),
        );
        for app in [&app_b, &app_c] {
            let (status, _, _) = crate::app::tests::send(app.clone(), whoami()).await;
            assert_eq!(status, http::StatusCode::OK, "cached");
        }

        let revoke = with_key(
            http::Method::DELETE,
            &format!("/v1/keys/{}", victim.record.id),
            &admin.key,
        );
        let (status, _, _) = crate::app::tests::send(app_a, revoke).await;
        assert_eq!(status, http::StatusCode::NO_CONTENT);
        let refused = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let (status, _, _) = crate::app::tests::send(app_b.clone(), whoami()).await;
                if status == http::StatusCode::UNAUTHORIZED {
                    break;
                }
                assert_eq!(status, http::StatusCode::OK);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(refused.is_ok(), "b still accepts the revoked key");
        let (status, _, _) = crate::app::tests::send(app_c, whoami()).await;
        assert_eq!(
            status,
            http::StatusCode::OK,
            "without announcements, c keeps its cached copy until the TTL"
        );
        crate::report::mark_ran(SUITE, "API key revocations announced over Redis");
    }

    #[cfg(feature = "vault")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn secrets_come_from_vault_kv_and_documents_are_wrapped_by_transit() {
        use docaiche_store::vault::{TransitKeyWrapper, VaultAuth, VaultClient, VaultConfig};

        const SUITE: &str = "server-vault";
        let Some(addr) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_VAULT_ADDR") else {
            return;
        };
        let Some(token) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_VAULT_TOKEN") else {
            return;
        };
        let root = VaultClient::new(VaultConfig::new(
            addr.clone(),
            VaultAuth::token(SecretString::new(token.clone())),
        ))
        .unwrap();
        match root
            .write_json(
                "sys/mounts/transit",
                &serde_json::json!({"type": "transit"}),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.log_chain().contains("already in use") => {}
            Err(e) => panic!("enabling transit: {}", e.log_chain()),
        }
        let prefix = unique("server-test").replace('_', "-");
        let pepper = "v".repeat(40);
        let pem = String::from_utf8(crate::keys::ed25519_pem().unwrap()).unwrap();
        for (path, value) in [
            ("api-key/pepper-v1", pepper.as_str()),
            ("jwt/signing-key", pem.as_str()),
            ("db/url", "postgres://app:from-vault@db/docaiche"),
        ] {
            root.write_json(
                &format!("secret/data/{prefix}/{path}"),
                &serde_json::json!({"data": {"value": value}}),
            )
            .await
            .unwrap();
        }
        let transit_key = unique("server-docs").replace('_', "-");
        TransitKeyWrapper::new(root.clone(), transit_key.clone())
            .unwrap()
            .ensure_key()
            .await
            .unwrap();

        let dir = TestDir::new("backends-vault");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.secrets.sources = vec!["env".into(), "vault".into()];
        config.secrets.vault.address = Some(addr.clone());
        config.secrets.vault.token_source = Some("env:TEST_VAULT_TOKEN".into());
        config.secrets.vault.kv_prefix = prefix.clone();
        config.encryption.key_wrapper = KeyWrapperKind::Vault;
        config.encryption.transit_key = transit_key.clone();
        config.validate().expect("valid");
        let vault_token = token.clone();
        let env = move |name: &str| (name == "TEST_VAULT_TOKEN").then(|| vault_token.clone());

        // Through the chain: env has nothing, Vault KV has the pepper.
        let secrets = Secrets::from_config(&config, &env).await.unwrap();
        let found = secrets
            .chain()
            .unwrap()
            .get("api-key/pepper-v1")
            .await
            .unwrap()
            .expect("from KV");
        assert_eq!(found.value.expose_secret(), pepper.as_bytes());
        let url = secrets
            .resolve("store.url_source", "vault:db/url", &env)
            .await
            .unwrap();
        assert_eq!(url.expose_secret(), "postgres://app:from-vault@db/docaiche");
        let err = secrets
            .resolve("store.url_source", "vault:db/absent", &env)
            .await
            .unwrap_err();
        assert_eq!(setting_of(&err), "store.url_source");

        // The Transit wrapper wraps under Vault.
        let wrapper = key_wrapper(&config, &secrets, &env).await.unwrap();
        let data_key = wrapper.generate_data_key(b"tenant=acme").await.unwrap();
        assert!(data_key.wrapped.ciphertext.starts_with(b"vault:v"));

        // The whole state: auth secrets from KV, documents under Transit.
        crate::storage::prepare_data_dir(dir.path()).unwrap();
        let state = crate::app::AppState::from_config(&config, &env)
            .await
            .expect("state on Vault");
        assert!(!dir.path().join("keys").exists(), "nothing generated");
        let tenant = TenantId::new("acme").unwrap();
        let plaintext = Bytes::from_static(b"vault plaintext marker");
        let doc = NewDocument::new(
            PrincipalId::new("alice").unwrap(),
            "text/plain",
            "a.txt",
            plaintext.clone(),
        );
        let meta = state.documents.put(&tenant, doc).await.unwrap();
        let back = state
            .documents
            .get(&tenant, &meta.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back.content, plaintext);

        // A missing secret is named at start-up; a missing Transit key too.
        let mut missing = config.clone();
        missing.secrets.vault.kv_prefix = format!("{prefix}-empty");
        let err = crate::app::open_auth(&missing, &env).await.unwrap_err();
        assert_eq!(setting_of(&err), "secrets.sources");
        assert!(err.to_string().contains("api-key/pepper-v1"), "{err}");
        let mut no_key = config.clone();
        no_key.encryption.transit_key = unique("absent").replace('_', "-");
        let secrets = Secrets::from_config(&no_key, &env).await.unwrap();
        let err = key_wrapper(&no_key, &secrets, &env).await.unwrap_err();
        assert_eq!(setting_of(&err), "encryption.transit_key");
        crate::report::mark_ran(SUITE, &format!("OpenBao at {addr}"));
    }
}
