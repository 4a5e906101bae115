//! Retention: how long each kind of data is kept per tenant, legal holds
//! that suspend deletion, and the scheduled purge that deletes what has
//! expired, recording every deletion on the audit trail.
//!
//! ```
//! use std::sync::Arc;
//! use docaiche_compliance::retention::{
//!     DocumentPurgeTarget, LegalHold, LegalHoldRegistry, MemoryLegalHoldRegistry, Purger,
//!     RetentionPolicies, resource,
//! };
//! use docaiche_core::{Clock, DocumentStore, ManualClock, PrincipalId, TenantId};
//! # use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};
//! # #[derive(Debug)] struct Sink;
//! # #[async_trait::async_trait] impl AuditSink for Sink {
//! #     async fn record(&self, _: &AuditEvent) -> docaiche_core::Result<AuditReceipt> { Ok(AuditReceipt::new(None)) }
//! # }
//!
//! # async fn demo(documents: Arc<dyn DocumentStore>) -> docaiche_core::Result<()> {
//! let clock = Arc::new(ManualClock::new());
//! let acme = TenantId::new("acme")?;
//! let policies = RetentionPolicies::new()
//!     .with_default(resource::DOCUMENTS, 90)
//!     .with_tenant(acme.clone(), resource::DOCUMENTS, 30);
//! let holds = Arc::new(MemoryLegalHoldRegistry::new());
//! // Litigation: keep everything of bob.
//! holds.place(
//!     LegalHold::new(acme.clone(), "case 2026-17", PrincipalId::new("counsel")?, clock.now())
//!         .on_subject(PrincipalId::new("bob")?),
//! ).await?;
//! let purger = Purger::new(
//!     policies,
//!     holds,
//!     vec![Arc::new(DocumentPurgeTarget::new(documents))],
//!     Arc::new(Sink),
//!     clock,
//! )?;
//! let report = purger.run(&[acme]).await;
//! println!("purged {}, held {}", report.purged(), report.held());
//! # Ok(()) }
//! ```
//!
//! What a target must offer is the [`Purgeable`] trait (page through
//! items older than a cutoff, delete one). [`DocumentPurgeTarget`]
//! implements it over any `DocumentStore`, whose contract already lists a
//! tenant's documents with their creation time.
//! [`PrivacyRequestPurgeTarget`](crate::privacy::PrivacyRequestPurgeTarget)
//! implements it over any `PrivacyRequestStore` (kind
//! [`resource::PRIVACY_REQUESTS`]): closed requests only, counted from
//! their closing; open requests, which have legal deadlines, are never
//! purged. The audit trail's own
//! retention (`audit`, typically a year) is a [`TrailRetention`] given to
//! [`Purger::with_trail`] (`audit::FileTrailRetention` for the file trail):
//! a hash-chained trail is cut as a whole prefix at a signed anchor, not
//! item by item.
//!
//! Where the periods come from is a [`RetentionSource`], asked once per
//! tenant at every run: the static [`RetentionPolicies`] by default, or,
//! with [`Purger::with_source`], [`TenantStoreRetention`], which applies
//! a tenant's `retention_days` from the tenant registry (`TenantStore`)
//! over the configured policies (stored setting, then the tenant's
//! configured period, then the default) and, as the schedule's
//! [`TenantDirectory`], lists the registry's tenants. A source that cannot
//! answer skips that tenant's run; it never falls back to a period that
//! may be shorter than the real one.
//!
//! [`MemoryLegalHoldRegistry`] keeps holds for the life of the process;
//! the privacy module's `sql` stores (`PgComplianceStore`,
//! `SqliteComplianceStore`, features `postgres` and `sqlite`) keep them in
//! a database, and implement [`LegalHoldRegistry`] too.

mod hold;
mod policy;
mod purge;
mod schedule;
mod source;

pub use hold::{LegalHold, LegalHoldRegistry, MemoryLegalHoldRegistry};
pub use policy::{MAX_RETENTION_DAYS, RetentionPolicies};
pub(crate) use purge::suspended_event;
pub use purge::{
    DocumentPurgeTarget, KindPurge, PurgeCandidate, PurgeReport, Purgeable, Purger, TrailRetention,
};
pub use schedule::{PurgeSchedule, StaticTenants, TenantDirectory};
pub use source::{RetentionSource, TenantStoreRetention};

/// Well-known resource kind names for [`RetentionPolicies`].
pub mod resource {
    /// Stored documents (content, text, metadata).
    pub const DOCUMENTS: &str = "documents";
    /// The audit trail.
    pub const AUDIT: &str = "audit";
    /// Data-subject request records and export bundles.
    pub const PRIVACY_REQUESTS: &str = "privacy_requests";
}
