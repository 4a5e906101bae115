//! [`RedisCacheStore`]: the [`CacheStore`] on Redis.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use docaiche_core::cache::{CacheEntry, CacheKey, CacheStore};
use docaiche_core::error::Result;

use super::RedisStore;

/// A [`CacheStore`] on Redis: `SET … PX` with the entry's TTL, so Redis
/// expires entries itself (its memory policy may also evict early, which
/// the contract allows); `get` reads the value and its remaining TTL in one
/// round trip. Keys: `{prefix}:cache:{namespace}:{key}`.
///
/// From [`RedisStore::cache`]; cheap to clone.
#[derive(Clone)]
pub struct RedisCacheStore {
    store: RedisStore,
}

impl RedisCacheStore {
    pub(super) fn new(store: RedisStore) -> Self {
        Self { store }
    }

    /// The Redis key of `key`: `{prefix}:cache:{namespace}:{key}`, with
    /// `%` and `:` in the namespace percent-encoded so that the first `:`
    /// after it always ends it (`ns:x` + `id` and `ns` + `x:id` stay two
    /// keys).
    #[must_use]
    pub fn redis_key(&self, key: &CacheKey) -> String {
        let mut rest = String::with_capacity(key.namespace().len() + key.key().len() + 1);
        for c in key.namespace().chars() {
            match c {
                '%' => rest.push_str("%25"),
                ':' => rest.push_str("%3A"),
                c => rest.push(c),
            }
        }
        rest.push(':');
        rest.push_str(key.key());
        self.store.key("cache", &rest)
    }
}

/// Milliseconds for `PX`, at least 1 (Redis refuses 0).
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl CacheStore for RedisCacheStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>> {
        let redis_key = self.redis_key(key);
        let mut pipeline = redis::pipe();
        pipeline.get(&redis_key).pttl(&redis_key);
        let (value, pttl): (Option<Vec<u8>>, i64) =
            self.store.pipeline("cache get", pipeline).await?;
        // PTTL: -2 no key (expired between the two commands), -1 no expiry
        // (a value someone else wrote without one: not ours to trust).
        match (value, u64::try_from(pttl)) {
            (Some(value), Ok(ms)) if ms > 0 => Ok(Some(CacheEntry::new(
                Bytes::from(value),
                Duration::from_millis(ms),
            ))),
            _ => Ok(None),
        }
    }

    async fn set(&self, key: &CacheKey, value: Bytes, ttl: Duration) -> Result<()> {
        let redis_key = self.redis_key(key);
        if ttl.is_zero() {
            let _: i64 = self
                .store
                .query("cache delete", redis::cmd("DEL").arg(&redis_key).clone())
                .await?;
            return Ok(());
        }
        let mut command = redis::cmd("SET");
        command
            .arg(&redis_key)
            .arg(value.as_ref())
            .arg("PX")
            .arg(millis(ttl));
        let _: () = self.store.query("cache set", command).await?;
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool> {
        let mut command = redis::cmd("DEL");
        command.arg(self.redis_key(key));
        let removed: i64 = self.store.query("cache delete", command).await?;
        Ok(removed > 0)
    }
}

impl fmt::Debug for RedisCacheStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCacheStore")
            .field("store", &self.store)
            .finish()
    }
}
