//! The `DOCAICHE_*` variables: one table from each variable to the TOML key
//! it overrides, and how its text becomes a value.
//!
//! The names are not a mechanical `section_key` pattern (`DOCAICHE_BIND` is
//! `server.bind`, `DOCAICHE_REDIS_URL_SOURCE` is `rate_limit.redis_url`), so
//! they are listed rather than derived, and the list is the one place that
//! knows them (the table in the module docs is checked against it). A
//! variable gives only the *syntax* of its text (a comma list, a keyword in
//! any case); the typing is serde's, through figment, as for the file.
//! Variables not listed are never read here: `DOCAICHE_CONFIG` names the
//! file, and `DOCAICHE_SECRET_*` are secrets, read by `auth.provider = "env"`.

use figment::value::{Empty, Num, Value};

use self::Syntax::{Bool, Keyword, List, Number, Optional, Text, Trimmed};
use crate::config::EnvLookup;

/// How a variable's text becomes a configuration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Syntax {
    /// Taken as written: paths, references, filters, names.
    Text,
    /// Surrounding blanks removed: socket addresses.
    Trimmed,
    /// A name in any case, surrounding blanks removed: `production`, `Redis`.
    Keyword,
    /// `true` or `false`, surrounding blanks removed.
    Bool,
    /// A number, surrounding blanks removed.
    Number,
    /// A comma-separated list; blanks around items and empty items dropped,
    /// so an empty variable is an empty list.
    List,
    /// Surrounding blanks removed; empty unsets the setting.
    Optional,
}

/// One `DOCAICHE_*` variable.
#[derive(Debug)]
pub(super) struct Variable {
    /// The variable's name.
    pub(super) name: &'static str,
    /// The dotted TOML key it overrides.
    pub(super) key: &'static str,
    /// How its text is read.
    pub(super) syntax: Syntax,
}

/// Shorthand for the table.
const fn var(name: &'static str, key: &'static str, syntax: Syntax) -> Variable {
    Variable { name, key, syntax }
}

/// Every configuration variable, in the order of the table in the module
/// docs (columns aligned by hand: a table is read down, not across).
#[rustfmt::skip]
pub(super) const VARIABLES: &[Variable] = &[
    var("DOCAICHE_ENV",                         "environment",                      Keyword),
    var("DOCAICHE_BIND",                        "server.bind",                      Trimmed),
    var("DOCAICHE_BEHIND_PROXY",                "server.behind_proxy",              Bool),
    var("DOCAICHE_REQUEST_TIMEOUT_SECS",        "server.request_timeout_secs",      Number),
    var("DOCAICHE_BODY_LIMIT_BYTES",            "server.body_limit_bytes",          Number),
    var("DOCAICHE_JSON_BODY_LIMIT_BYTES",       "server.json_body_limit_bytes",     Number),
    var("DOCAICHE_SHUTDOWN_GRACE_SECS",         "server.shutdown_grace_secs",       Number),
    var("DOCAICHE_DATA_DIR",                    "storage.data_dir",                 Text),
    var("DOCAICHE_CORS_ALLOWED_ORIGINS",        "cors.allowed_origins",             List),
    var("DOCAICHE_HTTPS",                       "http.https",                       Keyword),
    var("DOCAICHE_TLS_CERT_FILE",               "http.tls_cert_file",               Text),
    var("DOCAICHE_TLS_KEY_FILE",                "http.tls_key_file",                Text),
    var("DOCAICHE_HTTPS_TRUSTED_PROXIES",       "http.trusted_proxies",             List),
    var("DOCAICHE_IDLE_TIMEOUT_SECS",           "http.idle_timeout_secs",           Number),
    var("DOCAICHE_HEADER_READ_TIMEOUT_SECS",    "http.header_read_timeout_secs",    Number),
    var("DOCAICHE_MAX_CONNECTIONS",             "http.max_connections",             Number),
    var("DOCAICHE_MAX_CONNECTIONS_PER_ADDRESS", "http.max_connections_per_address", Number),
    var("DOCAICHE_PUBLIC_ORIGIN",               "http.public_origin",               Optional),
    var("DOCAICHE_METRICS_BIND",                "metrics.bind",                     Trimmed),
    var("DOCAICHE_KEY_SOURCE",                  "keys.source",                      Text),
    var("DOCAICHE_LOCAL_KEY_FILE",              "keys.local_key_file",              Text),
    var("DOCAICHE_LOG",                         "log.filter",                       Text),
    var("DOCAICHE_LOG_FORMAT",                  "log.format",                       Keyword),
    var("DOCAICHE_TRUSTED_PROXIES",             "rate_limit.trusted_proxies",       List),
    var("DOCAICHE_RATE_LIMIT_BACKEND",          "rate_limit.backend",               Keyword),
    var("DOCAICHE_REDIS_URL_SOURCE",            "rate_limit.redis_url",             Text),
    var("DOCAICHE_AUTH_PROVIDER",               "auth.provider",                    Text),
    var("DOCAICHE_JWT_ISSUER",                  "auth.jwt.issuer",                  Text),
    var("DOCAICHE_STORE_BACKEND",               "store.backend",                    Keyword),
    var("DOCAICHE_DATABASE_URL_SOURCE",         "store.url_source",                 Text),
    var("DOCAICHE_DATABASE_REPLICA_URL_SOURCE", "store.replica_url_source",         Text),
    var("DOCAICHE_DATABASE_ROW_LEVEL_SECURITY", "store.row_level_security",         Bool),
    var("DOCAICHE_DATABASE_MAX_CONNECTIONS",    "store.max_connections",            Number),
    var("DOCAICHE_REVOCATION_BACKEND",          "revocation.backend",               Keyword),
    var("DOCAICHE_ANNOUNCE_API_KEYS",           "revocation.announce_api_keys",     Keyword),
    var("DOCAICHE_REVOCATION_REDIS_URL_SOURCE", "revocation.url_source",            Text),
    var("DOCAICHE_SECRETS_SOURCES",             "secrets.sources",                  List),
    var("DOCAICHE_VAULT_ADDR",                  "secrets.vault.address",            Text),
    var("DOCAICHE_VAULT_TOKEN_SOURCE",          "secrets.vault.token_source",       Text),
    var("DOCAICHE_VAULT_ROLE_ID_SOURCE",        "secrets.vault.role_id_source",     Text),
    var("DOCAICHE_VAULT_SECRET_ID_SOURCE",      "secrets.vault.secret_id_source",   Text),
    var("DOCAICHE_VAULT_KV_MOUNT",              "secrets.vault.kv_mount",           Text),
    var("DOCAICHE_KEY_WRAPPER",                 "encryption.key_wrapper",           Keyword),
    var("DOCAICHE_TRANSIT_KEY",                 "encryption.transit_key",           Text),
    var("DOCAICHE_USAGE_ENABLED",               "usage.enabled",                    Bool),
    var("DOCAICHE_USAGE_FLUSH_INTERVAL_SECS",   "usage.flush_interval_secs",        Number),
];

impl Variable {
    /// This variable's value in `env`, if set: `Ok` with the value for
    /// figment, or `Err` saying why the text is not of its syntax (without
    /// repeating the text).
    pub(super) fn read(&self, env: EnvLookup<'_>) -> Option<Result<Value, &'static str>> {
        let text = env(self.name)?;
        Some(match self.syntax {
            Syntax::Text => Ok(Value::from(text)),
            Syntax::Trimmed => Ok(Value::from(text.trim())),
            Syntax::Keyword => Ok(Value::from(text.trim().to_ascii_lowercase())),
            Syntax::Bool => match text.trim() {
                "true" => Ok(Value::from(true)),
                "false" => Ok(Value::from(false)),
                _ => Err("expected `true` or `false`"),
            },
            Syntax::Number => text
                .parse::<Num>()
                .map(Value::from)
                .map_err(|_| "expected a number"),
            Syntax::List => Ok(Value::from(
                text.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            )),
            Syntax::Optional => match text.trim() {
                "" => Ok(Value::from(Empty::None)),
                trimmed => Ok(Value::from(trimmed)),
            },
        })
    }
}
