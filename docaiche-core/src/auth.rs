//! The [`Authenticator`] contract: credentials in, a verified [`Principal`] out.

use std::fmt;
use std::sync::Arc;

use crate::context::RequestContext;
use crate::error::Result;
use crate::principal::Principal;
use crate::secret::SecretString;

/// A credential presented by a client, as extracted from the request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Credential {
    /// `Authorization: Bearer <token>` (a JWT).
    Bearer(SecretString),
    /// An API key (`X-Api-Key: <key>` or `Authorization: ApiKey <key>`).
    ApiKey(SecretString),
}

impl Credential {
    /// The credential kind, for logs and metrics (never the value).
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Bearer(_) => "bearer",
            Self::ApiKey(_) => "api_key",
        }
    }
}

/// Turns a credential into a verified [`Principal`].
///
/// Contract:
/// - The credential is attacker-controlled: any bytes, any length. An
///   implementation must reject oversized or malformed input before doing
///   expensive work, and must never panic.
/// - Failure is `Err(Error::Unauthenticated { reason })`; the reason is for
///   the log and audit trail only. Backend outages are
///   `Err(Error::Unavailable)`, which the auth layer fails closed on.
/// - A returned principal is fully verified (signature, expiry, revocation,
///   audience) and carries its *effective* permissions.
/// - Implementations may consult `context` (client address) for
///   failed-attempt throttling.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + fmt::Debug + 'static {
    /// Verify `credential`.
    ///
    /// # Errors
    /// [`crate::Error::Unauthenticated`] when the credential does not verify;
    /// [`crate::Error::Unavailable`] when a backend needed to decide is down.
    async fn authenticate(
        &self,
        credential: &Credential,
        context: &RequestContext,
    ) -> Result<Principal>;

    /// Verify `credential` without waiting, when the answer needs no I/O
    /// (an API key already in a cache, say): `Some` with what
    /// [`Authenticator::authenticate`] would return (and the same side
    /// effects), `None` when deciding needs I/O — then call `authenticate`.
    /// Lets a caller skip allocating a future on its hot path, and a cache
    /// hand out its principal shared rather than copied (the auth layer puts
    /// the `Arc<Principal>` in the request extensions as it is). The
    /// default answers `None`.
    fn authenticate_now(
        &self,
        credential: &Credential,
        context: &RequestContext,
    ) -> Option<Result<Arc<Principal>>> {
        let _ = (credential, context);
        None
    }
}
