//! # docaiche-ratelimit
//!
//! Rate limiting for DocAIche servers: exact GCRA limiters in-process
//! ([`local::LocalRateLimiter`]) and distributed over Redis or Redis
//! Cluster (`redis::RedisRateLimiter`, one Lua script per decision, Redis
//! server time, hash-tagged keys), a failure-policy wrapper for when Redis
//! dies ([`fallback::ResilientRateLimiter`]: fail closed, fail open, or fall
//! back to this instance's share of the limit, behind a circuit breaker),
//! policies as configuration ([`policy`]), and the
//! [`RateLimitLayer`](layer::RateLimitLayer) tower middleware that answers
//! 429 `quota-exceeded` problems with `Retry-After` and the `RateLimit-Policy`
//! / `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-11
//! ([`headers`]).
//!
//! It does not authenticate: put the auth layer outside the rate-limit
//! layer so limits can key by principal, tenant and API key (unauthenticated
//! requests are keyed by client address).
//!
//! ```
//! use std::num::NonZeroU32;
//! use std::sync::Arc;
//! use std::time::Duration;
//! use docaiche_core::{ManualClock, RateLimiter};
//! use docaiche_core::rate_limit::{Quota, RateLimitKey};
//! use docaiche_ratelimit::local::LocalRateLimiter;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), docaiche_core::Error> {
//! let clock = ManualClock::new();
//! let limiter = LocalRateLimiter::new(Arc::new(clock.clone()));
//! let quota = Quota::per_second(NonZeroU32::new(2).expect("non-zero"));
//! let key = RateLimitKey::new("tenant:acme")?;
//! let one = NonZeroU32::MIN;
//!
//! assert!(limiter.check(&key, &quota, one).await?.allowed);
//! assert!(limiter.check(&key, &quota, one).await?.allowed);
//! let denied = limiter.check(&key, &quota, one).await?;
//! assert!(!denied.allowed);
//! assert_eq!(denied.retry_after, Some(Duration::from_millis(500)));
//! # Ok(()) }
//! ```
//!
//! Policies are configuration: [`policy::RateLimitConfig`] (serde) builds a
//! [`policy::PolicySet`]. A policy is a named list of limits that must all
//! pass, each a [`Quota`](docaiche_core::rate_limit::Quota), a key (API key,
//! principal, tenant, client address, global) and a cost, plus an optional
//! per-tenant concurrency limit for heavy routes. Route classes are chosen
//! per router group with [`RateLimitLayer::for_class`](layer::RateLimitLayer::for_class);
//! tiers swap a class's policy per tenant. The client address is the socket
//! peer, or `X-Forwarded-For` read only through configured trusted proxies.
//!
//! ## Design decisions and their cost
//!
//! - **Our own GCRA, governor as the baseline.** governor's keyed limiter
//!   takes one quota per limiter, has no `peek`, treats a cost above the
//!   burst as an error and keeps unbounded keys on its own clock; the
//!   [`gcra`] module is the one definition of the maths, shared by the local
//!   limiter and (line by line) the Redis Lua script, and tested against
//!   governor on the same sequences. Cost: the dynamic `RateLimiter` call
//!   (an `async_trait` box, ~40 ns) on top of the decision.
//! - **Refuse, never queue.** Over a limit the answer is an immediate 429.
//! - **Composed limits are all or nothing**: the in-process limiter checks
//!   a policy's limits together under its locks
//!   ([`check_all_now`](docaiche_core::RateLimiter::check_all_now)), so a
//!   request refused by one limit spends none of the others. Limiters
//!   without it (Redis) are peeked first, then checked; a race between
//!   peek and check can still charge an earlier limit (the trait has no
//!   refund).
//!
//! ## Features
//!
//! | feature | enables |
//! |---|---|
//! | `redis` | the distributed Redis / Redis Cluster limiter |
//! | `axum` | reading the client address from axum's `ConnectInfo<SocketAddr>` |
//!
//! ## Tracing
//!
//! The Redis limiter's calls run in `client` spans (see
//! "Tracing" in the `redis` module, feature `redis`); the in-process
//! limiters make no backend call and open no span.
//!
//! ## MSRV
//!
//! Rust 1.88.

#![cfg_attr(docsrs, feature(doc_cfg))]

/// Limits of one request's round kept inline, in the layer and in the
/// in-process limiter (a policy has one or two; more spill to the heap).
const ROUND_INLINE: usize = 2;

pub mod fallback;
pub mod gcra;
pub mod headers;
pub mod layer;
pub mod local;
pub mod policy;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

/// The core contracts this crate implements.
pub mod contracts {
    pub use docaiche_core::rate_limit::{
        LimitCheck, Quota, RateLimitDecision, RateLimitKey, RateLimiter,
    };
}
