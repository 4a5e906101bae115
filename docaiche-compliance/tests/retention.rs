//! Retention: policies per tenant and kind, legal holds, the audited purge
//! and its schedule, over the in-memory reference stores.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use std::collections::BTreeMap;

use docaiche_compliance::retention::{
    DocumentPurgeTarget, LegalHold, LegalHoldRegistry, MemoryLegalHoldRegistry, PurgeSchedule,
    Purger, RetentionPolicies, RetentionSource, StaticTenants, TenantDirectory,
    TenantStoreRetention, resource,
};
use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};
use docaiche_core::document::NewDocument;
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::tenant::{StatusChange, Tenant, TenantSettings, TenantStatus, TenantStore};
use docaiche_core::{Clock, DocumentStore, Error, ManualClock, PrincipalId, Result, TenantId};
use docaiche_store::memory::MemoryTenantStore;
use docaiche_store::{MemoryAuditSink, MemoryDocumentStore};
use time::OffsetDateTime;

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

/// Register `tenant` in `registry`, with `retention_days` stored if given.
async fn register(registry: &MemoryTenantStore, tenant: &TenantId, retention_days: Option<u32>) {
    registry
        .create(
            &Tenant::new(tenant.clone(), "Tenant", OffsetDateTime::UNIX_EPOCH)
                .with_settings(TenantSettings::default().with_retention_days(retention_days)),
        )
        .await
        .expect("registered");
}

#[tokio::test]
async fn a_stored_retention_setting_wins_over_configuration_from_the_next_run() {
    let f = Fixture::new();
    let (acme, globex, initech) = (tenant("acme"), tenant("globex"), tenant("initech"));
    let registry = Arc::new(MemoryTenantStore::new());
    // acme and globex are registered without a setting; initech is only
    // configured, with a period of its own.
    register(&registry, &acme, None).await;
    register(&registry, &globex, None).await;
    let policies = RetentionPolicies::new()
        .with_default(resource::DOCUMENTS, 90)
        .with_default(resource::PRIVACY_REQUESTS, 30)
        .with_tenant(initech.clone(), resource::DOCUMENTS, 60);
    let retention = Arc::new(
        TenantStoreRetention::new(registry.clone(), policies.clone())
            .with_directory(Arc::new(StaticTenants::new([initech.clone()]))),
    );
    let purger = f
        .purger(policies, f.audit.clone())
        .with_source(retention.clone());
    let schedule = PurgeSchedule::new(
        Arc::new(purger),
        retention.clone(),
        Arc::new(f.clock.clone()),
        Duration::from_secs(3600),
    )
    .expect("valid interval");
    let _alice = f.put(&acme, "alice").await;
    let bob = f.put(&acme, "bob").await;
    let gina = f.put(&globex, "gina").await;
    let ivan = f.put(&initech, "ivan").await;
    f.holds
        .place(
            LegalHold::new(acme.clone(), "case 17", subject("counsel"), f.clock.now())
                .on_subject(subject("bob")),
        )
        .await
        .expect("placed");
    f.days(2);

    let report = schedule.run_once().await.expect("a run");
    assert_eq!(report.purged(), 0, "two days old, under 60 and 90");
    assert_eq!(
        report.tenants.keys().cloned().collect::<Vec<_>>(),
        [acme.clone(), globex.clone(), initech.clone()],
        "registered and configured tenants are visited"
    );

    // A platform administrator sets acme's retention to one day: the next
    // run applies it, to acme's documents only, and keeps the held one.
    let settings = TenantSettings::default().with_retention_days(Some(1));
    assert!(
        registry
            .update_settings(&acme, &settings, f.clock.now())
            .await
            .expect("updated")
    );
    let report = schedule.run_once().await.expect("a run");
    assert_eq!((report.purged(), report.held()), (1, 1), "{report:?}");
    let acme_documents = &report.tenants[&acme][resource::DOCUMENTS];
    assert_eq!(acme_documents.retention_days, 1);
    let periods = retention.periods(&acme).await.expect("read");
    assert_eq!(
        periods[resource::PRIVACY_REQUESTS],
        30,
        "other kinds keep their configured period"
    );
    assert_eq!(
        report.tenants[&globex][resource::DOCUMENTS].retention_days,
        90
    );
    assert_eq!(
        report.tenants[&initech][resource::DOCUMENTS].retention_days,
        60
    );
    let kept = f
        .documents
        .list(&acme, &PageRequest::first(10).expect("page"))
        .await
        .expect("listed");
    assert_eq!(
        kept.items
            .iter()
            .map(|d| d.id.to_string())
            .collect::<Vec<_>>(),
        [bob]
    );
    for (tenant, id) in [(&globex, &gina), (&initech, &ivan)] {
        let listed = f
            .documents
            .list(tenant, &PageRequest::first(10).expect("page"))
            .await
            .expect("listed");
        assert_eq!(listed.items[0].id.to_string(), *id);
    }
    let events = f.audit.events(&acme);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "retention.purge");
    assert_eq!(events[0].details["retention_days"], 1);
    assert_eq!(retention.read_failures(), 0);
}

/// A tenant registry that is down (or one tenant's reads are).
#[derive(Debug)]
struct DownRegistry {
    inner: MemoryTenantStore,
    listing_down: bool,
}

fn down() -> Error {
    Error::unavailable("tenants", std::io::Error::other("down"))
}

#[async_trait::async_trait]
impl TenantStore for DownRegistry {
    async fn create(&self, tenant: &Tenant) -> Result<()> {
        self.inner.create(tenant).await
    }

    async fn get(&self, _: &TenantId) -> Result<Option<Tenant>> {
        Err(down())
    }

    async fn list(&self, status: Option<TenantStatus>, page: &PageRequest) -> Result<Page<Tenant>> {
        if self.listing_down {
            return Err(down());
        }
        self.inner.list(status, page).await
    }

    async fn update_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
        at: OffsetDateTime,
    ) -> Result<bool> {
        self.inner.update_settings(id, settings, at).await
    }

    async fn set_status(
        &self,
        id: &TenantId,
        change: StatusChange<'_>,
        at: OffsetDateTime,
    ) -> Result<bool> {
        self.inner.set_status(id, change, at).await
    }
}

#[tokio::test]
async fn a_registry_that_cannot_answer_never_purges_with_the_configured_period() {
    let f = Fixture::new();
    let acme = tenant("acme");
    // The configuration says one day; the registry, which cannot be read,
    // might say a year: nothing is purged on a guess.
    let policies = RetentionPolicies::new().with_default(resource::DOCUMENTS, 1);
    let registry = DownRegistry {
        inner: MemoryTenantStore::new(),
        listing_down: false,
    };
    registry
        .create(&Tenant::new(
            acme.clone(),
            "Acme",
            OffsetDateTime::UNIX_EPOCH,
        ))
        .await
        .expect("registered");
    let retention = Arc::new(TenantStoreRetention::new(
        Arc::new(registry),
        policies.clone(),
    ));
    let purger = Arc::new(
        f.purger(policies.clone(), f.audit.clone())
            .with_source(retention.clone()),
    );
    f.put(&acme, "alice").await;
    f.days(2);
    let schedule = PurgeSchedule::new(
        Arc::clone(&purger),
        retention.clone(),
        Arc::new(f.clock.clone()),
        Duration::from_secs(3600),
    )
    .expect("valid interval");
    let report = schedule.run_once().await.expect("the listing answers");
    assert_eq!(report.purged(), 0);
    assert_eq!(
        report.failures.get(&acme).map(String::as_str),
        Some("unavailable")
    );
    assert_eq!(f.count(&acme).await, 1);
    assert!(f.audit.events(&acme).is_empty());
    assert_eq!(retention.read_failures(), 1);

    // With the listing down too, the run is skipped altogether.
    let retention = Arc::new(TenantStoreRetention::new(
        Arc::new(DownRegistry {
            inner: MemoryTenantStore::new(),
            listing_down: true,
        }),
        policies,
    ));
    assert!(retention.tenants().await.is_err());
    let schedule = PurgeSchedule::new(
        purger,
        retention.clone(),
        Arc::new(f.clock.clone()),
        Duration::from_secs(3600),
    )
    .expect("valid interval");
    assert!(schedule.run_once().await.is_none());
    assert_eq!(f.count(&acme).await, 1);
    assert_eq!(retention.read_failures(), 2);
}

/// A source answering whatever it was given.
#[derive(Debug)]
struct Fixed(BTreeMap<String, u32>);

#[async_trait::async_trait]
impl RetentionSource for Fixed {
    async fn periods(&self, _: &TenantId) -> Result<BTreeMap<String, u32>> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn a_source_answering_zero_days_is_refused_rather_than_purging_everything() {
    let f = Fixture::new();
    let acme = tenant("acme");
    f.put(&acme, "alice").await;
    f.days(2);
    for days in [0, 100_000] {
        let purger = f
            .purger(RetentionPolicies::new(), f.audit.clone())
            .with_source(Arc::new(Fixed(BTreeMap::from([(
                resource::DOCUMENTS.to_owned(),
                days,
            )]))));
        let report = purger.run(std::slice::from_ref(&acme)).await;
        assert_eq!(
            report.failures.get(&acme).map(String::as_str),
            Some("misconfigured"),
            "{days} days"
        );
        assert_eq!(f.count(&acme).await, 1);
    }
}

#[tokio::test]
async fn the_registry_directory_lists_every_tenant_across_pages_suspended_included() {
    let registry = Arc::new(MemoryTenantStore::new());
    let mut expected = Vec::new();
    for n in 0..501 {
        let id = tenant(&format!("t{n:04}"));
        register(&registry, &id, None).await;
        expected.push(id);
    }
    let suspended = tenant("t0007");
    registry
        .set_status(
            &suspended,
            StatusChange::Suspend { reason: "unpaid" },
            OffsetDateTime::UNIX_EPOCH,
        )
        .await
        .expect("suspended");
    // A configured tenant, also registered, is listed once.
    let configured = tenant("zeta");
    expected.push(configured.clone());
    let retention = TenantStoreRetention::new(registry, RetentionPolicies::new())
        .with_directory(Arc::new(StaticTenants::new([configured, tenant("t0000")])));
    assert_eq!(retention.tenants().await.expect("listed"), expected);
}
