//! Authentication and authorization, assembled from `docaiche-auth`: the
//! secrets (API-key peppers, the JWT signing key) from a `SecretProvider`,
//! the API key service over the configured store, the JWT verifier, the
//! roles and their bindings, the failed-authentication tracker, and
//! [`AuthGateLayer`], which every non-public route group sits behind.
//!
//! # The gate
//!
//! A request *with* a credential (`Authorization` or `X-API-Key`) goes
//! through `AuthLayer` (401, or 429 while its client or key prefix is
//! locked out), then the suspension check (403 `tenant-suspended` for a
//! suspended tenant's principals; it also hands the rate limit the
//! tenant's overrides, see [`crate::tenants`]), then usage counting (per
//! key and account, by the answer's outcome, see [`crate::usage`]; a
//! suspended tenant's refusals are not counted), then the route group's
//! rate limit, keyed by the verified principal, then the routes and their
//! permission guards. A request
//! *without* one is rate limited by the same policy, keyed by its client
//! address (the limiter's keys fall back to it when there is no principal),
//! and answered 401: it never reaches the routes at all. Each request is
//! charged exactly once. A request whose credential fails is answered by
//! `AuthLayer` before the rate limit; it is counted by the
//! `FailedAuthTracker` instead (per client address, network and key
//! prefix), which answers 429 with `Retry-After` once the back-off starts.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use docaiche_auth::api_key::{
    ApiKeyService, CreatedApiKey, InvalidationListener, NewApiKey, Peppers, UsageFlusher,
};
use docaiche_auth::jwt::{
    JwtAuthenticator, JwtConfig, JwtIssuer, JwtKey, JwtKeySet, JwtVerifier, RoleCatalog,
};
use docaiche_auth::layer::{AuthLayer, CredentialRouter};
use docaiche_auth::lockout::FailedAuthTracker;
use docaiche_auth::mfa::{Mfa, MfaKeys};
use docaiche_auth::rbac::{RoleBindings, RolePolicy};
use docaiche_core::{
    ApiKeyStore, AuditSink, AuthFailure, AuthMethod, Clock, Error, InvalidationBus, Principal,
    PrincipalId, SecretBytes, SecretProvider, TenantId, TokenRevocationStore,
};
use docaiche_ratelimit::layer::RateLimitLayer;
use futures_util::future::Either;
use http::header::AUTHORIZATION;
use tower::{Layer, Service};

use crate::config::{AuthSection, Config};
use crate::tenants::{SuspensionCheck, SuspensionCheckLayer};
use crate::usage::{Count, CountLayer, Refusals};
use crate::wiring::{Secrets, Stores};

/// What the device-cookie key is derived from, under the API-key pepper.
const DEVICE_COOKIE_KEY_LABEL: &str = "docaiche device cookie key v1";

/// What the key of invitations and password-reset tokens is derived from,
/// under the API-key pepper.
const ACCOUNT_TOKEN_KEY_LABEL: &str = "docaiche account token key v1";

/// What the key of the console's CSRF tokens is derived from, under the
/// API-key pepper.
const CONSOLE_KEY_LABEL: &str = "docaiche console session key v1";

/// The name authenticator apps show beside a console second factor.
pub(crate) const MFA_ISSUER: &str = "DocAIche";

/// The secrets authentication needs.
#[derive(Debug)]
pub(crate) struct AuthSecrets {
    /// API-key peppers, by version.
    pub(crate) peppers: Peppers,
    /// The JWT signing key.
    pub(crate) jwt_key: JwtKey,
}

impl AuthSecrets {
    /// Load the secrets `config` needs through `secrets`' chain (each
    /// required secret checked first, so a missing one is named), or
    /// (development, no source configured) from files generated once under
    /// `<data_dir>/keys`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if a secret is missing or unusable; the
    /// provider's error otherwise.
    pub(crate) async fn load(config: &Config, secrets: &Secrets) -> Result<Self, Error> {
        match secrets.chain() {
            None => Self::generated(config),
            Some(chain) => {
                secrets
                    .require(&crate::wiring::required_secret_names(&config.auth))
                    .await?;
                Self::from_provider(&config.auth, chain.as_ref()).await
            }
        }
    }

    /// Load from `provider`.
    async fn from_provider(
        auth: &AuthSection,
        provider: &dyn SecretProvider,
    ) -> Result<Self, Error> {
        let names: Vec<(u16, String)> = auth
            .pepper_versions
            .iter()
            .map(|&v| (v, AuthSection::pepper_secret(v)))
            .collect();
        let refs: Vec<(u16, &str)> = names.iter().map(|(v, n)| (*v, n.as_str())).collect();
        let peppers = Peppers::load(provider, auth.current_pepper, &refs).await?;
        let algorithm = auth
            .jwt_algorithm()
            .map_err(|reason| Error::misconfigured("auth.jwt.algorithm", reason))?;
        let jwt_key = JwtKey::load(
            provider,
            AuthSection::JWT_SECRET,
            auth.jwt.kid.clone(),
            algorithm,
        )
        .await?;
        tracing::info!(
            provider = provider.describe(),
            "authentication secrets loaded"
        );
        Ok(Self { peppers, jwt_key })
    }

    /// Development: generated secrets, kept under `<data_dir>/keys` so keys
    /// and tokens survive a restart. The JWT key is always Ed25519 here.
    fn generated(config: &Config) -> Result<Self, Error> {
        let dir = config.storage.data_dir.join("keys");
        let auth = &config.auth;
        let write_error = |path: &std::path::Path, e: std::io::Error| {
            Error::internal_with(
                format!("cannot create the development secret {}", path.display()),
                e,
            )
        };
        let mut peppers = Vec::new();
        for &version in &auth.pepper_versions {
            let path = dir.join(format!("api-key-pepper-v{version}"));
            let (pepper, _) = crate::keys::generated_secret(&path, || {
                let mut bytes = crate::keys::random_key()?.to_vec();
                bytes.extend_from_slice(&crate::keys::random_key()?);
                Ok(bytes)
            })
            .map_err(|e| write_error(&path, e))?;
            peppers.push((version, pepper));
        }
        let peppers = Peppers::new(auth.current_pepper, peppers)?;
        let path = dir.join("jwt-signing-ed25519.pem");
        let (pem, _) = crate::keys::generated_secret(&path, crate::keys::ed25519_pem)
            .map_err(|e| write_error(&path, e))?;
        let jwt_key = JwtKey::from_pem(
            auth.jwt.kid.clone(),
            docaiche_auth::jwt::Algorithm::EdDSA,
            pem.expose_secret(),
        )?;
        tracing::warn!(
            dir = %dir.display(),
            "using generated development authentication secrets (API-key pepper, JWT signing \
             key); set auth.provider before serving real users"
        );
        Ok(Self { peppers, jwt_key })
    }
}

/// The stores authentication writes to.
#[derive(Debug, Clone)]
pub(crate) struct AuthStores {
    /// Password accounts (the login endpoints).
    pub(crate) accounts: Arc<dyn docaiche_core::AccountStore>,
    /// Tenant-defined roles.
    pub(crate) custom_roles: Arc<dyn docaiche_core::CustomRoleStore>,
    /// Second-factor enrolments.
    pub(crate) mfa: Arc<dyn docaiche_core::MfaStore>,
    /// API key records.
    pub(crate) api_keys: Arc<dyn ApiKeyStore>,
    /// The tenant registry (suspension, per-tenant settings).
    pub(crate) tenants: Arc<dyn docaiche_core::TenantStore>,
    /// Revoked JWT ids.
    pub(crate) revocations: Arc<dyn TokenRevocationStore>,
    /// Audit events (key management, failed authentications).
    pub(crate) audit: Arc<dyn AuditSink>,
    /// Where API key changes are announced to other instances, if anywhere.
    pub(crate) invalidations: Option<Arc<dyn InvalidationBus>>,
}

impl AuthStores {
    /// In-memory stores (tests).
    #[cfg(test)]
    pub(crate) fn memory(clock: &Arc<dyn Clock>) -> Self {
        use docaiche_store::memory::{MemoryApiKeyStore, MemoryAuditSink, MemoryRevocationStore};
        Self {
            accounts: Arc::new(docaiche_store::memory::MemoryAccountStore::new()),
            custom_roles: Arc::new(docaiche_store::memory::MemoryCustomRoleStore::new()),
            mfa: Arc::new(docaiche_store::memory::MemoryMfaStore::new()),
            api_keys: Arc::new(MemoryApiKeyStore::new()),
            tenants: Arc::new(docaiche_store::memory::MemoryTenantStore::new()),
            revocations: Arc::new(MemoryRevocationStore::new().with_clock(Arc::clone(clock))),
            audit: Arc::new(MemoryAuditSink::new()),
            invalidations: None,
        }
    }

    /// The authentication stores of `stores`.
    pub(crate) fn from_stores(stores: &Stores) -> Self {
        Self {
            accounts: Arc::clone(&stores.accounts),
            custom_roles: Arc::clone(&stores.custom_roles),
            mfa: Arc::clone(&stores.mfa),
            api_keys: Arc::clone(&stores.api_keys),
            tenants: Arc::clone(&stores.tenants),
            revocations: Arc::clone(&stores.revocations),
            audit: Arc::clone(&stores.audit),
            invalidations: stores.invalidations.clone(),
        }
    }
}

/// Everything authentication and authorization need at run time.
#[derive(Debug)]
pub(crate) struct AuthServices {
    /// API keys: create, verify, list, rotate, revoke.
    pub(crate) api_keys: Arc<ApiKeyService>,
    /// The JWT keys (the signing key and any kept for verification).
    pub(crate) jwt_keys: Arc<JwtKeySet>,
    /// Issues access tokens with the server's key (the login endpoint that
    /// will use it needs an account store; tests use it today).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) issuer: JwtIssuer,
    /// Authenticates every non-public request.
    pub(crate) layer: AuthLayer,
    /// The tenant registry behind its per-instance cache (the suspension
    /// check, quotas, `/v1/tenants`).
    pub(crate) tenants: crate::tenants::TenantDirectory,
    /// The roles.
    pub(crate) policy: RolePolicy,
    /// The configured role bindings.
    pub(crate) bindings: RoleBindings,
    /// The role `bootstrap-key` binds.
    pub(crate) bootstrap_role: String,
    /// Default rotation overlap.
    pub(crate) rotation_overlap: Duration,
    /// The clock every service reads.
    pub(crate) clock: Arc<dyn Clock>,
    /// The stores the services were built over (the login service uses
    /// the same revocations, so a revoked token is refused by the gate).
    pub(crate) stores: AuthStores,
    /// The key of the login's device cookies (derived from the API-key
    /// pepper).
    pub(crate) device_key: SecretBytes,
    /// The key of invitations and password-reset tokens (derived from the
    /// API-key pepper like [`Self::device_key`]).
    pub(crate) account_token_key: SecretBytes,
    /// The key of the console's CSRF tokens (derived likewise).
    pub(crate) console_key: SecretBytes,
    /// The TOTP second factor of password accounts (the console's
    /// sign-in), its secrets sealed under keys derived from the API-key
    /// pepper ([`MfaKeys::from_peppers`]).
    pub(crate) mfa: Mfa,
    /// Writes last-used timestamps in batches while it lives.
    flusher: Option<UsageFlusher>,
    /// Drops API keys other instances announce from the cache while it
    /// lives (with `[revocation] announce_api_keys`).
    listener: Option<InvalidationListener>,
}

impl AuthServices {
    /// Assemble the services for `auth` from `secrets` and `stores`, timed
    /// by `clock`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for settings `Config::validate` also
    /// refuses.
    pub(crate) fn new(
        auth: &AuthSection,
        secrets: AuthSecrets,
        stores: AuthStores,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let kept = stores.clone();
        // The device-cookie key: HMAC of a fixed label under the current
        // API-key pepper, so it is secret, shared by every instance and
        // needs no secret of its own (a new pepper version starts new
        // device cookies; old ones then count as untrusted).
        let (_, device_key) = secrets.peppers.hash_current(DEVICE_COOKIE_KEY_LABEL);
        let device_key = SecretBytes::new(device_key);
        // Likewise the key of account tokens: a new pepper version voids
        // the invitations and resets issued before (issue them again).
        let (_, account_token_key) = secrets.peppers.hash_current(ACCOUNT_TOKEN_KEY_LABEL);
        let account_token_key = SecretBytes::new(account_token_key);
        let (_, console_key) = secrets.peppers.hash_current(CONSOLE_KEY_LABEL);
        let console_key = SecretBytes::new(console_key);
        let mfa = Mfa::new(
            Arc::clone(&stores.mfa),
            MfaKeys::from_peppers(&secrets.peppers),
            MFA_ISSUER,
        )?
        .with_clock(Arc::clone(&clock));
        let policy = auth.role_policy()?;
        let bindings = auth.role_bindings(&policy)?;
        let mut api_keys = ApiKeyService::new(stores.api_keys, secrets.peppers)
            .with_config(auth.api_keys.clone())?
            .with_clock(Arc::clone(&clock))
            .with_audit(Arc::clone(&stores.audit));
        if let Some(bus) = stores.invalidations {
            api_keys = api_keys.with_invalidations(bus);
        }
        let api_keys = Arc::new(api_keys);
        let jwt_keys = Arc::new(JwtKeySet::new(secrets.jwt_key)?);
        let jwt_config: JwtConfig = auth.jwt_config();
        let issuer = JwtIssuer::new(
            Arc::clone(&jwt_keys),
            jwt_config.clone(),
            Arc::clone(&clock),
        )?;
        let verifier = JwtVerifier::new(Arc::clone(&jwt_keys), jwt_config, Arc::clone(&clock))?;
        let catalog = RoleCatalog::new(
            auth.rbac
                .roles
                .keys()
                .filter_map(|name| policy.role(name).cloned()),
        );
        let jwt = JwtAuthenticator::new(verifier, stores.revocations).with_roles(catalog);
        let tracker = FailedAuthTracker::new(auth.lockout.clone(), stores.audit)?
            .with_clock(Arc::clone(&clock));
        let router = CredentialRouter::new()
            .api_keys(Arc::clone(&api_keys) as _)
            .bearer(Arc::new(jwt));
        let layer = AuthLayer::new(Arc::new(router)).with_failure_tracker(Arc::new(tracker));
        let tenants = crate::tenants::TenantDirectory::new(Arc::clone(&kept.tenants));
        Ok(Self {
            api_keys,
            jwt_keys,
            issuer,
            layer,
            tenants,
            policy,
            bindings,
            bootstrap_role: auth.bootstrap_role.clone(),
            rotation_overlap: Duration::from_secs(auth.rotation_overlap_secs),
            clock,
            stores: kept,
            device_key,
            account_token_key,
            console_key,
            mfa,
            flusher: None,
            listener: None,
        })
    }

    /// Start the background tasks (needs a tokio runtime): writing
    /// last-used timestamps in batches, and, with an announcement bus,
    /// dropping the API keys other instances announce. They stop when
    /// these services are dropped.
    #[must_use]
    pub(crate) fn with_background_tasks(mut self) -> Self {
        self.flusher = Some(self.api_keys.spawn_usage_flusher());
        self.listener = self.api_keys.spawn_invalidation_listener();
        self
    }

    /// The announcement listener, while it runs.
    #[cfg(all(test, feature = "redis"))]
    pub(crate) const fn invalidation_listener(&self) -> Option<&InvalidationListener> {
        self.listener.as_ref()
    }

    /// Whether the usage flusher runs.
    #[cfg(test)]
    pub(crate) const fn flushes_usage(&self) -> bool {
        self.flusher.is_some()
    }

    /// Create the first API key of `tenant`: it acts as `principal`, which
    /// is bound to the bootstrap role there (plus any configured bindings
    /// of that principal in that tenant), and carries the resulting
    /// permissions as its scopes.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an invalid tenant, principal or name;
    /// the store's error.
    pub(crate) async fn bootstrap_key(
        &self,
        tenant: &str,
        principal: &str,
        name: &str,
    ) -> Result<CreatedApiKey, Error> {
        let tenant = TenantId::new(tenant)?;
        let principal = PrincipalId::new(principal)?;
        let mut bindings = self.bindings.clone();
        bindings.bind(
            &self.policy,
            tenant.clone(),
            principal.clone(),
            &self.bootstrap_role,
        )?;
        let resolved = self.policy.resolve(&bindings, &tenant, &principal);
        let creator = Principal::new(principal, tenant.clone(), AuthMethod::Internal)
            .with_roles(resolved.roles)
            .with_permissions(resolved.permissions.clone());
        self.api_keys
            .create(
                &creator,
                NewApiKey::new(tenant, name).with_scopes(resolved.permissions),
            )
            .await
    }
}

/// The API-key header, parsed once (a name given as text is parsed on every
/// lookup).
const API_KEY: http::HeaderName =
    http::HeaderName::from_static(docaiche_auth::layer::API_KEY_HEADER);

/// Whether `request` presents a credential (valid or not).
fn presents_credential(headers: &http::HeaderMap) -> bool {
    headers.contains_key(AUTHORIZATION) || headers.contains_key(API_KEY)
}

/// Authenticate, then refuse suspended tenants, then rate limit, then the
/// routes; see the module docs and [`crate::tenants`].
#[derive(Debug, Clone)]
pub(crate) struct AuthGateLayer {
    /// The authentication layer.
    auth: AuthLayer,
    /// The suspension check.
    suspension: SuspensionCheckLayer,
    /// The route group's rate-limit layer.
    rate_limit: RateLimitLayer,
    /// Usage counting of the route group's class, if on (`crate::usage`).
    usage: Option<CountLayer>,
}

impl AuthGateLayer {
    /// A gate authenticating with `auth`, refusing the suspended tenants of
    /// `tenants` and limiting with `rate_limit`.
    pub(crate) const fn new(
        auth: AuthLayer,
        tenants: crate::tenants::TenantDirectory,
        rate_limit: RateLimitLayer,
    ) -> Self {
        Self {
            auth,
            suspension: SuspensionCheckLayer::new(tenants),
            rate_limit,
            usage: None,
        }
    }

    /// Count the group's authenticated requests with `usage` (between
    /// the suspension check and the rate limit; see `crate::usage`).
    #[must_use]
    pub(crate) fn with_usage(mut self, usage: Option<CountLayer>) -> Self {
        self.usage = usage;
        self
    }
}

impl<S> Layer<S> for AuthGateLayer {
    type Service = AuthGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthGate {
            authenticated: self.auth.layer(self.suspension.layer(Count::new(
                self.rate_limit.layer(inner),
                self.usage.as_ref(),
            ))),
            anonymous: self.rate_limit.layer(Unauthenticated),
            usage: self.usage.clone(),
        }
    }
}

/// The service of [`AuthGateLayer`].
///
/// Both paths are driven to readiness in `poll_ready` (as `tower::steer`
/// does) and the one the request needs is called in place: no clone of the
/// inner stack and no boxed future per request.
#[derive(Debug, Clone)]
pub(crate) struct AuthGate<S> {
    /// Auth → suspension check → usage count → rate limit → routes.
    authenticated: AuthenticatedPath<S>,
    /// Rate limit → 401.
    anonymous: docaiche_ratelimit::layer::RateLimit<Unauthenticated>,
    /// Charges refused credentials, if counting is on.
    usage: Option<CountLayer>,
}

/// The authenticated path of [`AuthGate`].
type AuthenticatedPath<S> =
    docaiche_auth::layer::Auth<SuspensionCheck<Count<docaiche_ratelimit::layer::RateLimit<S>>>>;
/// The anonymous path of [`AuthGate`].
type AnonymousPath = docaiche_ratelimit::layer::RateLimit<Unauthenticated>;

impl<S> Service<Request> for AuthGate<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        Refusals<<AuthenticatedPath<S> as Service<Request>>::Future>,
        <AnonymousPath as Service<Request>>::Future,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.authenticated.poll_ready(cx))?;
        self.anonymous.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if presents_credential(request.headers()) {
            Either::Left(match &self.usage {
                Some(usage) => {
                    let presented = CountLayer::presented(request.headers());
                    usage.refusals(presented, self.authenticated.call(request))
                }
                None => Refusals::passthrough(self.authenticated.call(request)),
            })
        } else {
            Either::Right(self.anonymous.call(request))
        }
    }
}

/// Answers every request with the 401 problem (`WWW-Authenticate: Bearer`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unauthenticated;

impl Service<Request> for Unauthenticated {
    type Response = Response;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<Body>) -> Self::Future {
        std::future::ready(Ok(
            Error::unauthenticated(AuthFailure::Missing).into_response()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestDir;

    /// The secrets of `config`, its chain built with an empty environment.
    async fn load(config: &Config) -> Result<AuthSecrets, Error> {
        let secrets = Secrets::from_config(config, &|_| None).await?;
        AuthSecrets::load(config, &secrets).await
    }

    /// A configuration reading its secrets from `dir`.
    fn config_with_dir(dir: &std::path::Path) -> Config {
        let mut config = Config::default();
        config.storage.data_dir = dir.join("data");
        config.auth.provider = Some(format!("file:{}", dir.join("secrets").display()));
        config
    }

    fn write(path: &std::path::Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }

    #[tokio::test]
    async fn secrets_come_from_the_configured_directory() {
        let dir = TestDir::new("auth-file-secrets");
        let config = config_with_dir(dir.path());
        let secrets = dir.path().join("secrets");

        // Missing directory, then missing secrets: refused, by setting.
        let err = load(&config).await.expect_err("no directory");
        assert!(
            matches!(err, Error::Misconfigured { ref setting, .. } if setting == "auth.provider"),
            "{err:?}"
        );
        std::fs::create_dir_all(&secrets).expect("mkdir");
        let err = load(&config).await.expect_err("no pepper");
        assert!(matches!(err, Error::Misconfigured { .. }), "{err:?}");
        assert!(!err.to_string().contains("BEGIN"), "{err}");

        // A short pepper is refused; a good one and a PEM key load.
        write(&secrets.join("api-key/pepper-v1"), b"short");
        write(
            &secrets.join("jwt/signing-key"),
            &crate::keys::ed25519_pem().expect("pem"),
        );
        assert!(load(&config).await.is_err(), "short pepper");
        write(&secrets.join("api-key/pepper-v1"), &[9; 32]);
        let loaded = load(&config).await.expect("loads");
        assert_eq!(loaded.jwt_key.kid(), config.auth.jwt.kid);
        assert!(loaded.jwt_key.can_sign());
        assert_eq!(loaded.peppers.current(), 1);
        // Nothing was generated under the data directory.
        assert!(!config.storage.data_dir.join("keys").exists());

        // A key of another algorithm than configured is refused.
        let mut es256 = config.clone();
        es256.auth.jwt.algorithm = "ES256".into();
        assert!(load(&es256).await.is_err());
    }

    #[test]
    fn any_credential_header_sends_a_request_through_authentication() {
        let mut headers = http::HeaderMap::new();
        assert!(!presents_credential(&headers));
        headers.insert("x-api-key", http::HeaderValue::from_static(""));
        assert!(presents_credential(&headers), "an empty key is an attempt");
        let mut headers = http::HeaderMap::new();
        headers.insert(AUTHORIZATION, http::HeaderValue::from_static("Basic x"));
        assert!(presents_credential(&headers));
    }

    /// An operator who configures an RSA signing key is told at start, in
    /// the server's own log pipeline (filter, JSON, redactor), with the kid.
    #[tokio::test]
    async fn an_rsa_signing_key_is_named_in_a_warning_at_start() {
        #[derive(Clone, Default)]
        struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        let dir = TestDir::new("auth-rsa-signing-key");
        let mut config = config_with_dir(dir.path());
        config.auth.jwt.algorithm = "RS256".into();
        config.auth.jwt.kid = "rsa-2026".into();
        let secrets = dir.path().join("secrets");
        write(&secrets.join("api-key/pepper-v1"), &[9; 32]);
        write(
            &secrets.join("jwt/signing-key"),
            include_bytes!("../../docaiche-auth/tests/fixtures/rsa_private.pem"),
        );
        crate::storage::prepare_data_dir(&config.storage.data_dir).expect("data dir");
        crate::keys::prepare(&config.key_source()).expect("key");

        let sink = Sink::default();
        let writer = sink.clone();
        let dispatch =
            crate::cli::log_dispatch(&config, move || writer.clone(), None).expect("log");
        let guard = crate::test_support::capture_with(&dispatch);
        let state = crate::state::AppState::from_config(&config, &|_| None).await;
        drop(guard);
        state.expect("an RSA signing key is accepted");

        let log = String::from_utf8_lossy(&sink.0.lock().expect("log")).into_owned();
        let warning = log
            .lines()
            .find(|line| line.contains("the JWT signing key is RSA"))
            .unwrap_or_else(|| panic!("no RSA warning in the log:\n{log}"));
        assert!(warning.contains("WARN"), "{warning}");
        assert!(warning.contains("rsa-2026"), "{warning}");
        assert!(
            warning.contains("EdDSA") && warning.contains("ES256"),
            "{warning}"
        );
    }
}
