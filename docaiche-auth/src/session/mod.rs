//! Sessions: short-lived access tokens plus opaque, rotating refresh tokens
//! with reuse detection.
//!
//! ```
//! use std::sync::Arc;
//! use docaiche_auth::jwt::{Algorithm, JwtConfig, JwtIssuer, JwtKey, JwtKeySet};
//! use docaiche_auth::session::{MemoryRefreshTokenStore, SessionConfig, SessionManager};
//! use docaiche_core::{AuthMethod, Clock, ManualClock, Principal, PrincipalId, SecretBytes, TenantId};
//! use docaiche_store::MemoryRevocationStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> docaiche_core::Result<()> {
//! let clock: Arc<dyn Clock> = Arc::new(ManualClock::new());
//! let keys = Arc::new(JwtKeySet::new(JwtKey::hmac(
//!     "k1",
//!     Algorithm::HS256,
//!     &SecretBytes::from(vec![7; 32]),
//! )?)?);
//! let issuer = JwtIssuer::new(keys, JwtConfig::new("https://auth.example.com", "docaiche"), clock.clone())?;
//! let sessions = SessionManager::new(
//!     issuer,
//!     Arc::new(MemoryRefreshTokenStore::new().with_clock(clock.clone())),
//!     Arc::new(MemoryRevocationStore::new().with_clock(clock.clone())),
//!     SessionConfig::default(),
//!     clock,
//! )?;
//!
//! let alice = Principal::new(PrincipalId::new("alice")?, TenantId::new("acme")?, AuthMethod::Password);
//! let first = sessions.issue(&alice).await?;
//! let second = sessions.refresh(first.refresh_token.expose_secret()).await?;
//!
//! // Replaying the used refresh token is theft: the whole session is revoked,
//! // including the newest refresh token.
//! assert!(sessions.refresh(first.refresh_token.expose_secret()).await.is_err());
//! assert!(sessions.refresh(second.refresh_token.expose_secret()).await.is_err());
//! # Ok(()) }
//! ```
//!
//! ## How it works
//!
//! * A login ([`SessionManager::issue`]) starts a *session*: an access
//!   token (default 15 minutes) and a refresh token, `<tenant>.<43
//!   base64url chars>` carrying 256 bits from the OS random generator. The
//!   store keeps only its SHA-256.
//! * [`SessionManager::refresh`] consumes the refresh token (atomically:
//!   [`RefreshTokenStore::consume`]) and returns a new pair in the same
//!   session. Each refresh token works once.
//! * Presenting a used refresh token again means two parties hold it (RFC
//!   9700 §4.14.2): the whole session is revoked, its refresh tokens and
//!   the access tokens issued with them (by `jti`, in the
//!   [`TokenRevocationStore`], for their remaining lifetime).
//! * A session ends after [`SessionConfig::max_session_lifetime`] however
//!   often it is refreshed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use docaiche_core::revocation::TokenRevocationStore;
use docaiche_core::{
    AuthFailure, Clock, Error, Principal, PrincipalId, Result, SecretString, TenantId,
};
use time::OffsetDateTime;

use crate::jwt::{AccessClaims, JwtIssuer, random_urlsafe};

mod memory;
mod store;

pub use memory::MemoryRefreshTokenStore;
pub use store::{
    RefreshTokenHash, RefreshTokenRecord, RefreshTokenState, RefreshTokenStore, SessionId,
};

/// Length of the random part of a refresh token: 32 bytes, base64url.
const REFRESH_SECRET_LEN: usize = 43;

/// Longest refresh token accepted: tenant (64) + `.` + secret.
const MAX_REFRESH_TOKEN_LEN: usize = docaiche_core::id::MAX_NAME_ID_LEN + 1 + REFRESH_SECRET_LEN;

/// Session lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// How long a refresh token stays usable. Default 7 days.
    pub refresh_token_ttl: Duration,
    /// How long a session lasts, however often refreshed. Default 30 days.
    pub max_session_lifetime: Duration,
}

impl SessionConfig {
    /// Set the refresh-token lifetime.
    #[must_use]
    pub const fn with_refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_token_ttl = ttl;
        self
    }

    /// Set the session lifetime.
    #[must_use]
    pub const fn with_max_session_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_session_lifetime = lifetime;
        self
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            refresh_token_ttl: Duration::from_secs(7 * 86_400),
            max_session_lifetime: Duration::from_secs(30 * 86_400),
        }
    }
}

/// An access token and a refresh token, as returned by a token endpoint.
#[non_exhaustive]
pub struct TokenPair {
    /// The access token (a JWT).
    pub access_token: SecretString,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// When the access token expires.
    pub access_expires_at: OffsetDateTime,
    /// The access token's `jti`.
    pub access_token_id: String,
    /// The opaque refresh token. Use once.
    pub refresh_token: SecretString,
    /// When the refresh token expires.
    pub refresh_expires_at: OffsetDateTime,
    /// The session both belong to.
    pub session: SessionId,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &self.access_token)
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_token", &self.refresh_token)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Issues, refreshes and revokes sessions. See the [module docs](self).
#[derive(Debug)]
pub struct SessionManager {
    issuer: JwtIssuer,
    store: Arc<dyn RefreshTokenStore>,
    revocations: Arc<dyn TokenRevocationStore>,
    config: SessionConfig,
    clock: Arc<dyn Clock>,
}

fn unauthenticated(reason: AuthFailure, detail: &'static str) -> Error {
    tracing::debug!(reason = reason.as_str(), detail, "refresh token rejected");
    Error::unauthenticated(reason)
}

/// Split `<tenant>.<secret>`, checking both halves.
fn parse_refresh_token(token: &str) -> Result<(TenantId, RefreshTokenHash)> {
    if token.len() > MAX_REFRESH_TOKEN_LEN {
        return Err(unauthenticated(AuthFailure::Malformed, "too long"));
    }
    let (tenant, secret) = token
        .rsplit_once('.')
        .ok_or_else(|| unauthenticated(AuthFailure::Malformed, "no separator"))?;
    if secret.len() != REFRESH_SECRET_LEN
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(unauthenticated(AuthFailure::Malformed, "bad secret part"));
    }
    let tenant = TenantId::new(tenant)
        .map_err(|_| unauthenticated(AuthFailure::Malformed, "bad tenant part"))?;
    Ok((tenant, RefreshTokenHash::of(token)))
}

impl SessionManager {
    /// A session manager.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if a lifetime is zero or the refresh-token
    /// lifetime exceeds the session lifetime.
    pub fn new(
        issuer: JwtIssuer,
        store: Arc<dyn RefreshTokenStore>,
        revocations: Arc<dyn TokenRevocationStore>,
        config: SessionConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        if config.refresh_token_ttl.is_zero()
            || config.refresh_token_ttl > config.max_session_lifetime
        {
            return Err(Error::misconfigured(
                "session.refresh_token_ttl",
                "must be positive and at most the session lifetime",
            ));
        }
        Ok(Self {
            issuer,
            store,
            revocations,
            config,
            clock,
        })
    }

    /// Start a session for `principal` (after it authenticated, e.g. with a
    /// password).
    ///
    /// # Errors
    /// `Unavailable` if the store is down; `Internal` if signing or the OS
    /// random generator fails.
    pub async fn issue(&self, principal: &Principal) -> Result<TokenPair> {
        let now = self.clock.now();
        let session = SessionId::generate()?;
        let session_expires_at = now + self.config.max_session_lifetime;
        self.issue_in(principal, session, session_expires_at, now)
            .await
    }

    async fn issue_in(
        &self,
        principal: &Principal,
        session: SessionId,
        session_expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TokenPair> {
        let access = self.issuer.issue(principal)?;
        let refresh_token = format!("{}.{}", principal.tenant, random_urlsafe::<32>()?);
        let refresh_expires_at = (now + self.config.refresh_token_ttl).min(session_expires_at);
        self.store
            .insert(RefreshTokenRecord {
                token_hash: RefreshTokenHash::of(&refresh_token),
                session: session.clone(),
                principal: principal.clone(),
                issued_at: now,
                expires_at: refresh_expires_at,
                session_expires_at,
                access_token_id: access.token_id.clone(),
                access_expires_at: access.expires_at,
                state: RefreshTokenState::Active,
            })
            .await?;
        Ok(TokenPair {
            access_token: access.token,
            token_type: "Bearer",
            access_expires_at: access.expires_at,
            access_token_id: access.token_id,
            refresh_token: SecretString::from(refresh_token),
            refresh_expires_at,
            session,
        })
    }

    /// Exchange a refresh token for a new pair in the same session.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`]: `Malformed` for a token that is not ours,
    /// `BadCredential` for an unknown one, `Expired` past its lifetime,
    /// `Revoked` for a revoked session, and `Revoked` for a token used
    /// before, in which case the whole session is revoked first.
    /// `Unavailable` if a store is down.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        self.refresh_with(refresh_token, |principal| {
            let principal = principal.clone();
            async move { Ok(principal) }
        })
        .await
    }

    /// [`SessionManager::refresh`], but the new pair is issued for the
    /// principal `reauthorize` returns from the session's current one: a
    /// login service re-reads the account there, so a demoted user's
    /// refresh carries the new roles, and a disabled or deleted account's
    /// refresh fails.
    ///
    /// `reauthorize` runs before the token is used up, and only for an
    /// active, unexpired token. If it fails with
    /// [`Error::Unauthenticated`], the whole session is revoked; any other
    /// error (an outage) leaves the token usable for a retry.
    ///
    /// # Errors
    /// As [`SessionManager::refresh`], and `reauthorize`'s error.
    pub async fn refresh_with<F, Fut>(
        &self,
        refresh_token: &str,
        reauthorize: F,
    ) -> Result<TokenPair>
    where
        F: FnOnce(&Principal) -> Fut + Send,
        Fut: std::future::Future<Output = Result<Principal>> + Send,
    {
        let (tenant, hash) = parse_refresh_token(refresh_token)?;
        let mut principal = None;
        if let Some(found) = self.store.find(&tenant, &hash).await? {
            let now = self.clock.now();
            if found.state == RefreshTokenState::Active
                && found.expires_at > now
                && found.session_expires_at > now
            {
                // A revoked subject (erased, disabled, deleted): the session
                // ends with every token issued before the revocation.
                let revoked = self
                    .revocations
                    .subject_revoked_through(&tenant, &found.principal.id)
                    .await?
                    .is_some_and(|through| {
                        docaiche_core::revocation::issued_within(found.issued_at, through)
                    });
                if revoked {
                    self.revoke_session(&tenant, &found.session).await?;
                    return Err(unauthenticated(AuthFailure::Revoked, "subject revoked"));
                }
                match reauthorize(&found.principal).await {
                    Ok(p) if p.tenant == tenant => principal = Some(p),
                    Ok(_) => return Err(Error::internal("reauthorized into another tenant")),
                    Err(e @ Error::Unauthenticated { .. }) => {
                        self.revoke_session(&tenant, &found.session).await?;
                        return Err(e);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let record =
            self.store.consume(&tenant, &hash).await?.ok_or_else(|| {
                unauthenticated(AuthFailure::BadCredential, "unknown refresh token")
            })?;
        let now = self.clock.now();
        match record.state {
            RefreshTokenState::Active => {}
            RefreshTokenState::Used => {
                tracing::warn!(
                    tenant = %tenant,
                    principal = %record.principal.id,
                    session = %record.session,
                    "refresh token reuse detected: revoking the session"
                );
                self.revoke_session(&tenant, &record.session).await?;
                return Err(unauthenticated(
                    AuthFailure::Revoked,
                    "refresh token reused",
                ));
            }
            _ => return Err(unauthenticated(AuthFailure::Revoked, "session revoked")),
        }
        if record.expires_at <= now || record.session_expires_at <= now {
            return Err(unauthenticated(
                AuthFailure::Expired,
                "refresh token expired",
            ));
        }
        self.issue_in(
            principal.as_ref().unwrap_or(&record.principal),
            record.session,
            record.session_expires_at,
            now,
        )
        .await
    }

    /// End every credential of `subject` in `tenant` issued until now, on
    /// every instance sharing the revocation store: its access tokens are
    /// refused by [`JwtAuthenticator`](crate::jwt::JwtAuthenticator) and its
    /// refresh tokens by [`SessionManager::refresh_with`]. Call it when an
    /// account is disabled, deleted or erased. Remembered for the session
    /// lifetime, past which nothing issued before can be valid.
    ///
    /// # Errors
    /// `Unavailable` if the revocation store is down (the caller must not
    /// report the subject's credentials as ended).
    pub async fn revoke_subject(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<()> {
        let now = self.clock.now();
        self.revocations
            .revoke_subject(tenant, subject, now, now + self.config.max_session_lifetime)
            .await
    }

    /// Revoke an access token by its `jti`, for the rest of its lifetime.
    ///
    /// # Errors
    /// `Unavailable` if the revocation store is down.
    pub async fn revoke_access(&self, claims: &AccessClaims) -> Result<()> {
        self.revocations
            .revoke(&claims.token_id, claims.expires_at)
            .await
    }

    /// End the session `refresh_token` belongs to (a logout).
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] if the token is malformed or unknown;
    /// `Unavailable` if a store is down.
    pub async fn revoke_refresh(&self, refresh_token: &str) -> Result<()> {
        let (tenant, hash) = parse_refresh_token(refresh_token)?;
        let record =
            self.store.find(&tenant, &hash).await?.ok_or_else(|| {
                unauthenticated(AuthFailure::BadCredential, "unknown refresh token")
            })?;
        self.revoke_session(&tenant, &record.session).await
    }

    /// Revoke every refresh token of `session` and every access token issued
    /// with them that has not expired yet.
    ///
    /// # Errors
    /// `Unavailable` if a store is down.
    pub async fn revoke_session(&self, tenant: &TenantId, session: &SessionId) -> Result<()> {
        let now = self.clock.now();
        let records = self.store.revoke_session(tenant, session).await?;
        for record in records {
            if record.access_expires_at > now {
                self.revocations
                    .revoke(&record.access_token_id, record.access_expires_at)
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_token_parsing_rejects_foreign_shapes() {
        let secret = "A".repeat(REFRESH_SECRET_LEN);
        assert!(parse_refresh_token(&format!("acme.{secret}")).is_ok());
        assert!(parse_refresh_token(&format!("acme.corp.{secret}")).is_ok());
        for bad in [
            String::new(),
            secret.clone(),
            format!("acme.{}", &secret[1..]),
            format!("acme.{}=", &secret[1..]),
            format!("../x.{secret}"),
            format!("{}.{secret}", "a".repeat(65)),
        ] {
            assert!(
                matches!(
                    parse_refresh_token(&bad),
                    Err(Error::Unauthenticated {
                        reason: AuthFailure::Malformed
                    })
                ),
                "{bad}"
            );
        }
    }
}
