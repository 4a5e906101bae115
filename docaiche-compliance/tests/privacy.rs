//! Data-subject requests over the in-memory reference stores, with
//! encryption at rest and crypto-shredding.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use docaiche_compliance::privacy::{
    CryptoShredder, EXPORT_FORMAT, MemoryPrivacyRequestStore, Regulation, RequestKind,
    RequestStatus, SubjectAuditSource, SubjectRightsService, event_concerns,
};
use docaiche_compliance::retention::{LegalHold, LegalHoldRegistry, MemoryLegalHoldRegistry};
use docaiche_core::api_key::{ApiKeyLookup, ApiKeyRecord};
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource, AuditSink};
use docaiche_core::document::{DocumentText, NewDocument};
use docaiche_core::page::PageRequest;
use docaiche_core::revocation::{IssuedToken, TokenRevocationStore as _};
use docaiche_core::secret::SecretBytes;
use docaiche_core::{
    ApiKeyId, ApiKeyStore, AuthMethod, Clock, DocumentStore, ErrorCode, ManualClock, Permission,
    Principal, PrincipalId, RequestContext, Result, TenantId,
};
use docaiche_store::encryption::{EncryptedDocumentStore, MemoryDataKeyStore};
use docaiche_store::{
    LocalKeyWrapper, MemoryAccountStore, MemoryApiKeyStore, MemoryAuditSink, MemoryDocumentStore,
    MemoryRevocationStore,
};

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("valid tenant")
}

fn subject(name: &str) -> PrincipalId {
    PrincipalId::new(name).expect("valid principal")
}

/// Reads the memory sink back for exports.
#[derive(Debug)]
struct MemoryAuditSource(Arc<MemoryAuditSink>);

#[async_trait::async_trait]
impl SubjectAuditSource for MemoryAuditSource {
    async fn events_about(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>> {
        Ok(self
            .0
            .events(tenant)
            .into_iter()
            .filter(|e| event_concerns(e, subject))
            .take(limit)
            .collect())
    }
}

/// Crypto-shredding through the encrypting store.
#[derive(Debug)]
struct Shredder(Arc<EncryptedDocumentStore>);

#[async_trait::async_trait]
impl CryptoShredder for Shredder {
    async fn destroy_subject_key(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<bool> {
        self.0.destroy_subject_key(tenant, subject).await
    }
}

struct Fixture {
    clock: ManualClock,
    plain: Arc<MemoryDocumentStore>,
    documents: Arc<EncryptedDocumentStore>,
    keys: Arc<MemoryApiKeyStore>,
    accounts: Arc<MemoryAccountStore>,
    audit: Arc<MemoryAuditSink>,
    holds: Arc<MemoryLegalHoldRegistry>,
    revocations: Arc<MemoryRevocationStore>,
    service: SubjectRightsService,
    ctx: RequestContext,
}

impl Fixture {
    fn new() -> Self {
        let clock = ManualClock::new();
        let plain = Arc::new(MemoryDocumentStore::new().with_clock(Arc::new(clock.clone())));
        let documents = Arc::new(EncryptedDocumentStore::new(
            plain.clone(),
            Arc::new(MemoryDataKeyStore::new()),
            Arc::new(LocalKeyWrapper::generate()),
        ));
        let keys = Arc::new(MemoryApiKeyStore::new());
        let accounts = Arc::new(MemoryAccountStore::new());
        let audit = Arc::new(MemoryAuditSink::new());
        let holds = Arc::new(MemoryLegalHoldRegistry::new());
        let revocations =
            Arc::new(MemoryRevocationStore::new().with_clock(Arc::new(clock.clone())));
        let service = SubjectRightsService::new(
            documents.clone(),
            keys.clone(),
            Arc::new(MemoryPrivacyRequestStore::new()),
            audit.clone(),
            Arc::new(clock.clone()),
            &SecretBytes::new(vec![9; 32]),
        )
        .expect("valid key")
        .with_audit_source(Arc::new(MemoryAuditSource(audit.clone())))
        .with_shredder(Arc::new(Shredder(documents.clone())))
        .with_legal_holds(holds.clone())
        .with_accounts(accounts.clone())
        .with_revocations(revocations.clone(), Duration::from_secs(3600));
        Self {
            clock,
            plain,
            documents,
            keys,
            accounts,
            audit,
            holds,
            revocations,
            service,
            ctx: RequestContext::new().with_request_id("req-1"),
        }
    }

    fn dpo(&self, tenant: &TenantId) -> Principal {
        Principal::new(subject("dpo"), tenant.clone(), AuthMethod::Password).with_permissions(
            [Permission::PRIVACY_EXPORT, Permission::PRIVACY_ERASE]
                .into_iter()
                .collect(),
        )
    }

    async fn put(&self, tenant: &TenantId, owner: &str, text: &str) -> docaiche_core::DocumentId {
        let doc = NewDocument::new(
            subject(owner),
            "application/pdf",
            "00",
            Bytes::from(format!("%PDF {text}")),
        );
        let meta = self.documents.put(tenant, doc).await.expect("stored");
        self.documents
            .put_text(tenant, &meta.id, &DocumentText::new(vec![text.to_owned()]))
            .await
            .expect("text stored");
        meta.id
    }

    async fn key(&self, tenant: &TenantId, owner: &str, lookup: &str) -> ApiKeyId {
        let record = ApiKeyRecord::new(
            ApiKeyId::new(),
            tenant.clone(),
            subject(owner),
            ApiKeyLookup::new(lookup).expect("lookup"),
            self.clock.now(),
        )
        .with_name(format!("{owner}'s laptop"))
        .with_hash(1, vec![1, 2, 3]);
        self.keys.insert(&record).await.expect("inserted");
        record.id
    }

    async fn seed(&self) {
        let (acme, globex) = (tenant("acme"), tenant("globex"));
        self.put(&acme, "alice", "alice's contract").await;
        self.put(&acme, "alice", "alice's payslip").await;
        self.put(&acme, "bob", "bob's contract").await;
        // Same subject id in another tenant: another person.
        self.put(&globex, "alice", "globex alice").await;
        self.key(&acme, "alice", "alicekey0001").await;
        self.key(&acme, "bob", "bobkey000001").await;
        self.key(&globex, "alice", "globexalice1").await;
        let login = AuditEvent::new(
            "auth.login",
            AuditOutcome::Success,
            self.clock.now(),
            &self.ctx,
        )
        .by(acme.clone(), Some(subject("alice")));
        self.audit.record(&login).await.expect("recorded");
        let other = AuditEvent::new(
            "auth.login",
            AuditOutcome::Success,
            self.clock.now(),
            &self.ctx,
        )
        .by(acme, Some(subject("bob")));
        self.audit.record(&other).await.expect("recorded");
    }
}

#[tokio::test]
async fn export_holds_the_subjects_data_and_nothing_of_anyone_else() {
    let f = Fixture::new();
    f.seed().await;
    let acme = tenant("acme");
    let dpo = f.dpo(&acme);
    let request = f
        .service
        .submit(
            &dpo,
            &acme,
            subject("alice"),
            RequestKind::Export,
            Regulation::Gdpr,
            &f.ctx,
        )
        .await
        .expect("submitted");
    assert_eq!(
        request.deadline - request.received_at,
        time::Duration::days(30)
    );

    let bundle = f
        .service
        .export(&dpo, &acme, &request.id, &f.ctx)
        .await
        .expect("exported");
    assert_eq!(bundle.format, EXPORT_FORMAT);
    let texts: Vec<&str> = bundle
        .documents
        .iter()
        .flat_map(|d| d.text.as_ref().map(|t| t.pages[0].as_str()))
        .collect();
    assert_eq!(texts, ["alice's contract", "alice's payslip"]);
    assert!(
        bundle
            .documents
            .iter()
            .all(|d| d.meta.owner == subject("alice") && d.meta.tenant == acme)
    );
    assert_eq!(bundle.api_keys.len(), 1);
    assert_eq!(bundle.api_keys[0].lookup, "alicekey0001");
    assert!(
        bundle
            .audit_events
            .iter()
            .all(|e| e.actor == Some(subject("alice")))
    );
    assert_eq!(bundle.audit_events.len(), 1);
    assert_eq!(bundle.privacy_requests.len(), 1);

    let json = serde_json::to_string(&bundle).expect("serialises");
    assert!(
        !json.contains("bob"),
        "another subject leaked into the export"
    );
    assert!(
        !json.contains("globex"),
        "another tenant leaked into the export"
    );
    assert!(!json.contains("\"hash\""), "key hashes are not exported");

    let done = f
        .service
        .get(&dpo, &acme, &request.id)
        .await
        .expect("found");
    assert_eq!(done.status, RequestStatus::Completed);
    let again = f.service.export(&dpo, &acme, &request.id, &f.ctx).await;
    assert_eq!(again.expect_err("completed").code(), ErrorCode::Conflict);
}

#[tokio::test]
async fn after_erasure_nothing_of_the_subject_is_readable_and_a_pseudonymous_tombstone_remains() {
    let f = Fixture::new();
    f.seed().await;
    let acme = tenant("acme");
    let dpo = f.dpo(&acme);
    let alice_doc_ids: Vec<_> = f
        .plain
        .list_by_owner(&acme, &subject("alice"), &PageRequest::default())
        .await
        .expect("listed")
        .items
        .into_iter()
        .map(|m| m.id)
        .collect();
    // A key of alice's revoked before the erasure: deleted all the same.
    let old_key = f.key(&acme, "alice", "alicekey0002").await;
    assert!(
        f.keys
            .revoke(&acme, &old_key, f.clock.now())
            .await
            .expect("revoked")
    );
    let alice_keys: Vec<_> = f
        .keys
        .list(&acme, &PageRequest::default())
        .await
        .expect("listed")
        .items
        .into_iter()
        .filter(|k| k.principal == subject("alice"))
        .collect();
    assert_eq!(alice_keys.len(), 2);
    let request = f
        .service
        .submit(
            &dpo,
            &acme,
            subject("alice"),
            RequestKind::Erase,
            Regulation::Ccpa,
            &f.ctx,
        )
        .await
        .expect("submitted");
    assert_eq!(
        request.deadline - request.received_at,
        time::Duration::days(45)
    );

    let report = f
        .service
        .erase(&dpo, &acme, &request.id, &f.ctx)
        .await
        .expect("erased");
    assert_eq!(report.documents_deleted, 2);
    assert_eq!(report.api_keys_revoked, 1, "the one not revoked before");
    assert_eq!(report.api_keys_deleted, 2, "both records");
    assert!(report.data_key_destroyed);
    assert!(report.credentials_revoked);

    // Every token of alice issued up to the erasure: refused; bob's and
    // another tenant's alice's: not.
    let issued = f.clock.now() - time::Duration::minutes(5);
    let alice = subject("alice");
    let (bob, globex) = (subject("bob"), tenant("globex"));
    for (tenant, who, revoked) in [
        (&acme, &alice, true),
        (&acme, &bob, false),
        (&globex, &alice, false),
    ] {
        let token = IssuedToken::new("jti-1", tenant, who, issued);
        assert_eq!(
            f.revocations
                .is_token_revoked(&token)
                .await
                .expect("checked"),
            revoked,
            "{tenant}/{who}"
        );
    }
    assert_eq!(
        report.pseudonym,
        f.service.pseudonym(&acme, &subject("alice"))
    );

    // Documents and text: gone.
    for id in &alice_doc_ids {
        assert!(f.documents.get(&acme, id).await.expect("read").is_none());
        assert!(
            f.documents
                .get_text(&acme, id)
                .await
                .expect("read")
                .is_none()
        );
    }
    let left = f
        .documents
        .list_by_owner(&acme, &subject("alice"), &PageRequest::default())
        .await
        .expect("listed");
    assert!(left.items.is_empty());
    // Keys: their records are gone (names included), by id and by lookup.
    let keys = f
        .keys
        .list(&acme, &PageRequest::default())
        .await
        .expect("listed");
    assert!(
        keys.items.iter().all(|k| k.principal != subject("alice")),
        "{:?}",
        keys.items
    );
    for key in &alice_keys {
        assert_eq!(f.keys.get(&acme, &key.id).await.expect("read"), None);
        assert_eq!(
            f.keys.find_by_lookup(&key.lookup).await.expect("read"),
            None
        );
    }
    // Bob's key and globex's alice's: still there.
    assert_eq!(keys.items.len(), 1);
    assert_eq!(keys.items[0].principal, subject("bob"));
    let globex_keys = f
        .keys
        .list(&tenant("globex"), &PageRequest::default())
        .await
        .expect("listed");
    assert_eq!(globex_keys.items.len(), 1);
    assert!(globex_keys.items[0].is_usable_at(f.clock.now()));
    // Bob and globex's alice: untouched.
    assert_eq!(
        f.documents
            .list_by_owner(&acme, &subject("bob"), &PageRequest::default())
            .await
            .expect("listed")
            .items
            .len(),
        1
    );
    let globex = tenant("globex");
    let theirs = f
        .documents
        .list_by_owner(&globex, &subject("alice"), &PageRequest::default())
        .await
        .expect("listed");
    assert_eq!(theirs.items.len(), 1);
    assert!(
        f.documents
            .get(&globex, &theirs.items[0].id)
            .await
            .expect("decrypts")
            .is_some()
    );

    // The request record names the pseudonym, not alice.
    let stored = f
        .service
        .get(&dpo, &acme, &request.id)
        .await
        .expect("found");
    assert_eq!(stored.status, RequestStatus::Completed);
    assert_eq!(stored.subject.as_str(), report.pseudonym);

    // The tombstone: `privacy.erase`, success, about the pseudonym; no
    // privacy event names alice in clear.
    let events = f.audit.events(&acme);
    let tombstone = events
        .iter()
        .find(|e| e.action == "privacy.erase")
        .expect("tombstone recorded");
    assert_eq!(tombstone.outcome, AuditOutcome::Success);
    assert_eq!(
        tombstone.resource,
        Some(AuditResource::new("data_subject", report.pseudonym.clone()))
    );
    assert_eq!(tombstone.details["api_keys_revoked"], 1);
    assert_eq!(tombstone.details["api_keys_deleted"], 2);
    for event in events.iter().filter(|e| e.action.starts_with("privacy.")) {
        let json = serde_json::to_string(event).expect("serialises");
        assert!(!json.contains("alice"), "{json}");
    }
}

#[tokio::test]
async fn a_legal_hold_refuses_erasure() {
    let f = Fixture::new();
    f.seed().await;
    let acme = tenant("acme");
    let dpo = f.dpo(&acme);
    f.holds
        .place(
            LegalHold::new(acme.clone(), "case 9", subject("counsel"), f.clock.now())
                .on_subject(subject("alice")),
        )
        .await
        .expect("placed");
    let request = f
        .service
        .submit(
            &dpo,
            &acme,
            subject("alice"),
            RequestKind::Erase,
            Regulation::Gdpr,
            &f.ctx,
        )
        .await
        .expect("submitted");
    let refused = f.service.erase(&dpo, &acme, &request.id, &f.ctx).await;
    assert_eq!(refused.expect_err("held").code(), ErrorCode::Conflict);
    let stored = f
        .service
        .get(&dpo, &acme, &request.id)
        .await
        .expect("found");
    assert_eq!(stored.status, RequestStatus::Rejected);
    assert_eq!(stored.failure.as_deref(), Some("legal_hold"));
    assert_eq!(
        f.documents
            .list_by_owner(&acme, &subject("alice"), &PageRequest::default())
            .await
            .expect("listed")
            .items
            .len(),
        2
    );
}

#[tokio::test]
async fn requests_need_the_permission_and_stay_in_their_tenant() {
    let f = Fixture::new();
    f.seed().await;
    let acme = tenant("acme");
    let reader = Principal::new(subject("mallory"), acme.clone(), AuthMethod::Password)
        .with_permissions([Permission::DOCUMENTS_READ].into_iter().collect());
    let denied = f
        .service
        .submit(
            &reader,
            &acme,
            subject("alice"),
            RequestKind::Export,
            Regulation::Gdpr,
            &f.ctx,
        )
        .await;
    assert_eq!(denied.expect_err("forbidden").code(), ErrorCode::Forbidden);

    // A DPO of globex cannot see or run acme's request.
    let request = f
        .service
        .submit(
            &f.dpo(&acme),
            &acme,
            subject("alice"),
            RequestKind::Erase,
            Regulation::Gdpr,
            &f.ctx,
        )
        .await
        .expect("submitted");
    let globex = tenant("globex");
    let other = f.dpo(&globex);
    assert_eq!(
        f.service
            .get(&other, &acme, &request.id)
            .await
            .expect_err("cross")
            .code(),
        ErrorCode::Forbidden
    );
    assert_eq!(
        f.service
            .get(&other, &globex, &request.id)
            .await
            .expect_err("absent")
            .code(),
        ErrorCode::NotFound
    );
    // An erase request cannot be run as an export.
    let wrong = f
        .service
        .export(&f.dpo(&acme), &acme, &request.id, &f.ctx)
        .await;
    assert_eq!(wrong.expect_err("kind").code(), ErrorCode::Conflict);
}

#[tokio::test]
async fn overdue_requests_are_reported_open_past_their_deadline() {
    let f = Fixture::new();
    let acme = tenant("acme");
    let dpo = f.dpo(&acme);
    let request = f
        .service
        .submit(
            &dpo,
            &acme,
            subject("alice"),
            RequestKind::Export,
            Regulation::Gdpr,
            &f.ctx,
        )
        .await
        .expect("submitted");
    assert!(!request.is_overdue(f.clock.now()));
    f.clock.advance(std::time::Duration::from_secs(31 * 86_400));
    assert!(request.is_overdue(f.clock.now()));
    assert_eq!(f.service.list(&dpo, &acme).await.expect("listed").len(), 1);
}

/// The memory store whose `delete` is down while `down` is set.
#[derive(Debug, Default)]
struct FlakyDeletes {
    inner: MemoryApiKeyStore,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl ApiKeyStore for FlakyDeletes {
    async fn insert(&self, record: &ApiKeyRecord) -> Result<()> {
        self.inner.insert(record).await
    }
    async fn find_by_lookup(&self, lookup: &ApiKeyLookup) -> Result<Option<ApiKeyRecord>> {
        self.inner.find_by_lookup(lookup).await
    }
    async fn get(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>> {
        self.inner.get(tenant, id).await
    }
    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<docaiche_core::page::Page<ApiKeyRecord>> {
        self.inner.list(tenant, page).await
    }
    async fn revoke(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        at: time::OffsetDateTime,
    ) -> Result<bool> {
        self.inner.revoke(tenant, id, at).await
    }
    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<bool> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(docaiche_core::Error::unavailable(
                "api key store",
                std::io::Error::other("connection refused"),
            ));
        }
        self.inner.delete(tenant, id).await
    }
    async fn mark_rotated(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        replaced_by: &ApiKeyId,
        valid_until: time::OffsetDateTime,
    ) -> Result<bool> {
        self.inner
            .mark_rotated(tenant, id, replaced_by, valid_until)
            .await
    }
    async fn record_usage(&self, usage: &[docaiche_core::api_key::ApiKeyUsage]) -> Result<()> {
        self.inner.record_usage(usage).await
    }
}

#[tokio::test]
async fn an_erasure_interrupted_before_the_key_deletion_leaves_no_usable_key_and_reruns() {
    let clock = ManualClock::new();
    let keys = Arc::new(FlakyDeletes::default());
    let service = SubjectRightsService::new(
        Arc::new(MemoryDocumentStore::new()),
        keys.clone(),
        Arc::new(MemoryPrivacyRequestStore::new()),
        Arc::new(MemoryAuditSink::new()),
        Arc::new(clock.clone()),
        &SecretBytes::new(vec![9; 32]),
    )
    .expect("valid key");
    let acme = tenant("acme");
    let record = ApiKeyRecord::new(
        ApiKeyId::new(),
        acme.clone(),
        subject("alice"),
        ApiKeyLookup::new("alicekey0001").expect("lookup"),
        clock.now(),
    )
    .with_name("alice's phone")
    .with_hash(1, vec![1, 2, 3]);
    keys.insert(&record).await.expect("inserted");
    let dpo = Principal::new(subject("dpo"), acme.clone(), AuthMethod::Password)
        .with_permissions([Permission::PRIVACY_ERASE].into_iter().collect());
    let ctx = RequestContext::new();
    let request = service
        .submit(
            &dpo,
            &acme,
            subject("alice"),
            RequestKind::Erase,
            Regulation::Gdpr,
            &ctx,
        )
        .await
        .expect("submitted");

    keys.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let failed = service.erase(&dpo, &acme, &request.id, &ctx).await;
    assert_eq!(
        failed.expect_err("delete is down").code(),
        ErrorCode::Unavailable
    );
    let stored = service.get(&dpo, &acme, &request.id).await.expect("found");
    assert_eq!(stored.status, RequestStatus::Failed);
    // Revoked before the deletion was tried: no usable key is left.
    let left = keys
        .get(&acme, &record.id)
        .await
        .expect("read")
        .expect("not deleted yet");
    assert!(!left.is_usable_at(clock.now()));

    // Run again: the revoked record is deleted now.
    keys.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let report = service
        .erase(&dpo, &acme, &request.id, &ctx)
        .await
        .expect("erased");
    assert_eq!(
        report.api_keys_revoked, 0,
        "already revoked by the first run"
    );
    assert_eq!(report.api_keys_deleted, 1);
    assert_eq!(keys.get(&acme, &record.id).await.expect("read"), None);
    assert_eq!(keys.inner.len(), 0);
}

#[test]
fn a_short_pseudonym_key_is_refused() {
    let clock = Arc::new(ManualClock::new());
    let result = SubjectRightsService::new(
        Arc::new(MemoryDocumentStore::new()),
        Arc::new(MemoryApiKeyStore::new()),
        Arc::new(MemoryPrivacyRequestStore::new()),
        Arc::new(MemoryAuditSink::new()),
        clock,
        &SecretBytes::new(vec![1; 8]),
    );
    assert_eq!(result.expect_err("short").code(), ErrorCode::Misconfigured);
}

#[tokio::test]
async fn the_subjects_account_is_exported_without_its_hash_and_deleted_on_erasure() {
    use docaiche_core::AccountStore;
    use docaiche_core::account::{Account, AccountEmail};
    let f = Fixture::new();
    f.seed().await;
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$c2VjcmV0LWhhc2g";
    for (t, id, email) in [
        (&acme, "alice", "alice@example.com"),
        (&acme, "bob", "bob@example.com"),
        (&globex, "alice", "alice@globex.example"),
    ] {
        let account = Account::new(
            t.clone(),
            subject(id),
            AccountEmail::new(email).expect("email"),
            hash,
            f.clock.now(),
        )
        .with_roles(vec!["reader".into()]);
        f.accounts.create(&account).await.expect("created");
    }
    let dpo = f.dpo(&acme);
    let submit = |kind| {
        f.service.submit(
            &dpo,
            &acme,
            subject("alice"),
            kind,
            Regulation::Gdpr,
            &f.ctx,
        )
    };

    let export = submit(RequestKind::Export).await.expect("submitted");
    let bundle = f
        .service
        .export(&dpo, &acme, &export.id, &f.ctx)
        .await
        .expect("exported");
    let account = bundle.account.as_ref().expect("account exported");
    assert_eq!(account.id, subject("alice"));
    assert_eq!(account.email, "alice@example.com");
    assert_eq!(account.roles, ["reader"]);
    assert!(!account.disabled);
    assert_eq!(account.created_at, f.clock.now());
    let json = serde_json::to_string(&bundle).expect("serialises");
    assert!(
        !json.contains("argon2id") && !json.contains("c2VjcmV0"),
        "{json}"
    );
    assert!(!json.contains("password"), "{json}");
    assert!(!json.contains("globex") && !json.contains("bob@"), "{json}");

    let erase = submit(RequestKind::Erase).await.expect("submitted");
    let report = f
        .service
        .erase(&dpo, &acme, &erase.id, &f.ctx)
        .await
        .expect("erased");
    assert!(report.account_deleted);
    assert!(
        f.accounts
            .get(&acme, &subject("alice"))
            .await
            .expect("read")
            .is_none()
    );
    let email = AccountEmail::new("alice@example.com").expect("email");
    assert!(
        f.accounts
            .find_by_email(&acme, &email)
            .await
            .expect("read")
            .is_none()
    );
    // Bob, and the other tenant's alice: untouched.
    assert!(
        f.accounts
            .get(&acme, &subject("bob"))
            .await
            .expect("read")
            .is_some()
    );
    assert!(
        f.accounts
            .get(&globex, &subject("alice"))
            .await
            .expect("read")
            .is_some()
    );
    let tombstone = f
        .audit
        .events(&acme)
        .into_iter()
        .rfind(|e| e.action == "privacy.erase")
        .expect("tombstone");
    assert_eq!(tombstone.details["account_deleted"], true);

    // A subject without an account: nothing to delete, nothing exported.
    let erase = f
        .service
        .submit(
            &dpo,
            &acme,
            subject("carol"),
            RequestKind::Erase,
            Regulation::Gdpr,
            &f.ctx,
        )
        .await
        .expect("submitted");
    let report = f
        .service
        .erase(&dpo, &acme, &erase.id, &f.ctx)
        .await
        .expect("erased");
    assert!(!report.account_deleted);
}
