//! JSON Web Tokens: issue and verify access tokens, rotate keys by `kid`,
//! publish a JWKS, and authenticate bearer tokens.
//!
//! ```
//! use std::sync::Arc;
//! use docaiche_auth::jwt::{
//!     Algorithm, JwtAuthenticator, JwtConfig, JwtIssuer, JwtKey, JwtKeySet, JwtRejection,
//!     JwtVerifier,
//! };
//! use docaiche_core::{
//!     AuthMethod, Clock, ManualClock, Principal, PrincipalId, SecretBytes, TenantId,
//! };
//! use docaiche_store::MemoryRevocationStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> docaiche_core::Result<()> {
//! let clock: Arc<dyn Clock> = Arc::new(ManualClock::new());
//! // In production the secret comes from a SecretProvider (`JwtKey::load`).
//! let key = JwtKey::hmac("2026-01", Algorithm::HS256, &SecretBytes::from(vec![42; 32]))?;
//! let keys = Arc::new(JwtKeySet::new(key)?);
//! let config = JwtConfig::new("https://auth.example.com", "docaiche");
//!
//! let issuer = JwtIssuer::new(keys.clone(), config.clone(), clock.clone())?;
//! let verifier = JwtVerifier::new(keys, config, clock.clone())?;
//!
//! let alice = Principal::new(
//!     PrincipalId::new("alice")?,
//!     TenantId::new("acme")?,
//!     AuthMethod::Password,
//! );
//! let issued = issuer.issue(&alice)?;
//! let token = issued.token.expose_secret();
//!
//! let claims = verifier.verify(token).map_err(docaiche_core::Error::from)?;
//! assert_eq!(claims.tenant.as_str(), "acme");
//!
//! // A tampered token is refused; the precise reason is for the log only.
//! let mut forged = token.to_owned();
//! forged.pop();
//! forged.push(if token.ends_with('A') { 'B' } else { 'A' });
//! assert!(verifier.verify(&forged).is_err());
//!
//! // As an `Authenticator`, with revocation by `jti`.
//! let auth = JwtAuthenticator::new(verifier, Arc::new(MemoryRevocationStore::new().with_clock(clock)));
//! let principal = auth.authenticate_token(token).await?;
//! assert_eq!(principal.id.as_str(), "alice");
//! # Ok(()) }
//! ```
//!
//! ## Security properties (RFC 8725)
//!
//! * The algorithm comes from the key: a `kid` names exactly one
//!   [`JwtKey`] and that key's one algorithm. `alg: none`, and a header
//!   algorithm that differs from the key's (an HMAC token naming an RSA
//!   key), are refused; an HMAC key cannot be made from a PEM document.
//! * Tokens longer than [`JwtConfig::max_token_len`] (8 KiB) are refused
//!   before any parsing; the `kid` is checked ([`key::is_valid_kid`])
//!   before any lookup.
//! * `typ: at+jwt` (RFC 9068) is set on issue and required on verify, so an
//!   ID token or any other JWT signed by the same key is not an access token.
//! * `exp`, `iat`, `iss`, `aud`, `sub`, `jti` and the `tenant` claim are
//!   required; `nbf` is honoured; time comes from the injected
//!   [`Clock`](docaiche_core::Clock) with a configurable leeway.
//! * Every failure is a [`JwtRejection`] for the log and audit trail, which
//!   becomes [`Error::Unauthenticated`] with a coarse reason: the client
//!   learns nothing about which check failed.
//!
//! Keys, algorithms, signing and signature verification are `jsonwebtoken`'s
//! (with its `rust_crypto` backend); this module adds the header checks that
//! must run before a key is chosen and checks the claims once, against the
//! injected clock (see `decode.rs` for why not `jsonwebtoken::decode`).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use docaiche_core::{Error, Result};

pub(crate) mod decode;
mod issuer;
pub mod key;
mod rejection;
mod verifier;

pub use issuer::{IssuedToken, JwtIssuer};
pub use jsonwebtoken::Algorithm;
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use key::{JwtKey, JwtKeySet};
pub use rejection::JwtRejection;
pub(crate) use verifier::log_rejection;
pub use verifier::{AccessClaims, JwtAuthenticator, JwtVerifier, RoleCatalog};

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Settings shared by [`JwtIssuer`] and [`JwtVerifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwtConfig {
    /// `iss`: this service's issuer identifier (a URL).
    pub issuer: String,
    /// `aud`: the audience tokens are issued for and required to name.
    pub audience: String,
    /// Access-token lifetime. Default 15 minutes.
    pub access_token_ttl: Duration,
    /// Tolerance for clock skew on `exp`, `nbf` and `iat`. Default 30 s.
    pub leeway: Duration,
    /// Longest accepted token, in bytes. Default 8 KiB.
    pub max_token_len: usize,
}

impl JwtConfig {
    /// Default access-token lifetime.
    pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
    /// Default leeway.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
    /// Default size limit.
    pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
    /// Longest leeway [`JwtConfig::validate`] accepts.
    pub const MAX_LEEWAY: Duration = Duration::from_secs(5 * 60);

    /// Defaults for `issuer` and `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            access_token_ttl: Self::DEFAULT_ACCESS_TOKEN_TTL,
            leeway: Self::DEFAULT_LEEWAY,
            max_token_len: Self::DEFAULT_MAX_TOKEN_LEN,
        }
    }

    /// Set the access-token lifetime.
    #[must_use]
    pub const fn with_access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// Set the leeway.
    #[must_use]
    pub const fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Set the size limit.
    #[must_use]
    pub const fn with_max_token_len(mut self, max: usize) -> Self {
        self.max_token_len = max;
        self
    }

    /// Check the settings.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if `issuer` or `audience` is empty, the
    /// lifetime is zero or over a day, the leeway over 5 minutes, or the size
    /// limit under 256 bytes or over 64 KiB.
    pub fn validate(&self) -> Result<()> {
        if self.issuer.is_empty() {
            return Err(Error::misconfigured("jwt.issuer", "must not be empty"));
        }
        if self.audience.is_empty() {
            return Err(Error::misconfigured("jwt.audience", "must not be empty"));
        }
        if self.access_token_ttl.is_zero() || self.access_token_ttl > Duration::from_secs(86_400) {
            return Err(Error::misconfigured(
                "jwt.access_token_ttl",
                "must be between 1 second and 1 day",
            ));
        }
        if self.leeway > Self::MAX_LEEWAY {
            return Err(Error::misconfigured(
                "jwt.leeway",
                "must be at most 5 minutes",
            ));
        }
        if !(256..=64 * 1024).contains(&self.max_token_len) {
            return Err(Error::misconfigured(
                "jwt.max_token_len",
                "must be between 256 bytes and 64 KiB",
            ));
        }
        Ok(())
    }
}

/// `N` bytes from the OS random generator, base64url without padding.
pub(crate) fn random_urlsafe<const N: usize>() -> Result<String> {
    let mut bytes = [0_u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|err| Error::internal(format!("OS random generator failed: {err}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
