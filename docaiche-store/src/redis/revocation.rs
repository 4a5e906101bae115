//! [`RedisTokenRevocationStore`]: the [`TokenRevocationStore`] on Redis.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use docaiche_core::clock::{Clock, SystemClock};
use docaiche_core::error::Result;
use docaiche_core::revocation::{
    IssuedToken, TokenRevocationStore, issued_within, validate_token_id,
};
use docaiche_core::{Error, PrincipalId, TenantId};
use time::OffsetDateTime;

use super::RedisStore;
use crate::trace::traced;

/// A [`TokenRevocationStore`] on Redis: one key per revoked token id,
/// `{prefix}:revoked:{id}`, expiring when the token would have expired
/// anyway (TTL = its remaining life), so the set never outgrows the tokens
/// in circulation.
///
/// `revoke` is one round trip of two commands: `SET … NX PX ttl` (revoke
/// if not yet) and `PEXPIRE … GT` (extend an existing revocation to a later
/// expiry, never shorten it: Redis 7's `GT`). Each is idempotent, so a retry
/// is harmless.
///
/// A revoked subject is one key, `{prefix}:revoked-subject:{tenant}:{principal}`
/// (ids never contain `:`), holding the Unix microseconds it is revoked
/// through and expiring at `remember_until`; one Lua script moves both only
/// later. [`TokenRevocationStore::is_token_revoked`] asks for the token id
/// and the subject concurrently, so a bearer check costs one round trip of
/// latency (two keys, possibly on two cluster nodes). From
/// [`RedisStore::revocations`]; cheap to clone.
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

    /// The Redis key of a revoked subject.
    #[must_use]
    pub fn subject_key(&self, tenant: &TenantId, subject: &PrincipalId) -> String {
        self.store.key(
            "revoked-subject",
            &format!("{}:{}", tenant.as_str(), subject.as_str()),
        )
    }
}

/// Revoke a subject through `ARGV[1]` (µs) for `ARGV[2]` ms, moving the
/// instant and the expiry only later.
const REVOKE_SUBJECT: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  if tonumber(ARGV[1]) > tonumber(current) then
    redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2], 'GT')
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
";

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1000)).unwrap_or(i64::MAX)
}

fn from_micros(us: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map_err(|e| Error::internal_with("subject revocation instant out of range", e))
}

#[async_trait]
impl TokenRevocationStore for RedisTokenRevocationStore {
    async fn revoke(&self, token_id: &str, expires_at: OffsetDateTime) -> Result<()> {
        traced!("redis", "revoked_tokens", "revoke", async move {
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
        })
        .await
    }

    async fn is_revoked(&self, token_id: &str) -> Result<bool> {
        traced!(
            "redis",
            "revoked_tokens",
            "is_revoked",
            self.token_revoked(token_id)
        )
        .await
    }

    async fn revoke_subject(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        through: OffsetDateTime,
        remember_until: OffsetDateTime,
    ) -> Result<()> {
        traced!("redis", "revoked_subjects", "revoke_subject", async move {
            let Ok(ttl) = Duration::try_from(remember_until - self.clock.now()) else {
                return Ok(());
            };
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let mut command = redis::cmd("EVAL");
            command
                .arg(REVOKE_SUBJECT)
                .arg(1)
                .arg(self.subject_key(tenant, subject))
                .arg(micros(through))
                .arg(ms);
            let _: i64 = self.store.query("revoke subject", command).await?;
            Ok(())
        })
        .await
    }

    async fn subject_revoked_through(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
    ) -> Result<Option<OffsetDateTime>> {
        traced!(
            "redis",
            "revoked_subjects",
            "subject_revoked_through",
            self.revoked_through(tenant, subject)
        )
        .await
    }

    async fn is_token_revoked(&self, token: &IssuedToken<'_>) -> Result<bool> {
        // One span for the check, whatever its round trips.
        traced!("redis", "revoked_tokens", "is_token_revoked", async move {
            let (revoked, through) = tokio::try_join!(
                self.token_revoked(token.token_id),
                self.revoked_through(token.tenant, token.subject),
            )?;
            Ok(revoked || through.is_some_and(|t| issued_within(token.issued_at, t)))
        })
        .await
    }
}

impl RedisTokenRevocationStore {
    /// [`TokenRevocationStore::is_revoked`], without its span.
    async fn token_revoked(&self, token_id: &str) -> Result<bool> {
        validate_token_id(token_id)?;
        let mut command = redis::cmd("EXISTS");
        command.arg(self.redis_key(token_id));
        let found: i64 = self.store.query("revocation check", command).await?;
        Ok(found > 0)
    }

    /// [`TokenRevocationStore::subject_revoked_through`], without its span.
    async fn revoked_through(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
    ) -> Result<Option<OffsetDateTime>> {
        let mut command = redis::cmd("GET");
        command.arg(self.subject_key(tenant, subject));
        let through: Option<i64> = self
            .store
            .query("subject revocation check", command)
            .await?;
        through.map(from_micros).transpose()
    }
}

impl fmt::Debug for RedisTokenRevocationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokenRevocationStore")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}
