//! # docaiche-ratelimit
//!
//! Rate limiting for DocAIche servers: GCRA limiters in-process (on
//! `governor`) and distributed (one Redis Lua script, hash-tagged keys for
//! Redis Cluster), policies (tiers, route classes, keys by API key,
//! principal, tenant and trusted client address), failure modes when Redis
//! is down (fail closed, fail open, or fall back to a local share), and the
//! `RateLimitLayer` tower middleware answering 429 with `Retry-After` and the
//! IETF `RateLimit` / `RateLimit-Policy` headers.
//!
//! **Status:** the crate is part of the workspace layout; its implementation
//! arrives with the rate-limit issue. The contract it implements is
//! [`RateLimiter`](docaiche_core::RateLimiter):
//!
//! ```
//! use std::num::NonZeroU32;
//! use docaiche_ratelimit::contracts::Quota;
//!
//! let quota = Quota::per_minute(NonZeroU32::new(600).expect("non-zero"));
//! assert_eq!(quota.emission_interval().as_millis(), 100);
//! ```
//!
//! ## Features
//!
//! | feature | enables |
//! |---|---|
//! | `redis` | the distributed Redis limiter (arrives with the rate-limit issue) |
//!
//! ## MSRV
//!
//! Rust 1.88.

#![cfg_attr(docsrs, feature(doc_cfg))]

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
    pub use docaiche_core::rate_limit::{Quota, RateLimitDecision, RateLimitKey, RateLimiter};
}
