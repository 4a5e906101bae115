//! The [`CacheStore`] contract: a namespaced byte cache with TTLs.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::error::{Error, Result};

/// A cache key: a namespace (`extract`, `jwks`, …) and a key within it.
///
/// Callers that cache tenant data put the tenant in the key: the cache itself
/// is shared.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    namespace: &'static str,
    key: String,
}

impl CacheKey {
    /// Longest key (excluding namespace), in bytes.
    pub const MAX_LEN: usize = 512;

    /// A key in `namespace`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `key` is empty, longer than
    /// [`Self::MAX_LEN`], or contains control characters or whitespace.
    pub fn new(namespace: &'static str, key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        if key.is_empty()
            || key.len() > Self::MAX_LEN
            || key.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::invalid_input("invalid cache key"));
        }
        Ok(Self { namespace, key })
    }

    /// The namespace.
    #[must_use]
    pub const fn namespace(&self) -> &'static str {
        self.namespace
    }

    /// The key within the namespace.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({}:{})", self.namespace, self.key)
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.key)
    }
}

/// A cached value and how long it has left.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheEntry {
    /// The value.
    pub value: Bytes,
    /// Remaining time to live (for probabilistic early refresh).
    pub ttl_remaining: Duration,
}

impl CacheEntry {
    /// An entry.
    #[must_use]
    pub const fn new(value: Bytes, ttl_remaining: Duration) -> Self {
        Self {
            value,
            ttl_remaining,
        }
    }
}

/// A byte cache with per-entry TTLs.
///
/// Contract:
/// - An entry is never returned after its TTL has elapsed.
/// - `set` overwrites; `delete` is idempotent.
/// - A cache is allowed to forget entries early (eviction under a memory
///   bound): callers must treat a miss as normal.
/// - An outage is `Err(Unavailable)`; callers usually treat it as a miss.
#[async_trait::async_trait]
pub trait CacheStore: Send + Sync + fmt::Debug + 'static {
    /// Look up `key`.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>>;

    /// Store `value` under `key` for `ttl` (a zero TTL deletes).
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn set(&self, key: &CacheKey, value: Bytes, ttl: Duration) -> Result<()>;

    /// Remove `key`. Returns whether it was present.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn delete(&self, key: &CacheKey) -> Result<bool>;
}
