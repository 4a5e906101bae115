//! Loading: embedded defaults, then the TOML file, then the `DOCAICHE_*`
//! environment variables (the table in the parent module's docs).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use docaiche_core::Error;

use crate::config::validate::{LITERAL_SECRET_REASON, find_literal_secrets};
use crate::config::{Config, ConfigProblems, EnvLookup};

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
}

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
