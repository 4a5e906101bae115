//! The router: routes, then the tower layers every request passes through.
//!
//! Outermost first, `docaiche_http::secure_stack` configured from
//! [`crate::http`]: the edge layer ([`crate::edge`]) meters the request,
//! marks its credential headers sensitive, sets (or keeps) its request id
//! and opens its trace span, and on the way out copies the id to the
//! response; the security headers, HTTPS enforcement and compression
//! follow; CORS answers, panics become a 500 problem, error responses from
//! the limit and timeout layers, and any other error answer without a
//! problem body (axum's extractor rejections: see [`crate::rejection`]),
//! become problems, the body limit and the
//! request timeout apply; then, for a protected route group, the auth gate
//! (authentication, then the group's rate limit keyed by the principal; a
//! request without a credential is rate limited by client address and
//! answered 401 without reaching any route — see [`crate::auth`]), or for a
//! public group its rate limit alone; then the route's permission guards
//! (`RequirePermissionLayer`, 403 problem), then the handler.
//!
//! Every route belongs to a [`RouteGroup`] named for its rate-limit class
//! (`probes`, `auth`, `default`, `documents`) and is either public (only
//! `/health/*`, `/.well-known/jwks.json`, `/metrics`, `/openapi.json` and
//! the token endpoints `/v1/auth/*`) or protected; each route is registered with
//! its method and the permissions it requires. [`router`] is built only
//! from [`route_groups`], and tests walk every route of every group: each
//! answers with the RateLimit headers, and each protected route answers 401
//! without credentials and 403 to a principal lacking its permission, so a
//! route cannot be added without a policy or a guard. The OpenAPI
//! document of `GET /openapi.json` ([`crate::openapi`]) is generated from
//! the same table, and its tests fail for a route it does not describe.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use docaiche_auth::layer::RequirePermissionLayer;
use docaiche_core::health::{HEALTH_JSON, HealthRegistry};
use docaiche_core::{Error, Permission, RateLimiter};
use docaiche_ratelimit::layer::RateLimitLayer;
use tower::ServiceBuilder;
use tower_http::body::Limited;

use crate::auth::{AuthGateLayer, AuthSecrets, AuthServices, AuthStores};
use crate::backends::{Secrets, Stores};
use crate::config::{Config, EnvLookup};
use crate::limiter::Limiter;
use docaiche_store::encryption::EncryptedDocumentStore;

/// Shared state of the handlers and the layers: one `Arc`, so the clone
/// axum makes for every request (handler state, route services) is a
/// reference count. Fields read through `Deref`; assigning a field
/// (`state.audit = …`) goes through `DerefMut`, which copies the fields
/// first if another clone shares them, so clones never see each other's
/// writes.
#[derive(Debug, Clone)]
pub(crate) struct AppState(Arc<AppStateFields>);

impl std::ops::Deref for AppState {
    type Target = AppStateFields;

    fn deref(&self) -> &AppStateFields {
        &self.0
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut AppStateFields {
        Arc::make_mut(&mut self.0)
    }
}

/// The fields of [`AppState`].
#[derive(Debug, Clone)]
pub(crate) struct AppStateFields {
    /// Readiness checks.
    pub(crate) health: Arc<HealthRegistry>,
    /// Limits and CORS.
    pub(crate) http: HttpSettings,
    /// Security headers, HTTPS enforcement, compression (`[http]`).
    pub(crate) hardening: crate::http::HttpHardening,
    /// The rate-limit layer of the `default` class; the other classes'
    /// layers are made from it and share its limiter and metrics.
    pub(crate) rate_limit: RateLimitLayer,
    /// Authentication and authorization.
    pub(crate) auth: Arc<AuthServices>,
    /// Password login and the token endpoints (`/v1/auth/*`).
    pub(crate) login: Arc<crate::login::Login>,
    /// Documents, encrypted at rest over the configured store, for the
    /// document routes (none yet).
    pub(crate) documents: Arc<EncryptedDocumentStore>,
    /// Document intake: the job queue, the cached extractor, `[documents]`
    /// and the live [`DocumentEvent`](crate::documents::DocumentEvent)s.
    pub(crate) intake: Arc<crate::documents::DocumentServices>,
    /// Prometheus metrics (`/metrics`, `[metrics]`).
    pub(crate) metrics: crate::metrics::Metrics,
    /// The `/v1/events` hub: publish per-tenant events here.
    pub(crate) events: crate::events::EventBus,
    /// The audit trail of `[audit]` (`None` until `from_config`).
    pub(crate) audit: Option<crate::audit::AuditTrail>,
    /// Data-subject requests (`/v1/privacy/*`; `None` until `from_config`).
    pub(crate) privacy: Option<Arc<crate::privacy::PrivacyServices>>,
    /// Retention, legal holds (`compliance.holds`, shared with the privacy
    /// service) and the compliance report (`[retention]`).
    pub(crate) compliance: Arc<crate::compliance::Compliance>,
    /// The OpenAPI document of `GET /openapi.json`, with this
    /// configuration's bounds.
    pub(crate) openapi: Arc<str>,
}

impl AppState {
    /// State for `config`: the limiter its `[rate_limit]` asks for (`env`
    /// resolves `env:` references), the secret chain of `[secrets]`, the
    /// store of `[store]` and the revocation store of `[revocation]`, the
    /// authentication secrets, the encrypted document store of
    /// `[encryption]`, and every readiness check, the limiter backend's and
    /// the stores' included.
    ///
    /// # Errors
    /// As [`Limiter::from_config`], [`open_auth`],
    /// [`crate::backends::key_wrapper`] and [`Self::new`].
    pub(crate) async fn from_config(config: &Config, env: EnvLookup<'_>) -> Result<Self, Error> {
        let limiter = Limiter::from_config(config, env).await?;
        let redis = limiter.backend == crate::config::RateLimitBackend::Redis;
        // The backend and the failure policy; never the Redis URL.
        tracing::info!(
            backend = limiter.backend.as_str(),
            on_redis_failure = redis.then(|| config.rate_limit.on_redis_failure.as_str()),
            "rate limiter ready"
        );
        let (auth, backends) = open_auth(config, env).await?;
        let mut health = crate::health::registry(config, &limiter);
        for check in &backends.stores.health_checks {
            health = health.with_check(Arc::clone(check));
        }
        let wrapper = crate::backends::key_wrapper(config, &backends.secrets, env).await?;
        let (data_keys, data_keys_in) = backends.stores.data_keys.clone();
        let documents = crate::backends::encrypted_documents(
            Arc::clone(&backends.stores.documents),
            data_keys,
            wrapper,
        );
        tracing::info!(
            store = config.store.backend.as_str(),
            key_wrapper = config.encryption.key_wrapper.as_str(),
            data_keys = data_keys_in,
            "document store ready: encrypted at rest"
        );
        let intake = crate::documents::DocumentServices::new(
            &config.documents,
            Arc::clone(&backends.stores.jobs),
        );
        let mut state = Self::new(
            config,
            health,
            limiter.limiter,
            auth.with_background_tasks(),
        )?
        .with_documents(Arc::new(documents));
        // Legal holds in the store's database (before the privacy service,
        // which shares them).
        let purged: Arc<dyn docaiche_core::DocumentStore> = state.documents.clone();
        state.compliance = Arc::new(
            state
                .compliance
                .with_durable_holds(&backends.stores, purged)
                .await?,
        );
        state.intake = Arc::new(intake);
        state
            .metrics
            .register_backends(&backends.stores, limiter.breaker.as_ref());
        backends.audit.register_metrics(&state.metrics);
        state.audit = Some(backends.audit.clone());
        // The `audit` retention period, applied to the file trail.
        let purged: Arc<dyn docaiche_core::DocumentStore> = state.documents.clone();
        state.compliance = Arc::new(state.compliance.with_audit_trail(&backends.audit, purged)?);
        let privacy =
            Arc::new(crate::privacy::PrivacyServices::open(config, &backends, &state).await?);
        // The purge of request records, over the service's own store (built
        // after the holds it shares).
        let purged: Arc<dyn docaiche_core::DocumentStore> = state.documents.clone();
        state.compliance = Arc::new(
            state
                .compliance
                .with_privacy_requests(Arc::clone(&privacy.requests), purged)?,
        );
        state.privacy = Some(privacy);
        Ok(state)
    }

    /// Use `documents` for the document routes.
    #[must_use]
    pub(crate) fn with_documents(mut self, documents: Arc<EncryptedDocumentStore>) -> Self {
        let purged: Arc<dyn docaiche_core::DocumentStore> = documents.clone();
        self.compliance = Arc::new(self.compliance.over_documents(purged));
        self.documents = documents;
        self
    }

    /// State for `config` with these readiness checks, this limiter and
    /// these auth services.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if the rate-limit configuration is invalid
    /// or lacks a policy for one of the router's classes (`validate` reports
    /// both earlier).
    pub(crate) fn new(
        config: &Config,
        health: HealthRegistry,
        limiter: Arc<dyn RateLimiter>,
        auth: AuthServices,
    ) -> Result<Self, Error> {
        // Until `with_documents`: in memory, under a key of this process.
        let documents = Arc::new(crate::backends::encrypted_documents(
            Arc::new(docaiche_store::memory::MemoryDocumentStore::new()),
            Arc::new(docaiche_store::encryption::MemoryDataKeyStore::new()),
            Arc::new(docaiche_store::key_wrapper::LocalKeyWrapper::generate()),
        ));
        let compliance = crate::compliance::Compliance::new(
            config,
            documents.clone(),
            Arc::clone(&auth.stores.audit),
            Arc::clone(&auth.clock),
        )?;
        Ok(Self(Arc::new(AppStateFields {
            health: Arc::new(health),
            http: HttpSettings {
                request_timeout: config.server.request_timeout(),
                body_limit: config.server.body_limit_bytes,
                json_body_limit: config.server.json_body_limit_bytes,
                allowed_origins: config.cors.allowed_origins.clone(),
            },
            hardening: crate::http::HttpHardening::from_config(config)?,
            rate_limit: rate_limit_layer(config, limiter)?,
            login: Arc::new(crate::login::Login::new(&config.auth, &auth)?),
            auth: Arc::new(auth),
            documents,
            compliance: Arc::new(compliance),
            openapi: crate::openapi::json(config).into(),
            // Until `from_config`: jobs in memory.
            intake: Arc::new(crate::documents::DocumentServices::new(
                &config.documents,
                Arc::new(docaiche_store::memory::MemoryJobQueue::new()),
            )),
            metrics: crate::metrics::Metrics::from_config(config)?,
            events: crate::events::EventBus::from_config(config)?,
            audit: None,
            privacy: None,
        }))
        .observed())
    }
}

/// The backends `config` asks for, as opened by [`open_auth`].
#[derive(Debug)]
pub(crate) struct Backends {
    /// The secret chain and the Vault client.
    pub(crate) secrets: Secrets,
    /// The stores and their readiness checks.
    pub(crate) stores: Stores,
    /// The audit trail of `[audit]` (already the stores' audit sink).
    pub(crate) audit: crate::audit::AuditTrail,
}

/// The auth services of `config` over its configured store, with its
/// secrets read through its chain (`env` resolves `env:` references), and
/// the backends opened on the way (for the server and for `bootstrap-key`,
/// which must see the same keys).
///
/// # Errors
/// As [`Secrets::from_config`], [`Stores::open`], [`AuthSecrets::load`]
/// and [`AuthServices::new`].
pub(crate) async fn open_auth(
    config: &Config,
    env: EnvLookup<'_>,
) -> Result<(AuthServices, Backends), Error> {
    open_auth_as(config, env, crate::audit::TrailRole::Owner).await
}

/// [`open_auth`] for a process in `role` to the audit trail: the server
/// owns it, the `bootstrap-*` commands are guests (see
/// [`crate::audit::TrailRole`]).
///
/// # Errors
/// As [`open_auth`].
pub(crate) async fn open_auth_as(
    config: &Config,
    env: EnvLookup<'_>,
    role: crate::audit::TrailRole,
) -> Result<(AuthServices, Backends), Error> {
    let secrets = Secrets::from_config(config, env).await?;
    let auth_secrets = AuthSecrets::load(config, &secrets).await?;
    let mut opened = Stores::open(config, &secrets, env).await?;
    // The chained trail of `[audit]` replaces the store's audit table.
    let audit = crate::audit::open_as(config, &secrets, env, role).await?;
    opened.audit = audit.sink();
    let stores = opened;
    let clock: Arc<dyn docaiche_core::Clock> = Arc::new(docaiche_core::SystemClock::new());
    let auth = AuthServices::new(
        &config.auth,
        auth_secrets,
        AuthStores::from_stores(&stores),
        clock,
    )?;
    Ok((
        auth,
        Backends {
            secrets,
            stores,
            audit,
        },
    ))
}

/// The `default` class's layer for `config`, checking that every class the
/// router uses has a policy.
pub(crate) fn rate_limit_layer(
    config: &Config,
    limiter: Arc<dyn RateLimiter>,
) -> Result<RateLimitLayer, Error> {
    let policies = config.rate_limit.effective().build()?;
    let layer = RateLimitLayer::new(limiter, policies, "default")?;
    for class in crate::config::RateLimitSection::CLASSES {
        layer.for_class(class)?;
    }
    Ok(layer)
}

/// Whether a route group needs a verified principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// No authentication (probes, the JWKS).
    Public,
    /// Behind the auth gate.
    Protected,
}

/// One route: its method, path and the permissions its guard requires.
#[derive(Debug, Clone)]
pub(crate) struct RouteSpec {
    /// The method.
    pub(crate) method: Method,
    /// The path pattern.
    pub(crate) path: &'static str,
    /// Every permission required (all must be held); empty means any
    /// authenticated principal.
    pub(crate) required: Vec<Permission>,
}

/// Routes sharing one rate-limit class and one access rule, and their
/// specifications (for the tests that walk them).
pub(crate) struct RouteGroup {
    /// The rate-limit class (a policy name).
    pub(crate) class: &'static str,
    /// Public or protected.
    pub(crate) access: Access,
    /// The routes.
    router: Router<AppState>,
    /// Every route added with [`RouteGroup::route`].
    pub(crate) routes: Vec<RouteSpec>,
}

impl RouteGroup {
    /// An empty public group of class `class`.
    fn public(class: &'static str) -> Self {
        Self {
            class,
            access: Access::Public,
            router: Router::new(),
            routes: Vec::new(),
        }
    }

    /// An empty protected group of class `class`.
    fn protected(class: &'static str) -> Self {
        Self {
            access: Access::Protected,
            ..Self::public(class)
        }
    }

    /// Answer unknown routes from this group (one group only): a 404
    /// problem, limited (and, in a protected group, authenticated) like
    /// the group's routes.
    fn with_not_found_fallback(mut self) -> Self {
        self.router = self.router.fallback(not_found);
        self
    }

    /// Add `method path`, guarded by every permission of `required` (all
    /// must be held; none in a public group).
    pub(crate) fn route<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        required: &[Permission],
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        assert!(
            self.access == Access::Protected || required.is_empty(),
            "{path}: a public route cannot require permissions"
        );
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("{method} is not a routable method"));
        let mut method_router: MethodRouter<AppState> = on(filter, handler);
        for permission in required {
            method_router = method_router.layer(RequirePermissionLayer::new(permission.clone()));
        }
        self.router = self.router.route(path, method_router);
        self.routes.push(RouteSpec {
            method,
            path,
            required: required.to_vec(),
        });
        self
    }

    /// The group's routes, with the 405 fallback, and the layer that goes
    /// in front of them: its gate (protected) or its rate-limit layer
    /// (public). The 405 fallback is set before the layer is applied so
    /// that wrong-method answers are limited (and authenticated) too.
    fn into_parts(
        self,
        rate_limit: &RateLimitLayer,
        auth: &AuthServices,
    ) -> Result<(Router<AppState>, GroupGate), Error> {
        let router = self.router.method_not_allowed_fallback(method_not_allowed);
        let limit = rate_limit.for_class(self.class)?;
        let gate = match self.access {
            Access::Public => GroupGate::Public(limit),
            Access::Protected => {
                GroupGate::Protected(AuthGateLayer::new(auth.layer.clone(), limit))
            }
        };
        Ok((router, gate))
    }
}

/// The innermost layer of a route group.
enum GroupGate {
    /// The group's rate-limit class alone.
    Public(RateLimitLayer),
    /// Authentication, then the group's rate-limit class.
    Protected(AuthGateLayer),
}

/// Every route of the server, by rate-limit class and access. Unknown
/// routes (the 404 fallback) belong to the protected `default` group.
pub(crate) fn route_groups() -> Vec<RouteGroup> {
    let probes = RouteGroup::public("probes")
        .route(Method::GET, "/health/live", &[], live)
        .route(Method::GET, "/health/ready", &[], ready)
        .route(Method::GET, "/.well-known/jwks.json", &[], crate::api::jwks)
        .route(Method::GET, "/metrics", &[], crate::metrics::scrape)
        .route(Method::GET, "/openapi.json", &[], crate::openapi::serve);
    // Document processing (upload, extraction, jobs): its own, stricter
    // policy.
    let documents = crate::documents::routes(RouteGroup::protected("documents"));
    let default = crate::routes::admin::routes(crate::privacy::routes(crate::audit::routes(
        crate::events::routes(crate::api::routes(
            RouteGroup::protected("default").with_not_found_fallback(),
        )),
    )));
    // The token endpoints: public, strictly limited per client address.
    let auth = crate::login::routes(RouteGroup::public("auth"));
    #[cfg_attr(not(test), allow(unused_mut))]
    let mut groups = vec![probes, auth, documents, default];
    #[cfg(test)]
    groups.push(tests::routes(RouteGroup::public("default")));
    groups
}

/// The HTTP-level settings the layers need (a `Duration` rather than whole
/// seconds so tests can use short timeouts).
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    /// Deadline for a whole request.
    pub(crate) request_timeout: Duration,
    /// Largest accepted body, in bytes.
    pub(crate) body_limit: usize,
    /// Largest accepted JSON body, in bytes (`server.json_body_limit_bytes`).
    pub(crate) json_body_limit: usize,
    /// Validated CORS origins: exact origins, or the single entry `*`.
    pub(crate) allowed_origins: Vec<String>,
}

impl HttpSettings {
    /// The limit JSON bodies are read under: the JSON limit, never above
    /// the server's body limit.
    pub(crate) fn json_body_limit(&self) -> usize {
        self.json_body_limit.min(self.body_limit)
    }
}

/// The complete application: routes and layers.
pub(crate) fn router(state: AppState) -> Router {
    let http = &state.http;
    // One `Router::layer` call per group: axum boxes and clones every
    // route's service once per `layer` call and request, so the whole stack
    // — this one, then the group's gate — is one `ServiceBuilder` (outermost
    // first), applied once to each group. The limit and timeout layers
    // (innermost here) answer with bodies of their own types; the mapping
    // just outside them turns those answers into problems.
    // Outermost first (see `docaiche_http::secure_stack`): metering,
    // credential hiding, request id, trace span (every answer counts,
    // panics and refusals included); security headers, HTTPS enforcement,
    // compression; CORS; panics as a 500 problem; plain error answers of
    // the layers inside and of axum as problems; the body limit and the
    // request timeout.
    let policy = state.hardening.security_policy(http);
    let outer = ServiceBuilder::new()
        .layer(docaiche_http::secure_stack(&policy).with_observer(state.metrics.clone()))
        // The body limit is the stack's, from the configuration.
        .layer(DefaultBodyLimit::disable());

    let mut routes = Router::new();
    for group in route_groups() {
        for route in &group.routes {
            let required: Vec<String> = route.required.iter().map(ToString::to_string).collect();
            tracing::debug!(
                method = %route.method,
                path = route.path,
                class = group.class,
                access = ?group.access,
                required = ?required,
                "route"
            );
        }
        // AppState::new checked every class of the router; a failure here
        // is a bug in route_groups, and serving it unlimited is not an
        // option.
        let (group_routes, gate) = group
            .into_parts(&state.rate_limit, &state.auth)
            .expect("invariant: AppState::new checked every route class");
        // The stack outside, the group's gate inside; the group's fallbacks
        // (405, and the 404 of the one group that answers unknown routes)
        // get both, as its routes do.
        let layered = match gate {
            GroupGate::Public(limit) => {
                group_routes.layer(ServiceBuilder::new().layer(outer.clone()).layer(limit))
            }
            GroupGate::Protected(gate) => group_routes.layer(
                ServiceBuilder::new()
                    .layer(outer.clone())
                    // The gate takes axum's body, as the route it wraps
                    // (which would otherwise convert it).
                    .map_request(|request: Request<Limited<Body>>| request.map(Body::new))
                    .layer(gate),
            ),
        };
        routes = routes.merge(layered);
    }
    routes.with_state(state)
}

/// `GET /health/live`: the process is up.
async fn live() -> Response {
    health_response(StatusCode::OK, &serde_json::json!({ "status": "pass" }))
}

/// `GET /health/ready`: every registered check; 503 when the service is down.
async fn ready(State(state): State<AppState>) -> Response {
    let report = state.health.check_all().await;
    let status = if report.status.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    health_response(status, &report.to_health_json())
}

/// An uncacheable `application/health+json` response.
fn health_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, HEALTH_JSON),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// Fallback for unknown routes (in the protected group: reached only by
/// authenticated callers).
async fn not_found() -> Error {
    Error::not_found("route")
}

/// Fallback for a known route with the wrong method (axum adds `Allow`).
async fn method_not_allowed(method: Method) -> Response {
    Error::MethodNotAllowed {
        method: method.to_string().into(),
    }
    .into_response()
}

/// The headers of a handler's answer that has `own` headers of its own,
/// with room for all the stack adds (the rate limit's two, then the
/// secure stack's [`docaiche_http::rejection::OUTER_HEADERS`]): no layer
/// on the way out regrows and rehashes it.
pub(crate) fn answer_headers(own: usize) -> axum::http::HeaderMap {
    axum::http::HeaderMap::with_capacity(own + 2 + docaiche_http::rejection::OUTER_HEADERS)
}

#[cfg(test)]
pub(crate) mod tests {
    use axum::body::{Body, Bytes};
    use axum::extract::Path;
    use axum::extract::Request;
    use docaiche_core::problem::PROBLEM_JSON;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;
    use crate::edge::REQUEST_ID;
    use crate::test_support::TestDir;

    /// Routes that exist only in tests, in the `default` class.
    pub(super) fn routes(group: RouteGroup) -> RouteGroup {
        group
            .route(Method::GET, "/test/panic", &[], panics)
            .route(
                Method::GET,
                "/test/sleep/{ms}",
                &[],
                |Path(ms): Path<u64>| async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    "slept"
                },
            )
            .route(Method::POST, "/test/echo", &[], |body: Bytes| async move {
                body
            })
    }

    /// A handler that panics with a message that must not reach the client.
    async fn panics() -> &'static str {
        panic!("secret-bearing panic message: password=hunter2")
    }

    fn settings() -> HttpSettings {
        HttpSettings {
            request_timeout: Duration::from_secs(5),
            body_limit: 1024,
            json_body_limit: 1024,
            allowed_origins: vec!["https://app.example".into()],
        }
    }

    /// Auth services for `config` over memory stores, with a fixed pepper
    /// and a fresh Ed25519 JWT key, timed by `clock`.
    pub(crate) fn test_auth(config: &Config, clock: Arc<dyn docaiche_core::Clock>) -> AuthServices {
        let pem = crate::keys::ed25519_pem().expect("random");
        let secrets = AuthSecrets {
            peppers: docaiche_auth::api_key::Peppers::new(
                1,
                [(1, docaiche_core::SecretBytes::new(vec![7; 32]))],
            )
            .expect("pepper"),
            jwt_key: docaiche_auth::jwt::JwtKey::from_pem(
                config.auth.jwt.kid.clone(),
                docaiche_auth::jwt::Algorithm::EdDSA,
                &pem,
            )
            .expect("key"),
        };
        AuthServices::new(&config.auth, secrets, AuthStores::memory(&clock), clock)
            .expect("auth services")
    }

    /// State for `config`, rate limited in process, with memory auth
    /// stores on `clock`.
    pub(crate) fn state_with_clock(
        config: &Config,
        clock: Arc<dyn docaiche_core::Clock>,
    ) -> AppState {
        let limiter = Limiter::local();
        let health = crate::health::registry(config, &limiter);
        AppState::new(config, health, limiter.limiter, test_auth(config, clock))
            .expect("valid state")
    }

    /// State for `config`, rate limited in process.
    pub(crate) fn local_state(config: &Config) -> AppState {
        state_with_clock(config, Arc::new(docaiche_core::SystemClock::new()))
    }

    fn app_for(dir: &std::path::Path, http: HttpSettings) -> Router {
        let mut config = Config::default();
        config.storage.data_dir = dir.to_path_buf();
        let mut state = local_state(&config);
        state.http = http;
        router(state)
    }

    pub(crate) async fn send(
        app: Router,
        request: Request<Body>,
    ) -> (StatusCode, http::HeaderMap, Vec<u8>) {
        let response = app.oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        (status, headers, body)
    }

    pub(crate) fn get_request(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).expect("request")
    }

    pub(crate) fn json(body: &[u8]) -> serde_json::Value {
        serde_json::from_slice(body).expect("json body")
    }

    pub(crate) fn assert_problem(
        headers: &http::HeaderMap,
        body: &[u8],
        code: &str,
    ) -> serde_json::Value {
        assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
        let problem = json(body);
        assert_eq!(
            problem["type"],
            format!("{}{code}", docaiche_core::problem::PROBLEM_TYPE_BASE),
            "{problem}"
        );
        assert_eq!(problem["code"], code);
        problem
    }

    #[tokio::test]
    async fn live_passes_as_health_json() {
        let dir = TestDir::new("app-live");
        let (status, headers, body) =
            send(app_for(dir.path(), settings()), get_request("/health/live")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], HEALTH_JSON);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(json(&body), serde_json::json!({ "status": "pass" }));
    }

    #[tokio::test]
    async fn ready_reports_the_data_dir_check() {
        let dir = TestDir::new("app-ready");
        let (status, headers, body) = send(
            app_for(dir.path(), settings()),
            get_request("/health/ready"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], HEALTH_JSON);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let report = json(&body);
        assert_eq!(report["status"], "pass");
        let check = &report["checks"]["data_dir:responseTime"][0];
        assert_eq!(check["status"], "pass");
        assert_eq!(check["observedUnit"], "ms");
        assert!(check["time"].is_string());
    }

    #[tokio::test]
    async fn ready_is_503_when_the_data_dir_is_missing() {
        let dir = TestDir::new("app-not-ready");
        let app = app_for(&dir.path().join("missing"), settings());
        let (status, headers, body) = send(app, get_request("/health/ready")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::CONTENT_TYPE], HEALTH_JSON);
        let report = json(&body);
        assert_eq!(report["status"], "fail");
        let check = &report["checks"]["data_dir:responseTime"][0];
        assert_eq!(check["status"], "fail");
        assert_eq!(check["output"], "data directory is missing");
        assert!(
            !body.windows(7).any(|w| w == b"missing/"),
            "no path in the public body"
        );
    }

    #[tokio::test]
    async fn ready_is_503_when_the_data_dir_is_not_a_directory() {
        let dir = TestDir::new("app-not-dir");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        let (status, _, body) =
            send(app_for(&file, settings()), get_request("/health/ready")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(json(&body)["status"], "fail");
    }

    #[tokio::test]
    async fn an_unknown_route_is_a_401_anonymously_and_a_404_problem_when_authenticated() {
        let dir = TestDir::new("app-404");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        let state = local_state(&config);
        let key = state
            .auth
            .bootstrap_key("acme", "admin", "test")
            .await
            .expect("key");
        let app = router(state);
        let (status, headers, body) = send(app.clone(), get_request("/nope")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_problem(&headers, &body, "unauthenticated");
        let request = Request::get("/nope")
            .header("x-api-key", key.key.expose_secret())
            .body(Body::empty())
            .expect("request");
        let (status, headers, body) = send(app, request).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let problem = assert_problem(&headers, &body, "not-found");
        assert_eq!(problem["status"], 404);
    }

    #[tokio::test]
    async fn a_wrong_method_is_a_405_problem_with_allow() {
        let dir = TestDir::new("app-405");
        let request = Request::delete("/health/live")
            .body(Body::empty())
            .expect("request");
        let (status, headers, body) = send(app_for(dir.path(), settings()), request).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        let problem = assert_problem(&headers, &body, "method-not-allowed");
        assert_eq!(problem["status"], 405);
        let allow = headers[header::ALLOW].to_str().expect("ascii");
        assert!(allow.contains("GET"), "{allow}");
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_problem_without_the_message() {
        let dir = TestDir::new("app-panic");
        let (status, headers, body) =
            send(app_for(dir.path(), settings()), get_request("/test/panic")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let problem = assert_problem(&headers, &body, "internal");
        assert!(problem["correlation_id"].is_string());
        let text = String::from_utf8(body).expect("utf-8");
        for leaked in ["hunter2", "password", "panic"] {
            assert!(!text.contains(leaked), "{leaked} leaked: {text}");
        }
        assert!(
            headers.contains_key(REQUEST_ID),
            "the request id survives a panic"
        );
    }

    #[tokio::test]
    async fn an_oversize_body_is_a_413_problem() {
        let dir = TestDir::new("app-413");
        // Declared length over the limit: refused before the handler runs.
        let declared = Request::post("/test/echo")
            .header(header::CONTENT_LENGTH, 2048)
            .body(Body::from(vec![b'x'; 2048]))
            .expect("request");
        // No declared length: refused while the handler reads the body.
        let streamed = Request::post("/test/echo")
            .body(Body::from(vec![b'x'; 2048]))
            .expect("request");
        for request in [declared, streamed] {
            let (status, headers, body) = send(app_for(dir.path(), settings()), request).await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
            let problem = assert_problem(&headers, &body, "payload-too-large");
            assert_eq!(problem["detail"], "payload too large: limit is 1024 bytes");
        }
        // Within the limit it passes.
        let small = Request::post("/test/echo")
            .body(Body::from("hello"))
            .expect("request");
        let (status, _, body) = send(app_for(dir.path(), settings()), small).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, b"hello");
    }

    #[tokio::test]
    async fn a_request_over_the_timeout_is_a_timeout_problem() {
        let dir = TestDir::new("app-timeout");
        let http = HttpSettings {
            request_timeout: Duration::from_millis(50),
            ..settings()
        };
        let (status, headers, body) =
            send(app_for(dir.path(), http), get_request("/test/sleep/5000")).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        let problem = assert_problem(&headers, &body, "timeout");
        assert!(problem["correlation_id"].is_string());
    }

    #[tokio::test]
    async fn the_request_id_is_echoed_or_generated() {
        let dir = TestDir::new("app-request-id");
        let request = Request::get("/health/live")
            .header(REQUEST_ID, "client-chosen-id-42")
            .body(Body::empty())
            .expect("request");
        let (_, headers, _) = send(app_for(dir.path(), settings()), request).await;
        assert_eq!(headers[REQUEST_ID], "client-chosen-id-42");

        let (_, headers, _) = send(app_for(dir.path(), settings()), get_request("/nope")).await;
        let generated = headers[REQUEST_ID].to_str().expect("ascii");
        assert_eq!(generated.len(), 36, "a UUID: {generated}");
    }

    #[tokio::test]
    async fn cors_allows_only_the_configured_origins() {
        let dir = TestDir::new("app-cors");
        let preflight = |origin: &str| {
            Request::builder()
                .method(Method::OPTIONS)
                .uri("/health/live")
                .header(header::ORIGIN, origin)
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
                .body(Body::empty())
                .expect("request")
        };
        let (_, headers, _) = send(
            app_for(dir.path(), settings()),
            preflight("https://app.example"),
        )
        .await;
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example"
        );
        let (_, headers, _) = send(
            app_for(dir.path(), settings()),
            preflight("https://evil.example"),
        )
        .await;
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    }

    /// A concrete path for a route pattern (`{param}` → `1`).
    pub(crate) fn concrete(path: &str) -> String {
        path.split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "1"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[tokio::test]
    async fn every_route_answers_with_ratelimit_headers() {
        let dir = TestDir::new("app-every-route-limited");
        let mut walked = 0;
        for group in route_groups() {
            // Test-only routes include a panicking handler, answered by the
            // outer panic layer; every production route is walked.
            for route in group
                .routes
                .iter()
                .filter(|r| !r.path.starts_with("/test/"))
            {
                let path = route.path;
                let request = Request::builder()
                    .method(route.method.clone())
                    .uri(concrete(path))
                    .body(Body::empty())
                    .expect("request");
                let (status, headers, _) = send(app_for(dir.path(), settings()), request).await;
                let policy = headers
                    .get("ratelimit-policy")
                    .unwrap_or_else(|| panic!("{path} ({status}) has no RateLimit-Policy"));
                let name = policy.to_str().expect("ascii");
                assert!(
                    name.starts_with(&format!("\"{}-", group.class)),
                    "{path}: {name}"
                );
                assert!(headers.contains_key("ratelimit"), "{path} has no RateLimit");
                walked += 1;
            }
        }
        assert!(walked >= 2, "the health routes at least");
        // Unknown routes and wrong methods are limited as well.
        for request in [
            get_request("/nope"),
            Request::delete("/health/live")
                .body(Body::empty())
                .expect("request"),
        ] {
            let (status, headers, _) = send(app_for(dir.path(), settings()), request).await;
            assert!(status.is_client_error());
            assert!(headers.contains_key("ratelimit-policy"), "{status}");
            assert!(headers.contains_key("ratelimit"), "{status}");
        }
    }

    #[test]
    fn route_groups_use_only_the_checked_classes() {
        for group in route_groups() {
            assert!(
                crate::config::RateLimitSection::CLASSES.contains(&group.class),
                "{} is not checked at start-up",
                group.class
            );
        }
    }

    #[tokio::test]
    async fn health_probes_are_rate_limited_per_client_address() {
        let dir = TestDir::new("app-probes-limited");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.rate_limit.limits.policies.insert(
            "probes".into(),
            serde_json::from_value(serde_json::json!({
                "limits": [{ "key": "client_addr", "limit": 2, "period_secs": 60 }]
            }))
            .expect("policy"),
        );
        let app = router(local_state(&config));
        let probe = |peer: &str| {
            let mut request = get_request("/health/live");
            let peer: std::net::SocketAddr = peer.parse().expect("addr");
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            request
        };
        for _ in 0..2 {
            let (status, _, _) = send(app.clone(), probe("192.0.2.10:5000")).await;
            assert_eq!(status, StatusCode::OK);
        }
        let (status, headers, body) = send(app.clone(), probe("192.0.2.10:5001")).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_problem(&headers, &body, "quota-exceeded");
        assert_eq!(headers[header::RETRY_AFTER], "30");
        assert_eq!(headers["ratelimit"], "\"probes-client-addr\";r=0;t=30");
        // Another client is not affected.
        let (status, headers, _) = send(app, probe("192.0.2.11:5000")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers["ratelimit-policy"],
            "\"probes-client-addr\";q=2;w=60"
        );
    }

    /// A router on the Redis backend, the URL given by `url` (as the value
    /// of the `env:` reference), falling back in process.
    #[cfg(feature = "redis")]
    async fn redis_app(dir: &std::path::Path, url: String) -> Router {
        let mut config = Config::default();
        config.storage.data_dir = dir.to_path_buf();
        config.rate_limit.backend = crate::config::RateLimitBackend::Redis;
        config.rate_limit.redis_url = Some("env:DOCAICHE_TEST_REDIS_URL".into());
        let env = move |name: &str| (name == "DOCAICHE_TEST_REDIS_URL").then(|| url.clone());
        config.validate().expect("valid");
        router(
            AppState::from_config(&config, &env)
                .await
                .expect("redis state"),
        )
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn the_redis_backend_limits_and_reports_redis_in_readiness() {
        let Ok(url) = std::env::var("DOCAICHE_TEST_REDIS_URL") else {
            eprintln!("skipping: DOCAICHE_TEST_REDIS_URL is not set");
            return;
        };
        let dir = TestDir::new("app-redis");
        let app = redis_app(dir.path(), url).await;
        let (status, headers, _) = send(app.clone(), get_request("/health/live")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers.contains_key("ratelimit-policy"));
        assert!(headers.contains_key("ratelimit"));

        let (status, _, body) = send(app, get_request("/health/ready")).await;
        assert_eq!(status, StatusCode::OK);
        let report = json(&body);
        assert_eq!(report["status"], "pass", "{report}");
        assert!(
            report.to_string().contains("redis_rate_limit"),
            "the Redis check is registered: {report}"
        );
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn a_refused_redis_falls_back_quickly_and_degrades_readiness() {
        let dir = TestDir::new("app-redis-down");
        let started = std::time::Instant::now();
        let app = redis_app(dir.path(), "redis://127.0.0.1:1".into()).await;
        for _ in 0..3 {
            let (status, headers, _) = send(app.clone(), get_request("/health/live")).await;
            assert_eq!(status, StatusCode::OK, "fallback decides");
            assert!(headers.contains_key("ratelimit-policy"));
            assert!(headers.contains_key("ratelimit"));
        }
        let (status, _, body) = send(app, get_request("/health/ready")).await;
        assert_eq!(status, StatusCode::OK, "an optional check degrades");
        let report = json(&body);
        assert_eq!(report["status"], "warn", "{report}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }
}
