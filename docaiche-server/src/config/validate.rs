//! Validation and the production checks: every finding about a loaded
//! configuration, with its severity and fix, turned into warnings or a
//! refusal by [`Config::validate`]; the scan for literal secrets in the
//! raw TOML.

use std::borrow::Cow;
use std::path::PathBuf;

use docaiche_core::Error;

#[cfg(not(feature = "redis"))]
use crate::config::NO_REDIS_SUPPORT;
use crate::config::rate_limit::REDIS_URL_LITERAL_REASON;
use crate::config::{
    Config, ConfigProblems, Environment, Finding, KeySource, KeyWrapperKind, LogFormat,
    OnRedisFailure, RateLimitBackend, RedisUrlSource, SECRET_KEY_MARKERS, SecretRef, SecretSource,
    Severity, StoreBackend, Warning,
};

impl Config {
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
        for (setting, reason) in self.usage.problems() {
            add(Severity::Invalid, setting, reason.into());
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
pub(super) const LITERAL_SECRET_REASON: &str = "holds a literal secret in the configuration file; replace it \
     with a reference (env:NAME, file:/path or vault:path) and rotate the exposed secret";

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

/// Record in `out` the dotted names of keys that look secret-bearing (or sit
/// under such a table) and hold a non-empty literal string.
pub(super) fn find_literal_secrets(
    table: &toml::Table,
    prefix: &str,
    inherited: bool,
    out: &mut Vec<String>,
) {
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
