//! The rate-limit tower middleware: [`RateLimitLayer`], the [`RateLimit`]
//! service and its [`ResponseFuture`](future::ResponseFuture).
//!
//! # Flow of a request
//!
//! 1. **Who**: the [`Principal`](docaiche_core::Principal) (or
//!    `Arc<Principal>`) from the request extensions, put there by the
//!    authentication layer, which must therefore run *before* this one; and
//!    the client address: axum's `ConnectInfo<SocketAddr>` (serve with
//!    `into_make_service_with_connect_info::<SocketAddr>()`; `axum`
//!    feature, on by default) or a plain `SocketAddr` extension for other
//!    servers, corrected by `X-Forwarded-For` only from trusted proxies
//!    (see [`crate::policy`]).
//! 2. **Which policy**: the layer's route class, replaced by the tenant's
//!    tier override if there is one.
//! 3. **Concurrency**: if the policy has a concurrency limit, a slot is
//!    taken for the tenant at once or the request is refused with a 429;
//!    the slot is held until the inner service's response future completes
//!    or is dropped (a streaming body is not counted).
//! 4. **Rates**: every limit must pass. With one limit, one
//!    [`check`](docaiche_core::RateLimiter::check); with several, one
//!    [`check_all_now`](docaiche_core::RateLimiter::check_all_now) when the
//!    limiter has it (all or nothing, exactly), else all are
//!    [`peek`](docaiche_core::RateLimiter::peek)ed first so that a refusal
//!    by one does not spend the others, then checked in order (the race
//!    this leaves is described on the check round).
//! 5. **Answer**: refused → 429 `application/problem+json` of type
//!    `…/quota-exceeded` with `Retry-After` (whole seconds, rounded up), a
//!    `violated-policies` member (draft §5.1) and the RateLimit headers,
//!    without calling the inner service; allowed → the inner service's
//!    response with `RateLimit-Policy` and `RateLimit` added (see
//!    [`crate::headers`]).
//! 6. **Limiter failure** (`Unavailable`): by default the request fails
//!    closed with the core's 503 problem; `on_limiter_error = "fail_open"`
//!    lets it through. A `ResilientRateLimiter` in front of Redis normally
//!    absorbs outages with its local fallback before they reach this point.
//!
//! The inner service's errors pass through untouched; the layer's own
//! refusals are responses, never errors. The 429 body is built from a
//! `String`, so the response body type must implement `From<String>`
//! (`axum::body::Body`, `String`, `http_body_util::Full<Bytes>` do).
//!
//! # Route classes
//!
//! A route's class is chosen where the route is built, by the layer
//! applied to its group: `reads.layer(default_layer)`,
//! `uploads.layer(default_layer.for_class("documents")?)`. Compared with a
//! `RouteClass` request extension set per route, the class sits next to the
//! routes in the code, an unknown class fails when the layer is built, and
//! a route cannot silently fall back to a default class because someone
//! forgot to set an extension. Apply exactly one rate-limit layer to each
//! route: two would charge the request twice.
//!
//! # Metrics
//!
//! [`RateLimitMetrics`] counts allowed, limited and errored requests per
//! policy (after tier resolution), shared by every layer made from one
//! [`RateLimitLayer::new`].

mod check;
mod concurrency;
pub mod future;
#[allow(clippy::module_inception)]
mod layer;
mod metrics;
mod service;

pub use layer::RateLimitLayer;
pub use metrics::{PolicyMetrics, RateLimitMetrics};
pub use service::RateLimit;
