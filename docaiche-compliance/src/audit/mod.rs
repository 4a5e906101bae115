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
//! # Migration to tree heads
//!
//! Records are unchanged: a trail written before tree heads existed keeps
//! verifying as it did, and [`Verifier`] reads old and new lines alike. An
//! old file trail reopened with [`FileSinkConfig::with_tree_heads`] gets the
//! tree of every stream rebuilt from its records (read once on open, as the
//! heads already were) and a first head per stream with its first batch or
//! tick; from then on the old records are covered like new ones. The JSON
//! checkpoints of [`CheckpointPolicy`] may stay on beside the heads or be
//! turned off: heads vouch for everything they did. `PgAuditTrail`'s
//! migration adds the tree columns to `audit_trail_heads` and `tree_head`
//! to the kinds a row may have (the table's constraint checked once); each
//! stream's tree is rebuilt from its rows by the first writer with tree
//! heads that extends it, or by its `sign_due_heads`. Two limits: a verifier
//! older than tree heads refuses their lines (update verifiers before
//! writers), and a stream whose first records retention removed has no tree
//! to rebuild, so it gets no heads (its chain still starts at the signed
//! anchor).
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
//! - **A verifiable log per stream** ([`merkle`], [`TreeHead`]). Each
//!   stream is also an RFC 9162 Merkle tree whose leaf `seq - 1` holds
//!   record `seq`'s hash (which covers the line as written); with [`FileSinkConfig::with_tree_heads`] the
//!   writer signs the tree's head (size, root, time) as a C2SP checkpoint
//!   at least once a [`TreeHeadPolicy::every`] (1 s) while a stream grows
//!   and once a [`TreeHeadPolicy::idle`] while it does not. A head lets a
//!   third party check one record with an inclusion proof of a few hundred
//!   bytes, and a later head extend an earlier one with a consistency
//!   proof, without the trail; an auditor who keeps the heads
//!   ([`Verifier::with_history`]) catches a trail cut back or rewritten
//!   after they were taken, which a chain alone cannot show. The cost: a
//!   leaf hash of 32 bytes and about one node hash a record, a [`merkle::Frontier`]
//!   (at most 64 hashes) a stream in the writer, one head line a stream a
//!   second under load. The `docaiche-audit` binary verifies trails, proofs
//!   and head histories offline.
//! - **Sinks** ([`JsonlFileSink`], `PgAuditTrail` under the `postgres`
//!   feature, [`StdoutSink`], [`FanOutSink`]) implement
//!   [`AuditSink`](docaiche_core::AuditSink); [`BufferedSink`] puts a
//!   bounded queue with back-pressure in front, and [`Auditor`] refuses
//!   administrative actions that cannot be audited (fail closed).
//! - **One writer per trail.** Two writers of one file, each with its own
//!   stream heads, would fork every chain they share, and verification
//!   would cry tampering. [`JsonlFileSink::open`] takes an exclusive OS lock
//!   on `<path>.lock` for the life of its writer; a second open fails with
//!   [`TrailLocked`] (the trail and the holder's pid). A process that only
//!   has events to add (a CLI beside the server) deposits them in the
//!   trail's [`AuditInbox`] through an [`InboxSink`], and the owner appends
//!   them to its own chain ([`AuditInbox::ingest`]). `PgAuditTrail` needs
//!   no lock of its own: each append locks its stream's head row in the
//!   database, so any number of processes extend one chain.
//! - **Private files.** The trail, its segments, anchor, lock file and inbox
//!   files are created 0600 and their directories 0700, the mode set
//!   explicitly so the umask cannot widen it; existing files keep theirs.
//! - **Sensitive details** become keyed hashes with [`DetailHasher`] before
//!   they reach a sink: put a [`ProtectedSink`] (with
//!   [`DEFAULT_PROTECTED_PATHS`] and your own dotted paths, such as
//!   `subjects.account`) in front of the storing sinks, behind the buffer,
//!   so every event passes through it. [`derive_key`] derives its key from
//!   another secret when no dedicated one is configured.
//! - **Retention cuts a prefix behind a signed [`Anchor`].** A chain cannot
//!   lose records silently, so retention removes only a stream's oldest
//!   records and first records where each stream now starts (its last
//!   removed sequence number and hash), signed with the checkpoint key in
//!   a domain of its own. [`Verifier::with_anchor`] lets a stream start
//!   there, and only there, when the anchor verifies; a forged or unsigned
//!   anchor counts for nothing, so a removal stays visible.
//!   [`FileTrailRetention`] removes whole rotated segments of the file
//!   trail (never the active file, never part of a segment, none holding a
//!   younger record or one of a tenant under a legal hold on `audit`) and
//!   keeps the anchor in `<path>.anchor` (written to a temporary file,
//!   fsynced, renamed); `PgTrailRetention` deletes each stream's expired
//!   prefix through `PgAuditTrail::purge_through`, the one
//!   path the table's delete trigger lets through (the owner, in the
//!   transaction that writes the stream's anchor row). Both are a
//!   [`TrailRetention`](crate::retention::TrailRetention) for the
//!   [`Purger`](crate::retention::Purger), which records each cut
//!   (`retention.purge`) before making it. A purge refuses a trail that
//!   does not verify: evidence of tampering is never purged.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> docaiche_core::Result<()> {
//! use docaiche_compliance::audit::{Anchor, CheckpointKey, FileTrailRetention, Verifier};
//! use docaiche_compliance::retention::{
//!     MemoryLegalHoldRegistry, RetentionPolicies, TrailRetention, resource,
//! };
//! # let dir = std::env::temp_dir().join(format!("audit-ret-doc-{}", uuid::Uuid::new_v4()));
//! # std::fs::create_dir_all(&dir).ok();
//! # let path = dir.join("audit.jsonl");
//! # let sink = docaiche_compliance::audit::JsonlFileSink::open(
//! #     docaiche_compliance::audit::FileSinkConfig::new(&path))?;
//! let key = CheckpointKey::from_bytes("audit/checkpoint-key", &vec![7u8; 32].into())?;
//! let policies = RetentionPolicies::new().with_default(resource::AUDIT, 365);
//! FileTrailRetention::new(&path, key.clone())
//!     .purge_trail(&policies, &MemoryLegalHoldRegistry::new(), &sink,
//!                  time::OffsetDateTime::now_utc())
//!     .await?;
//! let mut verifier = Verifier::new().with_key(key);
//! if let Some(anchor) = Anchor::load(&path)? {
//!     verifier = verifier.with_anchor(anchor);
//! }
//! # let _ = verifier; std::fs::remove_dir_all(dir).ok();
//! # Ok(()) }
//! ```

mod anchor;
mod buffer;
mod chain;
mod fanout;
mod file;
mod inbox;
mod keyed_hash;
mod lock;
pub mod merkle;
#[cfg(feature = "postgres")]
mod postgres;
mod private_fs;
mod protected;
pub mod record;
mod stdout;
mod trail_proof;
mod trail_retention;
mod tree_head;
mod verify;

pub use anchor::Anchor;
pub use buffer::{Auditor, BufferConfig, BufferedSink, Criticality, DROPPED_ACTION};
pub use chain::CheckpointPolicy;
pub use fanout::{FanOutPolicy, FanOutSink};
pub use file::{FileSinkConfig, FsyncPolicy, JsonlFileSink};
pub use inbox::{AuditInbox, InboxSink, MAX_INGEST};
pub use keyed_hash::{DetailHasher, HASHED_PREFIX, derive_key};
pub use lock::TrailLocked;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{MIGRATION as PG_MIGRATION, PgAuditTrail, PgTrailRetention};
pub use protected::{DEFAULT_PROTECTED_PATHS, ProtectedSink};
pub use record::{CheckpointKey, Hash, Head};
pub use stdout::StdoutSink;
pub use trail_proof::{HeadConsistency, RecordProof, TrailTrees};
pub use trail_retention::FileTrailRetention;
pub use tree_head::{TreeHead, TreeHeadPolicy, history_to_text};
pub use verify::{
    LOOK_AHEAD, LineReader, Location, Tamper, TamperKind, TrailLine, Verifier, VerifyReport, Walk,
    read_lines, trail_segments,
};
