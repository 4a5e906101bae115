//! # docaiche-core
//!
//! The contracts every DocAIche crate speaks: identities ([`TenantId`],
//! [`PrincipalId`], [`Principal`]), permissions, the one [`Error`] type and
//! its RFC 9457 mapping, the backend traits, resilience primitives, the
//! health model, secrets and time.
//!
//! This crate deliberately contains **no backend**: no SQL, no Redis, no
//! Vault client, no HTTP server. Adapters live in `docaiche-store` (and the
//! sibling crates) behind cargo features, so a team that writes its own
//! `ApiKeyStore` over DynamoDB depends on this crate alone and passes an
//! `Arc<dyn ApiKeyStore>` to the rest.
//!
//! ```
//! use docaiche_core::{AuthMethod, Error, Permission, Principal, PrincipalId, TenantId};
//!
//! # fn main() -> Result<(), Error> {
//! let acme = TenantId::new("acme")?;
//! let alice = Principal::new(PrincipalId::new("alice")?, acme.clone(), AuthMethod::Password)
//!     .with_permissions([Permission::DOCUMENTS_READ].into_iter().collect());
//!
//! // Deny by default, and tenant-scoped.
//! alice.authorize_tenant(&acme, &Permission::DOCUMENTS_READ)?;
//! let err = alice.authorize_tenant(&TenantId::new("globex")?, &Permission::DOCUMENTS_READ);
//! assert_eq!(err.unwrap_err().status(), 403);
//! # Ok(()) }
//! ```
//!
//! ## The backend traits
//!
//! | trait | what it holds | reference adapters |
//! |---|---|---|
//! | [`Authenticator`] | credential → principal | `docaiche-auth` |
//! | [`AccountStore`] | password accounts (hashes only) | memory, SQLite, PostgreSQL |
//! | [`CustomRoleStore`] | tenant-defined roles of exact permissions | memory, SQLite, PostgreSQL |
//! | [`MfaStore`] | second-factor (TOTP) enrolments: sealed secret, last accepted step, recovery-code hashes | memory, SQLite, PostgreSQL |
//! | [`ApiKeyStore`] | API key records (hashes only) | memory, SQLite, PostgreSQL |
//! | [`TokenRevocationStore`] | revoked token ids | memory, SQL, Redis |
//! | [`RateLimiter`] | GCRA quotas | governor, Redis |
//! | [`DocumentStore`] | documents and text | memory, SQLite, PostgreSQL |
//! | [`CacheStore`] | TTL byte cache | memory, Redis |
//! | [`InvalidationBus`] | "this cached entry is stale" to every instance | in-process, Redis pub/sub |
//! | [`JobQueue`] | background jobs | memory, PostgreSQL |
//! | [`SecretProvider`] | secrets by name | env, file, Vault KV |
//! | [`KeyWrapper`] | data-key wrapping | local key, Vault Transit |
//! | [`Extractor`] | PDF text and metadata | `docaiche-extract` |
//! | [`AuditSink`] | audit events | file, PostgreSQL, stdout |
//! | [`TenantStore`] | the platform's tenants: status, settings | memory, SQLite, PostgreSQL |
//! | [`UsageStore`] | per-key usage counters (minute, hour, day) | memory, SQLite, PostgreSQL |
//! | [`WebSessionStore`] | browser (admin console) sessions, by the hash of their cookie | memory, SQLite, PostgreSQL, Redis |
//! | [`HealthCheck`] | dependency health | every adapter |
//! | [`Clock`] | time | system, manual |
//!
//! Each is object-safe, `Send + Sync + Debug + 'static`, and documents its
//! contract: which inputs an attacker controls, tenant scoping, idempotency
//! and what each error means. `docaiche-store`'s `conformance` feature runs
//! one suite against any implementation.
//!
//! ## Features
//!
//! | feature | enables |
//! |---|---|
//! | `axum` | `IntoResponse` for [`Error`] and [`problem::Problem`] |
//!
//! ## MSRV
//!
//! Rust 1.88.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod account;
pub mod api_key;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod clock;
pub mod context;
pub mod custom_role;
pub mod document;
pub mod error;
pub mod extract;
pub mod health;
pub mod id;
pub mod invalidation;
pub mod job;
pub mod key_wrapper;
pub mod mfa;
pub mod page;
pub mod permission;
pub mod principal;
pub mod problem;
pub mod rate_limit;
pub mod resilience;
pub mod revocation;
pub mod secret;
pub mod secret_provider;
pub mod tenant;
pub mod usage;
pub mod web_session;

pub use account::AccountStore;
pub use api_key::ApiKeyStore;
pub use audit::AuditSink;
pub use auth::{Authenticator, Credential};
pub use cache::CacheStore;
pub use clock::{Clock, ManualClock, SystemClock};
pub use context::RequestContext;
pub use custom_role::CustomRoleStore;
pub use document::DocumentStore;
pub use error::{AuthFailure, Error, ErrorCode, Result};
pub use extract::Extractor;
pub use health::{HealthCheck, HealthStatus};
pub use id::{ApiKeyId, DocumentId, JobId, PrincipalId, TenantId};
pub use invalidation::InvalidationBus;
pub use job::JobQueue;
pub use key_wrapper::KeyWrapper;
pub use mfa::MfaStore;
pub use permission::{
    Grant, MAX_PERMISSION_LEN, MAX_SCOPES, Permission, PermissionCatalog, PermissionSet, Role,
};
pub use principal::{AuthMethod, Principal};
pub use problem::Problem;
pub use rate_limit::RateLimiter;
pub use resilience::{
    CircuitBreaker, CircuitBreakerLayer, CircuitState, Retry, RetryBudget, RetryLayer, RetryPolicy,
    SingleFlight, SingleFlightLayer, Timeout, TimeoutLayer,
};
pub use revocation::TokenRevocationStore;
pub use secret::{Secret, SecretBytes, SecretString};
pub use secret_provider::SecretProvider;
pub use tenant::TenantStore;
pub use usage::{UsageRecorder, UsageStore};
pub use web_session::WebSessionStore;
