//! [`RedisTokenRevocationStore`]: the [`TokenRevocationStore`] on Redis.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use docaiche_core::clock::{Clock, SystemClock};
use docaiche_core::error::Result;
use docaiche_core::revocation::{TokenRevocationStore, validate_token_id};
use time::OffsetDateTime;

use super::RedisStore;

/// A [`TokenRevocationStore`] on Redis: one key per revoked token id,
/// `{prefix}:revoked:{id}`, expiring when the token would have expired
/// anyway (TTL = its remaining life), so the set never outgrows the tokens
/// in circulation.
///
/// `revoke` is one round trip of two commands: `SET … NX PX ttl` (revoke
/// if not yet) and `PEXPIRE … GT` (extend an existing revocation to a later
/// expiry, never shorten it: Redis 7's `GT`). Each is idempotent, so a retry
/// is harmless. From [`RedisStore::revocations`]; cheap to clone.
#[derive(Clone)]
pub struct RedisTokenRevocationStore {
    store: RedisStore,
    clock: Arc<dyn Clock>,
}

impl RedisTokenRevocationStore {
    pub(super) fn new(store: RedisStore) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock::new()),
        }
    }

    /// Read "now" (to turn an expiry into a TTL) from `clock` instead of
    /// the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The Redis key of `token_id` (not validated).
    #[must_use]
    pub fn redis_key(&self, token_id: &str) -> String {
        self.store.key("revoked", token_id)
    }
}

#[async_trait]
impl TokenRevocationStore for RedisTokenRevocationStore {
    async fn revoke(&self, token_id: &str, expires_at: OffsetDateTime) -> Result<()> {
        validate_token_id(token_id)?;
        let remaining = expires_at - self.clock.now();
        let Ok(ttl) = Duration::try_from(remaining) else {
            // Already expired: the token is refused for its expiry anyway.
            return Ok(());
        };
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let key = self.redis_key(token_id);
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ms)
            .arg("GT")
            .ignore();
        let () = self.store.pipeline("revoke", pipeline).await?;
        Ok(())
    }

    async fn is_revoked(&self, token_id: &str) -> Result<bool> {
        validate_token_id(token_id)?;
        let mut command = redis::cmd("EXISTS");
        command.arg(self.redis_key(token_id));
        let found: i64 = self.store.query("revocation check", command).await?;
        Ok(found > 0)
    }
}

impl fmt::Debug for RedisTokenRevocationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokenRevocationStore")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}
