//! [`JwtIssuer`]: signs access tokens with the key set's signing key.

use std::fmt;
use std::sync::Arc;

use docaiche_core::{Clock, Error, Grant, Principal, Result, SecretString};
use jsonwebtoken::Header;
use serde::Serialize;
use time::OffsetDateTime;

use super::key::JwtKeySet;
use super::{ACCESS_TOKEN_TYPE, JwtConfig, random_urlsafe};

/// The claims written into an access token.
#[derive(Serialize)]
struct OutClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: &'a str,
    tenant: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    roles: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    permissions: Vec<String>,
}

/// A freshly signed access token.
#[non_exhaustive]
pub struct IssuedToken {
    /// The compact JWT. A bearer credential: keep it out of logs.
    pub token: SecretString,
    /// Its `jti`, for revocation.
    pub token_id: String,
    /// The signing key's id.
    pub kid: String,
    /// `iat`.
    pub issued_at: OffsetDateTime,
    /// `exp`.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &self.token)
            .field("token_id", &self.token_id)
            .field("kid", &self.kid)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Issues access tokens (RFC 9068 profile: `typ: at+jwt`, `iss`, `sub`,
/// `aud`, `exp`, `iat`, `jti`) plus the `tenant`, `roles` and concrete
/// `permissions` claims.
///
/// Wildcard grants of the principal are not written: they come back from
/// the verifier's [`RoleCatalog`](super::RoleCatalog) through the principal's
/// roles, so a token can never claim a wildcard on its own.
#[derive(Debug, Clone)]
pub struct JwtIssuer {
    keys: Arc<JwtKeySet>,
    config: JwtConfig,
    clock: Arc<dyn Clock>,
}

impl JwtIssuer {
    /// An issuer signing with `keys`' signing key.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if the configuration is invalid.
    pub fn new(keys: Arc<JwtKeySet>, config: JwtConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            keys,
            config,
            clock,
        })
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// Sign an access token for `principal`, valid for the configured
    /// lifetime (never past the principal's own expiry).
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if the key set has no signing key;
    /// [`Error::Internal`] if the OS random generator or signing fails.
    pub fn issue(&self, principal: &Principal) -> Result<IssuedToken> {
        let ring = self.keys.snapshot();
        let key = ring
            .signing()
            .ok_or_else(|| Error::misconfigured("jwt.keys", "the key set has no signing key"))?;
        let encoding = key
            .encoding_key()
            .ok_or_else(|| Error::internal("signing key without private half"))?;
        let now = self
            .clock
            .now()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| self.clock.now());
        let mut expires_at = now + self.config.access_token_ttl;
        if let Some(limit) = principal.expires_at {
            expires_at = expires_at.min(limit);
        }
        let token_id = random_urlsafe::<16>()?;
        let permissions = principal
            .permissions
            .iter()
            .filter_map(|grant| match grant {
                Grant::Exact(permission) => Some(permission.to_string()),
                _ => None,
            })
            .collect();
        let claims = OutClaims {
            iss: &self.config.issuer,
            sub: principal.id.as_str(),
            aud: &self.config.audience,
            exp: expires_at.unix_timestamp(),
            iat: now.unix_timestamp(),
            jti: &token_id,
            tenant: principal.tenant.as_str(),
            roles: &principal.roles,
            permissions,
        };
        let mut header = Header::new(key.algorithm());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(key.kid().to_owned());
        let token = jsonwebtoken::encode(&header, &claims, encoding)
            .map_err(|err| Error::internal_with("signing an access token failed", err))?;
        Ok(IssuedToken {
            token: SecretString::from(token),
            token_id,
            kid: key.kid().to_owned(),
            issued_at: now,
            expires_at,
        })
    }
}
