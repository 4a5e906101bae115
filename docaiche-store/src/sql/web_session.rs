//! The `web_sessions` row shared by the SQLite and PostgreSQL web session
//! adapters.

use docaiche_core::web_session::{SecondFactor, WebSession, WebSessionKey};
use docaiche_core::{Error, PrincipalId, Result};

use super::{from_micros, tenant};

/// The columns of `web_sessions`, in [`WebSessionRow`] order.
pub(crate) const WEB_SESSION_COLUMNS: &str =
    "session_key, tenant_id, principal_id, created_at, last_seen_at, second_factor";

/// One `web_sessions` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct WebSessionRow {
    session_key: Vec<u8>,
    tenant_id: String,
    principal_id: String,
    created_at: i64,
    last_seen_at: i64,
    second_factor: String,
}

impl WebSessionRow {
    /// The session, or `Internal` for a row no adapter writes.
    pub(crate) fn into_session(self) -> Result<WebSession> {
        let key = <[u8; 32]>::try_from(self.session_key.as_slice())
            .map_err(|_| Error::internal("stored web session key is not 32 bytes"))?;
        let subject = PrincipalId::new(self.principal_id)
            .map_err(|e| Error::internal_with("stored principal id is invalid", e))?;
        let mut session = WebSession::new(
            WebSessionKey::from_bytes(key),
            tenant(self.tenant_id)?,
            subject,
            from_micros(self.created_at)?,
            SecondFactor::from_name(&self.second_factor)?,
        );
        session.last_seen_at = from_micros(self.last_seen_at)?;
        Ok(session)
    }
}

/// The refusal of a second session with the same key.
pub(crate) fn duplicate() -> Error {
    Error::conflict("web session")
}
