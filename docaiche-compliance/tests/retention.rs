//! Retention: policies per tenant and kind, legal holds, the audited purge
//! and its schedule, over the in-memory reference stores.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use docaiche_compliance::retention::{
    DocumentPurgeTarget, LegalHold, LegalHoldRegistry, MemoryLegalHoldRegistry, PurgeSchedule,
    Purger, RetentionPolicies, StaticTenants, resource,
};
use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};
use docaiche_core::document::NewDocument;
use docaiche_core::page::PageRequest;
use docaiche_core::{Clock, DocumentStore, Error, ManualClock, PrincipalId, Result, TenantId};
use docaiche_store::{MemoryAuditSink, MemoryDocumentStore};

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("valid tenant")
}

fn subject(name: &str) -> PrincipalId {
    PrincipalId::new(name).expect("valid principal")
}

struct Fixture {
    clock: ManualClock,
    documents: Arc<MemoryDocumentStore>,
    holds: Arc<MemoryLegalHoldRegistry>,
    audit: Arc<MemoryAuditSink>,
}

impl Fixture {
    fn new() -> Self {
        let clock = ManualClock::new();
        Self {
            documents: Arc::new(MemoryDocumentStore::new().with_clock(Arc::new(clock.clone()))),
            clock,
            holds: Arc::new(MemoryLegalHoldRegistry::new()),
            audit: Arc::new(MemoryAuditSink::new()),
        }
    }

    async fn put(&self, tenant: &TenantId, owner: &str) -> String {
        let doc = NewDocument::new(
            subject(owner),
            "application/pdf",
            "00",
            Bytes::from_static(b"%PDF"),
        );
        self.documents
            .put(tenant, doc)
            .await
            .expect("stored")
            .id
            .to_string()
    }

    fn purger(&self, policies: RetentionPolicies, audit: Arc<dyn AuditSink>) -> Purger {
        Purger::new(
            policies,
            self.holds.clone(),
            vec![Arc::new(DocumentPurgeTarget::new(self.documents.clone()))],
            audit,
            Arc::new(self.clock.clone()),
        )
        .expect("valid policies")
    }

    async fn count(&self, tenant: &TenantId) -> usize {
        self.documents
            .list(tenant, &PageRequest::first(1000).expect("page"))
            .await
            .expect("listed")
            .items
            .len()
    }

    fn days(&self, days: u64) {
        self.clock.advance(Duration::from_secs(days * 86_400));
    }
}

#[tokio::test]
async fn expired_documents_are_purged_per_tenant_policy_and_each_purge_is_audited() {
    let f = Fixture::new();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let old_acme = f.put(&acme, "alice").await;
    let _old_globex = f.put(&globex, "gina").await;
    f.days(40);
    let _new_acme = f.put(&acme, "alice").await;

    // acme keeps 30 days, everyone else the default 90.
    let policies = RetentionPolicies::new()
        .with_default(resource::DOCUMENTS, 90)
        .with_tenant(acme.clone(), resource::DOCUMENTS, 30);
    let purger = f.purger(policies, f.audit.clone());
    let report = purger.run(&[acme.clone(), globex.clone()]).await;

    assert_eq!(report.purged(), 1);
    assert_eq!(f.count(&acme).await, 1);
    assert_eq!(
        f.count(&globex).await,
        1,
        "globex's document is 40 days old, under 90"
    );
    let events = f.audit.events(&acme);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "retention.purge");
    let resource = events[0].resource.as_ref().expect("resource");
    assert_eq!(
        (resource.kind.as_str(), resource.id.as_str()),
        ("documents", old_acme.as_str())
    );
    assert_eq!(purger.last_report(), Some(report));
}

#[tokio::test]
async fn a_legal_hold_on_a_subject_keeps_their_documents_and_release_lets_them_go() {
    let f = Fixture::new();
    let acme = tenant("acme");
    f.put(&acme, "alice").await;
    f.put(&acme, "bob").await;
    f.days(100);
    let hold = LegalHold::new(acme.clone(), "case 17", subject("counsel"), f.clock.now())
        .on_subject(subject("bob"));
    let hold_id = hold.id;
    f.holds.place(hold).await.expect("placed");

    let purger = f.purger(
        RetentionPolicies::new().with_default(resource::DOCUMENTS, 90),
        f.audit.clone(),
    );
    let report = purger.run(std::slice::from_ref(&acme)).await;
    assert_eq!((report.purged(), report.held()), (1, 1));
    assert_eq!(f.count(&acme).await, 1);

    assert!(
        f.holds
            .release(&acme, &hold_id, f.clock.now())
            .await
            .expect("released")
    );
    let report = purger.run(std::slice::from_ref(&acme)).await;
    assert_eq!((report.purged(), report.held()), (1, 0));
    assert_eq!(f.count(&acme).await, 0);
}

#[tokio::test]
async fn a_tenant_wide_hold_suspends_the_purge_and_says_so_on_the_trail() {
    let f = Fixture::new();
    let acme = tenant("acme");
    f.put(&acme, "alice").await;
    f.days(100);
    f.holds
        .place(
            LegalHold::new(
                acme.clone(),
                "regulator inquiry",
                subject("counsel"),
                f.clock.now(),
            )
            .on_kind(resource::DOCUMENTS),
        )
        .await
        .expect("placed");
    let purger = f.purger(
        RetentionPolicies::new().with_default(resource::DOCUMENTS, 90),
        f.audit.clone(),
    );
    let report = purger.run(std::slice::from_ref(&acme)).await;
    assert_eq!(report.purged(), 0);
    assert!(report.tenants[&acme][resource::DOCUMENTS].suspended_by_hold);
    assert_eq!(f.count(&acme).await, 1);
    assert_eq!(f.audit.events(&acme)[0].action, "retention.suspended");
}

/// A sink that is down: the purge must not delete what it cannot record.
#[derive(Debug)]
struct DownSink;

#[async_trait::async_trait]
impl AuditSink for DownSink {
    async fn record(&self, _: &AuditEvent) -> Result<AuditReceipt> {
        Err(Error::unavailable("audit", std::io::Error::other("down")))
    }
}

#[tokio::test]
async fn nothing_is_deleted_when_the_audit_trail_refuses_the_record() {
    let f = Fixture::new();
    let acme = tenant("acme");
    f.put(&acme, "alice").await;
    f.days(100);
    let purger = f.purger(
        RetentionPolicies::new().with_default(resource::DOCUMENTS, 90),
        Arc::new(DownSink),
    );
    let report = purger.run(std::slice::from_ref(&acme)).await;
    assert_eq!(report.purged(), 0);
    assert_eq!(
        report.failures.get(&acme).map(String::as_str),
        Some("unavailable")
    );
    assert_eq!(f.count(&acme).await, 1);
}

#[tokio::test]
async fn the_per_run_bound_leaves_the_rest_for_the_next_run() {
    let f = Fixture::new();
    let acme = tenant("acme");
    for _ in 0..5 {
        f.put(&acme, "alice").await;
    }
    f.days(100);
    let purger = f
        .purger(
            RetentionPolicies::new().with_default(resource::DOCUMENTS, 90),
            f.audit.clone(),
        )
        .with_max_per_run(3);
    let report = purger.run(std::slice::from_ref(&acme)).await;
    assert_eq!(report.purged(), 3);
    assert!(report.tenants[&acme][resource::DOCUMENTS].truncated);
    let report = purger.run(std::slice::from_ref(&acme)).await;
    assert_eq!(report.purged(), 2);
    assert_eq!(f.count(&acme).await, 0);
}

#[test]
fn policies_reject_zero_and_absurd_periods() {
    assert!(
        RetentionPolicies::new()
            .with_default("documents", 0)
            .validate()
            .is_err()
    );
    assert!(
        RetentionPolicies::new()
            .with_default("documents", 100_000)
            .validate()
            .is_err()
    );
    assert!(
        RetentionPolicies::new()
            .with_default("", 10)
            .validate()
            .is_err()
    );
    let parsed: std::result::Result<RetentionPolicies, _> =
        serde_json::from_str(r#"{"default": {"documents": 90}, "tenant": {}}"#);
    assert!(parsed.is_err(), "unknown fields are refused");
}

#[tokio::test]
async fn the_schedule_runs_every_interval_until_shutdown() {
    let f = Fixture::new();
    let acme = tenant("acme");
    let purger = Arc::new(f.purger(
        RetentionPolicies::new().with_default(resource::DOCUMENTS, 1),
        f.audit.clone(),
    ));
    let schedule = PurgeSchedule::new(
        purger,
        Arc::new(StaticTenants::new([acme.clone()])),
        Arc::new(f.clock.clone()),
        Duration::from_secs(3600),
    )
    .expect("valid interval");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let job = tokio::spawn(schedule.run_until(async move {
        let _ = stopped.await;
    }));
    // First run happens at once; then it sleeps on the manual clock.
    while f.clock.pending_sleepers() == 0 {
        tokio::task::yield_now().await;
    }
    f.put(&acme, "alice").await;
    f.days(2); // past the one-day retention, and many intervals later
    while f.clock.pending_sleepers() == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(f.count(&acme).await, 0);
    stop.send(()).expect("job alive");
    let runs = job.await.expect("job ends");
    assert_eq!(runs, 2);
    assert!(
        PurgeSchedule::new(
            Arc::new(f.purger(RetentionPolicies::new(), f.audit.clone())),
            Arc::new(StaticTenants::default()),
            Arc::new(f.clock.clone()),
            Duration::from_secs(1),
        )
        .is_err()
    );
}
