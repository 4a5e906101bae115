//! Access tokens from an external OpenID Connect issuer (Auth0, Okta,
//! Keycloak, Entra ID, …), verified with keys found through discovery.
//!
//! [`OidcVerifier`] reads `{issuer}/.well-known/openid-configuration`,
//! follows its `jwks_uri`, and verifies tokens with the published keys,
//! applying the same header checks as [`crate::jwt`] (size limit, no
//! `alg: none`, the key decides the algorithm, `typ`, `kid` shape) and
//! mapping claims to a [`Principal`] through a [`ClaimMapping`].
//!
//! The key cache:
//! * keys are kept for [`OidcConfig::cache_ttl`] (default 10 minutes);
//! * an unknown `kid` triggers a refresh at most once per
//!   [`OidcConfig::refresh_cooldown`] (default 30 s), so forged `kid`s
//!   cannot make this service hammer the issuer;
//! * one fetch at a time (single-flight), each bounded by
//!   [`OidcConfig::fetch_timeout`] (default 5 s) on the injected clock;
//! * when the issuer is briefly down, the last keys keep serving for up to
//!   [`OidcConfig::max_stale`] after they expired;
//! * at most [`OidcConfig::max_keys`] keys; symmetric (`oct`) keys,
//!   encryption keys and RSA keys under 2048 bits are ignored.
//!
//! Fetching goes through the small [`JwksFetcher`] trait. With the `oidc`
//! feature, [`HttpJwksFetcher`] does it over HTTPS (reqwest + rustls).
//!
//! ```
//! use std::sync::Arc;
//! use docaiche_auth::oidc::{ClaimMapping, OidcConfig};
//!
//! let config = OidcConfig::new("https://login.example.com/", ["api://docaiche"])
//!     .with_claim_mapping(ClaimMapping::new("org_id").with_roles_claim("roles"));
//! assert_eq!(config.discovery_url(), "https://login.example.com/.well-known/openid-configuration");
//! assert!(config.validate().is_ok());
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use docaiche_core::resilience::{SingleFlight, Timeout};
use docaiche_core::{
    AuthFailure, AuthMethod, Authenticator, Clock, Credential, Error, Permission, Principal,
    PrincipalId, RequestContext, Result, TenantId,
};
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::jwt::decode::{Audience, check_issuer_and_audience, check_times, decode_claims, peek};
use crate::jwt::{ACCESS_TOKEN_TYPE, JwtKey, JwtRejection, RoleCatalog};

#[cfg(feature = "oidc")]
mod http;

#[cfg(feature = "oidc")]
#[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
pub use http::HttpJwksFetcher;

/// Fetches the issuer's discovery document and JWKS.
///
/// Contract: `GET url` and return the body of a `2xx` answer, at most
/// `max_len` bytes (a longer body is an error, not truncated). Outages,
/// non-`2xx` answers and oversized bodies are `Err(Unavailable)`. The
/// caller enforces its own deadline on top, and never calls concurrently
/// for the same issuer.
#[async_trait::async_trait]
pub trait JwksFetcher: Send + Sync + fmt::Debug + 'static {
    /// Fetch `url`.
    ///
    /// # Errors
    /// `Unavailable` when the document cannot be fetched.
    async fn fetch(&self, url: &str, max_len: usize) -> Result<Vec<u8>>;
}

/// Where a principal's tenant comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TenantSource {
    /// A claim of the token (`org_id`, `tid`, `tenant`).
    Claim(String),
    /// Every principal of this issuer belongs to one tenant.
    Fixed(TenantId),
}

/// Which claims carry the tenant, roles and permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimMapping {
    /// The tenant.
    pub tenant: TenantSource,
    /// A claim holding role names (array, or space-separated string).
    pub roles: Option<String>,
    /// A claim holding permissions (array, or space-separated string such
    /// as `scope`); values that are not `resource:action` are ignored.
    pub permissions: Option<String>,
}

impl ClaimMapping {
    /// The tenant from `tenant_claim`; roles from `roles`, permissions from
    /// `scope`.
    pub fn new(tenant_claim: impl Into<String>) -> Self {
        Self {
            tenant: TenantSource::Claim(tenant_claim.into()),
            roles: Some("roles".to_owned()),
            permissions: Some("scope".to_owned()),
        }
    }

    /// Every principal of this issuer belongs to `tenant`.
    #[must_use]
    pub fn fixed_tenant(tenant: TenantId) -> Self {
        Self {
            tenant: TenantSource::Fixed(tenant),
            roles: Some("roles".to_owned()),
            permissions: Some("scope".to_owned()),
        }
    }

    /// Read roles from `claim`.
    #[must_use]
    pub fn with_roles_claim(mut self, claim: impl Into<String>) -> Self {
        self.roles = Some(claim.into());
        self
    }

    /// Read permissions from `claim`.
    #[must_use]
    pub fn with_permissions_claim(mut self, claim: impl Into<String>) -> Self {
        self.permissions = Some(claim.into());
        self
    }
}

/// Settings for one external issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OidcConfig {
    /// The issuer identifier, exactly as in its tokens' `iss` and its
    /// discovery document. `https`, or `http` on a loopback host.
    pub issuer: String,
    /// Accepted audiences: a token's `aud` must name one.
    pub audiences: Vec<String>,
    /// Accepted `typ` headers. Default `at+jwt` (RFC 9068).
    pub accepted_types: Vec<String>,
    /// Claim mapping. Default: tenant from `tenant`.
    pub claims: ClaimMapping,
    /// How long fetched keys are used before a refresh. Default 10 min.
    pub cache_ttl: Duration,
    /// Least time between two refreshes. Default 30 s.
    pub refresh_cooldown: Duration,
    /// Deadline of one refresh (discovery + JWKS). Default 5 s.
    pub fetch_timeout: Duration,
    /// How long expired keys keep serving while the issuer is down.
    /// Default 1 hour.
    pub max_stale: Duration,
    /// Most keys kept from a JWKS. Default 32.
    pub max_keys: usize,
    /// Largest discovery or JWKS document, in bytes. Default 256 KiB.
    pub max_document_len: usize,
    /// Clock-skew tolerance. Default 30 s.
    pub leeway: Duration,
    /// Longest accepted token. Default 8 KiB.
    pub max_token_len: usize,
}

impl OidcConfig {
    /// Defaults for `issuer` and `audiences`.
    pub fn new(
        issuer: impl Into<String>,
        audiences: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: audiences.into_iter().map(Into::into).collect(),
            accepted_types: vec![ACCESS_TOKEN_TYPE.to_owned()],
            claims: ClaimMapping::new("tenant"),
            cache_ttl: Duration::from_secs(600),
            refresh_cooldown: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
            max_stale: Duration::from_secs(3600),
            max_keys: 32,
            max_document_len: 256 * 1024,
            leeway: Duration::from_secs(30),
            max_token_len: 8 * 1024,
        }
    }

    /// Set the claim mapping.
    #[must_use]
    pub fn with_claim_mapping(mut self, claims: ClaimMapping) -> Self {
        self.claims = claims;
        self
    }

    /// Set the accepted `typ` values (some issuers send `JWT` for access
    /// tokens; accepting it also accepts their ID tokens if the audience
    /// matches).
    #[must_use]
    pub fn with_accepted_types(
        mut self,
        types: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.accepted_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Set the key cache lifetime.
    #[must_use]
    pub const fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Set the refresh cooldown.
    #[must_use]
    pub const fn with_refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.refresh_cooldown = cooldown;
        self
    }

    /// Set the fetch deadline.
    #[must_use]
    pub const fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Set how long stale keys serve while the issuer is down.
    #[must_use]
    pub const fn with_max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// Set the key cap.
    #[must_use]
    pub const fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// The discovery document's URL.
    #[must_use]
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }

    /// Check the settings.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if the issuer is not an `https` URL (or
    /// `http` on loopback), no audience or type is given, a duration is
    /// zero, or a limit is zero.
    pub fn validate(&self) -> Result<()> {
        if !is_acceptable_url(&self.issuer) {
            return Err(Error::misconfigured(
                "oidc.issuer",
                "must be an https URL (http only on a loopback host)",
            ));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(Error::misconfigured(
                "oidc.audiences",
                "name at least one audience",
            ));
        }
        if self.accepted_types.is_empty() {
            return Err(Error::misconfigured(
                "oidc.accepted_types",
                "name at least one type",
            ));
        }
        if self.cache_ttl.is_zero() || self.fetch_timeout.is_zero() {
            return Err(Error::misconfigured(
                "oidc.cache_ttl",
                "cache lifetime and fetch timeout must be positive",
            ));
        }
        if self.max_keys == 0 || self.max_document_len == 0 || self.max_token_len == 0 {
            return Err(Error::misconfigured(
                "oidc.max_keys",
                "limits must be positive",
            ));
        }
        if self.leeway > Duration::from_secs(300) {
            return Err(Error::misconfigured(
                "oidc.leeway",
                "must be at most 5 minutes",
            ));
        }
        if let TenantSource::Claim(claim) = &self.claims.tenant
            && claim.is_empty()
        {
            return Err(Error::misconfigured(
                "oidc.claims.tenant",
                "must not be empty",
            ));
        }
        Ok(())
    }
}

/// `https://…`, or `http://` to a loopback host (127.0.0.1, `[::1]`,
/// `localhost`), the OAuth loopback exception used by tests and sidecars.
fn is_acceptable_url(url: &str) -> bool {
    if url.len() > 2048 || url.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return false;
    }
    if let Some(rest) = url.strip_prefix("https://") {
        return !rest.is_empty() && !rest.starts_with('/');
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    ["127.0.0.1", "[::1]", "localhost"].iter().any(|host| {
        rest.strip_prefix(host)
            .is_some_and(|after| after.is_empty() || after.starts_with([':', '/']))
    })
}

/// A refresh failed for a reason the issuer is responsible for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IssuerProblem(&'static str);

impl fmt::Display for IssuerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for IssuerProblem {}

fn issuer_problem(what: &'static str) -> Error {
    Error::unavailable("oidc issuer", IssuerProblem(what))
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<Value>,
}

/// Keys from one successful refresh.
#[derive(Debug)]
struct RemoteKeys {
    keys: HashMap<String, Arc<JwtKey>>,
    /// Monotonic time of the fetch.
    fetched_at: Duration,
}

#[derive(Debug, Default)]
struct Cache {
    keys: Option<Arc<RemoteKeys>>,
    /// Monotonic time of the last refresh attempt, successful or not.
    last_attempt: Option<Duration>,
}

/// Verifies access tokens of one external OIDC issuer. See the
/// [module docs](self).
pub struct OidcVerifier {
    config: OidcConfig,
    fetcher: Arc<dyn JwksFetcher>,
    clock: Arc<dyn Clock>,
    timeout: Timeout,
    cache: Mutex<Cache>,
    flight: SingleFlight<(), Arc<RemoteKeys>>,
    issuers: Vec<String>,
    roles: RoleCatalog,
    leeway: i64,
}

impl fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.config.issuer)
            .field("fetcher", &self.fetcher)
            .finish_non_exhaustive()
    }
}

impl OidcVerifier {
    /// A verifier for `config.issuer`, fetching through `fetcher`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if `config` is invalid.
    pub fn new(
        config: OidcConfig,
        fetcher: Arc<dyn JwksFetcher>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        config.validate()?;
        let leeway = i64::try_from(config.leeway.as_secs())
            .map_err(|_| Error::misconfigured("oidc.leeway", "too large"))?;
        Ok(Self {
            timeout: Timeout::new(config.fetch_timeout, "oidc key refresh", Arc::clone(&clock)),
            issuers: vec![config.issuer.clone()],
            config,
            fetcher,
            clock,
            cache: Mutex::new(Cache::default()),
            flight: SingleFlight::new(),
            roles: RoleCatalog::default(),
            leeway,
        })
    }

    /// Expand role claims through `roles`.
    #[must_use]
    pub fn with_roles(mut self, roles: RoleCatalog) -> Self {
        self.roles = roles;
        self
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The key ids currently cached, sorted.
    #[must_use]
    pub fn cached_kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self
            .lock()
            .keys
            .as_ref()
            .map(|k| k.keys.keys().cloned().collect())
            .unwrap_or_default();
        kids.sort_unstable();
        kids
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        // Two plain fields, each replaced whole.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Verify `token` and map it to a principal.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for any rejection (the precise reason is
    /// logged at debug level); `Unavailable` or `Timeout` when keys are
    /// needed and the issuer cannot provide them (and no usable stale keys
    /// are cached).
    pub async fn verify(&self, token: &str) -> Result<Principal> {
        let peeked = peek(
            token,
            self.config.max_token_len,
            &self.config.accepted_types,
        )
        .map_err(crate::jwt::log_rejection)?;
        let key = self.key_for(&peeked.kid).await?;
        let claims: Map<String, Value> =
            decode_claims(token, &peeked, &key).map_err(crate::jwt::log_rejection)?;
        self.principal(&claims).map_err(crate::jwt::log_rejection)
    }

    fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, JwtRejection> {
        let time = |name: &'static str| -> Result<Option<i64>, JwtRejection> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v.as_i64().map(Some).ok_or(JwtRejection::InvalidClaim(name)),
            }
        };
        let aud = claims
            .get("aud")
            .map(|v| Audience::deserialize(v).map_err(|_| JwtRejection::InvalidClaim("aud")))
            .transpose()?;
        let iss = match claims.get("iss") {
            None => None,
            Some(v) => Some(v.as_str().ok_or(JwtRejection::InvalidClaim("iss"))?),
        };
        check_issuer_and_audience(iss, aud.as_ref(), &self.issuers, &self.config.audiences)?;
        let exp = time("exp")?;
        check_times(
            exp,
            time("nbf")?,
            time("iat")?,
            self.clock.now().unix_timestamp(),
            self.leeway,
        )?;
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(JwtRejection::MissingClaim("sub"))?;
        let subject = PrincipalId::new(sub).map_err(|_| JwtRejection::InvalidClaim("sub"))?;
        let tenant = match &self.config.claims.tenant {
            TenantSource::Fixed(tenant) => tenant.clone(),
            TenantSource::Claim(name) => {
                let value = claims
                    .get(name)
                    .and_then(Value::as_str)
                    .ok_or(JwtRejection::MissingClaim("tenant"))?;
                TenantId::new(value).map_err(|_| JwtRejection::InvalidClaim("tenant"))?
            }
        };
        let roles = self
            .config
            .claims
            .roles
            .as_ref()
            .map(|name| string_list(claims.get(name)))
            .transpose()
            .map_err(|()| JwtRejection::InvalidClaim("roles"))?
            .unwrap_or_default();
        let permissions: Vec<Permission> = self
            .config
            .claims
            .permissions
            .as_ref()
            .map(|name| string_list(claims.get(name)))
            .transpose()
            .map_err(|()| JwtRejection::InvalidClaim("permissions"))?
            .unwrap_or_default()
            .iter()
            .filter_map(|p| Permission::parse(p).ok())
            .collect();
        let expires_at = exp
            .map(time::OffsetDateTime::from_unix_timestamp)
            .transpose()
            .map_err(|_| JwtRejection::InvalidClaim("exp"))?
            .ok_or(JwtRejection::MissingClaim("exp"))?;
        let effective = self.roles.effective(&roles, &permissions);
        Ok(Principal::new(
            subject,
            tenant,
            AuthMethod::Oidc {
                issuer: self.config.issuer.clone(),
            },
        )
        .with_roles(roles)
        .with_permissions(effective)
        .with_expiry(expires_at))
    }

    /// The key named `kid`, refreshing the cache if it is stale or does not
    /// know `kid` (at most once per cooldown).
    async fn key_for(&self, kid: &str) -> Result<Arc<JwtKey>> {
        let now = self.clock.monotonic();
        let cached = self.lock().keys.clone();
        let age = |keys: &RemoteKeys| now.saturating_sub(keys.fetched_at);
        if let Some(keys) = cached.as_ref().filter(|k| age(k) < self.config.cache_ttl)
            && let Some(key) = keys.keys.get(kid)
        {
            return Ok(Arc::clone(key));
        }
        let usable_for = self.config.cache_ttl.saturating_add(self.config.max_stale);
        let keys = match self.refresh().await {
            Ok(keys) => keys,
            Err(err) => match cached.filter(|k| age(k) < usable_for) {
                Some(stale) => {
                    tracing::warn!(
                        issuer = %self.config.issuer,
                        error = %err.log_chain(),
                        "oidc key refresh failed; serving cached keys"
                    );
                    stale
                }
                None => return Err(err),
            },
        };
        // During the cooldown `refresh` hands back the cache as it is: use it
        // only while it is within its stale allowance.
        if age(&keys) >= usable_for {
            return Err(issuer_problem(
                "cached keys expired and refresh cooling down",
            ));
        }
        keys.keys
            .get(kid)
            .cloned()
            .ok_or_else(|| crate::jwt::log_rejection(JwtRejection::UnknownKeyId))
    }

    /// Refresh the keys, at most once per cooldown and one fetch at a time:
    /// callers arriving during a fetch share its result, callers arriving
    /// during the cooldown get the cached keys without a fetch.
    async fn refresh(&self) -> Result<Arc<RemoteKeys>> {
        self.flight
            .run((), || async {
                let now = self.clock.monotonic();
                {
                    let mut cache = self.lock();
                    let cooled = cache
                        .last_attempt
                        .is_none_or(|at| now.saturating_sub(at) >= self.config.refresh_cooldown);
                    if !cooled {
                        return cache
                            .keys
                            .clone()
                            .ok_or_else(|| issuer_problem("no keys yet and refresh cooling down"));
                    }
                    cache.last_attempt = Some(now);
                }
                let keys = Arc::new(self.timeout.call(self.fetch_keys()).await?);
                self.lock().keys = Some(Arc::clone(&keys));
                Ok::<_, Error>(keys)
            })
            .await
    }

    async fn fetch_keys(&self) -> Result<RemoteKeys> {
        let limit = self.config.max_document_len;
        let discovery = self
            .fetcher
            .fetch(&self.config.discovery_url(), limit)
            .await?;
        let discovery: Discovery = serde_json::from_slice(&discovery)
            .map_err(|_| issuer_problem("discovery document is not valid JSON"))?;
        // OIDC Discovery §4.3: the document must name the issuer we asked
        // (a mismatch is a mix-up or a hijacked document).
        if discovery.issuer != self.config.issuer {
            return Err(issuer_problem("discovery document names another issuer"));
        }
        if !is_acceptable_url(&discovery.jwks_uri) {
            return Err(issuer_problem("jwks_uri is not an https URL"));
        }
        let jwks = self.fetcher.fetch(&discovery.jwks_uri, limit).await?;
        let jwks: JwksDocument =
            serde_json::from_slice(&jwks).map_err(|_| issuer_problem("JWKS is not valid JSON"))?;
        let mut keys: HashMap<String, Arc<JwtKey>> = HashMap::new();
        let mut duplicates = HashSet::new();
        for value in jwks.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            let Ok(key) = JwtKey::from_public_jwk(&jwk) else {
                continue;
            };
            let kid = key.kid().to_owned();
            if duplicates.contains(&kid) {
                continue;
            }
            if keys.remove(&kid).is_some() {
                // A kid must name exactly one key: drop every key claiming it.
                duplicates.insert(kid);
                continue;
            }
            if keys.len() >= self.config.max_keys {
                tracing::warn!(
                    issuer = %self.config.issuer,
                    max_keys = self.config.max_keys,
                    "oidc JWKS has more keys than allowed; ignoring the rest"
                );
                break;
            }
            keys.insert(kid, Arc::new(key));
        }
        Ok(RemoteKeys {
            keys,
            fetched_at: self.clock.monotonic(),
        })
    }
}

/// An array of strings, or a space-separated string (`scope`).
fn string_list(value: Option<&Value>) -> Result<Vec<String>, ()> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split_ascii_whitespace().map(str::to_owned).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or(()))
            .collect(),
        Some(_) => Err(()),
    }
}

#[async_trait::async_trait]
impl Authenticator for OidcVerifier {
    async fn authenticate(
        &self,
        credential: &Credential,
        _context: &RequestContext,
    ) -> Result<Principal> {
        match credential {
            Credential::Bearer(token) => self.verify(token.expose_secret()).await,
            _ => Err(Error::unauthenticated(AuthFailure::Missing)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_urls_are_accepted() {
        for ok in [
            "https://login.example.com",
            "https://login.example.com/tenant/v2.0",
            "http://127.0.0.1:8080",
            "http://localhost/realms/x",
            "http://[::1]:9000/",
        ] {
            assert!(is_acceptable_url(ok), "{ok}");
        }
        for bad in [
            "http://login.example.com",
            "http://127.0.0.1.evil.com/",
            "http://localhost.evil.com",
            "ftp://x",
            "https://",
            "https:///path",
            "https://a b",
            "file:///etc/passwd",
        ] {
            assert!(!is_acceptable_url(bad), "{bad}");
        }
    }

    #[test]
    fn scope_strings_and_arrays_are_lists() {
        assert_eq!(
            string_list(Some(&Value::String("a b  c".into()))),
            Ok(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])
        );
        assert_eq!(
            string_list(Some(&serde_json::json!(["x", "y"]))),
            Ok(vec!["x".to_owned(), "y".to_owned()])
        );
        assert!(string_list(Some(&serde_json::json!([1]))).is_err());
        assert!(string_list(Some(&serde_json::json!({}))).is_err());
    }
}
