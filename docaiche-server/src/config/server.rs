//! `[server]`: the listen address, request timeouts, body limits and the
//! shutdown grace period.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerConfig {
    /// Listen address.
    pub(crate) bind: SocketAddr,
    /// TLS is terminated by a reverse proxy in front of this server (which
    /// itself speaks plain HTTP). Silences the wildcard-bind notice.
    pub(crate) behind_proxy: bool,
    /// Deadline for a whole request, in seconds; exceeded → 504 problem.
    pub(crate) request_timeout_secs: u64,
    /// Largest accepted request body, in bytes; larger → 413 problem.
    /// The upload limit: JSON bodies have their own, smaller one.
    pub(crate) body_limit_bytes: usize,
    /// Largest accepted JSON body (every route but the uploads), in bytes;
    /// larger → 413 problem. Never more than `body_limit_bytes` in effect.
    pub(crate) json_body_limit_bytes: usize,
    /// How long in-flight requests may run after SIGINT/SIGTERM, in seconds.
    pub(crate) shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            behind_proxy: false,
            request_timeout_secs: 30,
            body_limit_bytes: 16 * 1024 * 1024,
            json_body_limit_bytes: crate::json::DEFAULT_JSON_BODY_LIMIT,
            shutdown_grace_secs: 30,
        }
    }
}

impl ServerConfig {
    /// [`Self::request_timeout_secs`] as a duration.
    pub(crate) const fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// [`Self::shutdown_grace_secs`] as a duration.
    pub(crate) const fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}
