//! [`RedisWebSessionStore`]: the [`WebSessionStore`] on Redis.

use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use docaiche_core::clock::{Clock, SystemClock};
use docaiche_core::error::Result;
use docaiche_core::web_session::{SecondFactor, WebSession, WebSessionKey, WebSessionStore};
use docaiche_core::{Error, PrincipalId, TenantId};
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use time::OffsetDateTime;

use super::RedisStore;
use crate::trace::traced;

/// Most sessions one [`WebSessionStore::purge`] call examines per index;
/// the next call goes on.
pub const PURGE_BATCH: usize = 10_000;

/// Sessions handled at once by `purge` and `remove_subject`.
const CONCURRENCY: usize = 32;

/// Create the session hash unless its key exists; expire it at the end of
/// its lifetime (`ARGV[6]` ms).
const INSERT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 't', ARGV[1], 's', ARGV[2], 'c', ARGV[3], 'l', ARGV[4], 'f', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
";

/// Move last-seen to `ARGV[1]` if later; whether the session exists.
const TOUCH: &str = r"
local seen = redis.call('HGET', KEYS[1], 'l')
if not seen then return 0 end
if tonumber(ARGV[1]) > tonumber(seen) then redis.call('HSET', KEYS[1], 'l', ARGV[1]) end
return 1
";

/// Delete the session; its tenant and subject, or nil if there was none.
const REMOVE: &str = r"
local owner = redis.call('HMGET', KEYS[1], 't', 's')
if not owner[1] then return nil end
redis.call('DEL', KEYS[1])
return owner
";

/// Delete the session if it belongs to tenant `ARGV[1]` and subject
/// `ARGV[2]`: 1 deleted, 0 gone already, -1 someone else's.
const REMOVE_OWNED: &str = r"
local owner = redis.call('HMGET', KEYS[1], 't', 's')
if not owner[1] then return 0 end
if owner[1] == ARGV[1] and owner[2] == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return -1
";

/// Delete the session if last seen before `ARGV[1]` or created before
/// `ARGV[2]` (µs): `{'1', tenant, subject}` deleted, `{'0'}` gone
/// already, `{'-1', last seen}` still live.
const PURGE: &str = r"
local s = redis.call('HMGET', KEYS[1], 't', 's', 'c', 'l')
if not s[1] then return {'0'} end
if tonumber(s[4]) < tonumber(ARGV[1]) or tonumber(s[3]) < tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return {'1', s[1], s[2]}
end
return {'-1', s[4]}
";

/// A [`WebSessionStore`] on Redis.
///
/// Keys (`{prefix}` as configured, ids never contain `:`):
///
/// | key | type | what |
/// |---|---|---|
/// | `{prefix}:web-session:{hex of the key}` | hash | the session: `t` tenant, `s` subject, `c` created and `l` last seen (Unix µs), `f` second factor; expires `lifetime` after its creation |
/// | `{prefix}:web-session-subject:{tenant}:{subject}` | set | the hex keys of a subject's sessions, for `remove_subject`; expires with the latest of them |
/// | `{prefix}:web-sessions:last-seen`, `…:created` | sorted sets | every hex key scored by last-seen and creation time, for `purge` |
///
/// The hash expiring at the absolute timeout keeps Redis bounded even if
/// no purge ever runs; `purge` removes idle sessions (and any session
/// older than it is told), at most [`PURGE_BATCH`] per index per call, and
/// drops index entries whose session has gone. Each command touches one
/// key (scripts included), so the store runs on a cluster; the price is
/// that the steps of one call are not atomic together. They are ordered so
/// that an interruption never hides a live session from `remove_subject`
/// (the subject set is written before the session) and every script
/// re-checks the session itself, so a stale index entry or set member
/// removes nothing it should not.
///
/// From [`RedisStore::web_sessions`]; cheap to clone.
#[derive(Clone)]
pub struct RedisWebSessionStore {
    store: RedisStore,
    lifetime: Duration,
    clock: Arc<dyn Clock>,
}

impl RedisWebSessionStore {
    pub(super) fn new(store: RedisStore, lifetime: Duration) -> Self {
        Self {
            store,
            lifetime,
            clock: Arc::new(SystemClock::new()),
        }
    }

    /// Read "now" (to turn a session's end of life into a TTL) from `clock`
    /// instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The Redis key of the session of `key`.
    #[must_use]
    pub fn redis_key(&self, key: &WebSessionKey) -> String {
        self.store.key("web-session", &hex(key))
    }

    /// The Redis key of the set of `subject`'s sessions.
    #[must_use]
    pub fn subject_key(&self, tenant: &TenantId, subject: &PrincipalId) -> String {
        self.store.key(
            "web-session-subject",
            &format!("{}:{}", tenant.as_str(), subject.as_str()),
        )
    }

    fn index_key(&self, by: &str) -> String {
        self.store.key("web-sessions", by)
    }

    fn session_key_of_hex(&self, hex: &str) -> String {
        self.store.key("web-session", hex)
    }

    /// Milliseconds from now to `created_at + lifetime`, at least 1.
    fn ttl_ms(&self, created_at: OffsetDateTime) -> u64 {
        let lifetime = time::Duration::try_from(self.lifetime).unwrap_or(time::Duration::MAX);
        let end = created_at.checked_add(lifetime).unwrap_or(created_at);
        Duration::try_from(end - self.clock.now())
            .map_or(1, |left| {
                u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
            })
            .max(1)
    }

    /// Drop `hex` from both purge indexes.
    async fn unindex(&self, hex: &str) -> Result<()> {
        let (seen, created) = (self.index_key("last-seen"), self.index_key("created"));
        let mut a = redis::cmd("ZREM");
        a.arg(seen).arg(hex);
        let mut b = redis::cmd("ZREM");
        b.arg(created).arg(hex);
        let ((), ()) = tokio::try_join!(
            self.store.query::<()>("web session unindex", a),
            self.store.query::<()>("web session unindex", b),
        )?;
        Ok(())
    }

    /// Remove `hex` from `subject_key`'s set.
    async fn forget_member(&self, subject_key: String, hex: &str) -> Result<()> {
        let mut command = redis::cmd("SREM");
        command.arg(subject_key).arg(hex);
        self.store.query::<()>("web session forget", command).await
    }

    /// One purge candidate: how many sessions it removed (0 or 1).
    async fn purge_one(&self, hex: String, idle_before: i64, created_before: i64) -> Result<u64> {
        let mut command = redis::cmd("EVAL");
        command
            .arg(PURGE)
            .arg(1)
            .arg(self.session_key_of_hex(&hex))
            .arg(idle_before)
            .arg(created_before);
        let reply: Vec<String> = self.store.query("web session purge", command).await?;
        match reply.as_slice() {
            [done, tenant, subject] if done == "1" => {
                self.unindex(&hex).await?;
                let set = self
                    .store
                    .key("web-session-subject", &format!("{tenant}:{subject}"));
                self.forget_member(set, &hex).await?;
                Ok(1)
            }
            [gone] if gone == "0" => {
                self.unindex(&hex).await?;
                Ok(0)
            }
            [live, seen] if live == "-1" => {
                // A touch whose index update was lost: put the score right
                // so the next purge does not look again.
                let mut command = redis::cmd("ZADD");
                command
                    .arg(self.index_key("last-seen"))
                    .arg("GT")
                    .arg(seen)
                    .arg(&hex);
                self.store
                    .query::<()>("web session reindex", command)
                    .await?;
                Ok(0)
            }
            _ => Err(Error::internal(
                "unexpected redis reply to web session purge",
            )),
        }
    }

    /// The hex keys scored below `before` in index `by`.
    async fn candidates(&self, by: &str, before: i64) -> Result<Vec<String>> {
        let mut command = redis::cmd("ZRANGE");
        command
            .arg(self.index_key(by))
            .arg("-inf")
            .arg(format!("({before}"))
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(PURGE_BATCH);
        self.store
            .query("web session purge candidates", command)
            .await
    }
}

/// Lowercase hex of `key`'s 32 bytes.
fn hex(key: &WebSessionKey) -> String {
    let mut out = String::with_capacity(64);
    for byte in key.as_bytes() {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1000)).unwrap_or(i64::MAX)
}

fn from_micros(field: Option<&String>) -> Result<OffsetDateTime> {
    let us: i64 = field
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::internal("stored web session time is invalid"))?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map_err(|e| Error::internal_with("stored web session time out of range", e))
}

#[async_trait]
impl WebSessionStore for RedisWebSessionStore {
    async fn insert(&self, session: &WebSession) -> Result<()> {
        traced!("redis", "web_sessions", "insert", async move {
            let hex = hex(&session.key);
            let ttl = self.ttl_ms(session.created_at);
            // The subject's set first: whatever fails later, remove_subject
            // still finds the session.
            let set = self.subject_key(&session.tenant, &session.subject);
            let mut pipeline = redis::pipe();
            pipeline
                .cmd("SADD")
                .arg(&set)
                .arg(&hex)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&set)
                .arg(ttl)
                .arg("NX")
                .ignore()
                .cmd("PEXPIRE")
                .arg(&set)
                .arg(ttl)
                .arg("GT")
                .ignore();
            let () = self.store.pipeline("web session insert", pipeline).await?;
            let mut seen = redis::cmd("ZADD");
            seen.arg(self.index_key("last-seen"))
                .arg("NX")
                .arg(micros(session.last_seen_at))
                .arg(&hex);
            let mut created = redis::cmd("ZADD");
            created
                .arg(self.index_key("created"))
                .arg("NX")
                .arg(micros(session.created_at))
                .arg(&hex);
            let ((), ()) = tokio::try_join!(
                self.store.query::<()>("web session insert", seen),
                self.store.query::<()>("web session insert", created),
            )?;
            let mut command = redis::cmd("EVAL");
            command
                .arg(INSERT)
                .arg(1)
                .arg(self.redis_key(&session.key))
                .arg(session.tenant.as_str())
                .arg(session.subject.as_str())
                .arg(micros(session.created_at))
                .arg(micros(session.last_seen_at))
                .arg(session.second_factor.as_str())
                .arg(ttl);
            let created: i64 = self.store.query("web session insert", command).await?;
            if created == 1 {
                Ok(())
            } else {
                Err(Error::conflict("web session"))
            }
        })
        .await
    }

    async fn get(&self, key: &WebSessionKey) -> Result<Option<WebSession>> {
        traced!("redis", "web_sessions", "get", async move {
            let mut command = redis::cmd("HMGET");
            command
                .arg(self.redis_key(key))
                .arg("t")
                .arg("s")
                .arg("c")
                .arg("l")
                .arg("f");
            let fields: Vec<Option<String>> = self.store.query("web session get", command).await?;
            let [Some(tenant), Some(subject), created, seen, Some(factor)] =
                <[Option<String>; 5]>::try_from(fields)
                    .map_err(|_| Error::internal("unexpected redis reply to web session get"))?
            else {
                return Ok(None);
            };
            let tenant = TenantId::new(tenant)
                .map_err(|e| Error::internal_with("stored tenant id is invalid", e))?;
            let subject = PrincipalId::new(subject)
                .map_err(|e| Error::internal_with("stored principal id is invalid", e))?;
            let mut session = WebSession::new(
                *key,
                tenant,
                subject,
                from_micros(created.as_ref())?,
                SecondFactor::from_name(&factor)?,
            );
            session.last_seen_at = from_micros(seen.as_ref())?;
            Ok(Some(session))
        })
        .await
    }

    async fn touch(&self, key: &WebSessionKey, at: OffsetDateTime) -> Result<bool> {
        traced!("redis", "web_sessions", "touch", async move {
            let mut command = redis::cmd("EVAL");
            command
                .arg(TOUCH)
                .arg(1)
                .arg(self.redis_key(key))
                .arg(micros(at));
            let found: i64 = self.store.query("web session touch", command).await?;
            if found == 1 {
                let mut index = redis::cmd("ZADD");
                index
                    .arg(self.index_key("last-seen"))
                    .arg("GT")
                    .arg(micros(at))
                    .arg(hex(key));
                self.store.query::<()>("web session touch", index).await?;
            }
            Ok(found == 1)
        })
        .await
    }

    async fn remove(&self, key: &WebSessionKey) -> Result<bool> {
        traced!("redis", "web_sessions", "remove", async move {
            let mut command = redis::cmd("EVAL");
            command.arg(REMOVE).arg(1).arg(self.redis_key(key));
            let owner: Option<(String, String)> =
                self.store.query("web session remove", command).await?;
            let Some((tenant, subject)) = owner else {
                return Ok(false);
            };
            let hex = hex(key);
            let set = self
                .store
                .key("web-session-subject", &format!("{tenant}:{subject}"));
            self.forget_member(set, &hex).await?;
            self.unindex(&hex).await?;
            Ok(true)
        })
        .await
    }

    async fn remove_subject(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<u64> {
        traced!("redis", "web_sessions", "remove_subject", async move {
            let set = self.subject_key(tenant, subject);
            let mut members = redis::cmd("SMEMBERS");
            members.arg(&set);
            let members: Vec<String> = self
                .store
                .query("web session remove subject", members)
                .await?;
            let removed: Vec<u64> = stream::iter(members)
                .map(|hex| {
                    let set = set.clone();
                    async move {
                        let mut command = redis::cmd("EVAL");
                        command
                            .arg(REMOVE_OWNED)
                            .arg(1)
                            .arg(self.session_key_of_hex(&hex))
                            .arg(tenant.as_str())
                            .arg(subject.as_str());
                        let outcome: i64 = self
                            .store
                            .query("web session remove subject", command)
                            .await?;
                        // -1: a stale member naming someone else's session
                        // (only after a key collision): forget the member,
                        // keep the session and its index entries.
                        if outcome >= 0 {
                            self.unindex(&hex).await?;
                        }
                        self.forget_member(set, &hex).await?;
                        Ok::<_, Error>(u64::from(outcome == 1))
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect()
                .await?;
            Ok(removed.into_iter().sum())
        })
        .await
    }

    async fn purge(
        &self,
        idle_before: OffsetDateTime,
        created_before: OffsetDateTime,
    ) -> Result<u64> {
        traced!("redis", "web_sessions", "purge", async move {
            let (idle_before, created_before) = (micros(idle_before), micros(created_before));
            let (mut candidates, old) = tokio::try_join!(
                self.candidates("last-seen", idle_before),
                self.candidates("created", created_before),
            )?;
            candidates.extend(old);
            candidates.sort_unstable();
            candidates.dedup();
            let removed: Vec<u64> = stream::iter(candidates)
                .map(|hex| self.purge_one(hex, idle_before, created_before))
                .buffer_unordered(CONCURRENCY)
                .try_collect()
                .await?;
            Ok(removed.into_iter().sum())
        })
        .await
    }
}

impl fmt::Debug for RedisWebSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisWebSessionStore")
            .field("store", &self.store)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}
