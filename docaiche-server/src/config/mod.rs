//! Configuration: embedded defaults, then an optional TOML file, then
//! `DOCAICHE_*` environment variables, then [`Config::validate`].
//!
//! Every setting has a development default, so `cargo run -p docaiche-server`
//! needs no setup. Production refuses to start while a security-relevant
//! development default is still in use, and names each offending setting with
//! how to fix it.
//!
//! # Loading
//!
//! The layering is [`figment`]'s: each section's defaults (serde's
//! `default`), then the TOML file, then the variables below, merged key by
//! key and extracted into [`Config`] by serde, so that the file and the
//! environment are typed by the same code. What stays ours, and why: the
//! table of variables, because their names are not a mechanical
//! `section_key` pattern and the table also says how each text is read
//! (comma lists, names in any case); reading the file with our `toml`,
//! whose syntax errors give the line without echoing it (it may hold a
//! secret), and the scan of it for literal secrets; naming each problem by
//! TOML key, file and line, or by variable, every bad variable at once; and
//! [`Config::validate`] with the production checks, which are policy, not
//! layering.
//!
//! # Environment variables
//!
//! Each overrides the TOML setting named beside it (the loader's table; a
//! test keeps the two the same). Other `DOCAICHE_*` variables are not read
//! as configuration.
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
//! | `DOCAICHE_USAGE_ENABLED` | `usage.enabled` | `true` (default) or `false`: count requests per key |
//! | `DOCAICHE_USAGE_FLUSH_INTERVAL_SECS` | `usage.flush_interval_secs` | seconds dividing a minute, default 10 |
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
use std::str::FromStr;

use docaiche_core::Error;
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
    pub(crate) documents: DocumentsSection,
    /// `[metrics]`: the Prometheus `/metrics` endpoint.
    pub(crate) metrics: crate::metrics::MetricsSection,
    /// `[telemetry]`: OpenTelemetry trace export (OTLP).
    pub(crate) telemetry: crate::telemetry::TelemetrySection,
    /// `[slo]`: latency and availability objectives (alert rules).
    pub(crate) slo: crate::slo::SloSection,
    /// `[events]`: `/v1/events` WebSocket caps, queues and heartbeats.
    pub(crate) events: EventsSection,
    /// `[audit]`: the chained audit trail (sink, buffer, fail-closed).
    pub(crate) audit: AuditSection,
    /// `[retention]`: retention periods, the scheduled purge (see
    /// `compliance/`).
    pub(crate) retention: RetentionSection,
    /// `[usage]`: per-key usage analytics (counting, flushing, retention;
    /// see `crate::usage`).
    pub(crate) usage: UsageSection,
    /// Dotted names of raw TOML keys that look secret-bearing and hold a
    /// literal value. Filled by [`Config::load`].
    #[serde(skip)]
    pub(crate) literal_secrets: Vec<String>,
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

pub(crate) mod audit;
mod auth;
mod cors;
pub(crate) mod documents;
mod encryption;
mod env;
pub(crate) mod events;
mod keys;
mod load;
mod log;
mod rate_limit;
pub(crate) mod retention;
mod revocation;
mod secrets;
mod server;
mod storage;
mod store;
#[cfg(test)]
mod tests;
pub(crate) mod usage;
mod validate;

pub(crate) use self::audit::AuditSection;
#[cfg(test)]
pub(crate) use self::auth::BindingConfig;
pub(crate) use self::auth::{AuthProvider, AuthSection};
pub(crate) use self::cors::CorsConfig;
pub(crate) use self::documents::DocumentsSection;
pub(crate) use self::encryption::{EncryptionSection, KeyWrapperKind};
pub(crate) use self::events::EventsSection;
pub(crate) use self::keys::{KeySource, KeysConfig};
pub(crate) use self::log::{LogConfig, LogFormat};
#[cfg(not(feature = "redis"))]
pub(crate) use self::rate_limit::NO_REDIS_SUPPORT;
pub(crate) use self::rate_limit::{
    OnRedisFailure, RateLimitBackend, RateLimitSection, RedisUrlSource,
};
pub(crate) use self::retention::RetentionSection;
pub(crate) use self::revocation::RevocationSection;
#[cfg_attr(not(any(test, feature = "redis")), allow(unused_imports))]
pub(crate) use self::revocation::{AnnounceBackend, RevocationBackend};
pub(crate) use self::secrets::{SecretRef, SecretSource, SecretsSection};
pub(crate) use self::server::ServerConfig;
pub(crate) use self::storage::StorageConfig;
pub(crate) use self::store::{StoreBackend, StoreSection};
pub(crate) use self::usage::UsageSection;
#[cfg_attr(
    all(feature = "postgres", feature = "redis", feature = "vault"),
    allow(unused_imports)
)]
pub(crate) use self::validate::missing_feature;
