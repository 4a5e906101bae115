//! The tamper-evident audit trail.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> docaiche_core::Result<()> {
//! use docaiche_compliance::audit::{FileSinkConfig, JsonlFileSink, Verifier};
//! use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditSink};
//! use docaiche_core::{RequestContext, TenantId};
//!
//! let dir = std::env::temp_dir().join(format!("audit-doc-{}", uuid::Uuid::new_v4()));
//! let path = dir.join("audit.jsonl");
//! let sink = JsonlFileSink::open(FileSinkConfig::new(&path))?;
//! let event = AuditEvent::new("api_key.create", AuditOutcome::Success,
//!         time::OffsetDateTime::now_utc(), &RequestContext::new())
//!     .by(TenantId::new("acme")?, None);
//! let receipt = sink.record(&event).await?; // fsynced (group commit)
//! assert_eq!(receipt.sequence, Some(1));
//!
//! let report = Verifier::new().verify_path(&path)?;
//! assert!(report.is_ok(), "{:?}", report.tamper);
//! # std::fs::remove_dir_all(dir).ok(); Ok(()) }
//! ```
//!
//! # Design
//!
//! - **One chain per tenant.** Each record carries its stream's sequence
//!   number and the previous record's hash ([`record`] has the byte
//!   layout). Per-tenant chains let tenants be exported, verified and
//!   retained on their own, and let writers of different tenants proceed
//!   in parallel; the cost is that an attacker who deletes a whole tenant
//!   stream leaves no gap in the others: checkpoints name every stream.
//! - **Hash the bytes as written.** Verification never re-serialises, so
//!   every flipped byte is caught, whatever a JSON parser would tolerate.
//! - **Signed checkpoints** (HMAC-SHA-256, key from a
//!   [`SecretProvider`](docaiche_core::SecretProvider)) vouch for a head:
//!   SHA-256 chains alone can be recomputed by whoever rewrites the file.
//!   HMAC rather than Ed25519 keeps the crate on one primitive; the price is
//!   that whoever verifies MACs could also forge them, so give auditors the
//!   key through a separate secret path and keep checkpoints exported.
//! - **Sinks** ([`JsonlFileSink`], `PgAuditTrail` under the `postgres`
//!   feature, [`StdoutSink`], [`FanOutSink`]) implement
//!   [`AuditSink`](docaiche_core::AuditSink); [`BufferedSink`] puts a
//!   bounded queue with back-pressure in front, and [`Auditor`] refuses
//!   administrative actions that cannot be audited (fail closed).
//! - **Sensitive details** become keyed hashes with [`DetailHasher`] before
//!   they reach a sink: put a [`ProtectedSink`] (with
//!   [`DEFAULT_PROTECTED_PATHS`] and your own dotted paths, such as
//!   `subjects.account`) in front of the storing sinks, behind the buffer,
//!   so every event passes through it. [`derive_key`] derives its key from
//!   another secret when no dedicated one is configured.

mod buffer;
mod chain;
mod fanout;
mod file;
mod keyed_hash;
#[cfg(feature = "postgres")]
mod postgres;
mod protected;
pub mod record;
mod stdout;
mod verify;

pub use buffer::{Auditor, BufferConfig, BufferedSink, Criticality, DROPPED_ACTION};
pub use chain::CheckpointPolicy;
pub use fanout::{FanOutPolicy, FanOutSink};
pub use file::{FileSinkConfig, FsyncPolicy, JsonlFileSink};
pub use keyed_hash::{DetailHasher, HASHED_PREFIX, derive_key};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{MIGRATION as PG_MIGRATION, PgAuditTrail};
pub use protected::{DEFAULT_PROTECTED_PATHS, ProtectedSink};
pub use record::{CheckpointKey, Hash, Head};
pub use stdout::StdoutSink;
pub use verify::{
    LOOK_AHEAD, LineReader, Location, Tamper, TamperKind, TrailLine, Verifier, VerifyReport, Walk,
    read_lines, trail_segments,
};
