//! [`RedisInvalidationBus`]: the [`InvalidationBus`] over Redis pub/sub.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use docaiche_core::error::{Error, Result};
use docaiche_core::invalidation::{Invalidation, InvalidationBus, validate_invalidation};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use tokio::sync::mpsc;

use super::{RedisStore, map_error};
use crate::trace::traced;

/// Messages a subscription holds for a reader that has not taken them yet;
/// when it is full, the subscription waits for the reader.
const BACKLOG: usize = 256;
/// The first wait before reconnecting, doubled after each failure.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a quiet subscription checks that its connection is alive.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// An [`InvalidationBus`] on Redis pub/sub: `publish` is `PUBLISH
/// {prefix}:invalidate:{channel} {key}` on the store's shared connection
/// (tried a second time if the first finds the connection gone);
/// each subscription holds its own connection, to one of the configured
/// nodes (on a cluster, a classic `PUBLISH` reaches the subscribers of
/// every node).
///
/// A subscription reconnects on its own: with a backoff from 100 ms to 5 s
/// while Redis is down, and after a `PING` it sends every 15 s when quiet
/// goes unanswered (a connection silently cut). It yields
/// [`Invalidation::All`] each time it is subscribed again, as the contract
/// asks, and ends when the stream is dropped. A payload that is not a valid
/// key (another writer on the channel) is read as `All`: dropping too much
/// is safe, keeping a stale entry is not.
///
/// From [`RedisStore::invalidations`]; cheap to clone.
#[derive(Clone)]
pub struct RedisInvalidationBus {
    store: RedisStore,
}

impl RedisInvalidationBus {
    pub(super) const fn new(store: RedisStore) -> Self {
        Self { store }
    }
}

impl fmt::Debug for RedisInvalidationBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisInvalidationBus")
            .field("store", &self.store)
            .finish()
    }
}

#[async_trait]
impl InvalidationBus for RedisInvalidationBus {
    async fn publish(&self, channel: &str, key: &str) -> Result<()> {
        traced!("redis", "invalidate", "publish", async move {
            validate_invalidation(channel)?;
            validate_invalidation(key)?;
            let mut command = redis::cmd("PUBLISH");
            command.arg(self.store.key("invalidate", channel)).arg(key);
            // The count of receivers: zero is no failure (nobody caches it).
            // A connection Redis dropped (a restart) fails its next call and is
            // remade for the one after: try twice, since an announcement is
            // rare and losing it leaves entries stale. A repeat is harmless.
            match self.store.query::<u64>("publish", command.clone()).await {
                Err(Error::Unavailable { .. }) => {
                    self.store.query::<u64>("publish", command).await?;
                }
                other => {
                    other?;
                }
            }
            Ok(())
        })
        .await
    }

    fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, Invalidation>> {
        validate_invalidation(channel)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::internal("a Redis invalidation subscription needs a tokio runtime")
        })?;
        let (sender, receiver) = mpsc::channel(BACKLOG);
        runtime.spawn(listen(
            Arc::clone(&self.store.clients),
            self.store.connect_timeout,
            self.store.key("invalidate", channel),
            sender,
        ));
        Ok(Box::pin(futures_util::stream::unfold(
            receiver,
            |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
        )))
    }
}

/// Why a subscribed connection stopped.
enum Ended {
    /// The reader dropped the stream: stop for good.
    Reader,
    /// The connection failed or went silent: connect again.
    Connection,
}

/// Subscribe to `channel` on one node after another, forwarding to
/// `sender`, until the reader drops the stream.
async fn listen(
    clients: Arc<[redis::Client]>,
    connect_timeout: Duration,
    channel: String,
    sender: mpsc::Sender<Invalidation>,
) {
    let mut backoff = MIN_BACKOFF;
    for client in clients.iter().cycle() {
        let connecting = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let connected = tokio::select! {
            () = sender.closed() => return,
            connected = tokio::time::timeout(connect_timeout, connecting) => connected,
        };
        match connected {
            Ok(Ok(pubsub)) => {
                backoff = MIN_BACKOFF;
                match forward(pubsub, connect_timeout, &sender).await {
                    Ended::Reader => return,
                    Ended::Connection => {
                        tracing::warn!(
                            node = %client.get_connection_info().addr(),
                            "redis invalidation subscription lost; reconnecting"
                        );
                    }
                }
            }
            Ok(Err(error)) => {
                tracing::warn!(
                    error = %map_error("subscribe", error).log_chain(),
                    "redis invalidation subscription failed; retrying"
                );
            }
            Err(_) => {
                tracing::warn!(
                    node = %client.get_connection_info().addr(),
                    "redis invalidation subscription timed out; retrying"
                );
            }
        }
        tokio::select! {
            () = sender.closed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Forward the messages of one subscribed connection, after an
/// [`Invalidation::All`] (whatever was published before now may have been
/// missed).
async fn forward(
    pubsub: redis::aio::PubSub,
    timeout: Duration,
    sender: &mpsc::Sender<Invalidation>,
) -> Ended {
    if sender.send(Invalidation::All).await.is_err() {
        return Ended::Reader;
    }
    let (mut sink, mut messages) = pubsub.split();
    loop {
        let message = tokio::select! {
            () = sender.closed() => return Ended::Reader,
            message = tokio::time::timeout(HEARTBEAT, messages.next()) => message,
        };
        let item = match message {
            Ok(Some(message)) => match std::str::from_utf8(message.get_payload_bytes()) {
                Ok(key) if validate_invalidation(key).is_ok() => Invalidation::Key(key.to_owned()),
                _ => Invalidation::All,
            },
            // The connection closed.
            Ok(None) => return Ended::Connection,
            // Quiet: is the connection still there?
            Err(_) => match tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await {
                Ok(Ok(_)) => continue,
                _ => return Ended::Connection,
            },
        };
        if sender.send(item).await.is_err() {
            return Ended::Reader;
        }
    }
}
