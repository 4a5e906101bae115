//! `[events]`: the limits of the `GET /v1/events` WebSocket (connections
//! per tenant and in all, queue and buffer sizes, heartbeat and send
//! timeouts); the channel itself is `crate::events`.

use docaiche_core::Error;
use serde::Deserialize;
use tokio::sync::Semaphore;

/// `[events]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct EventsSection {
    /// Open connections the server accepts in all.
    pub(crate) max_connections: usize,
    /// Open connections one tenant may hold.
    pub(crate) max_connections_per_tenant: usize,
    /// Open connections one principal (an API key's or a user's identity)
    /// may hold within its tenant's.
    pub(crate) max_connections_per_principal: usize,
    /// Events queued per connection before it is closed as slow.
    pub(crate) send_queue: usize,
    /// Seconds between pings.
    pub(crate) heartbeat_secs: u64,
    /// Seconds without any frame from the client before closing.
    pub(crate) idle_timeout_secs: u64,
    /// Longest one send may take before the client counts as slow.
    pub(crate) send_timeout_secs: u64,
    /// Largest message accepted from the client (only control frames are
    /// expected).
    pub(crate) max_message_bytes: usize,
    /// Most bytes buffered for writing on one socket.
    pub(crate) max_write_buffer_bytes: usize,
}

impl Default for EventsSection {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_tenant: 1_000,
            max_connections_per_principal: 16,
            send_queue: 64,
            heartbeat_secs: 20,
            idle_timeout_secs: 60,
            send_timeout_secs: 10,
            max_message_bytes: 4 * 1024,
            max_write_buffer_bytes: 1024 * 1024,
        }
    }
}

impl EventsSection {
    /// Check the limits.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming the first zero limit, or an idle
    /// timeout not longer than the heartbeat.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        for (setting, value) in [
            ("events.max_connections", self.max_connections),
            (
                "events.max_connections_per_tenant",
                self.max_connections_per_tenant,
            ),
            (
                "events.max_connections_per_principal",
                self.max_connections_per_principal,
            ),
            ("events.send_queue", self.send_queue),
            ("events.max_message_bytes", self.max_message_bytes),
            ("events.max_write_buffer_bytes", self.max_write_buffer_bytes),
        ] {
            if value == 0 {
                return Err(Error::misconfigured(setting, "must be at least 1"));
            }
        }
        if self.max_connections > Semaphore::MAX_PERMITS {
            return Err(Error::misconfigured(
                "events.max_connections",
                "is too large",
            ));
        }
        if self.heartbeat_secs == 0 || self.send_timeout_secs == 0 {
            return Err(Error::misconfigured(
                "events.heartbeat_secs",
                "heartbeat_secs and send_timeout_secs must be at least 1",
            ));
        }
        if self.idle_timeout_secs <= self.heartbeat_secs {
            return Err(Error::misconfigured(
                "events.idle_timeout_secs",
                "must be longer than events.heartbeat_secs",
            ));
        }
        Ok(())
    }
}
