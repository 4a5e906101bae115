//! # docaiche-auth
//!
//! Authentication and authorization for DocAIche servers: JWT access tokens
//! (issue and verify, key rotation by `kid`, JWKS, external OIDC issuers),
//! rotating refresh tokens with reuse detection, API keys (generation,
//! keyed-hash storage, rotation, revocation), argon2id passwords, RBAC with
//! tenant scoping, failed-authentication tracking, and the `AuthLayer` tower
//! middleware that puts a verified [`Principal`](docaiche_core::Principal)
//! into request extensions.
//!
//! **Status:** the crate is part of the workspace layout; its implementation
//! arrives with the auth issue. Until then it only re-exports the contracts it
//! will implement, so dependants can already name them:
//!
//! ```
//! use docaiche_auth::contracts::{Authenticator, Principal};
//! fn takes(_: &dyn Authenticator) {}
//! # let _ = takes;
//! # let _: Option<Principal> = None;
//! ```
//!
//! ## MSRV
//!
//! Rust 1.88.

/// The core contracts this crate implements.
pub mod contracts {
    pub use docaiche_core::api_key::{ApiKeyRecord, ApiKeyStore};
    pub use docaiche_core::auth::{Authenticator, Credential};
    pub use docaiche_core::principal::{AuthMethod, Principal};
    pub use docaiche_core::revocation::TokenRevocationStore;
}
