//! # docaiche-store
//!
//! Persistence adapters for the `docaiche-core` backend traits, and the
//! conformance suite that tells any adapter (ours or yours) whether it keeps
//! those traits' contracts.
//!
//! What is here today, always compiled:
//!
//! - [`memory`]: real, bounded, concurrency-safe in-memory backends for
//!   [`ApiKeyStore`](docaiche_core::ApiKeyStore),
//!   [`TokenRevocationStore`](docaiche_core::TokenRevocationStore),
//!   [`DocumentStore`](docaiche_core::DocumentStore),
//!   [`CacheStore`](docaiche_core::CacheStore),
//!   [`JobQueue`](docaiche_core::JobQueue),
//!   [`UsageStore`](docaiche_core::UsageStore),
//!   [`WebSessionStore`](docaiche_core::WebSessionStore) and
//!   [`AuditSink`](docaiche_core::AuditSink), each timed by an injected
//!   [`Clock`](docaiche_core::Clock). They are the reference the conformance
//!   suite is written against, and a fine choice for tests and one-process
//!   deployments.
//! - [`secret`]: [`SecretProvider`](docaiche_core::SecretProvider)s reading
//!   the environment, a directory of files, or memory, and a
//!   [`SecretChain`] that never skips a provider that
//!   is down.
//! - [`LocalKeyWrapper`]: AES-256-GCM envelope encryption of data keys under
//!   versioned, rotatable key-encryption keys held in memory.
//! - [`encryption`] holds [`EncryptedDocumentStore`](encryption::EncryptedDocumentStore),
//!   envelope encryption at rest over any `DocumentStore`, with per-subject
//!   data keys for crypto-shredding and rewrapping after a KEK rotation.
//!   The wrapped keys live in a [`DataKeyStore`](encryption::DataKeyStore)
//!   beside the documents (memory, SQLite or PostgreSQL); unwrapped keys
//!   are cached in memory, bounded, and only used while the store still
//!   holds the wrapped key they came from.
//! - [`read_through`] puts a cache in front of a computation with single-flight
//!   on a miss and probabilistic early refresh (no stampede).
//! - `conformance` (feature): one async function per trait that runs the
//!   whole contract against an `Arc<dyn Trait>`.
//!
//! What this crate deliberately does not do: it defines no traits (they live
//! in `docaiche-core`, so a custom backend needs only that crate), makes no
//! authorization decisions (callers pass the tenant they have already
//! authorized), and never shares state between processes itself: state that
//! must be shared belongs in PostgreSQL, Redis or Vault, through the
//! adapters behind the features below.
//!
//! ```
//! # futures_block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use docaiche_core::{CacheStore, ManualClock, cache::CacheKey};
//! use docaiche_store::memory::MemoryCacheStore;
//!
//! let clock = ManualClock::new();
//! let cache = MemoryCacheStore::new().with_clock(Arc::new(clock.clone()));
//! let key = CacheKey::new("extract", "sha256:ab12")?;
//! cache.set(&key, Bytes::from_static(b"text"), Duration::from_secs(60)).await?;
//! assert!(cache.get(&key).await?.is_some());
//!
//! clock.advance(Duration::from_secs(60));
//! assert!(cache.get(&key).await?.is_none(), "never returned after its TTL");
//! # Ok::<(), docaiche_core::Error>(()) }).unwrap();
//! # fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
//!
//! ## Design decision: bounded memory that refuses rather than forgets
//!
//! Every memory backend has a configurable bound. Where forgetting is part of
//! the contract (a cache entry, a revocation whose token has expired) the
//! store forgets; where it is not (an audit event, a live revocation, a
//! document) it refuses with `Error::Unavailable`, which security callers
//! already treat as "fail closed". The cost: a full store turns writes into
//! errors instead of degrading silently, so size the bounds for your load.
//!
//! ## Features
//!
//! | feature | enables |
//! |---|---|
//! | `conformance` | the [`conformance`] module (pulls in tokio's `rt` and `sync`) |
//! | `sqlite` | [`sqlite`]: embedded SQLite adapters (sqlx, SQLite compiled in) |
//! | `postgres` | [`postgres`]: PostgreSQL adapters (sqlx), RLS, read replica |
//! | `redis` | [`redis`]: Redis `CacheStore`, `TokenRevocationStore`, `WebSessionStore` and `InvalidationBus` (pub/sub) (standalone or cluster) |
//! | `vault` | [`vault`]: Vault / OpenBao KV v2 secrets (cached; token or AppRole auth with renewal) and Transit key wrapping |
//!
//! ## SQL adapters (`sqlite`, `postgres`)
//!
//! [`sqlite`] and [`postgres`] implement
//! [`DataKeyStore`](encryption::DataKeyStore) (table `data_keys`, under
//! row-level security on PostgreSQL like every tenant table),
//! [`DocumentStore`](docaiche_core::DocumentStore),
//! [`ApiKeyStore`](docaiche_core::ApiKeyStore),
//! [`CustomRoleStore`](docaiche_core::CustomRoleStore) (table `custom_roles`,
//! its per-tenant bound kept under racing creations),
//! [`MfaStore`](docaiche_core::MfaStore) (tables `mfa_enrolments` and
//! `mfa_recovery_codes`: conditional `UPDATE`s as the compare-and-set of
//! the last accepted step and of each recovery code, reads on the primary),
//! [`TokenRevocationStore`](docaiche_core::TokenRevocationStore),
//! [`WebSessionStore`](docaiche_core::WebSessionStore) (table
//! `web_sessions`: browser sessions every instance sees; outside row-level
//! security, since a session is found by its key before the tenant is
//! known),
//! [`JobQueue`](docaiche_core::JobQueue),
//! [`UsageStore`](docaiche_core::UsageStore) (per-key usage counters:
//! minute, hour and day tables written together, one query per top-N; see
//! `PgUsageStore` for the figures) and
//! [`AuditSink`](docaiche_core::AuditSink) on `sqlx`, and pass the same
//! [`conformance`] suite as the memory backends. `SqliteStore::connect` /
//! `PgStore::connect` apply the embedded migrations (`migrations/`) before
//! handing out adapters; `sqlite::migrate` / `postgres::migrate` run them on
//! their own. Every statement is parameterized, every tenant-scoped one has
//! `tenant_id` in its predicate, and every query path has an index (a
//! PostgreSQL test `EXPLAIN`s each one over 20 000+ rows). Pool settings are
//! a serde [`sql::PoolConfig`]; live figures come from `pool_stats()` and a
//! [`HealthCheck`](docaiche_core::HealthCheck) per store.
//!
//! Design decision: both engines share one schema shape, with timestamps as
//! Unix microseconds and caller-chosen strings as UTF-8 bytes (`bytea`),
//! because PostgreSQL `text` cannot hold NUL and the contracts require NUL
//! to round-trip. The cost: those columns read as bytes in `psql`, and
//! times come back truncated to the microsecond. See [`sql`].
//!
//! ## Vault (`vault`)
//!
//! [`vault`] reads secrets from KV v2 and wraps data keys with Transit; the
//! Transit key must be created with `derived=true` (Vault ignores the
//! context of a non-derived key, so the wrapper refuses one), and the
//! wrapper's token needs `read` on `transit/keys/<key>` besides `datakey`,
//! `decrypt` and `rewrap`.
//!
//! ## Tracing
//!
//! Every call an adapter makes to its backend runs in a `tracing` span, so
//! an embedder sees its store calls under its own request spans with any
//! subscriber, and `tracing-opentelemetry` exports them as OpenTelemetry
//! `client` spans (the fields follow the database semantic conventions):
//!
//! | field | value |
//! |---|---|
//! | span name | `backend` |
//! | `otel.name` | `"<operation> <collection>"`, e.g. `find_by_lookup api_keys` |
//! | `otel.kind` | `client` |
//! | `db.system.name` | `memory`, `sqlite`, `postgresql`, `redis`, `vault`, `local` |
//! | `db.collection.name` | `api_keys`, `revoked_tokens`, `revoked_subjects`, `web_sessions` (Redis), `documents`, `document_texts`, `data_keys`, `invalidate`, `kv`, `transit` |
//! | `db.operation.name` | the trait method: `get`, `put`, `is_token_revoked`, `unwrap_key`, … (`put`/`get` for `put_text`/`get_text`) |
//! | `otel.status_code`, `error.type` | on failure: `ERROR` and the stable [`ErrorCode`](docaiche_core::ErrorCode) (`unavailable`, `conflict`, …) |
//!
//! Which calls: [`ApiKeyStore`](docaiche_core::ApiKeyStore),
//! [`TokenRevocationStore`](docaiche_core::TokenRevocationStore),
//! [`DocumentStore`](docaiche_core::DocumentStore) and
//! [`DataKeyStore`](encryption::DataKeyStore) on memory, SQLite and
//! PostgreSQL (Redis for revocations); `publish` on the Redis
//! [`InvalidationBus`](docaiche_core::InvalidationBus) (not `subscribe`, a
//! long-lived stream); KV reads of the Vault
//! [`SecretProvider`](docaiche_core::SecretProvider) that reach Vault (a
//! cache hit is no call); and the [`KeyWrapper`](docaiche_core::KeyWrapper)s,
//! Vault Transit and [`LocalKeyWrapper`] (collection `transit`, system
//! `vault` or `local`). A token check (`is_token_revoked`) is one span,
//! whatever its round trips. The caches, job queues, accounts and audit
//! sinks open none. Wrappers such as
//! [`EncryptedDocumentStore`](encryption::EncryptedDocumentStore) add no
//! span of their own: their inner store's calls show.
//!
//! The spans are at `INFO` under this crate's module targets
//! (`docaiche_store::sqlite::stores`, …): silence them with a filter such
//! as `docaiche_store=warn`. With no subscriber interested, a call costs a
//! level check and a cached-interest load, and allocates nothing.
//!
//! ## MSRV
//!
//! Rust 1.88.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
pub mod encryption;
pub mod key_wrapper;
pub mod memory;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub mod read_through;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
pub mod secret;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub mod sql;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
mod trace;
/// Vault / OpenBao adapters: KV v2 [`SecretProvider`](docaiche_core::SecretProvider)
/// and Transit [`KeyWrapper`](docaiche_core::KeyWrapper).
#[cfg(feature = "vault")]
#[cfg_attr(docsrs, doc(cfg(feature = "vault")))]
pub mod vault;

pub use key_wrapper::LocalKeyWrapper;
pub use memory::{
    MemoryAccountStore, MemoryApiKeyStore, MemoryAuditSink, MemoryCacheStore, MemoryDocumentStore,
    MemoryJobQueue, MemoryMfaStore, MemoryRevocationStore, MemoryUsageStore,
};
pub use secret::{EnvSecretProvider, FileSecretProvider, MemorySecretProvider, SecretChain};
