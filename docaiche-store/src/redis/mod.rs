//! Redis adapters: a [`CacheStore`](docaiche_core::CacheStore), a
//! [`TokenRevocationStore`](docaiche_core::TokenRevocationStore), a
//! [`WebSessionStore`](docaiche_core::WebSessionStore) and an
//! [`InvalidationBus`](docaiche_core::InvalidationBus) (pub/sub), on one
//! standalone Redis or a Redis Cluster.
//!
//! ```no_run
//! use std::time::Duration;
//! use bytes::Bytes;
//! use docaiche_core::cache::{CacheKey, CacheStore};
//! use docaiche_store::redis::RedisStore;
//!
//! # async fn run() -> docaiche_core::Result<()> {
//! let redis = RedisStore::builder("redis://127.0.0.1:6379")
//!     .key_prefix("myapp")
//!     .build()?;
//! let cache = redis.cache();
//! let key = CacheKey::new("jwks", "https://issuer.example")?;
//! cache.set(&key, Bytes::from_static(b"{}"), Duration::from_secs(600)).await?;
//! assert!(cache.get(&key).await?.is_some());
//! # Ok(()) }
//! ```
//!
//! ## Keys
//!
//! Every key starts with the configured prefix (default `docaiche`), then
//! the kind: `{prefix}:cache:{namespace}:{key}` (`:` and `%` in the
//! namespace percent-encoded) and
//! `{prefix}:revoked:{token id}`; web sessions under `{prefix}:web-session…`
//! (see [`RedisWebSessionStore`]). Each command touches one key, so the
//! stores run unchanged on a cluster. The invalidation bus publishes on the
//! pub/sub channel `{prefix}:invalidate:{channel}`, which is no key: a
//! classic `PUBLISH` reaches every node of a cluster.
//!
//! ## Connections and failures
//!
//! One multiplexed connection per [`RedisStore`] (a
//! [`ConnectionManager`] on a standalone server, a cluster connection
//! otherwise), shared by every store made from it and by clones. It is made
//! on first use and remade after a failure, so a Redis that restarts is
//! used again by the next call without anyone rebuilding anything; a call
//! while it is down fails fast with [`Error::Unavailable`] (a refused
//! connection) or [`Error::Timeout`] (the call timeout, default 250 ms).
//! What to do then is the caller's: a cache miss for the cache (see
//! [`ReadThrough`](crate::read_through::ReadThrough)), a refusal for the
//! revocation store (a token whose revocation cannot be checked is not
//! accepted).
//!
//! The connection logic mirrors the Redis rate limiter's
//! (`docaiche_ratelimit::redis`) rather than sharing it: the crates do not
//! depend on each other, and the part they share is the redis crate's own
//! builder calls.

mod cache;
mod invalidation;
mod revocation;
mod web_session;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use docaiche_core::error::{Error, Result};
use docaiche_core::health::{ComponentHealth, Criticality, HealthCheck, HealthStatus};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;

pub use cache::RedisCacheStore;
pub use invalidation::RedisInvalidationBus;
pub use revocation::RedisTokenRevocationStore;
pub use web_session::{PURGE_BATCH, RedisWebSessionStore};

/// The key prefix unless configured.
pub const DEFAULT_KEY_PREFIX: &str = "docaiche";
/// The longest one call may wait for Redis unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
/// The longest one connection attempt may take unless configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A connection to Redis (standalone or cluster) from which the stores are
/// made. Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: String,
    timeout: Duration,
    /// `host:port` of each configured node (never credentials).
    nodes: Vec<String>,
    /// A client per configured node, for the connections that cannot be
    /// shared (pub/sub subscriptions).
    clients: Arc<[redis::Client]>,
    connect_timeout: Duration,
}

#[derive(Clone)]
enum Connection {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Builds a [`RedisStore`]; from [`RedisStore::builder`] or
/// [`RedisStore::cluster_builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RedisStoreBuilder {
    urls: Vec<String>,
    cluster: bool,
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
}

impl RedisStore {
    /// A builder for one standalone Redis at `url`
    /// (`redis://[user:password@]host:port[/db]`).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(vec![url.into()], false)
    }

    /// A builder for a Redis Cluster, given one or more of its nodes (the
    /// others are discovered).
    pub fn cluster_builder<I, S>(urls: I) -> RedisStoreBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisStoreBuilder::new(urls.into_iter().map(Into::into).collect(), true)
    }

    /// The cache store on this connection.
    #[must_use]
    pub fn cache(&self) -> RedisCacheStore {
        RedisCacheStore::new(self.clone())
    }

    /// The token revocation store on this connection.
    #[must_use]
    pub fn revocations(&self) -> RedisTokenRevocationStore {
        RedisTokenRevocationStore::new(self.clone())
    }

    /// The web session store on this connection; each session expires
    /// `lifetime` after it started (the absolute timeout of the sessions
    /// it keeps).
    #[must_use]
    pub fn web_sessions(&self, lifetime: Duration) -> RedisWebSessionStore {
        RedisWebSessionStore::new(self.clone(), lifetime)
    }

    /// The invalidation bus on this Redis: publishes on the shared
    /// connection, subscribes on connections of its own.
    #[must_use]
    pub fn invalidations(&self) -> RedisInvalidationBus {
        RedisInvalidationBus::new(self.clone())
    }

    /// A [`HealthCheck`] (`PING`, every node on a cluster) sharing this
    /// connection.
    #[must_use]
    pub fn health_check(&self) -> RedisStoreHealthCheck {
        RedisStoreHealthCheck {
            store: self.clone(),
        }
    }

    /// Whether this is a Redis Cluster connection.
    #[must_use]
    pub fn is_cluster(&self) -> bool {
        matches!(self.connection, Connection::Cluster(_))
    }

    /// `PING` and return the round trip.
    ///
    /// # Errors
    /// [`Error::Unavailable`] or [`Error::Timeout`] when Redis does not
    /// answer `PONG` within the call timeout.
    pub async fn ping(&self) -> Result<Duration> {
        let started = Instant::now();
        let reply: String = self.query("ping", redis::cmd("PING")).await?;
        if reply == "PONG" {
            Ok(started.elapsed())
        } else {
            Err(Error::internal(format!("redis answered {reply:?} to PING")))
        }
    }

    /// `{prefix}:{kind}:{rest}`.
    fn key(&self, kind: &str, rest: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + kind.len() + rest.len() + 2);
        key.push_str(&self.prefix);
        key.push(':');
        key.push_str(kind);
        key.push(':');
        key.push_str(rest);
        key
    }

    /// Run one command, bounded by the call timeout.
    async fn query<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        command: redis::Cmd,
    ) -> Result<T> {
        let mut connection = self.connection.clone();
        self.bounded(what, async move {
            match &mut connection {
                Connection::Standalone(c) => command.query_async(c).await,
                Connection::Cluster(c) => command.query_async(c).await,
            }
        })
        .await
    }

    /// Run a pipeline (its commands on one key, so one node), bounded by the
    /// call timeout.
    async fn pipeline<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        pipeline: redis::Pipeline,
    ) -> Result<T> {
        let mut connection = self.connection.clone();
        self.bounded(what, async move {
            match &mut connection {
                Connection::Standalone(c) => pipeline.query_async(c).await,
                Connection::Cluster(c) => pipeline.query_async(c).await,
            }
        })
        .await
    }

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

/// A Redis failure as our error: a reply we cannot read is ours
/// (`internal`); anything else is the dependency's (`unavailable`). The
/// redis crate's errors never hold the URL's credentials.
fn map_error(what: &'static str, error: redis::RedisError) -> Error {
    match error.kind() {
        redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType => {
            Error::internal_with(format!("unexpected redis reply to {what}"), error)
        }
        _ => Error::unavailable("redis", error),
    }
}

impl RedisStoreBuilder {
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

    /// The longest one call may wait, connecting included (default
    /// [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest one connection attempt may take (default
    /// [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Build the store. Nothing is sent yet: the connection is made on
    /// first use and remade after failures, so a Redis that is down now is
    /// an outage for the caller, not a start-up error. Must run inside a
    /// tokio runtime.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] when there is no URL, a URL does not parse,
    /// the prefix is empty or holds whitespace or control characters, or a
    /// timeout is zero.
    pub fn build(self) -> Result<RedisStore> {
        let bad = |setting: &'static str, reason: String| {
            Error::misconfigured(format!("store.redis.{setting}"), reason)
        };
        if self.urls.is_empty() {
            return Err(bad("url", "at least one Redis URL is needed".into()));
        }
        if self.prefix.is_empty()
            || self
                .prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad(
                "key_prefix",
                "must be non-empty, without whitespace or control characters".into(),
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
                        format!("URL #{} is not a Redis URL: {}", index + 1, error),
                    ));
                }
            }
        }
        let nodes = clients
            .iter()
            .map(|c| c.get_connection_info().addr().to_string())
            .collect();
        let pubsub_clients: Arc<[redis::Client]> = clients.clone().into();
        let connection = if self.cluster {
            let infos = clients.into_iter().map(|c| c.get_connection_info().clone());
            let client = ClusterClient::builder(infos)
                .connection_timeout(self.connect_timeout)
                .response_timeout(self.timeout)
                .retries(1)
                .build()
                .map_err(|error| bad("url", format!("cluster client: {}", error)))?;
            let config = ClusterConfig::new()
                .set_connection_timeout(self.connect_timeout)
                .set_response_timeout(self.timeout);
            Connection::Cluster(client.get_pending_async_connection_with_config(config))
        } else {
            let [client] = <[redis::Client; 1]>::try_from(clients)
                .map_err(|_| bad("url", "a standalone store takes exactly one URL".into()))?;
            // One attempt per reconnect and no backoff sleeps: a refused
            // connection fails the call at once, and the next call starts a
            // new attempt, so a restarted Redis is back on the next call.
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.connect_timeout))
                .set_response_timeout(Some(self.timeout))
                .set_number_of_retries(0);
            let manager = ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|error| bad("url", format!("connection manager: {}", error)))?;
            Connection::Standalone(manager)
        };
        Ok(RedisStore {
            connection,
            prefix: self.prefix,
            timeout: self.timeout,
            nodes,
            clients: pubsub_clients,
            connect_timeout: self.connect_timeout,
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("cluster", &self.is_cluster())
            .field("nodes", &self.nodes)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The [`HealthCheck`] of a [`RedisStore`]: `PING` with its latency; from
/// [`RedisStore::health_check`].
#[derive(Debug, Clone)]
pub struct RedisStoreHealthCheck {
    store: RedisStore,
}

#[async_trait::async_trait]
impl HealthCheck for RedisStoreHealthCheck {
    fn name(&self) -> Cow<'static, str> {
        "redis_store".into()
    }

    /// Optional: the cache degrades to misses and the service stays up;
    /// requests that need the revocation store fail closed on their own.
    fn criticality(&self) -> Criticality {
        Criticality::Optional
    }

    async fn check(&self) -> ComponentHealth {
        let started = Instant::now();
        match self.store.ping().await {
            Ok(latency) => ComponentHealth::new(self.name(), HealthStatus::Up, latency),
            Err(error) => ComponentHealth::new(self.name(), HealthStatus::Down, started.elapsed())
                .with_detail(error.to_string()),
        }
    }
}
