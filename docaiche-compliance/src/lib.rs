//! # docaiche-compliance
//!
//! Compliance for DocAIche servers: a tamper-evident audit trail (hash
//! chains per tenant, signed checkpoints, `verify`), audit sinks (JSON lines
//! file, PostgreSQL, stdout, fan-out) behind a bounded buffer that never
//! drops silently, PII redaction for logs and audit details, retention with
//! legal hold, data-subject export and erasure (GDPR Art. 15, 17, 20; CCPA),
//! and compliance reports.
//!
//! **Status:** the crate is part of the workspace layout; its implementation
//! arrives with the compliance issue. The contract it implements is
//! [`AuditSink`](docaiche_core::AuditSink), with the event schema
//! [`AuditEvent`](contracts::AuditEvent):
//!
//! ```
//! use docaiche_compliance::contracts::{AuditEvent, AuditOutcome};
//! use docaiche_core::{RequestContext, clock::{Clock, ManualClock}};
//!
//! let clock = ManualClock::new();
//! let event = AuditEvent::new("auth.login", AuditOutcome::Denied, clock.now(), &RequestContext::new())
//!     .because("bad_credential");
//! assert_eq!(event.reason.as_deref(), Some("bad_credential"));
//! ```
//!
//! ## MSRV
//!
//! Rust 1.88.

pub mod audit;
pub mod privacy;
pub mod redact;
pub mod retention;

/// The core contracts this crate implements.
pub mod contracts {
    pub use docaiche_core::audit::{
        AuditEvent, AuditOutcome, AuditReceipt, AuditResource, AuditSink,
    };
}
