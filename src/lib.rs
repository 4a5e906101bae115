#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The contracts: identities, permissions, the error type, backend traits,
/// resilience primitives, health, secrets and time.
pub use docaiche_core as core;

/// Authentication and authorization.
pub use docaiche_auth as auth;

/// Rate limiting.
pub use docaiche_ratelimit as ratelimit;

/// Persistence adapters: memory (always), SQLite, PostgreSQL, Redis, Vault.
pub use docaiche_store as store;

/// Secure PDF intake and extraction.
pub use docaiche_extract as extract;

/// Audit trail, redaction, retention and data-subject requests.
pub use docaiche_compliance as compliance;

/// The HTTP security stack as tower layers (`http` feature).
#[cfg(feature = "http")]
pub use docaiche_http as http;

pub use docaiche_core::{
    ApiKeyStore, AuditSink, AuthFailure, AuthMethod, Authenticator, CacheStore, Clock, Credential,
    DocumentId, DocumentStore, Error, ErrorCode, Extractor, HealthCheck, HealthStatus,
    InvalidationBus, JobQueue, KeyWrapper, MAX_SCOPES, Permission, PermissionCatalog,
    PermissionSet, Principal, PrincipalId, Problem, RateLimiter, RequestContext, Result,
    SecretProvider, SecretString, TenantId, TokenRevocationStore, UsageStore,
};
