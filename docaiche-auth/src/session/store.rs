//! The [`RefreshTokenStore`] contract and its record types.

use std::fmt;

use docaiche_core::{Principal, Result, TenantId};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

/// SHA-256 of a refresh token: what a store keeps instead of the token.
///
/// Refresh tokens carry 256 random bits, so an unkeyed hash is enough: a
/// leaked store cannot be turned back into tokens, and there is nothing to
/// brute-force.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RefreshTokenHash([u8; 32]);

impl RefreshTokenHash {
    /// The hash of `token`.
    #[must_use]
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// The raw digest.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for RefreshTokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first bytes are enough to correlate log lines.
        write!(
            f,
            "RefreshTokenHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A session: the family of refresh tokens that descend from one login.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh random session id (128 bits from the OS generator).
    ///
    /// # Errors
    /// [`docaiche_core::Error::Internal`] if the OS random generator fails.
    pub fn generate() -> Result<Self> {
        crate::jwt::random_urlsafe::<16>().map(Self)
    }

    /// Wrap an existing id (read back from a store).
    ///
    /// # Errors
    /// [`docaiche_core::Error::InvalidInput`] unless it is 1 to 128 printable
    /// ASCII bytes.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        docaiche_core::revocation::validate_token_id(&id)?;
        Ok(Self(id))
    }

    /// The id as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a refresh token is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefreshTokenState {
    /// Not yet used: the next refresh may use it, once.
    Active,
    /// Used once, replaced by a newer token. Presenting it again is reuse.
    Used,
    /// Its session was revoked.
    Revoked,
}

/// What a store keeps per refresh token. Never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefreshTokenRecord {
    /// SHA-256 of the token.
    pub token_hash: RefreshTokenHash,
    /// The session (token family) it belongs to.
    pub session: SessionId,
    /// Who the session is for; its tenant scopes the record.
    pub principal: Principal,
    /// When this token was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// When this token stops being usable.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When the whole session ends, however often it is refreshed.
    #[serde(with = "time::serde::rfc3339")]
    pub session_expires_at: OffsetDateTime,
    /// The `jti` of the access token issued with this refresh token.
    pub access_token_id: String,
    /// When that access token expires (how long its revocation must last).
    #[serde(with = "time::serde::rfc3339")]
    pub access_expires_at: OffsetDateTime,
    /// Its state.
    pub state: RefreshTokenState,
}

impl RefreshTokenRecord {
    /// The tenant the record belongs to.
    #[must_use]
    pub const fn tenant(&self) -> &TenantId {
        &self.principal.tenant
    }
}

/// Refresh-token records, by tenant and token hash.
///
/// Contract:
/// - Tenant-scoped: every call names the tenant, and a record is only ever
///   found under its own tenant ([`RefreshTokenRecord::tenant`]).
/// - Only hashes are stored; a store never sees a refresh token.
/// - The hash comes from an attacker-presented token: lookups of unknown
///   hashes are normal and answer `None`, never an error.
/// - [`RefreshTokenStore::consume`] is atomic: of two concurrent calls for
///   the same active token, exactly one sees `Active`. Reuse detection
///   depends on it.
/// - Records may be forgotten once `expires_at` has passed.
/// - An outage is `Err(Unavailable)`; the session manager fails closed.
#[async_trait::async_trait]
pub trait RefreshTokenStore: Send + Sync + fmt::Debug + 'static {
    /// Store a new record (state [`RefreshTokenState::Active`]).
    ///
    /// # Errors
    /// `Conflict` if the hash is already present; `Unavailable` on outage
    /// or when the store is full.
    async fn insert(&self, record: RefreshTokenRecord) -> Result<()>;

    /// The record of `hash` in `tenant`, unchanged.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn find(
        &self,
        tenant: &TenantId,
        hash: &RefreshTokenHash,
    ) -> Result<Option<RefreshTokenRecord>>;

    /// Atomically mark an [`Active`](RefreshTokenState::Active) record
    /// [`Used`](RefreshTokenState::Used), returning the record *as it was
    /// before* (so `state` tells whether this call used it, or it had been
    /// used or revoked already). Records in other states are unchanged.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn consume(
        &self,
        tenant: &TenantId,
        hash: &RefreshTokenHash,
    ) -> Result<Option<RefreshTokenRecord>>;

    /// Mark every record of `session` [`Revoked`](RefreshTokenState::Revoked)
    /// and return them as they were before, so the caller can revoke their
    /// access tokens too. Idempotent.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn revoke_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> Result<Vec<RefreshTokenRecord>>;
}
