//! [`MemoryAuditSink`].

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};
use docaiche_core::{Result, TenantId};

use super::{capacity_exceeded, lock};

const STORE: &str = "memory audit sink";

/// Audit events in memory, one ordered stream per tenant (plus one for
/// events without a tenant).
///
/// Receipts carry the event's 1-based position in its tenant's stream.
/// Bounded to `max_events` (default 100 000) across streams; when full,
/// `record` is refused with `Unavailable`
/// ([`CapacityExceeded`](super::CapacityExceeded)) and nothing is dropped,
/// so a fail-closed caller refuses the audited action instead of losing the
/// trail. Read events back with [`MemoryAuditSink::events`].
#[derive(Debug)]
pub struct MemoryAuditSink {
    max_events: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    streams: HashMap<Option<TenantId>, Vec<AuditEvent>>,
    total: usize,
}

impl MemoryAuditSink {
    /// Default bound on the number of events held.
    pub const DEFAULT_MAX_EVENTS: usize = 100_000;

    /// An empty sink.
    #[must_use]
    pub fn new() -> Self {
        Self {
            max_events: Self::DEFAULT_MAX_EVENTS,
            state: Mutex::new(State::default()),
        }
    }

    /// Set the bound on the number of events held.
    #[must_use]
    pub fn with_max_events(mut self, max_events: NonZeroUsize) -> Self {
        self.max_events = max_events.get();
        self
    }

    /// The events of `tenant`, in the order they were recorded.
    #[must_use]
    pub fn events(&self, tenant: &TenantId) -> Vec<AuditEvent> {
        self.stream(Some(tenant.clone()))
    }

    /// The events recorded without a tenant, in order.
    #[must_use]
    pub fn events_without_tenant(&self) -> Vec<AuditEvent> {
        self.stream(None)
    }

    /// How many events are held, across streams.
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.state).total
    }

    /// Whether no event is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn stream(&self, tenant: Option<TenantId>) -> Vec<AuditEvent> {
        lock(&self.state)
            .streams
            .get(&tenant)
            .cloned()
            .unwrap_or_default()
    }
}

impl Default for MemoryAuditSink {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl AuditSink for MemoryAuditSink {
    async fn record(&self, event: &AuditEvent) -> Result<AuditReceipt> {
        let mut state = lock(&self.state);
        if state.total >= self.max_events {
            return Err(capacity_exceeded(STORE, self.max_events, "events"));
        }
        state.total += 1;
        let stream = state.streams.entry(event.tenant.clone()).or_default();
        stream.push(event.clone());
        let sequence = u64::try_from(stream.len()).unwrap_or(u64::MAX);
        Ok(AuditReceipt::new(Some(sequence)))
    }
}
