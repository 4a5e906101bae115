//! # docaiche-compliance
//!
//! Compliance for DocAIche servers: a tamper-evident audit trail (hash
//! chains per tenant, signed checkpoints, `verify`) that is also a
//! verifiable log (an RFC 9162 Merkle tree per tenant, signed tree heads,
//! inclusion and consistency proofs), audit sinks (JSON lines
//! file, PostgreSQL, stdout, fan-out) behind a bounded buffer that never
//! drops silently, PII redaction for logs and audit details, retention with
//! legal hold, data-subject export and erasure (GDPR Art. 15, 17, 20; CCPA),
//! and compliance reports.
//!
//! The contract the sinks implement is
//! [`AuditSink`](docaiche_core::AuditSink), with the event schema
//! [`AuditEvent`](contracts::AuditEvent). Record events into a chained
//! trail, then walk it to find the first record that was modified,
//! removed, inserted or reordered ([`audit`]):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> docaiche_core::Result<()> {
//! use docaiche_compliance::audit::{FileSinkConfig, JsonlFileSink, Verifier};
//! use docaiche_compliance::contracts::{AuditEvent, AuditOutcome, AuditSink};
//! use docaiche_core::{RequestContext, TenantId, clock::{Clock, ManualClock}};
//!
//! # let dir = std::env::temp_dir().join(format!("docaiche-doc-{}", uuid::Uuid::new_v4()));
//! let path = dir.join("audit.jsonl");
//! let trail = JsonlFileSink::open(FileSinkConfig::new(&path))?;
//! let clock = ManualClock::new();
//! let event = AuditEvent::new("auth.login", AuditOutcome::Denied, clock.now(), &RequestContext::new())
//!     .by(TenantId::new("acme")?, None)
//!     .because("bad_credential");
//! let receipt = trail.record(&event).await?; // on disk once this returns
//! assert_eq!(receipt.sequence, Some(1));
//!
//! let report = Verifier::new().verify_path(&path)?;
//! assert!(report.is_ok());
//! # std::fs::remove_dir_all(dir).ok();
//! # Ok(()) }
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | [`audit`] | the tamper-evident trail, its sinks and the verifier; Merkle trees, signed tree heads and proofs ([`audit::merkle`], [`TreeHead`](audit::TreeHead), [`RecordProof`](audit::RecordProof)); keyed hashes of personal details on the way in ([`ProtectedSink`](audit::ProtectedSink)) |
//! | [`redact`] | one PII and secret [`Redactor`](redact::Redactor) for log lines and audit details, measured on a labelled corpus |
//! | [`retention`] | periods per tenant and resource kind (static, or read per run from the tenant registry), legal holds, the audited [`Purger`](retention::Purger) and its schedule |
//! | [`privacy`] | data-subject requests with legal deadlines, export bundles (account, documents, keys, audit entries), erasure with crypto-shredding and a pseudonymous tombstone; durable request and legal hold stores (`privacy::sql`) |
//! | [`report`] | the [`ComplianceReport`](report::ComplianceReport), as JSON and as an escaped HTML page |
//!
//! What the crate deliberately does not do: find personal data that has no
//! syntactic shape (names, street addresses), or decide which data you may
//! keep; it enforces the periods and holds you configure and proves what
//! it did on the audit trail.
//!
//! | feature | enables |
//! |---|---|
//! | `postgres` | `audit::PgAuditTrail`: the trail in PostgreSQL (sqlx); `privacy::sql::PgComplianceStore`: privacy requests and legal holds in PostgreSQL |
//! | `sqlite` | `privacy::sql::SqliteComplianceStore`: privacy requests and legal holds in SQLite (sqlx, SQLite compiled in) |
//! | `tracing-subscriber` | `redact::RedactingMakeWriter` for the fmt layer |
//!
//! ## MSRV
//!
//! Rust 1.88.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod audit;
pub mod privacy;
pub mod redact;
pub mod report;
pub mod retention;

/// The core contracts this crate implements.
pub mod contracts {
    pub use docaiche_core::audit::{
        AuditEvent, AuditOutcome, AuditReceipt, AuditResource, AuditSink,
    };
}
