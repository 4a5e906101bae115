//! Configuration: embedded defaults, then an optional TOML file, then
//! `DOCAICHE_*` environment variables, then [`Config::validate`].
//!
//! Every setting has a development default, so `cargo run -p docaiche-server`
//! needs no setup. Production refuses to start while a security-relevant
//! development default is still in use, and names each offending setting with
//! how to fix it.
//!
//! # Environment variables
//!
//! Each overrides the TOML setting named beside it.
//!
//! | variable | setting | value |
//! |---|---|---|
//! | `DOCAICHE_CONFIG` | (the file itself) | path of the TOML file; `--config` wins |
//! | `DOCAICHE_ENV` | `environment` | `development` (default) or `production` |
//! | `DOCAICHE_BIND` | `server.bind` | socket address, default `127.0.0.1:8080` |
//! | `DOCAICHE_BEHIND_PROXY` | `server.behind_proxy` | `true` when TLS ends at a reverse proxy |
//! | `DOCAICHE_REQUEST_TIMEOUT_SECS` | `server.request_timeout_secs` | whole seconds, default 30 |
//! | `DOCAICHE_BODY_LIMIT_BYTES` | `server.body_limit_bytes` | bytes, default 16 MiB |
//! | `DOCAICHE_JSON_BODY_LIMIT_BYTES` | `server.json_body_limit_bytes` | bytes, default 64 KiB |
//! | `DOCAICHE_SHUTDOWN_GRACE_SECS` | `server.shutdown_grace_secs` | whole seconds, default 30 |
//! | `DOCAICHE_DATA_DIR` | `storage.data_dir` | directory, default `./data` |
//! | `DOCAICHE_CORS_ALLOWED_ORIGINS` | `cors.allowed_origins` | comma list; empty for none |
//! | `DOCAICHE_HTTPS` | `http.https` | `off` (development default), `redirect` or `refuse` |
//! | `DOCAICHE_TLS_CERT_FILE` | `http.tls_cert_file` | PEM certificate chain; TLS with the key |
//! | `DOCAICHE_TLS_KEY_FILE` | `http.tls_key_file` | PEM private key of the certificate |
//! | `DOCAICHE_HTTPS_TRUSTED_PROXIES` | `http.trusted_proxies` | CIDR list believed for `X-Forwarded-Proto` |
//! | `DOCAICHE_IDLE_TIMEOUT_SECS` | `http.idle_timeout_secs` | whole seconds, default 75 |
//! | `DOCAICHE_HEADER_READ_TIMEOUT_SECS` | `http.header_read_timeout_secs` | whole seconds, default 10 |
//! | `DOCAICHE_MAX_CONNECTIONS` | `http.max_connections` | open connections, default 10000 |
//! | `DOCAICHE_MAX_CONNECTIONS_PER_ADDRESS` | `http.max_connections_per_address` | per client address (IPv6: /64), default 64 |
//! | `DOCAICHE_PUBLIC_ORIGIN` | `http.public_origin` | `https://host[:port]` plain HTTP is redirected to |
//! | `DOCAICHE_METRICS_BIND` | `metrics.bind` | socket address serving `/metrics` alone |
//! | `DOCAICHE_KEY_SOURCE` | `keys.source` | `env:NAME`, `file:/path` or `vault:path` |
//! | `DOCAICHE_LOCAL_KEY_FILE` | `keys.local_key_file` | path of a key file you manage |
//! | `DOCAICHE_LOG` | `log.filter` | `tracing` filter, default `info` |
//! | `DOCAICHE_LOG_FORMAT` | `log.format` | `json` (default) or `pretty` |
//! | `DOCAICHE_TRUSTED_PROXIES` | `rate_limit.trusted_proxies` | comma list of CIDR blocks |
//! | `DOCAICHE_RATE_LIMIT_BACKEND` | `rate_limit.backend` | `local` (default) or `redis` |
//! | `DOCAICHE_REDIS_URL_SOURCE` | `rate_limit.redis_url` | `env:NAME` or `file:/path` |
//! | `DOCAICHE_AUTH_PROVIDER` | `auth.provider` | `env` or `file:/directory` |
//! | `DOCAICHE_JWT_ISSUER` | `auth.jwt.issuer` | the `iss` of issued tokens |
//! | `DOCAICHE_STORE_BACKEND` | `store.backend` | `sqlite` (default) or `postgres` |
//! | `DOCAICHE_DATABASE_URL_SOURCE` | `store.url_source` | reference to the PostgreSQL URL |
//! | `DOCAICHE_DATABASE_REPLICA_URL_SOURCE` | `store.replica_url_source` | reference to a replica's URL |
//! | `DOCAICHE_DATABASE_ROW_LEVEL_SECURITY` | `store.row_level_security` | `true` or `false` |
//! | `DOCAICHE_DATABASE_MAX_CONNECTIONS` | `store.max_connections` | pool size, default 10 |
//! | `DOCAICHE_REVOCATION_BACKEND` | `revocation.backend` | `store` (default) or `redis` |
//! | `DOCAICHE_ANNOUNCE_API_KEYS` | `revocation.announce_api_keys` | `none` (default) or `redis` |
//! | `DOCAICHE_REVOCATION_REDIS_URL_SOURCE` | `revocation.url_source` | reference to the Redis URL |
//! | `DOCAICHE_SECRETS_SOURCES` | `secrets.sources` | comma list of `env`, `file:/dir`, `vault` |
//! | `DOCAICHE_VAULT_ADDR` | `secrets.vault.address` | the Vault / OpenBao URL |
//! | `DOCAICHE_VAULT_TOKEN_SOURCE` | `secrets.vault.token_source` | `env:NAME` or `file:/path` |
//! | `DOCAICHE_VAULT_ROLE_ID_SOURCE` | `secrets.vault.role_id_source` | `env:NAME` or `file:/path` |
//! | `DOCAICHE_VAULT_SECRET_ID_SOURCE` | `secrets.vault.secret_id_source` | `env:NAME` or `file:/path` |
//! | `DOCAICHE_VAULT_KV_MOUNT` | `secrets.vault.kv_mount` | default `secret` |
//! | `DOCAICHE_KEY_WRAPPER` | `encryption.key_wrapper` | `local` (default) or `vault` |
//! | `DOCAICHE_TRANSIT_KEY` | `encryption.transit_key` | the Transit key's name |
//!
//! `[secrets] sources` is the chain the named secrets (API-key peppers,
//! the JWT signing key) are read through; `auth.provider` is its older,
//! one-source form (setting both is refused). Settings holding a URL or a
//! credential (`store.url_source`, `revocation.url_source`,
//! `secrets.vault.*_source`) are references resolved by the same providers.
//! Backends a build lacks (`postgres`, `redis`, `vault` features) are
//! refused by name with the feature to build with.
//!
//! With `auth.provider = "env"` the secrets themselves come from
//! `DOCAICHE_SECRET_API_KEY_PEPPER_V<n>` (one per pepper version, at least 32
//! bytes) and `DOCAICHE_SECRET_JWT_SIGNING_KEY` (a PKCS#8 PEM private key of
//! `auth.jwt.algorithm`); with `file:/directory`, from the files
//! `api-key/pepper-v<n>` and `jwt/signing-key` under it.
//!
//! # Secrets
//!
//! Secret-bearing settings hold a *reference* (`env:NAME`, `file:/path`,
//! `vault:path`), never the secret. Besides the typed fields, the raw TOML is
//! scanned for keys named like a secret (`password`, `secret`, `token`,
//! `pepper`, `private_key`) holding a literal string: a secret committed to a
//! configuration file has leaked, whatever the server does next.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use std::sync::Arc;

use docaiche_auth::api_key::{ApiKeyConfig, ApiKeyFormat};
use docaiche_auth::jwt::{Algorithm, JwtConfig};
use docaiche_auth::lockout::{FailedAuthTracker, LockoutConfig};
use docaiche_auth::rbac::{RbacConfig, RoleBindings, RolePolicy};
use docaiche_core::secret_provider::validate_secret_name;
use docaiche_core::{Error, PrincipalId, TenantId};
use docaiche_ratelimit::policy::RateLimitConfig;
use serde::Deserialize;

/// Looks up an environment variable; the process environment in `main`, a map
/// in tests (mutating the real environment is `unsafe` and racy in tests).
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Which rules apply at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Environment {
    /// Embedded defaults allowed, each logged as a warning.
    #[default]
    Development,
    /// Security-relevant development defaults refuse start-up.
    Production,
}

impl Environment {
    /// The name as written in the configuration.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }
}

impl FromStr for Environment {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" => Ok(Self::Development),
            "production" => Ok(Self::Production),
            _ => Err("expected `development` or `production`"),
        }
    }
}

/// The whole configuration (`PartialEq` only: rate-limit periods are
/// fractional seconds).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    /// `development` or `production`.
    pub(crate) environment: Environment,
    /// `[server]`: the listener and request limits.
    pub(crate) server: ServerConfig,
    /// `[storage]`: where files live.
    pub(crate) storage: StorageConfig,
    /// `[cors]`: which browser origins may call the API.
    pub(crate) cors: CorsConfig,
    /// `[http]`: security headers, HTTPS enforcement, TLS, idle timeout,
    /// compression (see `http.rs`).
    pub(crate) http: crate::http::HttpConfig,
    /// `[keys]`: where key material comes from.
    pub(crate) keys: KeysConfig,
    /// `[log]`: filter and format.
    pub(crate) log: LogConfig,
    /// `[rate_limit]`: policies per route class, tiers, trusted proxies.
    pub(crate) rate_limit: RateLimitSection,
    /// `[auth]`: secrets, JWT, API keys, RBAC, failed-authentication tracking.
    pub(crate) auth: AuthSection,
    /// `[store]`: where API keys, revocations, audit events and documents live.
    pub(crate) store: StoreSection,
    /// `[revocation]`: where revoked JWT ids live, and how revoked API
    /// keys reach other instances.
    pub(crate) revocation: RevocationSection,
    /// `[secrets]`: the secret provider chain (env, file, Vault).
    pub(crate) secrets: SecretsSection,
    /// `[encryption]`: the key wrapper of encryption at rest.
    pub(crate) encryption: EncryptionSection,
    /// `[documents]`: upload limits, inline/background extraction, worker, cache.
    pub(crate) documents: crate::documents::DocumentsSection,
    /// `[metrics]`: the Prometheus `/metrics` endpoint.
    pub(crate) metrics: crate::metrics::MetricsSection,
    /// `[telemetry]`: OpenTelemetry trace export (OTLP).
    pub(crate) telemetry: crate::telemetry::TelemetrySection,
    /// `[slo]`: latency and availability objectives (alert rules).
    pub(crate) slo: crate::slo::SloSection,
    /// `[events]`: `/v1/events` WebSocket caps, queues and heartbeats.
    pub(crate) events: crate::events::EventsSection,
    /// `[audit]`: the chained audit trail (sink, buffer, fail-closed).
    pub(crate) audit: crate::audit::AuditSection,
    /// `[retention]`: retention periods, the scheduled purge (see
    /// `compliance.rs`).
    pub(crate) retention: crate::compliance::RetentionSection,
    /// Dotted names of raw TOML keys that look secret-bearing and hold a
    /// literal value. Filled by [`Config::from_toml_str`].
    #[serde(skip)]
    pub(crate) literal_secrets: Vec<String>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerConfig {
    /// Listen address.
    pub(crate) bind: SocketAddr,
    /// TLS is terminated by a reverse proxy in front of this server (which
    /// itself speaks plain HTTP). Silences the wildcard-bind notice.
    pub(crate) behind_proxy: bool,
    /// Deadline for a whole request, in seconds; exceeded → 504 problem.
    pub(crate) request_timeout_secs: u64,
    /// Largest accepted request body, in bytes; larger → 413 problem.
    /// The upload limit: JSON bodies have their own, smaller one.
    pub(crate) body_limit_bytes: usize,
    /// Largest accepted JSON body (every route but the uploads), in bytes;
    /// larger → 413 problem. Never more than `body_limit_bytes` in effect.
    pub(crate) json_body_limit_bytes: usize,
    /// How long in-flight requests may run after SIGINT/SIGTERM, in seconds.
    pub(crate) shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            behind_proxy: false,
            request_timeout_secs: 30,
            body_limit_bytes: 16 * 1024 * 1024,
            json_body_limit_bytes: crate::json::DEFAULT_JSON_BODY_LIMIT,
            shutdown_grace_secs: 30,
        }
    }
}

impl ServerConfig {
    /// [`Self::request_timeout_secs`] as a duration.
    pub(crate) const fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// [`Self::shutdown_grace_secs`] as a duration.
    pub(crate) const fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

/// `[storage]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StorageConfig {
    /// Directory for the server's files (created with mode 0700 if missing).
    pub(crate) data_dir: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
        }
    }
}

/// `[cors]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CorsConfig {
    /// Exact origins (`https://app.example.com`), `*` for any (development
    /// default), or empty to refuse cross-origin requests.
    pub(crate) allowed_origins: Vec<String>,
    /// Let browsers send cookies and client certificates cross-origin
    /// (`Access-Control-Allow-Credentials`); refused with `*`.
    pub(crate) allow_credentials: bool,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: vec!["*".to_owned()],
            allow_credentials: false,
        }
    }
}

/// `[keys]`: where the key-encryption key comes from. Neither set means a
/// generated development key file under the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct KeysConfig {
    /// A reference: `env:NAME`, `file:/absolute/path` or `vault:path`.
    pub(crate) source: Option<String>,
    /// A key file the operator manages (32 random bytes).
    pub(crate) local_key_file: Option<PathBuf>,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogConfig {
    /// A `tracing_subscriber::EnvFilter` directive, e.g. `info,tower_http=debug`.
    pub(crate) filter: String,
    /// Output format.
    pub(crate) format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: LogFormat::Json,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LogFormat {
    /// One JSON object per line, for log pipelines.
    #[default]
    Json,
    /// Multi-line, coloured, for a developer's terminal.
    Pretty,
}

impl FromStr for LogFormat {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            _ => Err("expected `json` or `pretty`"),
        }
    }
}

/// `[rate_limit]`: the `docaiche-ratelimit` configuration, with the
/// server's route classes built in, and where the limiter keeps its state.
///
/// The server's routes use four classes: `probes` (`/health/*`, keyed by
/// client address), `auth` (the public token endpoints `/v1/auth/*`,
/// keyed by client address, strict), `default` (reads and everything not otherwise
/// classed, including unknown routes) and `documents` (document
/// processing, stricter, with a per-tenant concurrency limit). Each has a
/// built-in policy ([`RateLimitSection::builtin_policies`]); a policy of
/// the same name in the file replaces it, other names add policies (for
/// tiers).
///
/// The backend keys (`backend`, `redis_url`, `redis_cluster`,
/// `on_redis_failure`, `instance_share`) sit beside the library's keys in
/// the one table; unknown keys are still refused (by [`RateLimitConfig`]).
#[derive(Clone, PartialEq)]
pub(crate) struct RateLimitSection {
    /// The library's settings: policies, tiers, trusted proxies.
    pub(crate) limits: RateLimitConfig,
    /// Where the limiter's state lives.
    pub(crate) backend: RateLimitBackend,
    /// A reference (`env:NAME`, `file:/path`) to the Redis URL, which may
    /// carry a password; with [`Self::redis_cluster`], a comma-separated
    /// list of node URLs.
    pub(crate) redis_url: Option<String>,
    /// The URL names nodes of a Redis Cluster.
    pub(crate) redis_cluster: bool,
    /// What to do while Redis is down.
    pub(crate) on_redis_failure: OnRedisFailure,
    /// This instance's share of each limit while falling back, in (0, 1].
    pub(crate) instance_share: f64,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        Self {
            limits: RateLimitConfig::default(),
            backend: RateLimitBackend::default(),
            redis_url: None,
            redis_cluster: false,
            on_redis_failure: OnRedisFailure::default(),
            instance_share: 1.0,
        }
    }
}

impl fmt::Debug for RateLimitSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A literal URL may carry a password: show references only.
        let redis_url = self.redis_url.as_deref().map(|url| {
            if SecretRef::looks_like_reference(url) {
                url
            } else {
                "<literal, redacted>"
            }
        });
        f.debug_struct("RateLimitSection")
            .field("limits", &self.limits)
            .field("backend", &self.backend)
            .field("redis_url", &redis_url)
            .field("redis_cluster", &self.redis_cluster)
            .field("on_redis_failure", &self.on_redis_failure)
            .field("instance_share", &self.instance_share)
            .finish()
    }
}

/// The backend keys of `[rate_limit]`, split off before the rest goes to
/// [`RateLimitConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendKeys {
    #[serde(default)]
    backend: RateLimitBackend,
    #[serde(default)]
    redis_url: Option<String>,
    #[serde(default)]
    redis_cluster: bool,
    #[serde(default)]
    on_redis_failure: OnRedisFailure,
    #[serde(default = "one")]
    instance_share: f64,
}

/// The default [`RateLimitSection::instance_share`].
const fn one() -> f64 {
    1.0
}

impl<'de> Deserialize<'de> for RateLimitSection {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        use serde_json::{Map, Value};

        const BACKEND_KEYS: [&str; 5] = [
            "backend",
            "redis_url",
            "redis_cluster",
            "on_redis_failure",
            "instance_share",
        ];
        let mut table = Map::<String, Value>::deserialize(deserializer)?;
        let mut backend = Map::new();
        for key in BACKEND_KEYS {
            if let Some(value) = table.remove(key) {
                backend.insert(key.to_owned(), value);
            }
        }
        let keys: BackendKeys =
            serde_json::from_value(Value::Object(backend)).map_err(D::Error::custom)?;
        let limits: RateLimitConfig =
            serde_json::from_value(Value::Object(table)).map_err(D::Error::custom)?;
        Ok(Self {
            limits,
            backend: keys.backend,
            redis_url: keys.redis_url,
            redis_cluster: keys.redis_cluster,
            on_redis_failure: keys.on_redis_failure,
            instance_share: keys.instance_share,
        })
    }
}

/// `rate_limit.backend`: where the limiter keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RateLimitBackend {
    /// In process: each instance counts on its own.
    #[default]
    Local,
    /// Redis (standalone or Cluster): instances share each limit.
    Redis,
}

impl RateLimitBackend {
    /// The name as written in the configuration.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Redis => "redis",
        }
    }
}

impl FromStr for RateLimitBackend {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(Self::Local),
            "redis" => Ok(Self::Redis),
            _ => Err("expected `local` or `redis`"),
        }
    }
}

/// `rate_limit.on_redis_failure`: what the limiter does while Redis is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OnRedisFailure {
    /// Decide in process with [`RateLimitSection::instance_share`] of each
    /// limit.
    #[default]
    Fallback,
    /// Deny every request (429 with `Retry-After`).
    FailClosed,
    /// Allow every request, unlimited.
    FailOpen,
}

impl OnRedisFailure {
    /// The name as written in the configuration.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Fallback => "fallback",
            Self::FailClosed => "fail_closed",
            Self::FailOpen => "fail_open",
        }
    }
}

impl RateLimitSection {
    /// The route classes the server's router uses.
    pub(crate) const CLASSES: [&'static str; 4] = ["auth", "default", "documents", "probes"];

    /// The built-in policies of [`Self::CLASSES`].
    pub(crate) fn builtin_policies() -> RateLimitConfig {
        // A literal, checked by the tests; a typo here fails every start.
        serde_json::from_value(serde_json::json!({
            "policies": {
                "auth": { "limits": [
                    { "key": "client_addr", "limit": 30, "period_secs": 60 }
                ]},
                "default": { "limits": [
                    { "key": "tenant", "limit": 1200, "period_secs": 60 },
                    { "key": "principal", "limit": 300, "period_secs": 60 }
                ]},
                "documents": {
                    "limits": [
                        { "key": "tenant", "limit": 120, "period_secs": 60, "cost": "request" },
                        { "key": "principal", "limit": 30, "period_secs": 60, "cost": "request" }
                    ],
                    "concurrency": { "limit": 4 }
                },
                "probes": { "limits": [
                    { "key": "client_addr", "limit": 600, "period_secs": 60 }
                ]}
            }
        }))
        .expect("invariant: the built-in rate-limit policies are valid (tested)")
    }

    /// The file's settings over the built-in policies.
    pub(crate) fn effective(&self) -> RateLimitConfig {
        let mut config = self.limits.clone();
        for (name, policy) in Self::builtin_policies().policies {
            config.policies.entry(name).or_insert(policy);
        }
        config
    }
}

/// A reference to a secret held elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretRef {
    /// `env:NAME`: an environment variable.
    Env(String),
    /// `file:/path`: a file (e.g. a mounted Kubernetes or Docker secret).
    File(PathBuf),
    /// `vault:path`: a Vault / OpenBao path.
    Vault(String),
}

/// The reference prefixes, for messages and the literal-secret scan.
const REFERENCE_PREFIXES: [&str; 3] = ["env:", "file:", "vault:"];

impl SecretRef {
    /// Whether `value` is written as a reference (valid or not), as opposed
    /// to a literal.
    pub(crate) fn looks_like_reference(value: &str) -> bool {
        REFERENCE_PREFIXES.iter().any(|p| value.starts_with(p))
    }

    /// Parse a reference. The error says how to write it and never repeats
    /// the value, which may be a secret.
    pub(crate) fn parse(value: &str) -> Result<Self, &'static str> {
        if let Some(name) = value.strip_prefix("env:") {
            let ok =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            return if ok {
                Ok(Self::Env(name.to_owned()))
            } else {
                Err("`env:` needs a variable name of [A-Za-z0-9_], e.g. env:DOCAICHE_MASTER_KEY")
            };
        }
        if let Some(path) = value.strip_prefix("file:") {
            let path = Path::new(path);
            return if path.is_absolute() {
                Ok(Self::File(path.to_path_buf()))
            } else {
                Err("`file:` needs an absolute path, e.g. file:/run/secrets/docaiche-master-key")
            };
        }
        if let Some(path) = value.strip_prefix("vault:") {
            return match validate_secret_name(path) {
                Ok(()) => Ok(Self::Vault(path.to_owned())),
                Err(_) => Err(
                    "`vault:` needs a path of lowercase segments of [a-z0-9_.-], e.g. vault:transit/docaiche",
                ),
            };
        }
        Err(
            "holds a literal value, but secret-bearing settings take a reference \
             (env:NAME, file:/path or vault:path); move the secret out of the configuration \
             and rotate it",
        )
    }
}

/// Where key material comes from, once the configuration is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// No source configured: a development key file generated at this path.
    Generated(PathBuf),
    /// `keys.local_key_file`.
    LocalFile(PathBuf),
    /// `keys.source`.
    Reference(SecretRef),
}

/// One or more configuration problems, reported together.
#[derive(Debug)]
pub(crate) struct ConfigProblems(pub(crate) Vec<Error>);

impl ConfigProblems {
    /// A single problem.
    fn one(setting: impl Into<Cow<'static, str>>, reason: impl Into<Cow<'static, str>>) -> Self {
        Self(vec![Error::misconfigured(setting, reason)])
    }
}

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "configuration refused ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for problem in &self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigProblems {}

/// A setting that is allowed but worth an operator's attention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Warning {
    /// The setting's name as the operator writes it.
    pub(crate) setting: Cow<'static, str>,
    /// What it means and how to change it.
    pub(crate) message: Cow<'static, str>,
}

/// How bad a finding is; what happens to it depends on the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// Cannot work in any environment.
    Invalid,
    /// Unsafe: refused in production, a warning in development.
    Unsafe,
    /// A development default: refused in production, a warning in development.
    DevelopmentDefault,
    /// Allowed everywhere, but logged.
    Notice,
}

/// One thing [`Config::validate`] found.
#[derive(Debug)]
struct Finding {
    severity: Severity,
    setting: Cow<'static, str>,
    reason: Cow<'static, str>,
}

/// TOML key names (lowercased, `-` as `_`) that suggest a secret value.
const SECRET_KEY_MARKERS: [&str; 5] = ["password", "secret", "token", "pepper", "private_key"];

impl Config {
    /// Defaults, then the file named by `config_path` or `DOCAICHE_CONFIG`
    /// (if any), then `DOCAICHE_*` overrides. Does not validate.
    pub(crate) fn load(
        config_path: Option<&Path>,
        env: EnvLookup<'_>,
    ) -> Result<Self, ConfigProblems> {
        let (setting, path) = match config_path {
            Some(path) => ("--config", Some(path.to_path_buf())),
            None => ("DOCAICHE_CONFIG", env("DOCAICHE_CONFIG").map(PathBuf::from)),
        };
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigProblems::one(setting, format!("cannot read {}: {e}", path.display()))
                })?;
                Self::from_toml_str(&text).map_err(|mut problems| {
                    for problem in &mut problems.0 {
                        if let Error::Misconfigured { reason, .. } = problem {
                            *reason = format!("{}: {reason}", path.display()).into();
                        }
                    }
                    problems
                })?
            }
            None => Self::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    /// Parse a TOML document: unknown keys are an error, and keys that look
    /// secret-bearing with a literal value are recorded in
    /// [`Self::literal_secrets`] (and reported with a parse error, if any).
    pub(crate) fn from_toml_str(text: &str) -> Result<Self, ConfigProblems> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigProblems::one("config file", describe(&e, text)))?;
        let mut literal_secrets = Vec::new();
        find_literal_secrets(&table, "", false, &mut literal_secrets);
        match toml::from_str::<Self>(text) {
            Ok(mut config) => {
                config.literal_secrets = literal_secrets;
                Ok(config)
            }
            Err(e) => {
                let mut problems = vec![Error::misconfigured("config file", describe(&e, text))];
                problems.extend(
                    literal_secrets
                        .into_iter()
                        .map(|s| Error::misconfigured(s, LITERAL_SECRET_REASON)),
                );
                Err(ConfigProblems(problems))
            }
        }
    }

    /// Apply `DOCAICHE_*` overrides; every unparsable variable is reported.
    pub(crate) fn apply_env(&mut self, env: EnvLookup<'_>) -> Result<(), ConfigProblems> {
        let mut problems = Vec::new();
        let mut set = |name: &'static str, apply: &mut dyn FnMut(String) -> Result<(), String>| {
            if let Some(value) = env(name)
                && let Err(reason) = apply(value)
            {
                problems.push(Error::misconfigured(name, reason));
            }
        };
        set("DOCAICHE_ENV", &mut |v| {
            parse_into(&v, &mut self.environment)
        });
        set("DOCAICHE_BIND", &mut |v| {
            parse_into(&v, &mut self.server.bind)
        });
        set("DOCAICHE_BEHIND_PROXY", &mut |v| {
            parse_into(&v, &mut self.server.behind_proxy)
        });
        set("DOCAICHE_REQUEST_TIMEOUT_SECS", &mut |v| {
            parse_into(&v, &mut self.server.request_timeout_secs)
        });
        set("DOCAICHE_BODY_LIMIT_BYTES", &mut |v| {
            parse_into(&v, &mut self.server.body_limit_bytes)
        });
        set("DOCAICHE_JSON_BODY_LIMIT_BYTES", &mut |v| {
            parse_into(&v, &mut self.server.json_body_limit_bytes)
        });
        set("DOCAICHE_SHUTDOWN_GRACE_SECS", &mut |v| {
            parse_into(&v, &mut self.server.shutdown_grace_secs)
        });
        set("DOCAICHE_METRICS_BIND", &mut |v| {
            let mut bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            parse_into(&v, &mut bind)?;
            self.metrics.bind = Some(bind);
            Ok(())
        });
        set("DOCAICHE_DATA_DIR", &mut |v| {
            self.storage.data_dir = PathBuf::from(v);
            Ok(())
        });
        set("DOCAICHE_CORS_ALLOWED_ORIGINS", &mut |v| {
            self.cors.allowed_origins = v
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect();
            Ok(())
        });
        set("DOCAICHE_KEY_SOURCE", &mut |v| {
            self.keys.source = Some(v);
            Ok(())
        });
        set("DOCAICHE_LOCAL_KEY_FILE", &mut |v| {
            self.keys.local_key_file = Some(PathBuf::from(v));
            Ok(())
        });
        set("DOCAICHE_LOG", &mut |v| {
            self.log.filter = v;
            Ok(())
        });
        set("DOCAICHE_LOG_FORMAT", &mut |v| {
            parse_into(&v, &mut self.log.format)
        });
        set("DOCAICHE_TRUSTED_PROXIES", &mut |v| {
            self.rate_limit.limits.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            Ok(())
        });
        set("DOCAICHE_RATE_LIMIT_BACKEND", &mut |v| {
            parse_into(&v, &mut self.rate_limit.backend)
        });
        set("DOCAICHE_REDIS_URL_SOURCE", &mut |v| {
            self.rate_limit.redis_url = Some(v);
            Ok(())
        });
        set("DOCAICHE_AUTH_PROVIDER", &mut |v| {
            self.auth.provider = Some(v);
            Ok(())
        });
        set("DOCAICHE_JWT_ISSUER", &mut |v| {
            self.auth.jwt.issuer = v;
            Ok(())
        });
        set("DOCAICHE_STORE_BACKEND", &mut |v| {
            parse_into(&v, &mut self.store.backend)
        });
        set("DOCAICHE_DATABASE_URL_SOURCE", &mut |v| {
            self.store.url_source = Some(v);
            Ok(())
        });
        set("DOCAICHE_DATABASE_REPLICA_URL_SOURCE", &mut |v| {
            self.store.replica_url_source = Some(v);
            Ok(())
        });
        set("DOCAICHE_DATABASE_ROW_LEVEL_SECURITY", &mut |v| {
            parse_into(&v, &mut self.store.row_level_security)
        });
        set("DOCAICHE_DATABASE_MAX_CONNECTIONS", &mut |v| {
            parse_into(&v, &mut self.store.max_connections)
        });
        set("DOCAICHE_REVOCATION_BACKEND", &mut |v| {
            parse_into(&v, &mut self.revocation.backend)
        });
        set("DOCAICHE_ANNOUNCE_API_KEYS", &mut |v| {
            parse_into(&v, &mut self.revocation.announce_api_keys)
        });
        set("DOCAICHE_REVOCATION_REDIS_URL_SOURCE", &mut |v| {
            self.revocation.url_source = Some(v);
            Ok(())
        });
        set("DOCAICHE_SECRETS_SOURCES", &mut |v| {
            self.secrets.sources = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            Ok(())
        });
        set("DOCAICHE_VAULT_ADDR", &mut |v| {
            self.secrets.vault.address = Some(v);
            Ok(())
        });
        set("DOCAICHE_VAULT_TOKEN_SOURCE", &mut |v| {
            self.secrets.vault.token_source = Some(v);
            Ok(())
        });
        set("DOCAICHE_VAULT_ROLE_ID_SOURCE", &mut |v| {
            self.secrets.vault.role_id_source = Some(v);
            Ok(())
        });
        set("DOCAICHE_VAULT_SECRET_ID_SOURCE", &mut |v| {
            self.secrets.vault.secret_id_source = Some(v);
            Ok(())
        });
        set("DOCAICHE_VAULT_KV_MOUNT", &mut |v| {
            self.secrets.vault.kv_mount = v;
            Ok(())
        });
        set("DOCAICHE_KEY_WRAPPER", &mut |v| {
            parse_into(&v, &mut self.encryption.key_wrapper)
        });
        set("DOCAICHE_TRANSIT_KEY", &mut |v| {
            self.encryption.transit_key = v;
            Ok(())
        });
        self.http.apply_env(env, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigProblems(problems))
        }
    }

    /// Check the configuration for this environment.
    ///
    /// Returns the warnings to log, or every problem found: invalid settings
    /// in any environment; in production also unsafe settings and
    /// development defaults (generated keys, open CORS, plaintext secrets).
    pub(crate) fn validate(&self) -> Result<Vec<Warning>, ConfigProblems> {
        let production = self.environment == Environment::Production;
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        for finding in self.findings() {
            let refuse = match finding.severity {
                Severity::Invalid => true,
                Severity::Unsafe | Severity::DevelopmentDefault => production,
                Severity::Notice => false,
            };
            if refuse {
                problems.push(Error::misconfigured(finding.setting, finding.reason));
            } else {
                warnings.push(Warning {
                    setting: finding.setting,
                    message: finding.reason,
                });
            }
        }
        if problems.is_empty() {
            Ok(warnings)
        } else {
            Err(ConfigProblems(problems))
        }
    }

    /// Where key material comes from. Meaningful after [`Self::validate`].
    pub(crate) fn key_source(&self) -> KeySource {
        match (&self.keys.source, &self.keys.local_key_file) {
            (Some(source), _) => match SecretRef::parse(source) {
                Ok(reference) => KeySource::Reference(reference),
                // validate() refuses this; fall back to the safe choice.
                Err(_) => KeySource::Generated(self.generated_key_path()),
            },
            (None, Some(path)) => KeySource::LocalFile(path.clone()),
            (None, None) => KeySource::Generated(self.generated_key_path()),
        }
    }

    /// Where a generated development key file lives.
    pub(crate) fn generated_key_path(&self) -> PathBuf {
        self.storage.data_dir.join("keys").join("development.key")
    }

    /// Everything worth saying about this configuration, each with the fix.
    fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut add = |severity, setting: &str, reason: Cow<'static, str>| {
            out.push(Finding {
                severity,
                setting: setting.to_owned().into(),
                reason,
            });
        };

        // Secret files others can read: a warning in development, a
        // refusal in production (see `keys::exposed_secret_files`).
        for (setting, reason) in crate::keys::exposed_secret_files(self) {
            add(Severity::Unsafe, &setting, reason.into());
        }

        // [server]
        if self.server.request_timeout_secs == 0 {
            add(
                Severity::Invalid,
                "server.request_timeout_secs",
                "must be at least 1 second".into(),
            );
        }
        if self.server.body_limit_bytes == 0 {
            add(
                Severity::Invalid,
                "server.body_limit_bytes",
                "must be at least 1 byte".into(),
            );
        }
        if self.server.json_body_limit_bytes == 0 {
            add(
                Severity::Invalid,
                "server.json_body_limit_bytes",
                "must be at least 1 byte".into(),
            );
        }
        if self.server.bind.ip().is_unspecified() && !self.server.behind_proxy {
            add(
                Severity::Notice,
                "server.bind",
                "listens on every interface over plain HTTP; put a TLS-terminating reverse \
                 proxy in front and set server.behind_proxy = true, or bind 127.0.0.1"
                    .into(),
            );
        }

        // [documents]
        for (setting, reason) in self.documents.problems() {
            add(Severity::Invalid, setting, reason.into());
        }
        let pg = self.store.backend == StoreBackend::Postgres;
        for (setting, reason) in self.audit.problems(pg) {
            add(Severity::Invalid, setting, reason.into());
        }
        for (setting, reason) in self.retention.problems() {
            add(Severity::Invalid, &setting, reason.into());
        }

        // [storage]
        if self.storage.data_dir.as_os_str().is_empty() {
            add(
                Severity::Invalid,
                "storage.data_dir",
                "must name a directory".into(),
            );
        } else if self.environment == Environment::Production && self.storage.data_dir.is_relative()
        {
            add(
                Severity::Notice,
                "storage.data_dir",
                "is relative to the working directory; use an absolute path".into(),
            );
        }

        // [cors]
        for origin in &self.cors.allowed_origins {
            if origin == "*" {
                add(
                    Severity::DevelopmentDefault,
                    "cors.allowed_origins",
                    "`*` lets any web site call the API from its visitors' browsers; list the \
                     exact https:// origins of your front ends, or [] to refuse cross-origin \
                     requests"
                        .into(),
                );
            } else if !is_origin(origin) {
                add(
                    Severity::Invalid,
                    "cors.allowed_origins",
                    format!(
                        "`{origin}` is not an origin; write scheme://host[:port] with no path, \
                         e.g. https://app.example.com"
                    )
                    .into(),
                );
            } else if origin.starts_with("http://") {
                add(
                    Severity::Unsafe,
                    "cors.allowed_origins",
                    format!(
                        "`{origin}` is a plaintext origin whose pages can be altered in \
                         transit; use its https:// origin"
                    )
                    .into(),
                );
            }
        }
        if self.cors.allowed_origins.len() > 1 && self.cors.allowed_origins.iter().any(|o| o == "*")
        {
            add(
                Severity::Invalid,
                "cors.allowed_origins",
                "`*` cannot be combined with other origins; keep either `*` or the list".into(),
            );
        }

        // [keys]
        match (&self.keys.source, &self.keys.local_key_file) {
            (Some(_), Some(_)) => add(
                Severity::Invalid,
                "keys",
                "keys.source and keys.local_key_file are both set; keep exactly one".into(),
            ),
            (None, None) if self.encryption.key_wrapper == KeyWrapperKind::Vault => {}
            (None, None) => add(
                Severity::DevelopmentDefault,
                "keys.source",
                format!(
                    "no key source is configured (development falls back to a generated key \
                     file at {}); set keys.source to a reference (env:NAME, file:/path or \
                     vault:path) or keys.local_key_file to a key file you manage",
                    self.generated_key_path().display()
                )
                .into(),
            ),
            (Some(source), None) => {
                if let Err(reason) = SecretRef::parse(source) {
                    add(Severity::Invalid, "keys.source", reason.into());
                }
            }
            (None, Some(path)) => {
                if path.as_os_str().is_empty() {
                    add(
                        Severity::Invalid,
                        "keys.local_key_file",
                        "must name a file".into(),
                    );
                }
            }
        }

        // [rate_limit]
        match self.rate_limit.effective().build() {
            Err(Error::Misconfigured { setting, reason }) => {
                add(Severity::Invalid, &setting, reason);
            }
            Err(other) => add(Severity::Invalid, "rate_limit", other.to_string().into()),
            Ok(_) => {}
        }
        let proxies = &self.rate_limit.limits.trusted_proxies;
        if proxies
            .iter()
            .any(|p| matches!(p.trim(), "0.0.0.0/0" | "::/0"))
        {
            add(
                Severity::Unsafe,
                "rate_limit.trusted_proxies",
                "trusts every address as a proxy, so any client can choose its own \
                 X-Forwarded-For and escape its rate limit; list only your proxies' addresses"
                    .into(),
            );
        }
        self.rate_limit_backend_findings(&mut add);
        crate::http::findings(self, &mut add);
        crate::metrics::findings(self, &mut add);
        self.auth.findings(
            &self.storage.data_dir,
            !self.secrets.sources.is_empty(),
            &mut add,
        );
        self.backend_findings(&mut add);

        // Literal secrets anywhere in the file.
        for setting in &self.literal_secrets {
            add(Severity::Unsafe, setting, LITERAL_SECRET_REASON.into());
        }

        // [log]
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            add(
                Severity::Invalid,
                "log.filter",
                format!("is not a valid filter ({e}); e.g. `info` or `info,tower_http=debug`")
                    .into(),
            );
        }
        if self.environment == Environment::Production && self.log.format == LogFormat::Pretty {
            add(
                Severity::Notice,
                "log.format",
                "`pretty` in production: log pipelines expect `json`".into(),
            );
        }
        out
    }
}

impl Config {
    /// The findings of `[rate_limit]`'s backend keys.
    fn rate_limit_backend_findings(&self, add: &mut dyn FnMut(Severity, &str, Cow<'static, str>)) {
        let section = &self.rate_limit;
        let redis = section.backend == RateLimitBackend::Redis;
        #[cfg(not(feature = "redis"))]
        if redis {
            add(
                Severity::Invalid,
                "rate_limit.backend",
                NO_REDIS_SUPPORT.into(),
            );
        }
        match (&section.redis_url, redis) {
            (None, true) => add(
                Severity::Invalid,
                "rate_limit.redis_url",
                "is required with rate_limit.backend = \"redis\"; set it to a reference to the \
                 Redis URL (env:NAME or file:/path), e.g. env:DOCAICHE_REDIS_URL"
                    .into(),
            ),
            (Some(_), false) => add(
                Severity::Notice,
                "rate_limit.redis_url",
                "is ignored: rate_limit.backend is \"local\"".into(),
            ),
            (Some(url), true) => match RedisUrlSource::parse(url) {
                Ok(RedisUrlSource::Literal(_)) => add(
                    Severity::Unsafe,
                    "rate_limit.redis_url",
                    REDIS_URL_LITERAL_REASON.into(),
                ),
                Ok(RedisUrlSource::Reference(_)) => {}
                Err(reason) => add(Severity::Invalid, "rate_limit.redis_url", reason.into()),
            },
            (None, false) => {}
        }
        let share = section.instance_share;
        if !(share.is_finite() && share > 0.0 && share <= 1.0) {
            add(
                Severity::Invalid,
                "rate_limit.instance_share",
                "must be in (0, 1]: this instance's share of each limit while Redis is down, \
                 e.g. 0.25 with four instances"
                    .into(),
            );
        }
        if redis && section.on_redis_failure == OnRedisFailure::FailOpen {
            add(
                Severity::Notice,
                "rate_limit.on_redis_failure",
                "`fail_open` lifts every limit while Redis is down (an outage, or an attacker \
                 who can cause one, disables rate limiting); `fallback` keeps limiting in process"
                    .into(),
            );
        }
    }
}

/// Why `rate_limit.backend = "redis"` is refused by a build without Redis.
#[cfg(not(feature = "redis"))]
pub(crate) const NO_REDIS_SUPPORT: &str =
    "this build has no Redis support; build with --features redis";

/// The reason given for a literal `rate_limit.redis_url`.
const REDIS_URL_LITERAL_REASON: &str = "holds a literal URL, which may carry a password; set it to \
     a reference (env:NAME or file:/path) and, if the URL held a password, rotate it";

/// Where the Redis URL comes from, once `rate_limit.redis_url` is parsed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum RedisUrlSource {
    /// A reference (`env:` or `file:`).
    Reference(SecretRef),
    /// A literal URL (a warning in development, refused in production).
    Literal(String),
}

impl fmt::Debug for RedisUrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reference(reference) => f.debug_tuple("Reference").field(reference).finish(),
            Self::Literal(_) => f.write_str("Literal(<redacted>)"),
        }
    }
}

impl RedisUrlSource {
    /// Parse `rate_limit.redis_url`; the error never repeats the value.
    pub(crate) fn parse(value: &str) -> Result<Self, &'static str> {
        if !SecretRef::looks_like_reference(value) {
            return if value.trim().is_empty() {
                Err("is empty; set it to a reference (env:NAME or file:/path)")
            } else {
                Ok(Self::Literal(value.to_owned()))
            };
        }
        match SecretRef::parse(value)? {
            SecretRef::Vault(_) => {
                Err("`vault:` is not supported for the Redis URL; use env:NAME or file:/path")
            }
            reference => Ok(Self::Reference(reference)),
        }
    }
}

/// `[store] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StoreBackend {
    /// SQLite in `storage.data_dir/docaiche.db` (default).
    #[default]
    Sqlite,
    /// PostgreSQL (feature `postgres`).
    Postgres,
}

impl StoreBackend {
    /// The name as written in the configuration.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl FromStr for StoreBackend {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err("expected `sqlite` or `postgres`"),
        }
    }
}

/// `[store]`: the database behind API keys, revocations, audit events and
/// documents. The URLs are references (`env:`, `file:`, `vault:`), never
/// the URL: it may carry a password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StoreSection {
    /// `sqlite` (default) or `postgres`.
    pub(crate) backend: StoreBackend,
    /// PostgreSQL: reference to the primary's URL.
    pub(crate) url_source: Option<String>,
    /// PostgreSQL: reference to a read replica's URL.
    pub(crate) replica_url_source: Option<String>,
    /// PostgreSQL: the schema holding the tables (must exist).
    pub(crate) schema: Option<String>,
    /// PostgreSQL: enforce tenant isolation with row-level security.
    pub(crate) row_level_security: bool,
    /// PostgreSQL: `application_name` of the connections.
    pub(crate) application_name: String,
    /// Most connections open at once.
    pub(crate) max_connections: u32,
    /// Connections kept open when idle.
    pub(crate) min_connections: u32,
    /// How long a query waits for a connection, in milliseconds.
    pub(crate) acquire_timeout_ms: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sqlite,
            url_source: None,
            replica_url_source: None,
            schema: None,
            row_level_security: false,
            application_name: "docaiche-server".to_owned(),
            max_connections: 10,
            min_connections: 0,
            acquire_timeout_ms: 5_000,
        }
    }
}

/// `[revocation] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RevocationBackend {
    /// The `[store]` database (default).
    #[default]
    Store,
    /// Redis (feature `redis`).
    Redis,
}

impl RevocationBackend {
    /// The name as written in the configuration.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Redis => "redis",
        }
    }
}

impl FromStr for RevocationBackend {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "store" => Ok(Self::Store),
            "redis" => Ok(Self::Redis),
            _ => Err("expected `store` or `redis`"),
        }
    }
}

/// `[revocation]`: where revoked JWT ids are kept, and how a revoked API
/// key reaches the other instances' caches.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RevocationSection {
    /// `store` (default) or `redis`.
    pub(crate) backend: RevocationBackend,
    /// `none` (default: other instances drop a revoked, deleted or rotated
    /// API key when their cache entry ends, `auth.api_keys.cache_ttl_secs`)
    /// or `redis` (announced over Redis pub/sub: at once).
    pub(crate) announce_api_keys: AnnounceBackend,
    /// Reference to the Redis URL; unset reuses `rate_limit.redis_url`.
    pub(crate) url_source: Option<String>,
}

/// `[revocation] announce_api_keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AnnounceBackend {
    /// Not announced: the cache TTL bounds how long other instances
    /// accept a revoked key.
    #[default]
    None,
    /// Redis pub/sub (feature `redis`).
    Redis,
}

impl AnnounceBackend {
    /// The name as written in the configuration.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Redis => "redis",
        }
    }
}

impl FromStr for AnnounceBackend {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "redis" => Ok(Self::Redis),
            _ => Err("expected `none` or `redis`"),
        }
    }
}

impl RevocationSection {
    /// The setting that puts `[revocation]` on Redis, if any:
    /// `revocation.backend`, else `revocation.announce_api_keys`.
    pub(crate) const fn redis_setting(&self) -> Option<&'static str> {
        match (self.backend, self.announce_api_keys) {
            (RevocationBackend::Redis, _) => Some("revocation.backend"),
            (_, AnnounceBackend::Redis) => Some("revocation.announce_api_keys"),
            _ => None,
        }
    }

    /// The Redis URL reference revocations use and the setting it comes from.
    pub(crate) fn redis_url<'a>(
        &'a self,
        rate_limit: &'a RateLimitSection,
    ) -> (Option<&'a str>, &'static str) {
        match &self.url_source {
            Some(url) => (Some(url.as_str()), "revocation.url_source"),
            None => (rate_limit.redis_url.as_deref(), "rate_limit.redis_url"),
        }
    }
}

/// `[secrets]`: the chain every named secret (API-key peppers, the JWT
/// signing key) is read through, in order; references in `*_source`
/// settings (`env:`, `file:`, `vault:`) use the same providers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SecretsSection {
    /// `env` (`DOCAICHE_SECRET_*`), `file:/absolute/dir`, `vault` (KV v2 of
    /// `[secrets.vault]`), tried in this order. Empty: `auth.provider`, or
    /// generated development secrets.
    pub(crate) sources: Vec<String>,
    /// `[secrets.vault]`.
    pub(crate) vault: VaultSection,
}

/// One entry of `secrets.sources`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretSource {
    /// `DOCAICHE_SECRET_<NAME>` variables.
    Env,
    /// Files under a directory.
    Dir(PathBuf),
    /// Vault KV v2.
    Vault,
}

impl SecretSource {
    /// Parse one entry; the error says how to write it.
    pub(crate) fn parse(value: &str) -> Result<Self, &'static str> {
        match value.trim() {
            "env" => Ok(Self::Env),
            "vault" => Ok(Self::Vault),
            other => match other.strip_prefix("file:").map(Path::new) {
                Some(dir) if dir.is_absolute() => Ok(Self::Dir(dir.to_path_buf())),
                _ => Err("entries must be `env`, `file:/absolute/dir` or `vault`"),
            },
        }
    }
}

impl SecretsSection {
    /// The chain, in order.
    ///
    /// # Errors
    /// How to write an entry; never its value.
    pub(crate) fn chain(&self) -> Result<Vec<SecretSource>, &'static str> {
        self.sources
            .iter()
            .map(|s| SecretSource::parse(s))
            .collect()
    }
}

/// `[secrets.vault]`: the Vault / OpenBao server. Credentials are
/// references (`env:` or `file:`), never values.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct VaultSection {
    /// `https://vault.internal:8200`.
    pub(crate) address: Option<String>,
    /// Enterprise / OpenBao namespace.
    pub(crate) namespace: Option<String>,
    /// The KV v2 mount.
    pub(crate) kv_mount: String,
    /// Prefix of every secret path under the mount.
    pub(crate) kv_prefix: String,
    /// The Transit mount.
    pub(crate) transit_mount: String,
    /// Token authentication: reference to the token.
    pub(crate) token_source: Option<String>,
    /// AppRole: reference to the role id.
    pub(crate) role_id_source: Option<String>,
    /// AppRole: reference to the secret id.
    pub(crate) secret_id_source: Option<String>,
    /// Where AppRole is mounted.
    pub(crate) approle_mount: String,
}

impl Default for VaultSection {
    fn default() -> Self {
        Self {
            address: None,
            namespace: None,
            kv_mount: "secret".to_owned(),
            kv_prefix: "docaiche".to_owned(),
            transit_mount: "transit".to_owned(),
            token_source: None,
            role_id_source: None,
            secret_id_source: None,
            approle_mount: "approle".to_owned(),
        }
    }
}

/// `[encryption] key_wrapper`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KeyWrapperKind {
    /// The local key of `[keys]` (default).
    #[default]
    Local,
    /// Vault Transit (feature `vault`).
    Vault,
}

impl KeyWrapperKind {
    /// The name as written in the configuration.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Vault => "vault",
        }
    }
}

impl FromStr for KeyWrapperKind {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(Self::Local),
            "vault" => Ok(Self::Vault),
            _ => Err("expected `local` or `vault`"),
        }
    }
}

/// `[encryption]`: how document data keys are wrapped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct EncryptionSection {
    /// `local` (the `[keys]` key) or `vault` (Transit).
    pub(crate) key_wrapper: KeyWrapperKind,
    /// The Transit key (derived, `aes256-gcm96`) with `key_wrapper = "vault"`.
    pub(crate) transit_key: String,
}

impl Default for EncryptionSection {
    fn default() -> Self {
        Self {
            key_wrapper: KeyWrapperKind::Local,
            transit_key: "docaiche-documents".to_owned(),
        }
    }
}

/// Why a setting needing a cargo feature is refused by a build without it.
#[cfg_attr(
    all(feature = "postgres", feature = "redis", feature = "vault"),
    allow(dead_code)
)]
pub(crate) fn missing_feature(feature: &str) -> String {
    format!("this build has no {feature} support; build with --features {feature}")
}

/// A URL reference setting: a reference (any provider), a literal (refused
/// in production), or invalid.
fn url_source_finding(
    setting: &str,
    value: &str,
    add: &mut dyn FnMut(Severity, &str, Cow<'static, str>),
) {
    if value.trim().is_empty() {
        add(
            Severity::Invalid,
            setting,
            "is empty; set it to a reference (env:NAME, file:/path or vault:path)".into(),
        );
    } else if !SecretRef::looks_like_reference(value) {
        add(Severity::Unsafe, setting, URL_LITERAL_REASON.into());
    } else if let Err(reason) = SecretRef::parse(value) {
        add(Severity::Invalid, setting, reason.into());
    }
}

/// The reason given for a literal URL in a `*_source` setting.
const URL_LITERAL_REASON: &str = "holds a literal URL, which may carry a password; set it to a \
     reference (env:NAME, file:/path or vault:path) and, if the URL held a password, rotate it";

impl Config {
    /// Whether anything asks for Vault (besides `keys.source = "vault:…"`,
    /// older than `[secrets.vault]` and checked at start-up, see
    /// [`Self::uses_vault`]).
    pub(crate) fn needs_vault(&self) -> bool {
        let vault_ref = |v: &Option<String>| v.as_deref().is_some_and(|v| v.starts_with("vault:"));
        self.secrets
            .chain()
            .is_ok_and(|c| c.contains(&SecretSource::Vault))
            || self.encryption.key_wrapper == KeyWrapperKind::Vault
            || (self.store.backend == StoreBackend::Postgres
                && (vault_ref(&self.store.url_source) || vault_ref(&self.store.replica_url_source)))
            || (self.revocation.redis_setting().is_some() && vault_ref(&self.revocation.url_source))
    }

    /// Whether start-up needs a Vault client: [`Self::needs_vault`], or a
    /// local key read from Vault KV (`keys.source = "vault:path"`).
    #[cfg_attr(not(feature = "vault"), allow(dead_code))]
    pub(crate) fn uses_vault(&self) -> bool {
        self.needs_vault()
            || (self.encryption.key_wrapper == KeyWrapperKind::Local
                && self
                    .keys
                    .source
                    .as_deref()
                    .is_some_and(|v| v.starts_with("vault:")))
    }

    /// The findings of `[store]`, `[revocation]`, `[secrets]` and `[encryption]`.
    fn backend_findings(&self, add: &mut dyn FnMut(Severity, &str, Cow<'static, str>)) {
        // [store]
        let store = &self.store;
        if store.backend == StoreBackend::Postgres {
            #[cfg(not(feature = "postgres"))]
            add(
                Severity::Invalid,
                "store.backend",
                missing_feature("postgres").into(),
            );
            match &store.url_source {
                None => add(
                    Severity::Invalid,
                    "store.url_source",
                    "is required with store.backend = \"postgres\"; set it to a reference to \
                     the database URL, e.g. env:DOCAICHE_DATABASE_URL"
                        .into(),
                ),
                Some(url) => url_source_finding("store.url_source", url, add),
            }
            if let Some(url) = &store.replica_url_source {
                url_source_finding("store.replica_url_source", url, add);
            }
            if store.max_connections == 0 || store.min_connections > store.max_connections {
                add(
                    Severity::Invalid,
                    "store.max_connections",
                    "must be at least 1 and at least store.min_connections".into(),
                );
            }
            if store.acquire_timeout_ms == 0 {
                add(
                    Severity::Invalid,
                    "store.acquire_timeout_ms",
                    "must be at least 1".into(),
                );
            }
            if let Some(schema) = &store.schema
                && (schema.is_empty()
                    || !schema
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
            {
                add(
                    Severity::Invalid,
                    "store.schema",
                    "must be a schema name of [a-z0-9_]".into(),
                );
            }
            if self.environment == Environment::Production && !store.row_level_security {
                add(
                    Severity::Notice,
                    "store.row_level_security",
                    "is off: tenant isolation rests on the queries alone; turn it on for a \
                     second wall in the database"
                        .into(),
                );
            }
        } else if store.url_source.is_some() || store.replica_url_source.is_some() {
            add(
                Severity::Notice,
                "store.url_source",
                "is ignored: store.backend is \"sqlite\"".into(),
            );
        }

        // [revocation]
        if let Some(_setting) = self.revocation.redis_setting() {
            #[cfg(not(feature = "redis"))]
            add(Severity::Invalid, _setting, missing_feature("redis").into());
            match self.revocation.redis_url(&self.rate_limit) {
                (None, _) => add(
                    Severity::Invalid,
                    "revocation.url_source",
                    "is required with revocation.backend or revocation.announce_api_keys = \
                     \"redis\" (unless rate_limit.redis_url is set); set it to a reference to \
                     the Redis URL, e.g. env:DOCAICHE_REDIS_URL"
                        .into(),
                ),
                // Any provider, vault: included (resolved through [secrets]).
                (Some(url), "revocation.url_source") => {
                    url_source_finding("revocation.url_source", url, add);
                }
                // rate_limit.redis_url has its own findings when its backend is redis.
                (Some(url), setting) => {
                    if self.rate_limit.backend != RateLimitBackend::Redis {
                        match RedisUrlSource::parse(url) {
                            Ok(RedisUrlSource::Literal(_)) => {
                                add(Severity::Unsafe, setting, REDIS_URL_LITERAL_REASON.into());
                            }
                            Ok(RedisUrlSource::Reference(_)) => {}
                            Err(reason) => add(Severity::Invalid, setting, reason.into()),
                        }
                    }
                }
            }
            if self.rate_limit.redis_cluster && self.revocation.url_source.is_none() {
                add(
                    Severity::Invalid,
                    "revocation.url_source",
                    "is required when rate_limit.redis_cluster is set: revocations use one \
                     standalone Redis URL"
                        .into(),
                );
            }
        }

        // [secrets]
        match self.secrets.chain() {
            Err(reason) => add(Severity::Invalid, "secrets.sources", reason.into()),
            Ok(chain) => {
                if !chain.is_empty() && self.auth.provider.is_some() {
                    add(
                        Severity::Invalid,
                        "auth.provider",
                        "is replaced by secrets.sources; keep only secrets.sources \
                         (auth.provider = \"env\" is sources = [\"env\"], \"file:/dir\" is \
                         [\"file:/dir\"])"
                            .into(),
                    );
                }
            }
        }
        let vault = &self.secrets.vault;
        if self.needs_vault() {
            #[cfg(not(feature = "vault"))]
            add(
                Severity::Invalid,
                "secrets.vault",
                format!(
                    "is used (secrets.sources, encryption.key_wrapper or a vault: reference), \
                     but {}",
                    missing_feature("vault")
                )
                .into(),
            );
            if vault.address.as_deref().is_none_or(str::is_empty) {
                add(
                    Severity::Invalid,
                    "secrets.vault.address",
                    "is required when Vault is used (secrets.sources, encryption.key_wrapper \
                     or a vault: reference)"
                        .into(),
                );
            }
            match (
                &vault.token_source,
                &vault.role_id_source,
                &vault.secret_id_source,
            ) {
                (Some(token), None, None) => {
                    credential_finding("secrets.vault.token_source", token, add);
                }
                (None, Some(role), Some(secret)) => {
                    credential_finding("secrets.vault.role_id_source", role, add);
                    credential_finding("secrets.vault.secret_id_source", secret, add);
                }
                _ => add(
                    Severity::Invalid,
                    "secrets.vault.token_source",
                    "set either token_source, or role_id_source and secret_id_source \
                     (AppRole), each a reference (env:NAME or file:/path)"
                        .into(),
                ),
            }
        }

        // [encryption]
        if self.encryption.key_wrapper == KeyWrapperKind::Vault
            && self.encryption.transit_key.is_empty()
        {
            add(
                Severity::Invalid,
                "encryption.transit_key",
                "must name the Transit key".into(),
            );
        }
    }
}

/// A Vault credential reference: `env:` or `file:` only (Vault cannot hold
/// its own login).
fn credential_finding(
    setting: &str,
    value: &str,
    add: &mut dyn FnMut(Severity, &str, Cow<'static, str>),
) {
    match SecretRef::parse(value) {
        Ok(SecretRef::Vault(_)) => add(
            Severity::Invalid,
            setting,
            "cannot be a vault: reference (Vault cannot hold its own login); use env:NAME or \
             file:/path"
                .into(),
        ),
        Ok(_) => {}
        Err(reason) if SecretRef::looks_like_reference(value) => {
            add(Severity::Invalid, setting, reason.into());
        }
        Err(reason) => add(Severity::Unsafe, setting, reason.into()),
    }
}

/// The reason given for a literal value in a secret-bearing key.
const LITERAL_SECRET_REASON: &str = "holds a literal secret in the configuration file; replace it \
     with a reference (env:NAME, file:/path or vault:path) and rotate the exposed secret";

/// Parse `value` into `slot`, or say why not (without repeating the value).
fn parse_into<T: FromStr>(value: &str, slot: &mut T) -> Result<(), String>
where
    T::Err: fmt::Display,
{
    value
        .trim()
        .parse()
        .map(|v| *slot = v)
        .map_err(|e| format!("cannot parse: {e}"))
}

/// A TOML error as `line N: message`, without echoing the line, which may
/// hold a secret.
fn describe(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |before| before.matches('\n').count())
                + 1;
            format!("line {line}: {message}")
        }
        None => message.to_owned(),
    }
}

/// Whether `origin` is `scheme://host[:port]` with an http(s) scheme, no
/// path, no userinfo, and valid as a header value.
fn is_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && !rest.contains(['/', '@', '?', '#', ' ', '*'])
        && http::HeaderValue::from_str(origin).is_ok()
}

/// The roles of a configuration without `[auth.rbac]`.
const DEFAULT_ROLES: &str = r#"
[roles]
reader = ["documents:read", "jobs:read"]
editor = ["documents:*", "jobs:read"]
tenant-admin = ["documents:*", "jobs:read", "keys:manage", "audit:read", "admin:access"]
platform-admin = { grants = ["*:*"], cross_tenant = true }
"#;

/// The built-in roles ([`DEFAULT_ROLES`]).
fn default_roles() -> RbacConfig {
    toml::from_str(DEFAULT_ROLES).expect("invariant: the built-in roles parse")
}

/// `[auth]`: where the authentication secrets come from, how JWTs and API
/// keys are made, the roles, their bindings and the failed-authentication
/// tracker. Secrets are never written here: `provider` names where they are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AuthSection {
    /// `env` or `file:/directory`; unset in development only, where the
    /// secrets are generated under the data directory.
    pub(crate) provider: Option<String>,
    /// The API-key pepper versions to load (secret `api-key/pepper-v<n>`).
    pub(crate) pepper_versions: Vec<u16>,
    /// The pepper version new keys are hashed with.
    pub(crate) current_pepper: u16,
    /// `[auth.jwt]`.
    pub(crate) jwt: JwtSection,
    /// `[auth.api_keys]`: the library's API key settings.
    pub(crate) api_keys: ApiKeyConfig,
    /// `[auth.lockout]`: the failed-authentication tracker's settings.
    pub(crate) lockout: LockoutConfig,
    /// `[auth.rbac]`: the roles (replaces the built-in ones whole).
    pub(crate) rbac: RbacConfig,
    /// `[[auth.bindings]]`: roles held by principals in tenants.
    pub(crate) bindings: Vec<BindingConfig>,
    /// The role `server bootstrap-key` binds to the key's principal.
    pub(crate) bootstrap_role: String,
    /// Default overlap of a key rotation, in seconds.
    pub(crate) rotation_overlap_secs: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            provider: None,
            pepper_versions: vec![1],
            current_pepper: 1,
            jwt: JwtSection::default(),
            api_keys: ApiKeyConfig::default(),
            lockout: LockoutConfig::default(),
            rbac: default_roles(),
            bindings: Vec::new(),
            bootstrap_role: "tenant-admin".into(),
            rotation_overlap_secs: 3600,
        }
    }
}

/// `[auth.jwt]`: this server's access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct JwtSection {
    /// `iss` of the tokens.
    pub(crate) issuer: String,
    /// `aud` of the tokens.
    pub(crate) audience: String,
    /// The signing key's id (`kid`), published in the JWKS.
    pub(crate) kid: String,
    /// The signing algorithm: an asymmetric one (`EdDSA`, `ES256`, `ES384`,
    /// `RS256`, …) so that the public key can be published.
    pub(crate) algorithm: String,
    /// Access-token lifetime, in seconds.
    pub(crate) access_token_ttl_secs: u64,
}

impl Default for JwtSection {
    fn default() -> Self {
        Self {
            issuer: "urn:docaiche:server".into(),
            audience: "docaiche".into(),
            kid: "server-1".into(),
            algorithm: "EdDSA".into(),
            access_token_ttl_secs: 900,
        }
    }
}

/// One `[[auth.bindings]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BindingConfig {
    /// The tenant the binding applies in.
    pub(crate) tenant: String,
    /// The principal holding the role.
    pub(crate) principal: String,
    /// The role's name.
    pub(crate) role: String,
    /// Must be `true` to bind a cross-tenant role: such power is never
    /// granted implicitly.
    #[serde(default)]
    pub(crate) cross_tenant: bool,
}

/// Where the authentication secrets come from, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthProvider {
    /// Development: generated files under `<data_dir>/keys`.
    Generated,
    /// `DOCAICHE_SECRET_*` environment variables.
    Env,
    /// Files under a directory (mounted secrets).
    Dir(PathBuf),
}

impl AuthSection {
    /// The secret name of pepper `version`.
    pub(crate) fn pepper_secret(version: u16) -> String {
        format!("api-key/pepper-v{version}")
    }

    /// The secret name of the JWT signing key.
    pub(crate) const JWT_SECRET: &'static str = "jwt/signing-key";

    /// Parse `provider`.
    ///
    /// # Errors
    /// How to write it; never the value.
    pub(crate) fn provider(&self) -> Result<AuthProvider, &'static str> {
        match self.provider.as_deref() {
            None => Ok(AuthProvider::Generated),
            Some("env") => Ok(AuthProvider::Env),
            Some(other) => match other.strip_prefix("file:").map(Path::new) {
                Some(dir) if dir.is_absolute() => Ok(AuthProvider::Dir(dir.to_path_buf())),
                _ => Err(
                    "must be `env` (DOCAICHE_SECRET_* variables) or `file:/absolute/dir` \
                          (a directory of secret files)",
                ),
            },
        }
    }

    /// The signing algorithm.
    ///
    /// # Errors
    /// Unknown or symmetric algorithms.
    pub(crate) fn jwt_algorithm(&self) -> Result<Algorithm, &'static str> {
        let algorithm = Algorithm::from_str(&self.jwt.algorithm)
            .map_err(|_| "is not a JWS algorithm name, e.g. EdDSA or ES256")?;
        if matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(
                "must be asymmetric (EdDSA, ES256, …) so the public key can be \
                        published at /.well-known/jwks.json",
            );
        }
        Ok(algorithm)
    }

    /// The library's JWT settings.
    pub(crate) fn jwt_config(&self) -> JwtConfig {
        JwtConfig::new(self.jwt.issuer.clone(), self.jwt.audience.clone())
            .with_access_token_ttl(Duration::from_secs(self.jwt.access_token_ttl_secs))
    }

    /// The validated roles.
    ///
    /// # Errors
    /// As [`RolePolicy::from_config`].
    pub(crate) fn role_policy(&self) -> Result<RolePolicy, Error> {
        RolePolicy::from_config(&self.rbac).map_err(|e| match e {
            Error::Misconfigured { setting, reason } => {
                Error::misconfigured(format!("auth.{setting}"), reason)
            }
            other => other,
        })
    }

    /// The configured bindings under `policy`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming the entry: an invalid tenant or
    /// principal, an unknown role, or a cross-tenant role without
    /// `cross_tenant = true` (or the reverse).
    pub(crate) fn role_bindings(&self, policy: &RolePolicy) -> Result<RoleBindings, Error> {
        let mut bindings = RoleBindings::new();
        for (i, binding) in self.bindings.iter().enumerate() {
            let setting = format!("auth.bindings[{i}]");
            let bad = |e: Error| Error::misconfigured(setting.clone(), e.to_string());
            let tenant = TenantId::new(binding.tenant.as_str()).map_err(bad)?;
            let principal = PrincipalId::new(binding.principal.as_str()).map_err(bad)?;
            if binding.cross_tenant {
                bindings.bind_cross_tenant(policy, tenant, principal, &binding.role)
            } else {
                bindings.bind(policy, tenant, principal, &binding.role)
            }
            .map_err(|e| match e {
                Error::Forbidden { .. } => Error::misconfigured(
                    setting.clone(),
                    format!(
                        "`{}` is a cross-tenant role; bind it with cross_tenant = true",
                        binding.role
                    ),
                ),
                other => bad(other),
            })?;
        }
        Ok(bindings)
    }

    /// The findings of `[auth]`.
    fn findings(
        &self,
        data_dir: &Path,
        secrets_configured: bool,
        add: &mut dyn FnMut(Severity, &str, Cow<'static, str>),
    ) {
        match self.provider() {
            // `[secrets] sources` supplies the secrets (checked there).
            Ok(AuthProvider::Generated) if secrets_configured => {}
            Ok(AuthProvider::Generated) => add(
                Severity::DevelopmentDefault,
                "auth.provider",
                format!(
                    "no secret provider is configured (development generates an API-key pepper \
                     and a JWT signing key under {}); set auth.provider to \"env\" \
                     (DOCAICHE_SECRET_API_KEY_PEPPER_V<n>, DOCAICHE_SECRET_JWT_SIGNING_KEY) or \
                     \"file:/absolute/dir\", or list the chain in secrets.sources \
                     (env, file:/absolute/dir, vault)",
                    data_dir.join("keys").display()
                )
                .into(),
            ),
            Ok(_) => {}
            Err(reason) => add(Severity::Invalid, "auth.provider", reason.into()),
        }
        if self.pepper_versions.is_empty() || self.pepper_versions.contains(&0) {
            add(
                Severity::Invalid,
                "auth.pepper_versions",
                "must list the pepper versions to load, each at least 1".into(),
            );
        } else if !self.pepper_versions.contains(&self.current_pepper) {
            add(
                Severity::Invalid,
                "auth.current_pepper",
                "must be one of auth.pepper_versions".into(),
            );
        }
        if let Err(reason) = self.jwt_algorithm() {
            add(Severity::Invalid, "auth.jwt.algorithm", reason.into());
        }
        if !docaiche_auth::jwt::key::is_valid_kid(&self.jwt.kid) {
            add(
                Severity::Invalid,
                "auth.jwt.kid",
                "must be 1 to 128 bytes of A-Z a-z 0-9 . _ - ~ + / =".into(),
            );
        }
        if let Err(Error::Misconfigured { setting, reason }) = self.jwt_config().validate() {
            add(
                Severity::Invalid,
                &format!("auth.{setting}")
                    .replace("jwt.access_token_ttl", "jwt.access_token_ttl_secs"),
                reason,
            );
        }
        if let Err(e) = ApiKeyFormat::new(&self.api_keys.prefix) {
            add(
                Severity::Invalid,
                "auth.api_keys.prefix",
                e.to_string().into(),
            );
        }
        if self.rotation_overlap_secs > self.api_keys.max_rotation_overlap_secs {
            add(
                Severity::Invalid,
                "auth.rotation_overlap_secs",
                "exceeds auth.api_keys.max_rotation_overlap_secs".into(),
            );
        }
        if let Err(Error::Misconfigured { setting, reason }) = FailedAuthTracker::new(
            self.lockout.clone(),
            Arc::new(docaiche_store::memory::MemoryAuditSink::new()),
        ) {
            add(
                Severity::Invalid,
                &setting.replace("lockout.", "auth.lockout."),
                reason,
            );
        }
        match self.role_policy() {
            Err(Error::Misconfigured { setting, reason }) => {
                add(Severity::Invalid, &setting, reason);
            }
            Err(other) => add(Severity::Invalid, "auth.rbac", other.to_string().into()),
            Ok(policy) => {
                if let Err(Error::Misconfigured { setting, reason }) = self.role_bindings(&policy) {
                    add(Severity::Invalid, &setting, reason);
                }
                if policy.role(&self.bootstrap_role).is_none() {
                    add(
                        Severity::Invalid,
                        "auth.bootstrap_role",
                        format!("`{}` is not a role of auth.rbac", self.bootstrap_role).into(),
                    );
                } else if policy.is_cross_tenant(&self.bootstrap_role) {
                    add(
                        Severity::Invalid,
                        "auth.bootstrap_role",
                        "must not be a cross-tenant role; bind one explicitly in \
                         [[auth.bindings]] with cross_tenant = true"
                            .into(),
                    );
                }
            }
        }
    }
}

/// Record in `out` the dotted names of keys that look secret-bearing (or sit
/// under such a table) and hold a non-empty literal string.
fn find_literal_secrets(table: &toml::Table, prefix: &str, inherited: bool, out: &mut Vec<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let normalized = key.to_ascii_lowercase().replace('-', "_");
        // The top-level `[secrets]` table configures the provider chain; its
        // keys are judged by their own names (`token_source`, `secret_id_source`).
        let settings_table = prefix.is_empty() && key == "secrets";
        let bearing = !settings_table
            && (inherited || SECRET_KEY_MARKERS.iter().any(|m| normalized.contains(m)));
        if holds_literal(value, bearing, &path, out) {
            out.push(path);
        }
    }
}

/// Whether `value` (under a secret-bearing key when `bearing`) is a literal
/// secret; recurses into tables, which report their own keys.
fn holds_literal(value: &toml::Value, bearing: bool, path: &str, out: &mut Vec<String>) -> bool {
    match value {
        toml::Value::String(s) => bearing && !s.is_empty() && !SecretRef::looks_like_reference(s),
        toml::Value::Array(items) => {
            let mut literal = false;
            for item in items {
                if let toml::Value::Table(t) = item {
                    find_literal_secrets(t, path, bearing, out);
                } else {
                    literal |= holds_literal(item, bearing, path, out);
                }
            }
            literal
        }
        toml::Value::Table(t) => {
            find_literal_secrets(t, path, bearing, out);
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// A production configuration that passes validation.
    const GOOD_PRODUCTION: &str = r#"
        environment = "production"
        [server]
        bind = "10.0.0.5:8080"
        [storage]
        data_dir = "/var/lib/docaiche"
        [cors]
        allowed_origins = ["https://app.example.com"]
        [http]
        https = "refuse"
        trusted_proxies = ["10.0.0.0/24"]
        [keys]
        source = "vault:transit/docaiche"
        [auth]
        provider = "env"
        [metrics]
        bind = "10.0.0.5:9100"
    "#;

    fn refusal(config: &Config) -> Vec<(String, String)> {
        let problems = config.validate().expect_err("production must refuse");
        problems
            .0
            .iter()
            .map(|e| match e {
                Error::Misconfigured { setting, reason } => {
                    (setting.to_string(), reason.to_string())
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    fn settings(config: &Config) -> Vec<String> {
        refusal(config).into_iter().map(|(s, _)| s).collect()
    }

    fn production(extra: &str) -> Config {
        Config::from_toml_str(&format!("{GOOD_PRODUCTION}\n{extra}")).expect("parses")
    }

    #[test]
    fn defaults_are_a_development_setup_on_loopback() {
        let config = Config::load(None, &no_env).expect("defaults load");
        assert_eq!(config, Config::default());
        assert_eq!(config.environment, Environment::Development);
        assert_eq!(config.server.bind, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(config.storage.data_dir, PathBuf::from("./data"));
        assert_eq!(config.server.request_timeout(), Duration::from_secs(30));
        assert_eq!(config.server.shutdown_grace(), Duration::from_secs(30));
        assert_eq!(config.server.body_limit_bytes, 16 * 1024 * 1024);
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(
            config.key_source(),
            KeySource::Generated(PathBuf::from("./data/keys/development.key"))
        );
    }

    #[test]
    fn development_defaults_start_with_a_warning_each() {
        let warnings = Config::default()
            .validate()
            .expect("development accepts defaults");
        let names: Vec<_> = warnings.iter().map(|w| w.setting.as_ref()).collect();
        assert!(names.contains(&"keys.source"), "{names:?}");
        assert!(names.contains(&"cors.allowed_origins"), "{names:?}");
        assert!(names.contains(&"auth.provider"), "{names:?}");
    }

    #[test]
    fn auth_settings_come_from_the_file_and_the_environment() {
        let config = Config::from_toml_str(
            r#"
            [auth]
            provider = "file:/run/secrets/docaiche"
            pepper_versions = [1, 2]
            current_pepper = 2
            bootstrap_role = "reader"
            [auth.jwt]
            algorithm = "ES256"
            kid = "2026-11"
            [auth.lockout]
            max_failures_per_hour = 20
            [auth.rbac.roles]
            reader = ["documents:read"]
            root = { grants = ["*:*"], cross_tenant = true }
            [[auth.bindings]]
            tenant = "ops"
            principal = "alice"
            role = "root"
            cross_tenant = true
            "#,
        )
        .expect("parses");
        assert!(
            config.literal_secrets.is_empty(),
            "{:?}",
            config.literal_secrets
        );
        config.validate().expect("valid");
        assert_eq!(
            config.auth.provider(),
            Ok(AuthProvider::Dir(PathBuf::from("/run/secrets/docaiche")))
        );
        assert_eq!(config.auth.lockout.max_failures_per_hour, 20);
        let policy = config.auth.role_policy().expect("roles");
        let bindings = config.auth.role_bindings(&policy).expect("bindings");
        let resolved = policy.resolve(
            &bindings,
            &TenantId::new("ops").expect("tenant"),
            &PrincipalId::new("alice").expect("principal"),
        );
        assert!(
            resolved
                .permissions
                .allows(&docaiche_core::Permission::TENANTS_CROSS)
        );

        let mut config = Config::default();
        config
            .apply_env(&env_of(&[
                ("DOCAICHE_AUTH_PROVIDER", "env"),
                ("DOCAICHE_JWT_ISSUER", "https://api.example.com"),
            ]))
            .expect("applies");
        assert_eq!(config.auth.provider(), Ok(AuthProvider::Env));
        assert_eq!(config.auth.jwt.issuer, "https://api.example.com");
    }

    #[test]
    fn invalid_auth_settings_are_refused_by_name() {
        for (toml, setting) in [
            ("[auth]\nprovider = \"vault\"", "auth.provider"),
            ("[auth]\nprovider = \"file:relative\"", "auth.provider"),
            ("[auth]\ncurrent_pepper = 2", "auth.current_pepper"),
            ("[auth]\npepper_versions = [0]", "auth.pepper_versions"),
            ("[auth.jwt]\nalgorithm = \"HS256\"", "auth.jwt.algorithm"),
            ("[auth.jwt]\nalgorithm = \"none\"", "auth.jwt.algorithm"),
            ("[auth.jwt]\nkid = \"../x\"", "auth.jwt.kid"),
            ("[auth.jwt]\nissuer = \"\"", "auth.jwt.issuer"),
            (
                "[auth.lockout]\nmax_failures_per_hour = 1000",
                "auth.lockout.max_failures_per_hour",
            ),
            ("[auth]\nbootstrap_role = \"nope\"", "auth.bootstrap_role"),
            (
                "[auth]\nbootstrap_role = \"platform-admin\"",
                "auth.bootstrap_role",
            ),
            (
                "[auth]\nrotation_overlap_secs = 99999999",
                "auth.rotation_overlap_secs",
            ),
            (
                "[auth.rbac.roles]\nroot = [\"*:*\"]",
                "auth.rbac.roles.root",
            ),
            (
                "[[auth.bindings]]\ntenant = \"acme\"\nprincipal = \"bob\"\nrole = \"platform-admin\"",
                "auth.bindings[0]",
            ),
            (
                "[[auth.bindings]]\ntenant = \"acme\"\nprincipal = \"bob\"\nrole = \"ghost\"",
                "auth.bindings[0]",
            ),
        ] {
            let config = Config::from_toml_str(toml).expect("parses");
            let names = settings(&config);
            assert!(names.iter().any(|n| n == setting), "{toml}: {names:?}");
        }
        // A literal pepper in the file is a leaked secret.
        let problems =
            Config::from_toml_str("[auth]\npepper = \"hunter2hunter2\"").expect_err("unknown key");
        assert!(problems.to_string().contains("auth.pepper"), "{problems}");
        assert!(!problems.to_string().contains("hunter2"), "{problems}");
    }

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        let dir = crate::test_support::TestDir::new("config");
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            r#"
            [server]
            bind = "127.0.0.1:9000"
            request_timeout_secs = 5
            body_limit_bytes = 1000
            [log]
            filter = "debug"
            "#,
        )
        .expect("write config");
        let env = env_of(&[
            ("DOCAICHE_CONFIG", path.to_str().expect("utf-8 path")),
            ("DOCAICHE_BIND", "127.0.0.1:9100"),
            ("DOCAICHE_DATA_DIR", "/tmp/elsewhere"),
            ("DOCAICHE_LOG_FORMAT", "pretty"),
            (
                "DOCAICHE_CORS_ALLOWED_ORIGINS",
                "https://a.example, https://b.example,",
            ),
            ("DOCAICHE_SHUTDOWN_GRACE_SECS", "7"),
        ]);
        let config = Config::load(None, &env).expect("loads");
        // From the environment.
        assert_eq!(config.server.bind, "127.0.0.1:9100".parse().expect("addr"));
        assert_eq!(config.storage.data_dir, PathBuf::from("/tmp/elsewhere"));
        assert_eq!(config.log.format, LogFormat::Pretty);
        assert_eq!(
            config.cors.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(config.server.shutdown_grace_secs, 7);
        // From the file.
        assert_eq!(config.server.request_timeout_secs, 5);
        assert_eq!(config.server.body_limit_bytes, 1000);
        assert_eq!(config.log.filter, "debug");
        // Untouched default.
        assert_eq!(config.environment, Environment::Development);

        // --config wins over DOCAICHE_CONFIG.
        let other = dir.path().join("other.toml");
        std::fs::write(&other, "[server]\nrequest_timeout_secs = 9\n").expect("write");
        let config = Config::load(Some(&other), &env).expect("loads");
        assert_eq!(config.server.request_timeout_secs, 9);
    }

    #[test]
    fn every_unparsable_environment_variable_is_reported() {
        let env = env_of(&[
            ("DOCAICHE_ENV", "staging"),
            ("DOCAICHE_BIND", "localhost"),
            ("DOCAICHE_BODY_LIMIT_BYTES", "-1"),
        ]);
        let problems = Config::load(None, &env).expect_err("refused");
        let text = problems.to_string();
        for name in ["DOCAICHE_ENV", "DOCAICHE_BIND", "DOCAICHE_BODY_LIMIT_BYTES"] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        for text in [
            "bogus = 1",
            "[server]\nbind = \"127.0.0.1:1\"\nport = 80",
            "[nope]\n",
        ] {
            let err = Config::from_toml_str(text).expect_err("unknown key must fail");
            assert!(err.to_string().contains("unknown field"), "{err}");
        }
    }

    #[test]
    fn a_literal_secret_is_reported_by_name_without_its_value() {
        let err =
            Config::from_toml_str("[database]\npassword = \"hunter2\"\nurl_ref = \"env:DB_URL\"\n")
                .expect_err("unknown section");
        let text = err.to_string();
        assert!(text.contains("`database.password`"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");

        let mut found = Vec::new();
        let table: toml::Table = r#"
            api_token = "env:TOKEN"
            [jwt]
            private-key = "-----BEGIN"
            [client_secrets]
            pepper_list = ["abc"]
            name = "plain"
            [secrets]
            sources = ["env", "vault"]
            [secrets.vault]
            address = "https://vault:8200"
            token_source = "hvs.literal"
            role_id_source = "env:ROLE_ID"
        "#
        .parse()
        .expect("toml");
        find_literal_secrets(&table, "", false, &mut found);
        found.sort();
        // `[secrets]` configures the chain: only its secret-named keys count.
        assert_eq!(
            found,
            [
                "client_secrets.name",
                "client_secrets.pepper_list",
                "jwt.private-key",
                "secrets.vault.token_source"
            ]
        );
    }

    #[test]
    fn a_valid_production_config_is_accepted() {
        let warnings = production("").validate().expect("valid production config");
        assert!(warnings.is_empty(), "{warnings:?}");
        let mut config = production("");
        config.keys.source = None;
        config.keys.local_key_file = Some(PathBuf::from("/run/secrets/docaiche.key"));
        config.cors.allowed_origins.clear();
        config
            .validate()
            .expect("an operator-managed key file and no CORS are fine");
    }

    #[test]
    fn production_refuses_generated_keys() {
        let mut config = production("");
        config.keys.source = None;
        let refused = refusal(&config);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "keys.source");
        assert!(
            refused[0].1.contains("keys.local_key_file"),
            "says how to fix it"
        );
    }

    #[test]
    fn production_refuses_open_cors() {
        let mut config = production("");
        config.cors.allowed_origins = vec!["*".into()];
        assert_eq!(settings(&config), ["cors.allowed_origins"]);
    }

    #[test]
    fn production_refuses_plaintext_http_origins() {
        let mut config = production("");
        config.cors.allowed_origins =
            vec!["https://ok.example".into(), "http://app.example".into()];
        let refused = refusal(&config);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "cors.allowed_origins");
        assert!(refused[0].1.contains("http://app.example"));
    }

    #[test]
    fn production_refuses_a_literal_key_without_echoing_it() {
        let mut config = production("");
        config.keys.source = Some("c2VjcmV0LWtleS1tYXRlcmlhbA==".into());
        let refused = refusal(&config);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "keys.source");
        assert!(refused[0].1.contains("literal"));
        assert!(!refused[0].1.contains("c2VjcmV0"));
    }

    #[test]
    fn production_refuses_a_literal_secret_found_in_the_file() {
        let mut config = production("");
        config.literal_secrets = vec!["database.password".into()];
        assert_eq!(settings(&config), ["database.password"]);
        // Development only warns.
        config.environment = Environment::Development;
        let warnings = config.validate().expect("development warns");
        assert!(warnings.iter().any(|w| w.setting == "database.password"));
    }

    #[test]
    fn production_reports_every_problem_at_once() {
        let config = Config::from_toml_str(
            r#"
            environment = "production"
            [cors]
            allowed_origins = ["*"]
            "#,
        )
        .expect("parses");
        let mut config = config;
        config.literal_secrets = vec!["database.password".into()];
        let mut names = settings(&config);
        names.sort();
        assert_eq!(
            names,
            [
                "auth.provider",
                "cors.allowed_origins",
                "database.password",
                "http.https",
                "keys.source",
                "metrics.bind"
            ]
        );
        let text = config.validate().expect_err("refused").to_string();
        assert!(
            text.starts_with("configuration refused (6 problems)"),
            "{text}"
        );
    }

    #[test]
    fn production_with_only_defaults_names_keys_and_cors() {
        let config = Config::load(None, &env_of(&[("DOCAICHE_ENV", "production")])).expect("loads");
        let mut names = settings(&config);
        names.sort();
        assert_eq!(
            names,
            [
                "auth.provider",
                "cors.allowed_origins",
                "http.https",
                "keys.source",
                "metrics.bind"
            ]
        );
    }

    #[test]
    fn invalid_settings_are_refused_in_development_too() {
        let mut config = Config::default();
        config.server.request_timeout_secs = 0;
        config.server.body_limit_bytes = 0;
        config.server.json_body_limit_bytes = 0;
        config.cors.allowed_origins = vec!["https://app.example/path".into()];
        config.keys.source = Some("env:".into());
        config.log.filter = "=[".into();
        let mut names = settings(&config);
        names.sort();
        assert_eq!(
            names,
            [
                "cors.allowed_origins",
                "keys.source",
                "log.filter",
                "server.body_limit_bytes",
                "server.json_body_limit_bytes",
                "server.request_timeout_secs",
            ]
        );
        let config = Config::load(None, &env_of(&[("DOCAICHE_JSON_BODY_LIMIT_BYTES", "2048")]))
            .expect("loads");
        assert_eq!(config.server.json_body_limit_bytes, 2048);
        assert_eq!(
            Config::default().server.json_body_limit_bytes,
            crate::json::DEFAULT_JSON_BODY_LIMIT
        );
    }

    #[test]
    fn a_wildcard_bind_without_a_proxy_is_allowed_but_noted() {
        let mut config = production("");
        config.server.bind = "0.0.0.0:8080".parse().expect("addr");
        let warnings = config.validate().expect("allowed");
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].setting, "server.bind");
        config.server.behind_proxy = true;
        assert!(config.validate().expect("allowed").is_empty());
    }

    #[test]
    fn secret_references_parse() {
        assert_eq!(
            SecretRef::parse("env:DOCAICHE_KEY"),
            Ok(SecretRef::Env("DOCAICHE_KEY".into()))
        );
        assert_eq!(
            SecretRef::parse("file:/run/secrets/key"),
            Ok(SecretRef::File("/run/secrets/key".into()))
        );
        assert_eq!(
            SecretRef::parse("vault:transit/docaiche"),
            Ok(SecretRef::Vault("transit/docaiche".into()))
        );
        for bad in [
            "env:",
            "env:A-B",
            "file:relative",
            "vault:../x",
            "vault:",
            "hunter2",
        ] {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_sample_configuration_parses_and_validates() {
        let text = include_str!("../server.example.toml");
        let config = Config::from_toml_str(text).expect("sample parses");
        assert!(config.literal_secrets.is_empty());
        config
            .validate()
            .expect("sample is a valid development config");
    }

    #[test]
    fn the_sample_shows_the_builtin_documents_settings() {
        let text = include_str!("../server.example.toml");
        let sample = Config::from_toml_str(text).expect("sample parses");
        assert_eq!(
            sample.documents,
            crate::documents::DocumentsSection::default()
        );
    }

    #[test]
    fn the_sample_shows_the_builtin_auth_settings() {
        let text = include_str!("../server.example.toml");
        let sample = Config::from_toml_str(text).expect("sample parses");
        assert_eq!(sample.auth, AuthSection::default());
    }

    #[test]
    fn the_builtin_rate_limit_policies_cover_every_route_class() {
        let config = RateLimitSection::default().effective();
        let policies = config.build().expect("built-in policies are valid");
        for class in RateLimitSection::CLASSES {
            assert!(policies.has_class(class), "{class}");
        }
        let documents = policies.policy("documents").expect("documents");
        let reads = policies.policy("default").expect("default");
        assert!(
            documents.limits()[0].quota().limit < reads.limits()[0].quota().limit,
            "document processing is stricter than reads"
        );
        assert!(documents.concurrency().is_some());
        assert_eq!(
            policies.policy("probes").expect("probes").limits()[0].key_selector(),
            docaiche_ratelimit::policy::KeySelector::ClientAddr
        );
    }

    #[test]
    fn a_rate_limit_policy_in_the_file_replaces_the_builtin_one() {
        let config = Config::from_toml_str(
            r#"
            [rate_limit]
            trusted_proxies = ["10.0.0.0/8"]
            [rate_limit.policies.documents]
            limits = [{ key = "tenant", limit = 5, period_secs = 60 }]
            [rate_limit.policies.documents-pro]
            limits = [{ key = "tenant", limit = 50, period_secs = 60 }]
            [rate_limit.tiers.pro]
            documents = "documents-pro"
            [rate_limit.tenants]
            acme = "pro"
            "#,
        )
        .expect("parses");
        config.validate().expect("valid");
        let policies = config.rate_limit.effective().build().expect("valid");
        let documents = policies.policy("documents").expect("documents");
        assert_eq!(documents.limits()[0].quota().limit.get(), 5);
        assert!(documents.concurrency().is_none(), "replaced, not merged");
        assert!(policies.has_class("default") && policies.has_class("probes"));
    }

    #[test]
    fn invalid_rate_limit_settings_are_refused_by_name() {
        let config = Config::from_toml_str(
            r#"
            [rate_limit.policies.default]
            limits = [{ key = "tenant", limit = 0, period_secs = 60 }]
            "#,
        )
        .expect("parses");
        assert_eq!(
            settings(&config),
            ["rate_limit.policies.default.limits[0].limit"]
        );

        let config = Config::from_toml_str(
            "[rate_limit.policies.\"evil\\\"name\"]\nlimits = [{ key = \"global\", limit = 1, period_secs = 1 }]\n",
        )
        .expect("parses");
        let refused = settings(&config);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].starts_with("rate_limit.policies.evil"),
            "{refused:?}"
        );

        let err = Config::from_toml_str("[rate_limit]\ntrusted = []\n").expect_err("unknown key");
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn trusting_every_address_as_a_proxy_is_refused_in_production() {
        let mut config = production("");
        config.rate_limit.limits.trusted_proxies = vec!["0.0.0.0/0".into()];
        assert_eq!(settings(&config), ["rate_limit.trusted_proxies"]);
        config.environment = Environment::Development;
        let warnings = config.validate().expect("development warns");
        assert!(
            warnings
                .iter()
                .any(|w| w.setting == "rate_limit.trusted_proxies")
        );
    }

    #[test]
    fn trusted_proxies_come_from_the_environment() {
        let env = env_of(&[("DOCAICHE_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1,")]);
        let config = Config::load(None, &env).expect("loads");
        assert_eq!(
            config.rate_limit.limits.trusted_proxies,
            ["10.0.0.0/8", "192.168.1.1"]
        );
        config.validate().expect("valid");
    }

    #[test]
    fn the_rate_limit_backend_keys_parse_beside_the_policies() {
        let section = RateLimitSection::default();
        assert_eq!(section.backend, RateLimitBackend::Local);
        assert_eq!(section.on_redis_failure, OnRedisFailure::Fallback);
        assert!((section.instance_share - 1.0).abs() < f64::EPSILON);
        assert!(section.redis_url.is_none() && !section.redis_cluster);

        let config = Config::from_toml_str(
            r#"
            [rate_limit]
            backend = "redis"
            redis_url = "env:DOCAICHE_REDIS_URL"
            redis_cluster = true
            on_redis_failure = "fail_closed"
            instance_share = 0.25
            trusted_proxies = ["10.0.0.0/8"]
            [rate_limit.policies.default]
            limits = [{ key = "tenant", limit = 5, period_secs = 1.5 }]
            "#,
        )
        .expect("parses");
        let section = &config.rate_limit;
        assert_eq!(section.backend, RateLimitBackend::Redis);
        assert_eq!(section.redis_url.as_deref(), Some("env:DOCAICHE_REDIS_URL"));
        assert!(section.redis_cluster);
        assert_eq!(section.on_redis_failure, OnRedisFailure::FailClosed);
        assert!((section.instance_share - 0.25).abs() < f64::EPSILON);
        assert_eq!(section.limits.trusted_proxies, ["10.0.0.0/8"]);
        assert_eq!(
            section
                .effective()
                .build()
                .expect("valid")
                .policy("default")
                .expect("default")
                .limits()[0]
                .quota()
                .limit
                .get(),
            5
        );

        for bad in [
            "[rate_limit]\nbackend = \"memcached\"\n",
            "[rate_limit]\non_redis_failure = \"retry\"\n",
            "[rate_limit]\nredis_urls = \"env:X\"\n",
            "[rate_limit]\nredis_cluster = \"yes\"\n",
        ] {
            assert!(Config::from_toml_str(bad).is_err(), "{bad}");
        }
        let err = Config::from_toml_str("[rate_limit]\nredis_urls = \"env:X\"\n")
            .expect_err("unknown key");
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn the_rate_limit_backend_comes_from_the_environment() {
        let env = env_of(&[
            ("DOCAICHE_RATE_LIMIT_BACKEND", "Redis"),
            ("DOCAICHE_REDIS_URL_SOURCE", "file:/run/secrets/redis-url"),
        ]);
        let config = Config::load(None, &env).expect("loads");
        assert_eq!(config.rate_limit.backend, RateLimitBackend::Redis);
        assert_eq!(
            config.rate_limit.redis_url.as_deref(),
            Some("file:/run/secrets/redis-url")
        );

        let env = env_of(&[("DOCAICHE_RATE_LIMIT_BACKEND", "memcached")]);
        let text = Config::load(None, &env).expect_err("refused").to_string();
        assert!(text.contains("DOCAICHE_RATE_LIMIT_BACKEND"), "{text}");
    }

    /// `config`'s refusals other than the backend itself (refused by a
    /// build without Redis).
    fn refusal_besides_backend(config: &Config) -> Vec<(String, String)> {
        if config.validate().is_ok() {
            return Vec::new();
        }
        let mut refused = refusal(config);
        refused.retain(|(setting, _)| setting != "rate_limit.backend");
        refused
    }

    #[test]
    fn production_refuses_a_literal_redis_url_without_echoing_it() {
        let mut config = production(
            "[rate_limit]\nbackend = \"redis\"\nredis_url = \"redis://:hunter2@redis:6379\"\n",
        );
        let refused = refusal_besides_backend(&config);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "rate_limit.redis_url");
        assert!(refused[0].1.contains("literal"), "{}", refused[0].1);
        let text = config.validate().expect_err("refused").to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!format!("{config:?}").contains("hunter2"));

        // Development warns (and, with Redis support, starts).
        config.environment = Environment::Development;
        #[cfg(feature = "redis")]
        {
            let warnings = config.validate().expect("development warns");
            let warning = warnings
                .iter()
                .find(|w| w.setting == "rate_limit.redis_url")
                .expect("warned");
            assert!(!warning.message.contains("hunter2"));
        }

        // A reference is fine; a malformed one or vault: is refused everywhere.
        config.environment = Environment::Production;
        config.rate_limit.redis_url = Some("env:DOCAICHE_REDIS_URL".into());
        assert!(refusal_besides_backend(&config).is_empty());
        for bad in ["env:", "file:relative", "vault:redis/url", ""] {
            config.rate_limit.redis_url = Some(bad.into());
            let refused = refusal_besides_backend(&config);
            assert_eq!(refused.len(), 1, "{bad}: {refused:?}");
            assert_eq!(refused[0].0, "rate_limit.redis_url", "{bad}");
        }
        config.rate_limit.redis_url = None;
        let refused = refusal_besides_backend(&config);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "rate_limit.redis_url");
        assert!(refused[0].1.contains("required"));
    }

    #[test]
    fn an_instance_share_out_of_range_is_refused() {
        for share in [0.0, -0.5, 1.01, f64::NAN, f64::INFINITY] {
            let mut config = Config::default();
            config.rate_limit.instance_share = share;
            assert_eq!(settings(&config), ["rate_limit.instance_share"], "{share}");
        }
        let err = Config::from_toml_str("[rate_limit]\ninstance_share = 2.0\n")
            .expect("parses")
            .validate()
            .expect_err("refused")
            .to_string();
        assert!(err.contains("rate_limit.instance_share"), "{err}");
        for share in [0.01, 0.5, 1.0] {
            let mut config = Config::default();
            config.rate_limit.instance_share = share;
            config.validate().expect("in range");
        }
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn the_redis_backend_is_refused_by_a_build_without_redis() {
        let env = env_of(&[
            ("DOCAICHE_RATE_LIMIT_BACKEND", "redis"),
            ("DOCAICHE_REDIS_URL_SOURCE", "env:DOCAICHE_REDIS_URL"),
        ]);
        let config = Config::load(None, &env).expect("loads");
        let problems = config.validate().expect_err("refused");
        assert_eq!(problems.0.len(), 1, "{problems}");
        match &problems.0[0] {
            Error::Misconfigured { setting, reason } => {
                assert_eq!(setting, "rate_limit.backend");
                assert_eq!(
                    reason,
                    "this build has no Redis support; build with --features redis"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn the_redis_backend_is_accepted_by_a_build_with_redis() {
        let mut config = production(
            "[rate_limit]\nbackend = \"redis\"\nredis_url = \"env:DOCAICHE_REDIS_URL\"\n",
        );
        assert!(config.validate().expect("valid").is_empty());
        config.rate_limit.on_redis_failure = OnRedisFailure::FailOpen;
        let warnings = config.validate().expect("allowed, noted");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].setting, "rate_limit.on_redis_failure");
    }

    #[test]
    fn the_sample_shows_the_builtin_rate_limit_policies() {
        let sample = Config::from_toml_str(include_str!("../server.example.toml")).expect("parses");
        assert_eq!(
            sample.rate_limit.limits.policies,
            RateLimitSection::builtin_policies().policies
        );
    }

    /// `GOOD_PRODUCTION` with `extra`, keeping only the refusals of the
    /// named settings' sections (a build without a feature adds its own).
    fn refusal_of(config: &Config, prefix: &str) -> Vec<(String, String)> {
        match config.validate() {
            Ok(_) => Vec::new(),
            Err(_) => refusal(config)
                .into_iter()
                .filter(|(setting, reason)| {
                    setting.starts_with(prefix) && !reason.contains("build with --features")
                })
                .collect(),
        }
    }

    #[test]
    fn the_backend_sections_parse_from_the_file_and_the_environment() {
        let text = r#"
            [store]
            backend = "postgres"
            url_source = "env:DOCAICHE_DATABASE_URL"
            replica_url_source = "file:/run/secrets/replica-url"
            schema = "docaiche"
            row_level_security = true
            application_name = "api-1"
            max_connections = 20
            min_connections = 2
            acquire_timeout_ms = 1500
            [revocation]
            backend = "redis"
            url_source = "env:DOCAICHE_REDIS_URL"
            [secrets]
            sources = ["env", "file:/run/secrets/docaiche", "vault"]
            [secrets.vault]
            address = "https://vault.internal:8200"
            kv_mount = "kv"
            kv_prefix = "apps/docaiche"
            role_id_source = "file:/run/secrets/role-id"
            secret_id_source = "env:VAULT_SECRET_ID"
            [encryption]
            key_wrapper = "vault"
            transit_key = "documents"
        "#;
        let config = Config::from_toml_str(text).expect("parses");
        assert!(
            config.literal_secrets.is_empty(),
            "{:?}",
            config.literal_secrets
        );
        assert_eq!(config.store.backend, StoreBackend::Postgres);
        assert_eq!(config.store.schema.as_deref(), Some("docaiche"));
        assert!(config.store.row_level_security);
        assert_eq!(config.store.max_connections, 20);
        assert_eq!(config.revocation.backend, RevocationBackend::Redis);
        assert_eq!(
            config.revocation.redis_url(&config.rate_limit),
            (Some("env:DOCAICHE_REDIS_URL"), "revocation.url_source")
        );
        assert_eq!(
            config.secrets.chain().expect("valid"),
            [
                SecretSource::Env,
                SecretSource::Dir(PathBuf::from("/run/secrets/docaiche")),
                SecretSource::Vault
            ]
        );
        assert_eq!(config.secrets.vault.kv_mount, "kv");
        assert_eq!(config.encryption.key_wrapper, KeyWrapperKind::Vault);
        assert!(config.needs_vault());

        let env = env_of(&[
            ("DOCAICHE_STORE_BACKEND", "postgres"),
            ("DOCAICHE_DATABASE_URL_SOURCE", "env:PG_URL"),
            (
                "DOCAICHE_DATABASE_REPLICA_URL_SOURCE",
                "vault:db/replica-url",
            ),
            ("DOCAICHE_DATABASE_ROW_LEVEL_SECURITY", "true"),
            ("DOCAICHE_DATABASE_MAX_CONNECTIONS", "7"),
            ("DOCAICHE_REVOCATION_BACKEND", "redis"),
            ("DOCAICHE_ANNOUNCE_API_KEYS", "redis"),
            ("DOCAICHE_REVOCATION_REDIS_URL_SOURCE", "env:REDIS"),
            ("DOCAICHE_SECRETS_SOURCES", "env, vault"),
            ("DOCAICHE_VAULT_ADDR", "https://vault:8200"),
            ("DOCAICHE_VAULT_TOKEN_SOURCE", "env:VAULT_TOKEN"),
            ("DOCAICHE_VAULT_KV_MOUNT", "kv2"),
            ("DOCAICHE_KEY_WRAPPER", "vault"),
            ("DOCAICHE_TRANSIT_KEY", "docs"),
        ]);
        let config = Config::load(None, &env).expect("loads");
        assert_eq!(config.store.backend, StoreBackend::Postgres);
        assert_eq!(config.store.url_source.as_deref(), Some("env:PG_URL"));
        assert_eq!(
            config.store.replica_url_source.as_deref(),
            Some("vault:db/replica-url")
        );
        assert!(config.store.row_level_security);
        assert_eq!(config.store.max_connections, 7);
        assert_eq!(config.revocation.url_source.as_deref(), Some("env:REDIS"));
        assert_eq!(config.revocation.announce_api_keys, AnnounceBackend::Redis);
        assert_eq!(config.secrets.sources, ["env", "vault"]);
        assert_eq!(
            config.secrets.vault.address.as_deref(),
            Some("https://vault:8200")
        );
        assert_eq!(config.secrets.vault.kv_mount, "kv2");
        assert_eq!(config.encryption.transit_key, "docs");

        let bad = env_of(&[
            ("DOCAICHE_STORE_BACKEND", "mysql"),
            ("DOCAICHE_REVOCATION_BACKEND", "memcached"),
            ("DOCAICHE_ANNOUNCE_API_KEYS", "kafka"),
            ("DOCAICHE_KEY_WRAPPER", "kms"),
        ]);
        let problems = Config::load(None, &bad).expect_err("refused");
        let names: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
        assert_eq!(problems.0.len(), 4, "{names:?}");
    }

    #[test]
    fn the_defaults_keep_sqlite_the_store_and_the_local_key() {
        let config = Config::default();
        assert_eq!(config.store.backend, StoreBackend::Sqlite);
        assert_eq!(config.revocation.backend, RevocationBackend::Store);
        assert_eq!(config.revocation.announce_api_keys, AnnounceBackend::None);
        assert!(config.secrets.sources.is_empty());
        assert_eq!(config.encryption.key_wrapper, KeyWrapperKind::Local);
        assert!(!config.needs_vault());
    }

    #[test]
    fn production_refuses_a_literal_database_url_without_echoing_it() {
        let config = production(
            "[store]\nbackend = \"postgres\"\nurl_source = \"postgres://app:hunter2@db/docaiche\"\n",
        );
        let refused = refusal_of(&config, "store.");
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "store.url_source");
        assert!(refused[0].1.contains("literal"), "{}", refused[0].1);
        let text = config.validate().expect_err("refused").to_string();
        assert!(!text.contains("hunter2"), "{text}");

        // A replica URL too; a reference of any provider is fine.
        let config = production(
            "[store]\nbackend = \"postgres\"\nurl_source = \"vault:db/url\"\n\
             replica_url_source = \"postgres://app:hunter2@replica/docaiche\"\n",
        );
        let refused = refusal_of(&config, "store.");
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "store.replica_url_source");

        // Missing, malformed or empty: refused in every environment.
        for extra in [
            "[store]\nbackend = \"postgres\"\n",
            "[store]\nbackend = \"postgres\"\nurl_source = \"env:\"\n",
            "[store]\nbackend = \"postgres\"\nurl_source = \"\"\n",
        ] {
            let mut config = production(extra);
            config.environment = Environment::Development;
            let refused = refusal_of(&config, "store.url_source");
            assert_eq!(refused.len(), 1, "{extra}: {refused:?}");
        }
    }

    #[test]
    fn production_refuses_literal_vault_credentials_and_a_vault_token_from_vault() {
        let config = production(
            "[secrets]\nsources = [\"vault\"]\n[secrets.vault]\naddress = \"https://vault:8200\"\n\
             token_source = \"hvs.literal-token\"\n",
        );
        assert!(
            config
                .literal_secrets
                .contains(&"secrets.vault.token_source".to_owned())
        );
        let text = config.validate().expect_err("refused").to_string();
        assert!(text.contains("secrets.vault.token_source"), "{text}");
        assert!(!text.contains("hvs.literal-token"), "{text}");

        let mut config = production(
            "[secrets]\nsources = [\"vault\"]\n[secrets.vault]\naddress = \"https://vault:8200\"\n\
             token_source = \"vault:vault/token\"\n",
        );
        config.environment = Environment::Development;
        let refused = refusal_of(&config, "secrets.vault.token_source");
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].1.contains("cannot be a vault:"),
            "{}",
            refused[0].1
        );

        // Vault used without an address or credentials.
        let mut config = production("[encryption]\nkey_wrapper = \"vault\"\n");
        config.environment = Environment::Development;
        let names: Vec<String> = refusal_of(&config, "secrets.vault.")
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(
            names,
            ["secrets.vault.address", "secrets.vault.token_source"],
            "{names:?}"
        );
    }

    #[test]
    fn auth_provider_still_works_and_conflicts_with_secrets_sources() {
        // The older setting alone is a valid production chain (GOOD_PRODUCTION).
        production("").validate().expect("auth.provider = env");
        // secrets.sources alone too.
        let mut config =
            production("[secrets]\nsources = [\"env\", \"file:/run/secrets/docaiche\"]\n");
        config.auth.provider = None;
        config.validate().expect("secrets.sources");
        // Both: refused, saying how to migrate.
        config.auth.provider = Some("env".into());
        let refused = refusal(&config);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "auth.provider");
        assert!(refused[0].1.contains("secrets.sources"), "{}", refused[0].1);
        // Bad entries.
        for bad in ["file:relative", "vaults", "ENV"] {
            let mut config = Config::default();
            config.secrets.sources = vec![bad.into()];
            assert_eq!(settings(&config), ["secrets.sources"], "{bad}");
        }
        // Production without any source names both settings.
        let mut config = production("");
        config.auth.provider = None;
        let refused = refusal(&config);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].1.contains("secrets.sources"), "{}", refused[0].1);
    }

    #[cfg(not(feature = "postgres"))]
    #[test]
    fn postgres_is_refused_by_a_build_without_postgres() {
        let env = env_of(&[
            ("DOCAICHE_STORE_BACKEND", "postgres"),
            ("DOCAICHE_DATABASE_URL_SOURCE", "env:DOCAICHE_DATABASE_URL"),
        ]);
        let config = Config::load(None, &env).expect("loads");
        let problems = config.validate().expect_err("refused");
        assert_eq!(problems.0.len(), 1, "{problems}");
        match &problems.0[0] {
            Error::Misconfigured { setting, reason } => {
                assert_eq!(setting, "store.backend");
                assert_eq!(
                    reason,
                    "this build has no postgres support; build with --features postgres"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_is_accepted_by_a_build_with_postgres() {
        let config = production(
            "[store]\nbackend = \"postgres\"\nurl_source = \"env:DOCAICHE_DATABASE_URL\"\n\
             row_level_security = true\n",
        );
        assert!(config.validate().expect("valid").is_empty());
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn redis_revocations_are_refused_by_a_build_without_redis() {
        let mut config = Config::default();
        config.revocation.backend = RevocationBackend::Redis;
        config.revocation.url_source = Some("env:DOCAICHE_REDIS_URL".into());
        assert_eq!(settings(&config), ["revocation.backend"]);
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn announcing_api_keys_is_refused_by_a_build_without_redis() {
        let mut config = Config::default();
        config.revocation.announce_api_keys = AnnounceBackend::Redis;
        config.revocation.url_source = Some("env:DOCAICHE_REDIS_URL".into());
        assert_eq!(settings(&config), ["revocation.announce_api_keys"]);
    }

    #[test]
    fn announcing_api_keys_needs_the_redis_url_of_revocations() {
        let toml = r#"
            [revocation]
            announce_api_keys = "redis"
        "#;
        let config: Config = toml::from_str(toml).expect("parses");
        assert_eq!(config.revocation.announce_api_keys, AnnounceBackend::Redis);
        assert_eq!(config.revocation.backend, RevocationBackend::Store);
        let refused = refusal_of(&config, "revocation.url_source");
        assert_eq!(refused.len(), 1, "{refused:?}");
        let mut config = config;
        config.rate_limit.redis_url = Some("env:DOCAICHE_REDIS_URL".into());
        assert!(refusal_of(&config, "revocation.url_source").is_empty());
        config.revocation.url_source = Some("vault:redis/url".into());
        assert!(config.needs_vault(), "its URL may come from Vault");
        let unknown: Result<Config, _> =
            toml::from_str("[revocation]\nannounce_api_keys = \"kafka\"");
        assert!(unknown.is_err());
    }

    #[test]
    fn redis_revocations_need_a_url_and_reuse_the_limiters() {
        let mut config = Config::default();
        config.revocation.backend = RevocationBackend::Redis;
        let refused = refusal_of(&config, "revocation.url_source");
        assert_eq!(refused.len(), 1, "{refused:?}");
        config.rate_limit.redis_url = Some("env:DOCAICHE_REDIS_URL".into());
        assert_eq!(
            config.revocation.redis_url(&config.rate_limit),
            (Some("env:DOCAICHE_REDIS_URL"), "rate_limit.redis_url")
        );
        assert!(refusal_of(&config, "revocation.url_source").is_empty());
        assert!(refusal_of(&config, "rate_limit.redis_url").is_empty());
        // Its own reference wins; vault: is allowed there and asks for Vault.
        config.revocation.url_source = Some("vault:redis/url".into());
        assert!(refusal_of(&config, "revocation.url_source").is_empty());
        assert!(config.needs_vault());
        assert_eq!(
            refusal_of(&config, "secrets.vault.address").len(),
            1,
            "Vault must be configured"
        );
        // A literal is refused in production, without its password.
        config.revocation.url_source = Some("redis://:hunter2@redis:6379".into());
        config.environment = Environment::Production;
        let refused = refusal_of(&config, "revocation.url_source");
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(!refused[0].1.contains("hunter2"));
    }

    #[cfg(not(feature = "vault"))]
    #[test]
    fn vault_is_refused_by_a_build_without_vault() {
        let mut config = Config::default();
        config.encryption.key_wrapper = KeyWrapperKind::Vault;
        config.secrets.vault.address = Some("https://vault:8200".into());
        config.secrets.vault.token_source = Some("env:VAULT_TOKEN".into());
        let refused = refusal(&config);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, "secrets.vault");
        assert!(
            refused[0].1.contains("--features vault"),
            "{}",
            refused[0].1
        );
    }

    #[test]
    fn a_vault_key_wrapper_needs_no_local_key_in_production() {
        let mut config = production(
            "[encryption]\nkey_wrapper = \"vault\"\n[secrets.vault]\n\
             address = \"https://vault:8200\"\ntoken_source = \"file:/run/secrets/vault-token\"\n",
        );
        config.keys.source = None;
        let refused = refusal_of(&config, "keys");
        assert!(refused.is_empty(), "{refused:?}");
    }

    #[test]
    fn the_sample_shows_the_backend_defaults() {
        let sample = Config::from_toml_str(include_str!("../server.example.toml")).expect("parses");
        assert_eq!(sample.store, StoreSection::default());
        assert_eq!(sample.revocation, RevocationSection::default());
        assert_eq!(sample.secrets, SecretsSection::default());
        assert_eq!(sample.encryption, EncryptionSection::default());
    }
}
