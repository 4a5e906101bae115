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
//! its [`Endpoint`] (method, path and OpenAPI documentation, a constant
//! beside the handler) and the permissions it requires. [`router`] is
//! built only from [`route_groups`], and tests walk every route of every
//! group: each
//! answers with the RateLimit headers, and each protected route answers 401
//! without credentials and 403 to a principal lacking its permission, so a
//! route cannot be added without a policy or a guard. The OpenAPI
//! document of `GET /openapi.json` ([`crate::openapi`]) is generated from
//! the same endpoints, and its tests fail when the router and the
//! document disagree either way.
//!
//! The handlers live in one module per API area; each adds its routes to a
//! [`RouteGroup`] with the permissions they require. The state they share
//! is [`crate::state::AppState`].

pub(crate) mod accounts;
pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod documents;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod jobs;
pub(crate) mod keys;
pub(crate) mod privacy;
pub(crate) mod roles;
pub(crate) mod tenants;
#[cfg(test)]
pub(crate) mod tests;
pub(crate) mod usage;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{Method, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use docaiche_auth::layer::RequirePermissionLayer;
use docaiche_core::{Error, Permission};
use docaiche_http::per_thread::PerThreadLayer;
use docaiche_ratelimit::layer::RateLimitLayer;
use tower::ServiceBuilder;
use tower_http::body::Limited;

use crate::auth::{AuthGateLayer, AuthServices};
use crate::openapi::RouteDoc;
use crate::state::AppState;

/// Whether a route group needs a verified principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// No authentication (probes, the JWKS).
    Public,
    /// Behind the auth gate.
    Protected,
}

/// A route as its handler's module states it, beside the handler: method,
/// path and documentation (utoipa's `#[utoipa::path]`, as a value). The
/// router is built from it and the OpenAPI document describes it, so the
/// two cannot name different routes, and a route cannot be registered
/// without its documentation.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The method.
    pub(crate) method: Method,
    /// The path pattern.
    pub(crate) path: &'static str,
    /// What the OpenAPI document says of it beyond what the route's facts
    /// imply (see [`crate::openapi`]).
    pub(crate) doc: RouteDoc,
}

impl Endpoint {
    /// `method path`, documented by `doc`.
    pub(crate) const fn new(method: Method, path: &'static str, doc: RouteDoc) -> Self {
        Self { method, path, doc }
    }
}

/// One route: its method, path and documentation, and the permissions its
/// guard requires.
#[derive(Debug, Clone)]
pub(crate) struct RouteSpec {
    /// The method.
    pub(crate) method: Method,
    /// The path pattern.
    pub(crate) path: &'static str,
    /// Every permission required (all must be held); empty means any
    /// authenticated principal.
    pub(crate) required: Vec<Permission>,
    /// Its documentation.
    pub(crate) doc: RouteDoc,
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

    /// Add `endpoint`, guarded by every permission of `required` (all
    /// must be held; none in a public group).
    pub(crate) fn route<H, T>(
        mut self,
        endpoint: Endpoint,
        required: &[Permission],
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let Endpoint { method, path, doc } = endpoint;
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
            doc,
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
        usage: &Arc<crate::usage::Usage>,
    ) -> Result<(Router<AppState>, GroupGate), Error> {
        let router = self.router.method_not_allowed_fallback(method_not_allowed);
        let limit = rate_limit.for_class(self.class)?;
        let gate = match self.access {
            Access::Public => GroupGate::Public(limit),
            Access::Protected => {
                // Usage is counted by the group's class (`crate::usage`).
                let class = docaiche_core::usage::RouteClass::new(self.class)?;
                GroupGate::Protected(
                    AuthGateLayer::new(auth.layer.clone(), auth.tenants.clone(), limit)
                        .with_usage(crate::usage::CountLayer::new(usage, class)),
                )
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
        .route(health::LIVE, &[], health::live)
        .route(health::READY, &[], health::ready)
        .route(crate::routes::keys::JWKS, &[], crate::routes::keys::jwks)
        .route(crate::metrics::SCRAPE, &[], crate::metrics::scrape)
        .route(crate::openapi::SERVE, &[], crate::openapi::serve);
    // Document processing (upload, extraction, jobs): its own, stricter
    // policy.
    let documents = crate::routes::documents::routes(RouteGroup::protected("documents"));
    // Everything else: one module per API area adds its routes.
    let areas: [fn(RouteGroup) -> RouteGroup; 9] = [
        keys::routes,
        events::routes,
        audit::routes,
        privacy::routes,
        admin::routes,
        roles::routes,
        accounts::routes,
        tenants::routes,
        usage::routes,
    ];
    let default = areas.into_iter().fold(
        RouteGroup::protected("default").with_not_found_fallback(),
        |group, add| add(group),
    );
    // The token endpoints: public, strictly limited per client address.
    let auth = auth::routes(RouteGroup::public("auth"));
    #[cfg_attr(not(test), allow(unused_mut))]
    let mut groups = vec![probes, auth, documents, default];
    #[cfg(test)]
    groups.push(tests::routes(RouteGroup::public("default")));
    groups
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
            .into_parts(&state.rate_limit, &state.auth, &state.usage)
            .expect("invariant: AppState::new checked every route class");
        // The stack outside, the group's gate inside; the group's fallbacks
        // (405, and the 404 of the one group that answers unknown routes)
        // get both, as its routes do.
        // Each worker thread calls its own copy of a route's stack, which
        // axum would otherwise clone per request (`PerThreadLayer`).
        let layered = match gate {
            GroupGate::Public(limit) => group_routes.layer(
                ServiceBuilder::new()
                    .layer(PerThreadLayer::new())
                    .layer(outer.clone())
                    .layer(limit),
            ),
            GroupGate::Protected(gate) => group_routes.layer(
                ServiceBuilder::new()
                    .layer(PerThreadLayer::new())
                    .layer(outer.clone())
                    // The gate takes axum's body, as the route it wraps
                    // (which would otherwise convert it).
                    .map_request(|request: Request<Limited<Body>>| request.map(Body::new))
                    .layer(gate),
            ),
        };
        routes = routes.merge(layered);
    }
    let api = routes.with_state(state.clone());
    // The console: its own rate-limit class per client address, the same
    // stack outside; its pages call `api` in-process (`crate::console`).
    let console = state
        .rate_limit
        .for_class(crate::console::CLASS)
        .expect("invariant: AppState::new checked every route class");
    let console = crate::console::routes(api.clone()).layer(
        ServiceBuilder::new()
            .layer(PerThreadLayer::new())
            .layer(outer)
            .layer(console),
    );
    api.merge(console.with_state(state))
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
