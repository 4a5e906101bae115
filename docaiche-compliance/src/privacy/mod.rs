//! Data-subject requests (GDPR Art. 15, 17, 20; CCPA): record each request
//! with its legal deadline, export everything held about a subject as one
//! JSON bundle, erase a subject (delete, revoke, crypto-shred) leaving a
//! pseudonymised tombstone on the audit trail.
//!
//! ```
//! use std::sync::Arc;
//! use docaiche_compliance::privacy::{
//!     MemoryPrivacyRequestStore, Regulation, RequestKind, SubjectRightsService,
//! };
//! use docaiche_core::secret::SecretBytes;
//! use docaiche_core::{
//!     ApiKeyStore, AuthMethod, AuditSink, DocumentStore, ManualClock, Permission, Principal,
//!     PrincipalId, RequestContext, TenantId,
//! };
//!
//! # async fn demo(documents: Arc<dyn DocumentStore>, keys: Arc<dyn ApiKeyStore>, audit: Arc<dyn AuditSink>) -> docaiche_core::Result<()> {
//! let service = SubjectRightsService::new(
//!     documents,
//!     keys,
//!     Arc::new(MemoryPrivacyRequestStore::new()),
//!     audit,
//!     Arc::new(ManualClock::new()),
//!     &SecretBytes::new(vec![0x42; 32]), // from your secret provider
//! )?;
//! let acme = TenantId::new("acme")?;
//! let dpo = Principal::new(PrincipalId::new("dpo")?, acme.clone(), AuthMethod::Password)
//!     .with_permissions([Permission::PRIVACY_EXPORT, Permission::PRIVACY_ERASE].into_iter().collect());
//! let ctx = RequestContext::new();
//!
//! let request = service
//!     .submit(&dpo, &acme, PrincipalId::new("alice")?, RequestKind::Export, Regulation::Gdpr, &ctx)
//!     .await?;
//! assert_eq!((request.deadline - request.received_at).whole_days(), 30);
//! let bundle = service.export(&dpo, &acme, &request.id, &ctx).await?;
//! let json = serde_json::to_vec_pretty(&bundle).map_err(|e| docaiche_core::Error::internal_with("export", e))?;
//! # let _ = json; Ok(()) }
//! ```
//!
//! ## Where requests and holds are kept
//!
//! [`MemoryPrivacyRequestStore`] (and the retention module's
//! `MemoryLegalHoldRegistry`) keep them for the life of the process.
//! Durable: the `sql` module (features `postgres`, `sqlite`): `PgComplianceStore` and
//! `SqliteComplianceStore`, one value implementing both
//! [`PrivacyRequestStore`] and
//! [`LegalHoldRegistry`](crate::retention::LegalHoldRegistry), tables
//! created on start-up.
//!
//! ## How long request records are kept
//!
//! [`PrivacyRequestPurgeTarget`] gives the retention
//! [`Purger`](crate::retention::Purger) the request records (kind
//! [`resource::PRIVACY_REQUESTS`](crate::retention::resource::PRIVACY_REQUESTS)):
//! closed requests (`completed`, `rejected`) are deleted once their
//! closing is older than the tenant's period; open ones (`received`,
//! `in_progress`, `failed`) never are, and a legal hold on the subject or
//! on the kind keeps them. Export bundles are not stored, only returned.
//!
//! ## What erasure does, and what it cannot
//!
//! - Documents owned by the subject: deleted (content, text, metadata).
//! - Their data key: destroyed through a [`CryptoShredder`] if one is
//!   configured, which makes every encrypted copy unreadable, backups
//!   included.
//! - Their password account (with
//!   [`SubjectRightsService::with_accounts`]): deleted, e-mail and
//!   password hash with it; exports carry it as an [`ExportedAccount`]
//!   (never the hash).
//! - API keys acting as the subject: revoked, then their records deleted
//!   ([`ApiKeyStore::delete`](docaiche_core::ApiKeyStore::delete)), name
//!   and usage with them. Give the service a store that also evicts
//!   verified keys cached by your authenticator (e.g. one delegating to
//!   `docaiche_auth`'s `ApiKeyService::revoke` and `delete`), so they stop
//!   working at once rather than within the cache's TTL.
//! - Their privacy request records: the subject id is replaced by the
//!   pseudonym.
//! - The audit trail is append-only and tamper-evident: entries written
//!   before the erasure keep what they recorded (kept under GDPR Art.
//!   17(3)(b) and (e): legal obligation, legal claims; give the trail a
//!   retention period). The privacy events themselves only ever carry the
//!   pseudonym.
//! - A legal hold covering the subject refuses the erasure (status
//!   `rejected`, reason `legal_hold`).

mod purge;
mod request;
mod service;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "sqlite"))))]
pub mod sql;

pub use purge::PrivacyRequestPurgeTarget;
pub use request::{
    MemoryPrivacyRequestStore, PrivacyRequest, PrivacyRequestStore, Regulation, RequestKind,
    RequestStatus,
};
pub use service::{
    CryptoShredder, EXPORT_FORMAT, ErasureReport, ExportBundle, ExportedAccount, ExportedApiKey,
    ExportedDocument, SUBJECT_RESOURCE, SubjectAuditSource, SubjectRightsService, event_concerns,
};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use sql::PgComplianceStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sql::SqliteComplianceStore;
