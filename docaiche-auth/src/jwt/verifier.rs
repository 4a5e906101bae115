//! [`JwtVerifier`], [`AccessClaims`], [`RoleCatalog`] and the bearer-token
//! [`JwtAuthenticator`].

use std::collections::HashMap;
use std::sync::Arc;

use docaiche_core::revocation::{IssuedToken, TokenRevocationStore};
use docaiche_core::{
    AuthFailure, AuthMethod, Authenticator, Clock, Credential, Error, Permission, PermissionSet,
    Principal, PrincipalId, RequestContext, Result, Role, TenantId,
};
use serde::Deserialize;
use time::OffsetDateTime;

use super::JwtConfig;
use super::decode::{Audience, check_issuer_and_audience, check_times, decode_claims, peek};
use super::key::JwtKeySet;
use super::rejection::JwtRejection;

/// The claims as they come off the wire: every field optional, so that a
/// missing claim is reported by name rather than as a parse error.
#[derive(Deserialize)]
pub(crate) struct WireClaims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
}

/// Longest role name accepted from a token, in bytes.
const MAX_ROLE_LEN: usize = 64;

/// The verified claims of one of our access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessClaims {
    /// The key that verified the token.
    pub kid: String,
    /// `iss`.
    pub issuer: String,
    /// `sub`: the principal.
    pub subject: PrincipalId,
    /// The `tenant` claim.
    pub tenant: TenantId,
    /// `jti`: the token id, for revocation.
    pub token_id: String,
    /// `iat`.
    pub issued_at: OffsetDateTime,
    /// `exp`.
    pub expires_at: OffsetDateTime,
    /// `roles`: role names, expanded through a [`RoleCatalog`].
    pub roles: Vec<String>,
    /// `permissions`: concrete permissions (never wildcards).
    pub permissions: Vec<Permission>,
}

fn timestamp(value: i64, claim: &'static str) -> Result<OffsetDateTime, JwtRejection> {
    OffsetDateTime::from_unix_timestamp(value).map_err(|_| JwtRejection::InvalidClaim(claim))
}

impl AccessClaims {
    fn from_wire(wire: WireClaims, kid: String) -> Result<Self, JwtRejection> {
        let iss = wire.iss.ok_or(JwtRejection::MissingClaim("iss"))?;
        let sub = wire.sub.ok_or(JwtRejection::MissingClaim("sub"))?;
        let jti = wire.jti.ok_or(JwtRejection::MissingClaim("jti"))?;
        let tenant = wire.tenant.ok_or(JwtRejection::MissingClaim("tenant"))?;
        let exp = wire.exp.ok_or(JwtRejection::MissingClaim("exp"))?;
        let iat = wire.iat.ok_or(JwtRejection::MissingClaim("iat"))?;
        docaiche_core::revocation::validate_token_id(&jti)
            .map_err(|_| JwtRejection::InvalidClaim("jti"))?;
        let roles = wire.roles.unwrap_or_default();
        if roles.iter().any(|r| {
            r.is_empty() || r.len() > MAX_ROLE_LEN || !r.bytes().all(|b| b.is_ascii_graphic())
        }) {
            return Err(JwtRejection::InvalidClaim("roles"));
        }
        let permissions = wire
            .permissions
            .unwrap_or_default()
            .iter()
            .map(|p| Permission::parse(p))
            .collect::<Result<Vec<_>>>()
            .map_err(|_| JwtRejection::InvalidClaim("permissions"))?;
        Ok(Self {
            kid,
            issuer: iss,
            subject: PrincipalId::new(sub).map_err(|_| JwtRejection::InvalidClaim("sub"))?,
            tenant: TenantId::new(tenant).map_err(|_| JwtRejection::InvalidClaim("tenant"))?,
            token_id: jti,
            issued_at: timestamp(iat, "iat")?,
            expires_at: timestamp(exp, "exp")?,
            roles,
            permissions,
        })
    }
}

/// Role names → grants: how role claims become effective permissions.
///
/// Wildcard grants (`documents:*`, `*:*`) reach a principal only through a
/// role named here; a token may carry concrete permissions but never a
/// wildcard. Unknown role names grant nothing.
#[derive(Debug, Clone, Default)]
pub struct RoleCatalog {
    roles: HashMap<String, PermissionSet>,
}

impl RoleCatalog {
    /// A catalogue of `roles`.
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Self {
        Self {
            roles: roles.into_iter().map(|r| (r.name, r.grants)).collect(),
        }
    }

    /// The effective permissions of `roles` plus the concrete `permissions`.
    #[must_use]
    pub fn effective(&self, roles: &[String], permissions: &[Permission]) -> PermissionSet {
        let mut set: PermissionSet = permissions.iter().cloned().collect();
        for grant in roles
            .iter()
            .filter_map(|name| self.roles.get(name))
            .flat_map(PermissionSet::iter)
        {
            set.insert(grant.clone());
        }
        set
    }
}

/// Verifies this service's access tokens.
///
/// In order, each failure a distinct [`JwtRejection`]:
/// 1. size limit (default 8 KiB), before any parsing;
/// 2. three base64url segments, a JSON header with a supported `alg`
///    (never `none`), no `crit`, `typ: at+jwt`, a well-formed `kid`;
/// 3. the key named by `kid` (unknown → rejected), whose algorithm must be
///    the header's (RFC 8725 §3.1: the key decides the algorithm);
/// 4. the signature (`jsonwebtoken`), then `iss`, `aud` (required), `sub`, `exp`, `iat`,
///    `jti` and `tenant` (required), `nbf` (honoured), with leeway, against
///    the injected [`Clock`].
///
/// Revocation is checked by [`JwtAuthenticator`], which owns the store.
#[derive(Debug)]
pub struct JwtVerifier {
    keys: Arc<JwtKeySet>,
    config: JwtConfig,
    clock: Arc<dyn Clock>,
    accepted_types: Vec<String>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: i64,
}

impl JwtVerifier {
    /// A verifier of tokens signed by `keys`, reading time from `clock`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if the configuration is invalid (see
    /// [`JwtConfig::validate`]).
    pub fn new(keys: Arc<JwtKeySet>, config: JwtConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        config.validate()?;
        let leeway = i64::try_from(config.leeway.as_secs())
            .map_err(|_| Error::misconfigured("jwt.leeway", "leeway is too large"))?;
        Ok(Self {
            keys,
            clock,
            accepted_types: vec![super::ACCESS_TOKEN_TYPE.to_owned()],
            issuers: vec![config.issuer.clone()],
            audiences: vec![config.audience.clone()],
            config,
            leeway,
        })
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// Verify `token` and return its claims.
    ///
    /// # Errors
    /// The [`JwtRejection`] naming the first check that failed. It converts
    /// into [`Error::Unauthenticated`] with `?`.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, JwtRejection> {
        let peeked = peek(token, self.config.max_token_len, &self.accepted_types)?;
        let ring = self.keys.snapshot();
        let key = ring.get(&peeked.kid).ok_or(JwtRejection::UnknownKeyId)?;
        let wire: WireClaims = decode_claims(token, &peeked, key)?;
        check_issuer_and_audience(
            wire.iss.as_deref(),
            wire.aud.as_ref(),
            &self.issuers,
            &self.audiences,
        )?;
        check_times(
            wire.exp,
            wire.nbf,
            wire.iat,
            self.clock.now().unix_timestamp(),
            self.leeway,
        )?;
        AccessClaims::from_wire(wire, peeked.kid)
    }
}

/// An [`Authenticator`] for `Authorization: Bearer <jwt>`: verifies with a
/// [`JwtVerifier`], checks the `jti` and the subject (a revoked subject's
/// tokens issued through its revocation: erasure, a disabled or deleted
/// account) against a [`TokenRevocationStore`] (failing closed when the
/// store is down), and builds the [`Principal`]
/// with permissions expanded through a [`RoleCatalog`].
#[derive(Debug)]
pub struct JwtAuthenticator {
    verifier: JwtVerifier,
    revocations: Arc<dyn TokenRevocationStore>,
    roles: RoleCatalog,
}

impl JwtAuthenticator {
    /// An authenticator over `verifier` and `revocations`, with an empty
    /// role catalogue.
    #[must_use]
    pub fn new(verifier: JwtVerifier, revocations: Arc<dyn TokenRevocationStore>) -> Self {
        Self {
            verifier,
            revocations,
            roles: RoleCatalog::default(),
        }
    }

    /// Expand role claims through `roles`.
    #[must_use]
    pub fn with_roles(mut self, roles: RoleCatalog) -> Self {
        self.roles = roles;
        self
    }

    /// The verifier.
    #[must_use]
    pub const fn verifier(&self) -> &JwtVerifier {
        &self.verifier
    }

    /// Verify `token`, check revocation, and build the principal.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for any rejection (the precise reason is
    /// logged at debug level); [`Error::Unavailable`] if the revocation
    /// store cannot answer.
    pub async fn authenticate_token(&self, token: &str) -> Result<Principal> {
        let claims = self.verifier.verify(token).map_err(log_rejection)?;
        let issued = IssuedToken::new(
            &claims.token_id,
            &claims.tenant,
            &claims.subject,
            claims.issued_at,
        );
        if self.revocations.is_token_revoked(&issued).await? {
            return Err(log_rejection(JwtRejection::Revoked));
        }
        Ok(self.principal(claims))
    }

    fn principal(&self, claims: AccessClaims) -> Principal {
        let permissions = self.roles.effective(&claims.roles, &claims.permissions);
        Principal::new(
            claims.subject,
            claims.tenant,
            AuthMethod::Jwt { kid: claims.kid },
        )
        .with_roles(claims.roles)
        .with_permissions(permissions)
        .with_expiry(claims.expires_at)
    }
}

pub(crate) fn log_rejection(rejection: JwtRejection) -> Error {
    tracing::debug!(reason = rejection.as_str(), detail = %rejection, "bearer token rejected");
    rejection.into()
}

#[async_trait::async_trait]
impl Authenticator for JwtAuthenticator {
    async fn authenticate(
        &self,
        credential: &Credential,
        _context: &RequestContext,
    ) -> Result<Principal> {
        match credential {
            Credential::Bearer(token) => self.authenticate_token(token.expose_secret()).await,
            _ => Err(Error::unauthenticated(AuthFailure::Missing)),
        }
    }
}
