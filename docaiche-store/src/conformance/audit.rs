//! The [`AuditSink`] suite.

use std::collections::HashSet;
use std::sync::Arc;

use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource, AuditSink};
use docaiche_core::{PrincipalId, RequestContext, Result, TenantId};

use super::{Case, Harness, concurrently};
use crate::memory::MemoryAuditSink;

const SUITE: &str = "AuditSink";

/// Reads a sink's events back, for the cases that check what was stored.
///
/// [`AuditSink`] itself is write-only; a sink over a database or a file
/// implements this in its test code (a `SELECT … ORDER BY sequence`, a file
/// read) to get the full suite.
#[async_trait::async_trait]
pub trait AuditReadBack: Send + Sync {
    /// Every event recorded for `tenant`, in recorded order.
    ///
    /// # Errors
    /// Whatever reading the sink's storage fails with.
    async fn events(&self, tenant: &TenantId) -> Result<Vec<AuditEvent>>;
}

#[async_trait::async_trait]
impl AuditReadBack for MemoryAuditSink {
    async fn events(&self, tenant: &TenantId) -> Result<Vec<AuditEvent>> {
        Ok(Self::events(self, tenant))
    }
}

fn event(h: &Harness, tenant: &TenantId, action: &str) -> AuditEvent {
    let actor = PrincipalId::new("alice").ok();
    AuditEvent::new(
        action,
        AuditOutcome::Success,
        h.now_seconds(),
        &RequestContext::new(),
    )
    .by(tenant.clone(), actor)
}

/// Run the [`AuditSink`] cases that need no read-back: acceptance, receipt
/// order, hostile strings, concurrency, flush.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_audit_sink(sink: Arc<dyn AuditSink>, harness: &Harness) {
    run(&sink, None, harness).await;
}

/// Run the whole [`AuditSink`] contract, reading stored events back through
/// `read_back` to check per-tenant order, isolation and exact round trips.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_audit_sink_with_read_back(
    sink: Arc<dyn AuditSink>,
    read_back: &dyn AuditReadBack,
    harness: &Harness,
) {
    run(&sink, Some(read_back), harness).await;
}

async fn run(sink: &Arc<dyn AuditSink>, read_back: Option<&dyn AuditReadBack>, h: &Harness) {
    per_tenant_order(&**sink, read_back, h).await;
    hostile_strings_round_trip(&**sink, read_back, h).await;
    concurrent_records(sink, read_back, h).await;
}

async fn read(case: Case, read_back: &dyn AuditReadBack, tenant: &TenantId) -> Vec<AuditEvent> {
    case.ok(read_back.events(tenant).await, "read back")
}

async fn per_tenant_order(
    sink: &dyn AuditSink,
    read_back: Option<&dyn AuditReadBack>,
    h: &Harness,
) {
    let case = Case::new(SUITE, "per_tenant_order");
    let (a, b) = (h.tenant(), h.tenant());
    let (mut sent_a, mut sent_b) = (Vec::new(), Vec::new());
    let (mut seq_a, mut seq_b) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let (tenant, sent, seqs) = if i % 3 == 0 {
            (&b, &mut sent_b, &mut seq_b)
        } else {
            (&a, &mut sent_a, &mut seq_a)
        };
        let e = event(h, tenant, &format!("document.read.{i}"));
        let receipt = case.ok(sink.record(&e).await, "record");
        sent.push(e);
        seqs.push(receipt.sequence);
    }
    case.ok(sink.flush().await, "flush");
    for seqs in [&seq_a, &seq_b] {
        let numbered: Vec<u64> = seqs.iter().flatten().copied().collect();
        if !numbered.is_empty() {
            case.eq(
                &numbered.len(),
                &seqs.len(),
                "a sink that sequences events numbers every receipt",
            );
            case.check(
                numbered.windows(2).all(|w| w[0] < w[1]),
                "receipt sequences increase in call order within a tenant",
            );
        }
    }
    if let Some(read_back) = read_back {
        case.eq(
            &read(case, read_back, &a).await,
            &sent_a,
            "tenant A's events, in call order",
        );
        case.eq(
            &read(case, read_back, &b).await,
            &sent_b,
            "tenant B's events, in call order, without A's",
        );
        case.eq(
            &read(case, read_back, &h.tenant()).await,
            &Vec::new(),
            "a tenant with no events",
        );
    }
}

async fn hostile_strings_round_trip(
    sink: &dyn AuditSink,
    read_back: Option<&dyn AuditReadBack>,
    h: &Harness,
) {
    let case = Case::new(SUITE, "hostile_strings_round_trip");
    let tenant = h.tenant();
    let mut sent = Vec::new();
    for s in h.hostile_strings() {
        let context = RequestContext::new()
            .with_request_id(s.clone())
            .with_user_agent(&s);
        let e = AuditEvent::new(s.clone(), AuditOutcome::Denied, h.now_seconds(), &context)
            .by(tenant.clone(), None)
            .on(AuditResource::new(s.clone(), s.clone()))
            .because(s.clone())
            .with_detail(s.clone(), serde_json::json!({ "value": s }));
        case.ok(sink.record(&e).await, "record");
        sent.push(e);
    }
    case.ok(sink.flush().await, "flush");
    if let Some(read_back) = read_back {
        case.eq(
            &read(case, read_back, &tenant).await,
            &sent,
            "events with hostile strings in every field",
        );
    }
}

async fn concurrent_records(
    sink: &Arc<dyn AuditSink>,
    read_back: Option<&dyn AuditReadBack>,
    h: &Harness,
) {
    let case = Case::new(SUITE, "concurrent_records");
    let tenant = h.tenant();
    let events: Vec<AuditEvent> = (0..40)
        .map(|i| event(h, &tenant, &format!("api_key.use.{i}")))
        .collect();
    let receipts = concurrently(case, events.len(), |i| {
        let (sink, e) = (sink.clone(), events[i].clone());
        async move { sink.record(&e).await }
    })
    .await;
    let mut sequences = HashSet::new();
    for r in receipts {
        if let Some(seq) = case.ok(r, "concurrent record").sequence {
            case.check(
                sequences.insert(seq),
                format_args!("sequence {seq} handed out twice"),
            );
        }
    }
    case.ok(sink.flush().await, "flush");
    if let Some(read_back) = read_back {
        let stored = read(case, read_back, &tenant).await;
        let ids: HashSet<uuid::Uuid> = stored.iter().map(|e| e.id).collect();
        case.eq(
            &stored.len(),
            &events.len(),
            "every concurrent event stored once",
        );
        case.eq(
            &ids,
            &events.iter().map(|e| e.id).collect(),
            "the stored events are the recorded ones",
        );
    }
}
