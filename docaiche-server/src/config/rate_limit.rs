//! `[rate_limit]`: the policies per route class (built-in ones included),
//! the limiter backend (in process or Redis) and how a Redis URL is
//! referenced.

use std::fmt;
use std::str::FromStr;

use docaiche_ratelimit::policy::RateLimitConfig;
use serde::Deserialize;

use crate::config::SecretRef;

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
    pub(crate) const CLASSES: [&'static str; 5] =
        ["auth", "console", "default", "documents", "probes"];

    /// The built-in policies of [`Self::CLASSES`].
    pub(crate) fn builtin_policies() -> RateLimitConfig {
        // A literal, checked by the tests; a typo here fails every start.
        serde_json::from_value(serde_json::json!({
            "policies": {
                "auth": { "limits": [
                    { "key": "client_addr", "limit": 30, "period_secs": 60 }
                ]},
                "console": { "limits": [
                    { "key": "client_addr", "limit": 300, "period_secs": 60 }
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

/// Why `rate_limit.backend = "redis"` is refused by a build without Redis.
#[cfg(not(feature = "redis"))]
pub(crate) const NO_REDIS_SUPPORT: &str =
    "this build has no Redis support; build with --features redis";

/// The reason given for a literal `rate_limit.redis_url`.
pub(super) const REDIS_URL_LITERAL_REASON: &str = "holds a literal URL, which may carry a password; set it to \
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
