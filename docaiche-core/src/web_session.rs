//! The [`WebSessionStore`] contract: server-side sessions of browser front
//! ends (the admin console), keyed by the SHA-256 of their cookie value.
//!
//! `docaiche-auth`'s `web_session` module builds the service on top
//! (cookies, timeouts, CSRF tokens, second-factor state) and re-exports
//! these types; `docaiche-store` holds the adapters (memory, SQLite,
//! PostgreSQL, Redis). The types live here so that the adapters need only
//! this crate.
//!
//! ```
//! use docaiche_core::web_session::{SecondFactor, WebSession, WebSessionKey};
//! use docaiche_core::{PrincipalId, TenantId};
//! use time::OffsetDateTime;
//!
//! # fn main() -> docaiche_core::Result<()> {
//! let key = WebSessionKey::of("the cookie value");
//! // A store keeps the digest, never the cookie; debug output shows a prefix.
//! assert!(format!("{key:?}").starts_with("WebSessionKey("));
//! let session = WebSession::new(
//!     key,
//!     TenantId::new("acme")?,
//!     PrincipalId::new("alice")?,
//!     OffsetDateTime::UNIX_EPOCH,
//!     SecondFactor::Pending,
//! );
//! assert!(!session.second_factor.is_complete());
//! assert_eq!(SecondFactor::from_name("pending")?, SecondFactor::Pending);
//! # Ok(()) }
//! ```

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::id::{PrincipalId, TenantId};

/// SHA-256 of a session's cookie value: what a store keeps.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WebSessionKey([u8; 32]);

impl WebSessionKey {
    /// The key of cookie value `token`.
    #[must_use]
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// A key read back from a store.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for WebSessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WebSessionKey({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// Where a session stands with the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SecondFactor {
    /// The account needs none.
    NotRequired,
    /// The password was right; the second factor is still to come. Such a
    /// session may only pass the factor or end.
    Pending,
    /// Both factors passed.
    Passed,
}

impl SecondFactor {
    /// Whether the session may act (no factor still owed).
    #[must_use]
    pub const fn is_complete(self) -> bool {
        !matches!(self, Self::Pending)
    }

    /// The name stored (`not_required`, `pending`, `passed`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotRequired => "not_required",
            Self::Pending => "pending",
            Self::Passed => "passed",
        }
    }

    /// The factor state named `name`.
    ///
    /// # Errors
    /// `Internal` for a name no version wrote.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "not_required" => Ok(Self::NotRequired),
            "pending" => Ok(Self::Pending),
            "passed" => Ok(Self::Passed),
            _ => Err(Error::internal("stored second-factor state is unknown")),
        }
    }
}

/// One browser session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebSession {
    /// The hash of its cookie value.
    pub key: WebSessionKey,
    /// The signed-in person's tenant.
    pub tenant: TenantId,
    /// The signed-in person.
    pub subject: PrincipalId,
    /// When it started (sign-in).
    pub created_at: OffsetDateTime,
    /// When it was last used (written at most once per touch interval).
    pub last_seen_at: OffsetDateTime,
    /// The second factor's state.
    pub second_factor: SecondFactor,
}

impl WebSession {
    /// A session started at `now`.
    #[must_use]
    pub const fn new(
        key: WebSessionKey,
        tenant: TenantId,
        subject: PrincipalId,
        now: OffsetDateTime,
        second_factor: SecondFactor,
    ) -> Self {
        Self {
            key,
            tenant,
            subject,
            created_at: now,
            last_seen_at: now,
            second_factor,
        }
    }
}

/// Where browser sessions live. One shared store (SQL, Redis) lets every
/// instance see and end the same sessions.
///
/// The contract, which `docaiche-store`'s conformance suite
/// (`run_web_session_store`) checks:
///
/// - **Keys come from attackers.** A [`WebSessionKey`] is the SHA-256 of
///   whatever cookie a browser sent; an unknown key is `Ok(None)` /
///   `Ok(false)`, never an error, and nothing panics.
/// - **Lookup is by key alone.** [`get`](Self::get), [`touch`](Self::touch)
///   and [`remove`](Self::remove) run before the tenant is known (the key
///   *is* the credential), so they are not tenant-scoped;
///   [`remove_subject`](Self::remove_subject) is, and touches no other
///   tenant's sessions of a subject with the same id.
/// - **Round trip.** What [`insert`](Self::insert) stored reads back
///   field for field, times cut to the store's precision (microseconds for
///   the SQL and Redis adapters).
/// - **Last-seen only moves forward.** A late [`touch`](Self::touch) from
///   a slower instance never moves it back.
/// - **Idempotent removal.** Removing what is gone is `Ok(false)` / `Ok(0)`;
///   every method is safe to retry except `insert`, whose retry after a
///   lost reply answers `Conflict`.
/// - **Bounded.** [`purge`](Self::purge) removes what timed out; a store
///   may also drop a session on its own once it is past any timeout (Redis
///   expires it).
#[async_trait]
pub trait WebSessionStore: Send + Sync + fmt::Debug + 'static {
    /// Store a new session.
    ///
    /// # Errors
    /// `Conflict` if its key exists (256 random bits: never in practice);
    /// `Unavailable` on outage.
    async fn insert(&self, session: &WebSession) -> Result<()>;

    /// The session of `key`, if stored.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn get(&self, key: &WebSessionKey) -> Result<Option<WebSession>>;

    /// Record use at `at` (never moves last-seen back); whether it exists.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn touch(&self, key: &WebSessionKey, at: OffsetDateTime) -> Result<bool>;

    /// Remove one session; whether it existed.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn remove(&self, key: &WebSessionKey) -> Result<bool>;

    /// Remove every session of `subject` in `tenant`; how many.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn remove_subject(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<u64>;

    /// Remove sessions last seen before `idle_before` or created before
    /// `created_before`; how many.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn purge(
        &self,
        idle_before: OffsetDateTime,
        created_before: OffsetDateTime,
    ) -> Result<u64>;
}
