//! The [`InvalidationBus`] contract: telling every instance of a service
//! that an entry it may have cached is stale.
//!
//! An instance caches what it verified (an API key, say) for a short TTL.
//! When the entry changes (the key is revoked), the instance that changed
//! it drops its own copy at once; the others would keep theirs until the
//! TTL ends. A bus closes that window: the changing instance publishes the
//! entry's key, and every subscriber drops it.
//!
//! ```
//! use docaiche_core::invalidation::{Invalidation, InvalidationBus, LocalInvalidationBus};
//! use futures_util::StreamExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> docaiche_core::Result<()> {
//! let bus = LocalInvalidationBus::new();
//! let mut stale = bus.subscribe("api_keys")?;
//! // The first item says the subscription is live: drop everything cached before it.
//! assert_eq!(stale.next().await, Some(Invalidation::All));
//!
//! bus.publish("api_keys", "k1Abc").await?;
//! assert_eq!(stale.next().await, Some(Invalidation::Key("k1Abc".into())));
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use futures_util::stream::BoxStream;

use crate::error::{Error, Result};
use crate::revocation::is_printable_ascii;

/// Longest channel name or key a bus must accept.
pub const MAX_INVALIDATION_LEN: usize = 256;

/// Check a channel name or key: 1 to [`MAX_INVALIDATION_LEN`] printable
/// ASCII bytes (no whitespace, no control characters).
///
/// # Errors
/// [`Error::InvalidInput`] otherwise.
pub fn validate_invalidation(value: &str) -> Result<()> {
    if !is_printable_ascii(value, MAX_INVALIDATION_LEN) {
        return Err(Error::invalid_input(
            "an invalidation channel or key must be 1 to 256 printable ASCII bytes",
        ));
    }
    Ok(())
}

/// What a subscriber is told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalidation {
    /// The entry under this key is stale: drop it.
    Key(String),
    /// Messages may have been missed (the subscription has just started,
    /// or restarted after a lost connection, or fell behind): drop every
    /// entry.
    All,
}

/// Delivers "this entry is stale" to every instance sharing the bus.
///
/// Contract:
/// - `publish` reaches every live subscription of `channel`, in every
///   instance on the bus, the publisher's own included. Delivery is at most
///   once: a message sent while a subscription is down is lost, which is
///   why the subscription then yields [`Invalidation::All`].
/// - A subscription's first item is [`Invalidation::All`], once it is live
///   (a message published after that item arrives is delivered). It yields
///   `All` again after every gap: a reconnect, or a subscriber too slow to
///   keep up. A cache that drops everything on `All` and the key on
///   `Key` never keeps an entry published stale while it was subscribed.
/// - Channel names and keys are validated with [`validate_invalidation`];
///   keys are opaque and may be attacker-influenced. Never publish a
///   secret: a bus may cross the network in the clear.
/// - `publish` fails with `Unavailable` (or `Timeout`) on an outage. The
///   caller's change has happened; the other instances then drop the
///   entry when their TTL ends, so a TTL remains the bound a bus narrows.
/// - A subscription keeps reconnecting on its own, and ends only when the
///   bus is gone.
#[async_trait::async_trait]
pub trait InvalidationBus: Send + Sync + fmt::Debug + 'static {
    /// Tell every subscription of `channel` that `key` is stale.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid channel or key; `Unavailable` or
    /// `Timeout` on an outage.
    async fn publish(&self, channel: &str, key: &str) -> Result<()>;

    /// Listen on `channel`. Needs a tokio runtime for buses that connect to
    /// a server.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid channel.
    fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, Invalidation>>;
}

/// Messages the [`LocalInvalidationBus`] holds for a subscriber that has
/// not read them yet; one that falls further behind is told
/// [`Invalidation::All`].
const LOCAL_BACKLOG: usize = 1024;

/// An [`InvalidationBus`] within one process: for several services sharing
/// a process, and for tests. Instances in other processes need a bus over
/// a server (`docaiche_store::redis::RedisInvalidationBus`).
#[derive(Clone)]
pub struct LocalInvalidationBus {
    sender: tokio::sync::broadcast::Sender<Arc<(String, String)>>,
}

impl LocalInvalidationBus {
    /// A bus with no subscriptions yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            sender: tokio::sync::broadcast::Sender::new(LOCAL_BACKLOG),
        }
    }
}

impl Default for LocalInvalidationBus {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LocalInvalidationBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalInvalidationBus")
            .field("subscriptions", &self.sender.receiver_count())
            .finish()
    }
}

#[async_trait::async_trait]
impl InvalidationBus for LocalInvalidationBus {
    async fn publish(&self, channel: &str, key: &str) -> Result<()> {
        validate_invalidation(channel)?;
        validate_invalidation(key)?;
        // No subscription is not a failure: nobody holds the entry.
        let _ = self
            .sender
            .send(Arc::new((channel.to_owned(), key.to_owned())));
        Ok(())
    }

    fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, Invalidation>> {
        use tokio::sync::broadcast::error::RecvError;

        validate_invalidation(channel)?;
        let state = (self.sender.subscribe(), channel.to_owned(), true);
        Ok(Box::pin(futures_util::stream::unfold(
            state,
            |(mut receiver, channel, first)| async move {
                if first {
                    return Some((Invalidation::All, (receiver, channel, false)));
                }
                loop {
                    match receiver.recv().await {
                        Ok(message) if message.0 == channel => {
                            let key = Invalidation::Key(message.1.clone());
                            return Some((key, (receiver, channel, false)));
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => {
                            return Some((Invalidation::All, (receiver, channel, false)));
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;

    use super::*;

    #[tokio::test]
    async fn subscriptions_hear_their_channel_only() {
        let bus = LocalInvalidationBus::new();
        let mut keys = bus.subscribe("api_keys").expect("channel");
        let mut other = bus.subscribe("sessions").expect("channel");
        assert_eq!(keys.next().await, Some(Invalidation::All));
        assert_eq!(other.next().await, Some(Invalidation::All));
        bus.publish("sessions", "s1").await.expect("publish");
        bus.publish("api_keys", "k1").await.expect("publish");
        assert_eq!(keys.next().await, Some(Invalidation::Key("k1".into())));
        assert_eq!(other.next().await, Some(Invalidation::Key("s1".into())));
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_to_drop_everything() {
        let bus = LocalInvalidationBus::new();
        let mut keys = bus.subscribe("api_keys").expect("channel");
        assert_eq!(keys.next().await, Some(Invalidation::All));
        for i in 0..=LOCAL_BACKLOG {
            bus.publish("api_keys", &format!("k{i}"))
                .await
                .expect("publish");
        }
        assert_eq!(keys.next().await, Some(Invalidation::All), "lagged");
        // What is still held follows.
        assert!(matches!(keys.next().await, Some(Invalidation::Key(_))));
    }

    #[tokio::test]
    async fn hostile_channels_and_keys_are_refused() {
        let bus = LocalInvalidationBus::new();
        for bad in ["", "a b", "a\r\nPUBLISH x", "é", &"k".repeat(257)] {
            assert!(bus.publish("api_keys", bad).await.is_err(), "{bad:?}");
            assert!(bus.publish(bad, "k").await.is_err(), "{bad:?}");
            assert!(bus.subscribe(bad).is_err(), "{bad:?}");
        }
        assert!(bus.publish("api_keys", &"k".repeat(256)).await.is_ok());
    }

    #[tokio::test]
    async fn a_subscription_ends_with_the_bus() {
        let bus = LocalInvalidationBus::new();
        let mut keys = bus.subscribe("api_keys").expect("channel");
        assert_eq!(keys.next().await, Some(Invalidation::All));
        drop(bus);
        assert_eq!(keys.next().await, None);
    }
}
