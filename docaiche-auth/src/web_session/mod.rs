//! Server-side sessions for browser front ends (the admin console): an
//! opaque cookie value, idle and absolute timeouts, second-factor state,
//! and CSRF tokens bound to the session.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use docaiche_auth::web_session::{
//!     SecondFactor, WebSessionConfig, WebSessions,
//! };
//! use docaiche_store::memory::MemoryWebSessionStore;
//! use docaiche_core::{Clock, ManualClock, PrincipalId, SecretBytes, TenantId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> docaiche_core::Result<()> {
//! let clock = Arc::new(ManualClock::new());
//! let sessions = WebSessions::new(
//!     Arc::new(MemoryWebSessionStore::new()),
//!     &SecretBytes::from(vec![7; 32]),
//!     WebSessionConfig::default(),
//!     clock.clone(),
//! )?;
//! let (acme, alice) = (TenantId::new("acme")?, PrincipalId::new("alice")?);
//! let (cookie, session) = sessions.start(&acme, &alice, SecondFactor::NotRequired).await?;
//!
//! // The cookie finds the session; its CSRF token is bound to it.
//! let found = sessions.resolve(cookie.expose_secret()).await?;
//! assert_eq!(found.subject, alice);
//! let csrf = sessions.csrf_token(&found);
//! assert!(sessions.verify_csrf(&found, &csrf));
//!
//! // Idle for longer than 30 minutes: ended.
//! clock.advance(Duration::from_secs(31 * 60));
//! assert!(sessions.resolve(cookie.expose_secret()).await.is_err());
//! # let _ = session;
//! # Ok(()) }
//! ```
//!
//! ## How it works
//!
//! * [`WebSessions::start`] draws 256 bits from the OS generator: the
//!   cookie value ([`WebSessionToken`]). The store keeps only its SHA-256
//!   ([`WebSessionKey`]), so a leaked store holds no usable cookie.
//! * [`WebSessions::resolve`] refuses a session idle for longer than
//!   [`WebSessionConfig::idle_timeout`] (default 30 minutes) or older than
//!   [`WebSessionConfig::absolute_timeout`] (default 12 hours), and one
//!   whose subject was revoked after it started (with
//!   [`WebSessions::with_revocations`]: a force sign-out or a disabled
//!   account ends the console session as it ends the API's). The last-seen
//!   time is written at most once per [`WebSessionConfig::touch_interval`].
//! * Signing in (and passing the second factor) always starts a *new*
//!   session: an id planted before sign-in is never promoted (no session
//!   fixation). Ending a session removes it from the store, so it ends on
//!   every instance that shares the store.
//! * The CSRF token is HMAC-SHA-256 of the session key under a key of its
//!   own: a synchronizer token that needs no storage, and that a token of
//!   another session cannot pass.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use docaiche_core::revocation::TokenRevocationStore;
use docaiche_core::{
    AuthFailure, Clock, Error, PrincipalId, Result, SecretBytes, SecretString, TenantId,
};
use hmac::{KeyInit as _, Mac as _};
use sha2::Sha256;
use time::OffsetDateTime;

pub use docaiche_core::web_session::{SecondFactor, WebSession, WebSessionKey, WebSessionStore};

type HmacSha256 = hmac::Hmac<Sha256>;

/// The label the CSRF MAC starts with, so no other MAC of the same key
/// can pass for a CSRF token.
const CSRF_LABEL: &[u8] = b"docaiche web session csrf v1\0";

/// Length of a cookie value: 32 random bytes, base64url without padding.
const TOKEN_CHARS: usize = 43;

/// A session's cookie value: 256 random bits; shown once, to the browser.
pub type WebSessionToken = SecretString;

/// Timeouts of [`WebSessions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebSessionConfig {
    /// A session unused for this long ends (default 30 minutes).
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in however busy (default 12 h).
    pub absolute_timeout: Duration,
    /// Last-seen is written at most this often (default 60 s; less than
    /// the idle timeout).
    pub touch_interval: Duration,
    /// A session still owing the second factor ends after this long
    /// (default 5 minutes).
    pub pending_timeout: Duration,
}

impl Default for WebSessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            touch_interval: Duration::from_secs(60),
            pending_timeout: Duration::from_secs(5 * 60),
        }
    }
}

impl WebSessionConfig {
    /// Check the timeouts.
    ///
    /// # Errors
    /// `InvalidInput` unless every timeout is positive, the touch interval
    /// is shorter than the idle timeout and the idle timeout not longer
    /// than the absolute one.
    pub fn validate(&self) -> Result<()> {
        let zero = [
            self.idle_timeout,
            self.absolute_timeout,
            self.touch_interval,
            self.pending_timeout,
        ]
        .contains(&Duration::ZERO);
        if zero
            || self.touch_interval >= self.idle_timeout
            || self.idle_timeout > self.absolute_timeout
        {
            return Err(Error::invalid_input(
                "web session timeouts must be positive, with touch < idle <= absolute",
            ));
        }
        Ok(())
    }
}

/// Browser sessions over a [`WebSessionStore`]: start, resolve, end, and
/// their CSRF tokens.
#[derive(Clone)]
pub struct WebSessions {
    store: Arc<dyn WebSessionStore>,
    csrf: HmacSha256,
    config: WebSessionConfig,
    clock: Arc<dyn Clock>,
    revocations: Option<Arc<dyn TokenRevocationStore>>,
}

impl fmt::Debug for WebSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSessions")
            .field("store", &self.store)
            .field("config", &self.config)
            .field("revocations", &self.revocations.is_some())
            .finish_non_exhaustive()
    }
}

impl WebSessions {
    /// Sessions in `store`, CSRF tokens under `csrf_key` (at least 32
    /// bytes), timed by `clock`.
    ///
    /// # Errors
    /// `InvalidInput` for a short key or invalid timeouts.
    pub fn new(
        store: Arc<dyn WebSessionStore>,
        csrf_key: &SecretBytes,
        config: WebSessionConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        config.validate()?;
        if csrf_key.expose_secret().len() < 32 {
            return Err(Error::invalid_input("the CSRF key needs at least 32 bytes"));
        }
        let csrf = HmacSha256::new_from_slice(csrf_key.expose_secret())
            .map_err(|_| Error::invalid_input("the CSRF key is unusable"))?;
        Ok(Self {
            store,
            csrf,
            config,
            clock,
            revocations: None,
        })
    }

    /// End a session whose subject was revoked (force sign-out, disabled
    /// account) after it started, as `revocations` records.
    #[must_use]
    pub fn with_revocations(mut self, revocations: Arc<dyn TokenRevocationStore>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// The timeouts.
    #[must_use]
    pub const fn config(&self) -> &WebSessionConfig {
        &self.config
    }

    /// Start a session for `subject`: the cookie value (shown once) and
    /// the record stored.
    ///
    /// # Errors
    /// `Internal` if the OS generator fails; the store's errors.
    pub async fn start(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        second_factor: SecondFactor,
    ) -> Result<(WebSessionToken, WebSession)> {
        let token = crate::jwt::random_urlsafe::<32>()?;
        let session = WebSession::new(
            WebSessionKey::of(&token),
            tenant.clone(),
            subject.clone(),
            self.clock.now(),
            second_factor,
        );
        self.store.insert(&session).await?;
        Ok((SecretString::from(token), session))
    }

    /// Replace `session` (after its second factor passed) with a new one
    /// of the same person and start time: a new cookie value, the old one
    /// ended.
    ///
    /// # Errors
    /// As [`WebSessions::start`].
    pub async fn promote(&self, session: &WebSession) -> Result<(WebSessionToken, WebSession)> {
        let token = crate::jwt::random_urlsafe::<32>()?;
        let mut promoted = session.clone();
        promoted.key = WebSessionKey::of(&token);
        promoted.second_factor = SecondFactor::Passed;
        promoted.last_seen_at = self.clock.now();
        self.store.insert(&promoted).await?;
        self.store.remove(&session.key).await?;
        Ok((SecretString::from(token), promoted))
    }

    /// The live session of cookie value `token`; records its use.
    ///
    /// # Errors
    /// `Unauthenticated`: `Malformed` for a value of the wrong shape,
    /// `BadCredential` for an unknown one, `Expired` past a timeout (the
    /// session is then removed), `Revoked` when its subject was revoked
    /// after it started; `Unavailable` when a store is down (fail closed).
    pub async fn resolve(&self, token: &str) -> Result<WebSession> {
        if token.len() != TOKEN_CHARS || URL_SAFE_NO_PAD.decode(token).is_err() {
            return Err(Error::unauthenticated(AuthFailure::Malformed));
        }
        let key = WebSessionKey::of(token);
        let Some(session) = self.store.get(&key).await? else {
            return Err(Error::unauthenticated(AuthFailure::BadCredential));
        };
        let now = self.clock.now();
        if self.expired(&session, now) {
            self.store.remove(&key).await?;
            return Err(Error::unauthenticated(AuthFailure::Expired));
        }
        if let Some(revocations) = &self.revocations
            && revocations
                .subject_revoked_through(&session.tenant, &session.subject)
                .await?
                .is_some_and(|through| {
                    docaiche_core::revocation::issued_within(session.created_at, through)
                })
        {
            self.store.remove(&key).await?;
            return Err(Error::unauthenticated(AuthFailure::Revoked));
        }
        if now - session.last_seen_at >= self.config.touch_interval {
            self.store.touch(&key, now).await?;
        }
        Ok(session)
    }

    /// Whether `session` is past a timeout at `now`.
    fn expired(&self, session: &WebSession, now: OffsetDateTime) -> bool {
        let idle = if session.second_factor.is_complete() {
            self.config.idle_timeout
        } else {
            self.config.pending_timeout
        };
        now - session.last_seen_at >= idle
            || now - session.created_at >= self.config.absolute_timeout
    }

    /// End the session of cookie value `token` (everywhere: it leaves the
    /// shared store); whether one existed.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn end(&self, token: &str) -> Result<bool> {
        self.store.remove(&WebSessionKey::of(token)).await
    }

    /// End every session of `subject`; how many.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn end_subject(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<u64> {
        self.store.remove_subject(tenant, subject).await
    }

    /// Remove the sessions past a timeout; how many.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn purge(&self) -> Result<u64> {
        let now = self.clock.now();
        self.store
            .purge(
                now - self.config.idle_timeout,
                now - self.config.absolute_timeout,
            )
            .await
    }

    /// The CSRF token of `session` (base64url, 43 characters).
    #[must_use]
    pub fn csrf_token(&self, session: &WebSession) -> String {
        URL_SAFE_NO_PAD.encode(self.csrf_mac(&session.key))
    }

    /// Whether `presented` is `session`'s CSRF token (constant time).
    #[must_use]
    pub fn verify_csrf(&self, session: &WebSession, presented: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(presented) else {
            return false;
        };
        let mut mac = self.csrf.clone();
        mac.update(CSRF_LABEL);
        mac.update(session.key.as_bytes());
        mac.verify_slice(&bytes).is_ok()
    }

    fn csrf_mac(&self, key: &WebSessionKey) -> [u8; 32] {
        let mut mac = self.csrf.clone();
        mac.update(CSRF_LABEL);
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests;
