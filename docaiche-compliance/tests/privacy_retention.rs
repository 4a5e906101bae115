//! Retention of data-subject request records: `PrivacyRequestPurgeTarget`
//! under the `Purger`, over the memory request store (the stores' own
//! `delete` is in the shared conformance suite, on every backend).

use std::sync::Arc;
use std::time::Duration;

use docaiche_compliance::privacy::{
    MemoryPrivacyRequestStore, PrivacyRequest, PrivacyRequestPurgeTarget, PrivacyRequestStore,
    Regulation, RequestKind, RequestStatus,
};
use docaiche_compliance::retention::{
    LegalHold, LegalHoldRegistry, MemoryLegalHoldRegistry, Purgeable, Purger, RetentionPolicies,
    resource,
};
use docaiche_core::page::PageRequest;
use docaiche_core::{Clock, ErrorCode, ManualClock, PrincipalId, TenantId};
use docaiche_store::MemoryAuditSink;

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("valid tenant")
}

fn subject(name: &str) -> PrincipalId {
    PrincipalId::new(name).expect("valid principal")
}

struct Fixture {
    clock: ManualClock,
    requests: Arc<MemoryPrivacyRequestStore>,
    holds: Arc<MemoryLegalHoldRegistry>,
    audit: Arc<MemoryAuditSink>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            clock: ManualClock::new(),
            requests: Arc::new(MemoryPrivacyRequestStore::new()),
            holds: Arc::new(MemoryLegalHoldRegistry::new()),
            audit: Arc::new(MemoryAuditSink::new()),
        }
    }

    /// A request of `who` received now, left in `status` (closed ones are
    /// closed now).
    async fn request(&self, tenant: &TenantId, who: &str, status: RequestStatus) -> PrivacyRequest {
        let mut request = PrivacyRequest::new(
            tenant.clone(),
            subject(who),
            RequestKind::Export,
            Regulation::Gdpr,
            subject("dpo"),
            self.clock.now(),
        );
        request.status = status;
        if matches!(status, RequestStatus::Completed | RequestStatus::Rejected) {
            request.completed_at = Some(self.clock.now());
        }
        self.requests.insert(&request).await.expect("inserted");
        request
    }

    fn purger(&self, days: u32) -> Purger {
        Purger::new(
            RetentionPolicies::new().with_default(resource::PRIVACY_REQUESTS, days),
            self.holds.clone(),
            vec![Arc::new(PrivacyRequestPurgeTarget::new(
                self.requests.clone(),
            ))],
            self.audit.clone(),
            Arc::new(self.clock.clone()),
        )
        .expect("valid policies")
    }

    async fn kept(&self, tenant: &TenantId, request: &PrivacyRequest) -> bool {
        self.requests
            .get(tenant, &request.id)
            .await
            .expect("read")
            .is_some()
    }

    fn days(&self, days: u64) {
        self.clock.advance(Duration::from_secs(days * 86_400));
    }
}

#[tokio::test]
async fn only_closed_requests_closed_before_the_cutoff_are_purged_and_audited() {
    let f = Fixture::new();
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let completed = f.request(&acme, "alice", RequestStatus::Completed).await;
    let rejected = f.request(&acme, "bob", RequestStatus::Rejected).await;
    let received = f.request(&acme, "carol", RequestStatus::Received).await;
    let in_progress = f.request(&acme, "dan", RequestStatus::InProgress).await;
    let failed = f.request(&acme, "erin", RequestStatus::Failed).await;
    let other = f.request(&globex, "gina", RequestStatus::Completed).await;
    // Received long ago, answered recently: the period runs from the answer.
    let mut late = f.request(&acme, "frank", RequestStatus::Received).await;
    f.days(300);
    late.status = RequestStatus::Completed;
    late.completed_at = Some(f.clock.now());
    assert!(f.requests.update(&late).await.expect("updated"));
    f.days(100);

    let report = f.purger(365).run(std::slice::from_ref(&acme)).await;
    assert_eq!((report.purged(), report.held()), (2, 0), "{report:?}");
    assert!(!f.kept(&acme, &completed).await);
    assert!(!f.kept(&acme, &rejected).await);
    for open in [&received, &in_progress, &failed] {
        assert!(f.kept(&acme, open).await, "{:?} is open", open.status);
    }
    assert!(f.kept(&acme, &late).await, "answered 100 days ago");
    assert!(f.kept(&globex, &other).await, "globex was not visited");

    let events = f.audit.events(&acme);
    assert_eq!(events.len(), 2);
    let mut purged: Vec<String> = events
        .iter()
        .map(|e| {
            assert_eq!(e.action, "retention.purge");
            let resource = e.resource.as_ref().expect("resource");
            assert_eq!(resource.kind, resource::PRIVACY_REQUESTS);
            resource.id.clone()
        })
        .collect();
    purged.sort();
    let mut expected = vec![completed.id.to_string(), rejected.id.to_string()];
    expected.sort();
    assert_eq!(purged, expected);
}

#[tokio::test]
async fn legal_holds_keep_request_records_by_subject_and_by_kind() {
    let f = Fixture::new();
    let acme = tenant("acme");
    let alice = f.request(&acme, "alice", RequestStatus::Completed).await;
    let bob = f.request(&acme, "bob", RequestStatus::Completed).await;
    f.days(40);
    // A hold on bob's documents only does not reach his request records.
    let documents_only = LegalHold::new(acme.clone(), "docs", subject("counsel"), f.clock.now())
        .on_subject(subject("alice"))
        .on_kind(resource::DOCUMENTS);
    f.holds.place(documents_only).await.expect("placed");
    let on_bob = LegalHold::new(acme.clone(), "case 17", subject("counsel"), f.clock.now())
        .on_subject(subject("bob"));
    f.holds.place(on_bob).await.expect("placed");

    let purger = f.purger(30);
    let report = purger.run(std::slice::from_ref(&acme)).await;
    assert_eq!((report.purged(), report.held()), (1, 1), "{report:?}");
    assert!(!f.kept(&acme, &alice).await);
    assert!(f.kept(&acme, &bob).await);

    // A hold on the whole kind suspends the purge, and says so.
    let carol = f.request(&acme, "carol", RequestStatus::Rejected).await;
    f.days(40);
    let whole = LegalHold::new(acme.clone(), "inquiry", subject("counsel"), f.clock.now())
        .on_kind(resource::PRIVACY_REQUESTS);
    let whole_id = whole.id;
    f.holds.place(whole).await.expect("placed");
    let report = purger.run(std::slice::from_ref(&acme)).await;
    assert_eq!(report.purged(), 0);
    assert!(report.tenants[&acme][resource::PRIVACY_REQUESTS].suspended_by_hold);
    assert!(f.kept(&acme, &carol).await);
    assert_eq!(
        f.audit.events(&acme).last().map(|e| e.action.clone()),
        Some("retention.suspended".to_owned())
    );

    assert!(
        f.holds
            .release(&acme, &whole_id, f.clock.now())
            .await
            .expect("released")
    );
    let report = purger.run(std::slice::from_ref(&acme)).await;
    assert_eq!((report.purged(), report.held()), (1, 1));
    assert!(!f.kept(&acme, &carol).await);
    assert!(f.kept(&acme, &bob).await, "bob's hold still stands");
}

#[tokio::test]
async fn pages_follow_an_id_cursor_that_deletions_do_not_disturb() {
    let f = Fixture::new();
    let acme = tenant("acme");
    let mut closed = Vec::new();
    for i in 0..7 {
        closed.push(f.request(&acme, "alice", RequestStatus::Completed).await);
        if i % 2 == 0 {
            f.request(&acme, "alice", RequestStatus::Received).await;
        }
    }
    f.days(10);
    let target = PrivacyRequestPurgeTarget::new(f.requests.clone());
    assert_eq!(target.resource_kind(), resource::PRIVACY_REQUESTS);
    let cutoff = f.clock.now();
    let mut page = PageRequest::first(3).expect("page");
    let mut seen = Vec::new();
    loop {
        let found = target.expired(&acme, cutoff, &page).await.expect("page");
        assert!(found.items.len() <= 3);
        for candidate in &found.items {
            assert_eq!(candidate.subject, Some(subject("alice")));
            // Delete as the purger does, between pages.
            assert!(target.purge(&acme, &candidate.id).await.expect("purged"));
            seen.push(candidate.id.clone());
        }
        match found.next {
            Some(next) => page = PageRequest::new(Some(next), 3).expect("page"),
            None => break,
        }
    }
    let expected: Vec<String> = closed.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(seen, expected, "every closed request once, in id order");
    assert_eq!(f.requests.list(&acme).await.expect("listed").len(), 4);
    // Purging again is idempotent.
    assert!(!target.purge(&acme, &seen[0]).await.expect("gone"));

    let bad = PageRequest::new(Some("not-a-uuid".into()), 3).expect("page");
    let error = target
        .expired(&acme, cutoff, &bad)
        .await
        .expect_err("malformed cursor");
    assert_eq!(error.code(), ErrorCode::InvalidInput);
    let error = target.purge(&acme, "nope").await.expect_err("malformed id");
    assert_eq!(error.code(), ErrorCode::InvalidInput);
}

#[tokio::test]
async fn an_open_request_is_never_deleted_even_when_asked_directly() {
    let f = Fixture::new();
    let acme = tenant("acme");
    let open = f.request(&acme, "alice", RequestStatus::InProgress).await;
    let closed = f.request(&acme, "bob", RequestStatus::Completed).await;
    f.days(1000);
    let target = PrivacyRequestPurgeTarget::new(f.requests.clone());
    assert!(
        !target
            .purge(&acme, &open.id.to_string())
            .await
            .expect("kept")
    );
    assert!(f.kept(&acme, &open).await);
    // Tenant-scoped: another tenant cannot purge acme's request.
    assert!(
        !target
            .purge(&tenant("globex"), &closed.id.to_string())
            .await
            .expect("not found")
    );
    assert!(f.kept(&acme, &closed).await);
}
