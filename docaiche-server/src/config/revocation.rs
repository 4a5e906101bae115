//! `[revocation]`: where revoked JWT ids live, and how revoked API keys
//! reach the other instances.

use std::str::FromStr;

use serde::Deserialize;

use crate::config::RateLimitSection;

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

/// `[revocation]`: where revoked JWT ids are kept (and the console's web
/// sessions with them), and how a revoked API key reaches the other
/// instances' caches.
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
