//! The audit event schema and the [`AuditSink`] contract.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::context::RequestContext;
use crate::error::Result;
use crate::id::{PrincipalId, TenantId};

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditOutcome {
    /// It happened.
    Success,
    /// It was attempted and failed (bad password, backend error).
    Failure,
    /// It was refused by policy (missing permission, rate limit, lockout).
    Denied,
}

/// What an action was performed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditResource {
    /// Kind: `document`, `api_key`, `principal`, `privacy_request`, …
    pub kind: String,
    /// Id within the kind.
    pub id: String,
}

impl AuditResource {
    /// A resource reference.
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
        }
    }
}

/// One audited action. The schema is fixed; free-form detail goes in
/// `details`, where sensitive values are stored as keyed hashes by the
/// compliance crate before the event reaches a sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// Unique event id (UUIDv7).
    pub id: uuid::Uuid,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The tenant whose stream it belongs to (`None` when unknown, e.g. a
    /// login attempt for a tenant that does not exist).
    pub tenant: Option<TenantId>,
    /// Who acted (`None` when unauthenticated).
    pub actor: Option<PrincipalId>,
    /// Dotted action name: `auth.login`, `api_key.create`, `document.delete`.
    pub action: String,
    /// What it was done to.
    pub resource: Option<AuditResource>,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// Why (a stable reason code, e.g. `bad_credential`).
    pub reason: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Trace id.
    pub trace_id: Option<String>,
    /// Client address.
    pub client_addr: Option<IpAddr>,
    /// User agent.
    pub user_agent: Option<String>,
    /// Extra structured detail.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, serde_json::Value>,
}

impl AuditEvent {
    /// An event for `action` with `outcome`, at `time`, filled from `context`.
    pub fn new(
        action: impl Into<String>,
        outcome: AuditOutcome,
        time: OffsetDateTime,
        context: &RequestContext,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7(),
            time,
            tenant: None,
            actor: None,
            action: action.into(),
            resource: None,
            outcome,
            reason: None,
            request_id: context.request_id.clone(),
            trace_id: context.trace_id.clone(),
            client_addr: context.client_addr,
            user_agent: context.user_agent.clone(),
            details: BTreeMap::new(),
        }
    }

    /// Set tenant and actor.
    #[must_use]
    pub fn by(mut self, tenant: TenantId, actor: Option<PrincipalId>) -> Self {
        self.tenant = Some(tenant);
        self.actor = actor;
        self
    }

    /// Set the resource.
    #[must_use]
    pub fn on(mut self, resource: AuditResource) -> Self {
        self.resource = Some(resource);
        self
    }

    /// Set the reason.
    #[must_use]
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Add a detail.
    #[must_use]
    pub fn with_detail(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.details.insert(key.into(), value);
        self
    }
}

/// Proof that a sink durably accepted an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditReceipt {
    /// Position in the tenant's stream, if the sink sequences events.
    pub sequence: Option<u64>,
}

impl AuditReceipt {
    /// A receipt.
    #[must_use]
    pub const fn new(sequence: Option<u64>) -> Self {
        Self { sequence }
    }
}

/// Where audit events go.
///
/// Contract:
/// - `record` returns only once the event is as durable as the sink
///   promises (written, or fsynced under its policy): an `Ok` receipt means
///   the event will not be lost by this sink.
/// - Events of one tenant are recorded in call order.
/// - A sink never drops an event silently: failure is `Err(Unavailable)`,
///   which callers in fail-closed mode turn into a refusal of the action.
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync + fmt::Debug + 'static {
    /// Record one event.
    ///
    /// # Errors
    /// `Unavailable` if the event could not be recorded.
    async fn record(&self, event: &AuditEvent) -> Result<AuditReceipt>;

    /// Make everything recorded so far durable.
    ///
    /// # Errors
    /// `Unavailable` if flushing failed.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}
