//! Facts about the request being served, for authentication decisions,
//! failed-login tracking and audit records.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What is known about the current request, independent of the HTTP stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RequestContext {
    /// The request id (from `X-Request-Id` or generated).
    pub request_id: Option<String>,
    /// The W3C trace id of the current trace, if tracing is on.
    pub trace_id: Option<String>,
    /// The client's address: the socket peer, or the address a *trusted*
    /// proxy reported. Never a header value from an untrusted peer.
    pub client_addr: Option<IpAddr>,
    /// The `User-Agent`, truncated to 256 bytes.
    pub user_agent: Option<String>,
}

impl RequestContext {
    /// Longest `User-Agent` kept, in bytes.
    pub const MAX_USER_AGENT: usize = 256;

    /// An empty context (in-process callers, tests).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the client address.
    #[must_use]
    pub fn with_client_addr(mut self, addr: IpAddr) -> Self {
        self.client_addr = Some(addr);
        self
    }

    /// Set the request id.
    #[must_use]
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Set the user agent, truncated to [`Self::MAX_USER_AGENT`] bytes on a
    /// character boundary.
    #[must_use]
    pub fn with_user_agent(mut self, ua: &str) -> Self {
        let mut end = ua.len().min(Self::MAX_USER_AGENT);
        while !ua.is_char_boundary(end) {
            end -= 1;
        }
        self.user_agent = Some(ua[..end].to_owned());
        self
    }
}
