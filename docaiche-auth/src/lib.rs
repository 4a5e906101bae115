//! # docaiche-auth
//!
//! Authentication and authorization for DocAIche servers: JWT access tokens
//! (issue and verify, key rotation by `kid`, JWKS, external OIDC issuers),
//! rotating refresh tokens with reuse detection, API keys (generation,
//! keyed-hash storage, rotation, revocation), argon2id passwords with a
//! policy for new ones, RBAC with tenant scoping, failed-authentication
//! tracking, and the `AuthLayer` tower middleware that puts a verified
//! [`Principal`](docaiche_core::Principal) into request extensions.
//!
//! A complete authentication path in a few lines — API keys and JWTs in,
//! a verified principal with exactly its permissions out:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use docaiche_auth::api_key::{ApiKeyService, NewApiKey, Peppers};
//! use docaiche_auth::layer::{AuthLayer, CredentialRouter};
//! use docaiche_core::{
//!     AuthMethod, Authenticator, Credential, Permission, Principal, PrincipalId, RequestContext,
//!     SecretBytes, TenantId,
//! };
//! use docaiche_store::memory::MemoryApiKeyStore;
//!
//! // Keys are stored as HMAC-SHA-256 under a server-side pepper (from a
//! // SecretProvider in production).
//! let peppers = Peppers::new(1, [(1, SecretBytes::new(vec![7; 32]))])?;
//! let keys = Arc::new(ApiKeyService::new(Arc::new(MemoryApiKeyStore::new()), peppers));
//!
//! let acme = TenantId::new("acme")?;
//! let admin = Principal::new(PrincipalId::new("alice")?, acme.clone(), AuthMethod::Password)
//!     .with_permissions([Permission::KEYS_MANAGE, Permission::DOCUMENTS_READ].into_iter().collect());
//! // A key's scopes must be a subset of its creator's permissions.
//! let scopes = [Permission::DOCUMENTS_READ].into_iter().collect();
//! let created = keys.create(&admin, NewApiKey::new(acme.clone(), "ci").with_scopes(scopes)).await?;
//!
//! let credential = Credential::ApiKey(created.key);
//! let principal = keys.authenticate(&credential, &RequestContext::new()).await?;
//! assert_eq!(principal.tenant, acme);
//! assert!(principal.has_permission(&Permission::DOCUMENTS_READ));
//! assert!(!principal.has_permission(&Permission::KEYS_MANAGE));
//!
//! // In a tower stack: `AuthLayer` over a router of authenticators.
//! let _layer = AuthLayer::new(Arc::new(CredentialRouter::new().api_keys(keys)));
//! # Ok::<(), docaiche_core::Error>(()) }).unwrap();
//! ```
//!
//! ## Modules
//!
//! | module | what it holds |
//! |---|---|
//! | [`jwt`] | access tokens: issue and verify (HS256/384/512, RS256, ES256, EdDSA) by RFC 8725 rules — the algorithm comes from the key, `typ: at+jwt`, required `aud`/`iss`/`exp`/`iat`/`sub`/tenant, size limit before parsing; key rotation by `kid`; JWKS |
//! | [`oidc`] | tokens of external issuers: discovery + JWKS, cached, refreshed on an unknown `kid` at most once per cooldown, served stale while the issuer is down |
//! | [`session`] | short-lived access tokens with rotating refresh tokens and reuse detection (a replay revokes the family); revocation by `jti` |
//! | [`api_key`] | GitHub-style keys with a checksum (typos refused without a store call), keyed-hash storage with rotating peppers, a verified-key cache (revocations reach other instances over an `InvalidationBus`), batched last-used, rotation with overlap |
//! | [`password`] | argon2id (OWASP parameters), transparent rehash, hashing off the runtime, the same work for unknown accounts; a [`PasswordPolicy`](password::PasswordPolicy) for new passwords — at least 12 characters, and none of the 49,233 most common breached passwords of a list bundled in the crate (no network call) |
//! | [`rbac`] | roles and tenant-scoped bindings as data; deny by default; cross-tenant admin only when granted explicitly |
//! | [`login`] | password login (`{tenant, email, password}` → session) with lockout, OWASP device cookies, rehash and audit; refresh with the account's current roles; disabling or deleting an account ends its tokens at once; RFC 7009 revocation; invitations and password resets as stateless, single-use tokens bound to the password hash (`AccountTokens`); `may_grant`, the no-escalation rule for giving roles; tenant-defined custom roles (`with_custom_roles`) expanded into concrete permissions at login and refresh, `may_grant_in` |
//! | [`mfa`] | a TOTP second factor (RFC 6238 over RFC 4226, HMAC-SHA1/256/512, 6 or 8 digits, ±1 step): enrolment with an `otpauth://` URI and single-use recovery codes (keyed hashes), secrets sealed with AES-256-GCM for their tenant and account under a key derived from the pepper, a code accepted once across instances (the store's compare-and-set on the last step) |
//! | [`lockout`] | failed-authentication tracking per address, network, account and trusted device, with soft, capped lockouts that slow the guesser and never refuse a valid credential, and audit events |
//! | [`layer`] | `AuthLayer` (credential → `Principal`, 401 with `WWW-Authenticate`), `RequirePermissionLayer` (403), the axum extractor |
//!
//! ## Features
//!
//! | feature | enables |
//! |---|---|
//! | `axum` | the [`layer::Authenticated`] extractor (`FromRequestParts`) and reading the client address from `ConnectInfo<SocketAddr>` |
//! | `oidc` | `oidc::HttpJwksFetcher`: discovery and JWKS over HTTPS (reqwest, rustls with ring, the platform trust store) |
//!
//! ## MSRV
//!
//! Rust 1.88.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod api_key;
pub mod jwt;
pub mod layer;
pub mod lockout;
pub mod login;
pub mod mfa;
pub mod oidc;
pub mod password;
pub mod rbac;
pub mod session;
pub mod web_session;

/// The core contracts this crate implements.
pub mod contracts {
    pub use docaiche_core::account::{Account, AccountStore};
    pub use docaiche_core::api_key::{ApiKeyRecord, ApiKeyStore};
    pub use docaiche_core::auth::{Authenticator, Credential};
    pub use docaiche_core::mfa::{MfaEnrolment, MfaStore};
    pub use docaiche_core::principal::{AuthMethod, Principal};
    pub use docaiche_core::revocation::TokenRevocationStore;
}
