//! The distributed limiter: GCRA in one Redis Lua script.
//!
//! [`RedisRateLimiter`] implements [`RateLimiter`] for any number of server
//! instances sharing one Redis (standalone or Cluster): they all enforce the
//! *same* limit per key, not one each.
//!
//! ## Design
//!
//! * **One script, one round trip.** Each decision is one `EVALSHA` of
//!   [`GCRA_SCRIPT`] (the `gcra.lua` file beside this module): it reads the
//!   key's theoretical arrival time (TAT), decides, and stores the new TAT,
//!   atomically, because Redis runs a script to completion before anything
//!   else. The script is sent by hash; when Redis answers `NOSCRIPT` (after a
//!   restart, a failover or a `SCRIPT FLUSH`) it is loaded and the call
//!   retried once, transparently ([`redis::Script`]).
//! * **Redis server time.** The script takes "now" from `redis.call('TIME')`,
//!   never from the client, so instances whose clocks disagree still share
//!   one timeline. The TAT is stored as `"<seconds>:<nanoseconds>"` since the
//!   epoch of the server's clock (nanoseconds since the epoch do not fit the
//!   53-bit integers of Lua's doubles; the two parts do).
//! * **Same maths as in process.** The script is a line-by-line port of
//!   [`Gcra::decide`](crate::gcra::Gcra::decide): with the emission interval
//!   T = ⌊period / limit⌋ and the capacity C = T · limit (in nanoseconds), a
//!   request of cost *n* passes when `n ≤ limit` and `backlog + n·T ≤ C`,
//!   backlog being max(0, TAT − now). It returns `{allowed, backlog}` and
//!   this module turns that into a decision with
//!   [`Gcra::from_backlog`](crate::gcra::Gcra::from_backlog), exactly as the
//!   in-process limiter does, so both answer `remaining`, `reset_after` and
//!   `retry_after` alike.
//! * **Idle keys vanish.** The key is written with `PX` equal to its backlog:
//!   when it expires the TAT is in the past, which is the same as no key. So
//!   memory is bounded by the keys active within one period, whatever an
//!   attacker puts in the key.
//! * **Hash tags.** A limiter key `k` is stored as `"{prefix}:{k}"` — literally
//!   the prefix (default `docaiche:rl`), a colon, then `k` inside braces. Redis
//!   Cluster hashes only the text inside the braces, so `k` and anything
//!   derived from it later share a slot and a script touching them stays
//!   legal on a cluster; different keys spread over the nodes.
//!   [`RateLimitKey`] forbids braces, so a key cannot break out of its tag.
//! * **Connections.** Standalone Redis goes through
//!   [`redis::aio::ConnectionManager`] (one multiplexed connection that
//!   reconnects by itself), Cluster through
//!   [`redis::cluster_async::ClusterConnection`] (one multiplexed connection
//!   per node, following `MOVED`/`ASK`). Both connect lazily: building a
//!   limiter never waits for Redis, and a Redis that is down at start-up is
//!   an outage like any other.
//!
//! ## Failure modes
//!
//! Every call is bounded by a timeout (default 50 ms,
//! [`RedisRateLimiterBuilder::timeout`]): a hung or unreachable Redis costs a
//! request at most that, and answers [`Error::Timeout`]; a refused connection
//! or a broken one answers [`Error::Unavailable`] with dependency `redis`,
//! usually within a millisecond. Nothing here panics on a Redis answer.
//! What to do about an outage is policy, not this type's business: wrap it
//! in [`ResilientRateLimiter`](crate::fallback::ResilientRateLimiter), whose
//! circuit breaker turns a dead Redis into a microsecond-cheap local
//! decision.
//!
//! ## Tracing
//!
//! `check` and `peek` each run in an `INFO` `tracing` span `backend`,
//! exported by `tracing-opentelemetry` as an OpenTelemetry `client` span:
//! `otel.name = "check rate_limit"` (or `peek`), `otel.kind = "client"`,
//! `db.system.name = "redis"`, `db.collection.name = "rate_limit"`,
//! `db.operation.name`, and on failure `otel.status_code = "ERROR"` and
//! `error.type`, the stable error code (`unavailable`, `timeout`). A
//! decision a circuit breaker answers locally makes no call and no span.
//! With no subscriber interested, the span costs a level check.
//!
//! ## Limits
//!
//! Periods up to about 52 days (C up to 2^52 ns, where Lua's doubles stay
//! exact); longer quotas are refused with [`Error::InvalidInput`]. Time
//! resolution is the server's microsecond.
//!
//! ```no_run
//! use std::num::NonZeroU32;
//! use std::time::Duration;
//! use docaiche_core::rate_limit::{Quota, RateLimitKey, RateLimiter};
//! use docaiche_ratelimit::redis::RedisRateLimiter;
//!
//! # async fn run() -> docaiche_core::Result<()> {
//! let limiter = RedisRateLimiter::builder("redis://127.0.0.1:6379")
//!     .key_prefix("myapp:rl")
//!     .timeout(Duration::from_millis(30))
//!     .build()
//!     .await?;
//! let quota = Quota::per_second(NonZeroU32::new(100).expect("non-zero"));
//! let key = RateLimitKey::new("tenant:acme")?;
//! let decision = limiter.check(&key, &quota, NonZeroU32::MIN).await?;
//! assert!(decision.allowed);
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use docaiche_core::error::{Error, Result};
use docaiche_core::health::{ComponentHealth, Criticality, HealthCheck, HealthStatus};
use docaiche_core::rate_limit::{Quota, RateLimitDecision, RateLimitKey, RateLimiter};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{ErrorKind, RedisError, Script};
use tracing::{Instrument as _, Span};

use crate::gcra::Gcra;

/// The Lua source of the GCRA script (`gcra.lua`), as sent to Redis.
///
/// Published so that operators can `SCRIPT LOAD` it themselves (the
/// benchmark script does, to compare against `redis-benchmark`) and audit
/// what runs on their Redis.
pub const GCRA_SCRIPT: &str = include_str!("gcra.lua");

/// The default key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "docaiche:rl";

/// The default bound on one call to Redis.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// The default bound on establishing a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);

/// The name this limiter reports as its dependency in errors and health.
const DEPENDENCY: &str = "redis";

/// The largest capacity `C` the script computes with exactly (2^52 ns, about
/// 52 days): every sum it makes stays below 2^53.
const MAX_CAPACITY_NANOS: u64 = 1 << 52;

/// A distributed GCRA [`RateLimiter`] on Redis or Redis Cluster.
///
/// Cheap to clone (clones share the connection). See the
/// [module docs](self) for the design and its failure modes.
#[derive(Clone)]
pub struct RedisRateLimiter {
    connection: Connection,
    script: Script,
    prefix: String,
    timeout: Duration,
    /// `host:port` of each configured node (never credentials).
    nodes: Vec<String>,
}

/// The two kinds of connection, behind one type.
#[derive(Clone)]
enum Connection {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Builds a [`RedisRateLimiter`]; from [`RedisRateLimiter::builder`] or
/// [`RedisRateLimiter::cluster_builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RedisRateLimiterBuilder {
    urls: Vec<String>,
    cluster: bool,
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
}

impl RedisRateLimiter {
    /// A builder for a limiter on one standalone Redis at `url`
    /// (`redis://[user:password@]host:port[/db]`, or `rediss://`, `unix://`
    /// where the redis crate supports them).
    pub fn builder(url: impl Into<String>) -> RedisRateLimiterBuilder {
        RedisRateLimiterBuilder::new(vec![url.into()], false)
    }

    /// A builder for a limiter on a Redis Cluster, given the URLs of one or
    /// more of its nodes (the others are discovered).
    pub fn cluster_builder<I, S>(urls: I) -> RedisRateLimiterBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisRateLimiterBuilder::new(urls.into_iter().map(Into::into).collect(), true)
    }

    /// The Redis key that holds `key`'s state: `"{prefix}:{key}"` with `key`
    /// as the Cluster hash tag.
    #[must_use]
    pub fn redis_key(&self, key: &RateLimitKey) -> String {
        tagged_key(&self.prefix, key)
    }

    /// The SHA-1 of [`GCRA_SCRIPT`], as `EVALSHA` names it.
    #[must_use]
    pub fn script_sha(&self) -> &str {
        self.script.get_hash()
    }

    /// Whether this limiter talks to a Redis Cluster.
    #[must_use]
    pub fn is_cluster(&self) -> bool {
        matches!(self.connection, Connection::Cluster(_))
    }

    /// A [`HealthCheck`] for this limiter's Redis (sharing its connection),
    /// to register with a [`HealthRegistry`](docaiche_core::health::HealthRegistry).
    #[must_use]
    pub fn health_check(&self) -> RedisHealthCheck {
        RedisHealthCheck {
            limiter: self.clone(),
        }
    }

    /// `PING` Redis (every node, on a cluster) and return the round trip.
    ///
    /// # Errors
    /// [`Error::Unavailable`] or [`Error::Timeout`] when Redis does not
    /// answer `PONG` within the call timeout.
    pub async fn ping(&self) -> Result<Duration> {
        let started = Instant::now();
        let mut connection = self.connection.clone();
        let command = redis::cmd("PING");
        let reply: String = self
            .bounded("ping", async {
                match &mut connection {
                    Connection::Standalone(c) => command.query_async(c).await,
                    Connection::Cluster(c) => command.query_async(c).await,
                }
            })
            .await?;
        if reply == "PONG" {
            Ok(started.elapsed())
        } else {
            Err(Error::internal(format!("redis answered {reply:?} to PING")))
        }
    }

    /// Run the script for one decision.
    async fn decide(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
        peek: bool,
    ) -> Result<RateLimitDecision> {
        let gcra = parameters(quota)?;
        let mut invocation = self.script.key(self.redis_key(key));
        invocation
            .arg(gcra.emission_interval)
            .arg(gcra.capacity())
            .arg(gcra.limit)
            .arg(cost.get())
            .arg(if peek { "1" } else { "0" });
        let mut connection = self.connection.clone();
        let (allowed, backlog): (i64, i64) = self
            .bounded("rate limit", async {
                match &mut connection {
                    Connection::Standalone(c) => invocation.invoke_async(c).await,
                    Connection::Cluster(c) => invocation.invoke_async(c).await,
                }
            })
            .await?;
        // The script never returns a negative backlog; if a foreign value
        // sat under our key, treat it as none rather than failing.
        let backlog = u64::try_from(backlog).unwrap_or(0);
        Ok(gcra.from_backlog(allowed == 1, backlog, cost).to_decision())
    }

    /// Bound `operation` by the call timeout and map its error.
    async fn bounded<T>(
        &self,
        what: &'static str,
        operation: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(map_error(what, error)),
            Err(_) => Err(Error::Timeout {
                operation: Cow::Owned(format!("redis {what}")),
                after: self.timeout,
            }),
        }
    }
}

impl RedisRateLimiterBuilder {
    fn new(urls: Vec<String>, cluster: bool) -> Self {
        Self {
            urls,
            cluster,
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The prefix of every key (default [`DEFAULT_KEY_PREFIX`]); give each
    /// application sharing a Redis its own.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest a decision may wait for Redis, connecting included
    /// (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest one connection attempt may take (default
    /// [`DEFAULT_CONNECT_TIMEOUT`]). A decision still waits at most
    /// [`timeout`](Self::timeout); the attempt goes on in the background.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Build the limiter. Nothing is sent to Redis yet: connections are made
    /// on first use (and remade after failures), so a Redis that is down now
    /// is an outage for the caller's failure policy, not a start-up error.
    /// Must run inside a tokio runtime (the connection's tasks are spawned
    /// on it).
    ///
    /// # Errors
    /// [`Error::Misconfigured`] when there is no URL, a URL does not parse,
    /// the prefix is empty or holds braces, whitespace or control
    /// characters, or a timeout is zero.
    pub async fn build(self) -> Result<RedisRateLimiter> {
        let bad = |setting: &'static str, reason: String| {
            Error::misconfigured(format!("rate_limit.redis.{setting}"), reason)
        };
        if self.urls.is_empty() {
            return Err(bad("url", "at least one Redis URL is needed".into()));
        }
        if self.prefix.is_empty()
            || self
                .prefix
                .chars()
                .any(|c| c == '{' || c == '}' || c.is_whitespace() || c.is_control())
        {
            return Err(bad(
                "key_prefix",
                "must be non-empty, without braces, whitespace or control characters".into(),
            ));
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(bad("timeout", "timeouts must be positive".into()));
        }
        let mut clients = Vec::with_capacity(self.urls.len());
        for (index, url) in self.urls.iter().enumerate() {
            // The URL may hold a password: never echo it back.
            match redis::Client::open(url.as_str()) {
                Ok(client) => clients.push(client),
                Err(error) => {
                    return Err(bad(
                        "url",
                        format!("URL #{} is not a Redis URL: {error}", index + 1),
                    ));
                }
            }
        }
        let nodes = clients
            .iter()
            .map(|c| c.get_connection_info().addr().to_string())
            .collect();
        let connection = if self.cluster {
            let infos = clients.into_iter().map(|c| c.get_connection_info().clone());
            let client = ClusterClient::builder(infos)
                .connection_timeout(self.connect_timeout)
                .response_timeout(self.timeout)
                .retries(1)
                .build()
                .map_err(|error| bad("url", format!("cluster client: {error}")))?;
            let config = ClusterConfig::new()
                .set_connection_timeout(self.connect_timeout)
                .set_response_timeout(self.timeout);
            Connection::Cluster(client.get_pending_async_connection_with_config(config))
        } else {
            let [client] = <[redis::Client; 1]>::try_from(clients)
                .map_err(|_| bad("url", "a standalone limiter takes exactly one URL".into()))?;
            // One connection attempt per reconnect, no backoff sleeps: a
            // refused connection fails the call at once, and the next call
            // after a failed attempt starts a new one (the breaker in front
            // decides how often that is).
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.connect_timeout))
                .set_response_timeout(Some(self.timeout))
                .set_number_of_retries(0);
            let manager = ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|error| bad("url", format!("connection manager: {error}")))?;
            Connection::Standalone(manager)
        };
        Ok(RedisRateLimiter {
            connection,
            script: Script::new(GCRA_SCRIPT),
            prefix: self.prefix,
            timeout: self.timeout,
            nodes,
        })
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Result<RateLimitDecision> {
        let span = client_span!("check", "check rate_limit");
        in_span(span, self.decide(key, quota, cost, false)).await
    }

    async fn peek(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Result<RateLimitDecision> {
        let span = client_span!("peek", "peek rate_limit");
        in_span(span, self.decide(key, quota, cost, true)).await
    }
}

/// The `client` span of one call to Redis (see "Tracing" in the module
/// docs): `$operation` on the `rate_limit` keys, named `$name`.
macro_rules! client_span {
    ($operation:literal, $name:literal) => {
        tracing::info_span!(
            "backend",
            otel.name = $name,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            db.system.name = "redis",
            db.collection.name = "rate_limit",
            db.operation.name = $operation,
            error.r#type = tracing::field::Empty,
        )
    };
}
use client_span;

/// Await `call` in `span`; a failure sets the span's status to error and
/// `error.type` to the error's stable code.
async fn in_span<T>(span: Span, call: impl Future<Output = Result<T>>) -> Result<T> {
    if span.is_disabled() {
        return call.await;
    }
    let result = call.instrument(span.clone()).await;
    if let Err(e) = &result {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", e.code().as_str());
    }
    result
}

/// The [`HealthCheck`] of a [`RedisRateLimiter`]: `PING` with its latency;
/// from [`RedisRateLimiter::health_check`].
///
/// A separate type so that `check` on a limiter is never ambiguous between
/// [`RateLimiter::check`] and [`HealthCheck::check`].
#[derive(Debug, Clone)]
pub struct RedisHealthCheck {
    limiter: RedisRateLimiter,
}

#[async_trait::async_trait]
impl HealthCheck for RedisHealthCheck {
    fn name(&self) -> Cow<'static, str> {
        "redis_rate_limit".into()
    }

    /// Optional: behind [`ResilientRateLimiter`](crate::fallback::ResilientRateLimiter)
    /// the service keeps limiting when Redis is down, so a down Redis
    /// degrades the service rather than taking it out of rotation.
    fn criticality(&self) -> Criticality {
        Criticality::Optional
    }

    async fn check(&self) -> ComponentHealth {
        let started = Instant::now();
        match self.limiter.ping().await {
            Ok(latency) => ComponentHealth::new(self.name(), HealthStatus::Up, latency),
            // The error names the dependency and the failure, never the URL.
            Err(error) => ComponentHealth::new(self.name(), HealthStatus::Down, started.elapsed())
                .with_detail(error.to_string()),
        }
    }
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("cluster", &self.is_cluster())
            .field("nodes", &self.nodes)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("script_sha", &self.script.get_hash())
            .finish_non_exhaustive()
    }
}

/// `"{prefix}:{key}"`, `key` being the hash tag.
fn tagged_key(prefix: &str, key: &RateLimitKey) -> String {
    let key = key.as_str();
    let mut out = String::with_capacity(prefix.len() + key.len() + 3);
    out.push_str(prefix);
    out.push_str(":{");
    out.push_str(key);
    out.push('}');
    out
}

/// A redis error as ours: a reply we cannot read is a bug (ours or a
/// foreign value under our key), anything else an outage.
fn map_error(what: &'static str, error: RedisError) -> Error {
    match error.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            Error::internal_with(format!("unexpected redis reply to {what}"), error)
        }
        _ => Error::unavailable(DEPENDENCY, error),
    }
}

/// The GCRA parameters of `quota`, refused when the script could not
/// compute them exactly.
fn parameters(quota: &Quota) -> Result<Gcra> {
    let gcra = Gcra::new(quota);
    if gcra.capacity() > MAX_CAPACITY_NANOS {
        return Err(Error::invalid_input(
            "quota period too long for the redis rate limiter (at most about 52 days)",
        ));
    }
    Ok(gcra)
}

#[cfg(test)]
#[path = "../../../tests/common/spans.rs"]
mod spans;

#[cfg(test)]
mod tests {
    use super::*;

    use super::spans;

    /// The `DOCAICHE_TEST_REDIS_URL` server's limiter, if one is set (the
    /// real-server suite, `tests/ratelimit_redis`, insists on one in CI).
    async fn real_limiter() -> Option<RedisRateLimiter> {
        let url = std::env::var("DOCAICHE_TEST_REDIS_URL").ok()?;
        let prefix = format!("docaiche:test:rl-spans:{}", std::process::id());
        let limiter = RedisRateLimiter::builder(url)
            .key_prefix(prefix)
            .timeout(Duration::from_secs(2))
            .build()
            .await
            .expect("valid URL");
        Some(limiter)
    }

    #[tokio::test]
    async fn each_call_to_redis_runs_in_a_client_span_that_records_a_failure() {
        let (spans, _guard) = spans::capture();
        let quota = Quota::per_second(NonZeroU32::new(10).expect("non-zero"));
        // Nothing listens on port 1: a refused connection.
        let refused = RedisRateLimiter::builder("redis://127.0.0.1:1")
            .timeout(Duration::from_secs(2))
            .build()
            .await
            .expect("built without connecting");
        let error = refused
            .check(&key("tenant:acme"), &quota, NonZeroU32::MIN)
            .await
            .expect_err("refused");
        let span = spans.one("check rate_limit");
        assert_eq!(span.name, "backend");
        assert_eq!(span.field("otel.kind"), Some("client"));
        assert_eq!(span.field("db.system.name"), Some("redis"));
        assert_eq!(span.field("db.collection.name"), Some("rate_limit"));
        assert_eq!(span.field("db.operation.name"), Some("check"));
        assert_eq!(span.field("otel.status_code"), Some("ERROR"));
        assert_eq!(span.field("error.type"), Some(error.code().as_str()));

        let Some(limiter) = real_limiter().await else {
            eprintln!("DOCAICHE_TEST_REDIS_URL unset: the success half did not run");
            return;
        };
        limiter
            .check(&key("tenant:acme"), &quota, NonZeroU32::MIN)
            .await
            .expect("check");
        limiter
            .peek(&key("tenant:acme"), &quota, NonZeroU32::MIN)
            .await
            .expect("peek");
        assert_eq!(spans.named("check rate_limit")[1].field("error.type"), None);
        assert_eq!(spans.one("peek rate_limit").field("error.type"), None);
    }

    fn key(k: &str) -> RateLimitKey {
        RateLimitKey::new(k).expect("valid key")
    }

    #[test]
    fn keys_are_hash_tagged_on_the_whole_limiter_key() {
        assert_eq!(
            tagged_key("docaiche:rl", &key("tenant:acme")),
            "docaiche:rl:{tenant:acme}"
        );
    }

    #[test]
    fn the_script_is_the_file_beside_the_module() {
        assert!(GCRA_SCRIPT.contains("redis.call('TIME')"));
        assert!(GCRA_SCRIPT.contains("'PX'"));
    }

    #[test]
    fn quotas_beyond_exact_double_arithmetic_are_refused() {
        let limit = NonZeroU32::new(1).expect("non-zero");
        let ok = Quota::new(limit, Duration::from_secs(30 * 86_400)).expect("quota");
        assert!(parameters(&ok).is_ok());
        let too_long = Quota::new(limit, Duration::from_secs(60 * 86_400)).expect("quota");
        assert!(parameters(&too_long).is_err());
    }
}
