//! API keys end to end over the in-memory store: format checks before any
//! store call, expiry, revocation, deletion, rotation, scope escalation, tenant
//! isolation, the verified-key cache and batched last-used writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use docaiche_auth::api_key::{
    ApiKeyConfig, ApiKeyService, InvalidationListener, NewApiKey, Peppers,
};
use docaiche_core::api_key::{ApiKeyLookup, ApiKeyRecord, ApiKeyStore, ApiKeyUsage};
use docaiche_core::invalidation::LocalInvalidationBus;
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::{
    ApiKeyId, AuthFailure, AuthMethod, Authenticator, Clock, Credential, Error, Grant, ManualClock,
    Permission, PermissionSet, Principal, PrincipalId, RequestContext, Result, SecretBytes,
    SecretString, TenantId,
};
use docaiche_store::memory::MemoryApiKeyStore;
use time::OffsetDateTime;

/// The real memory store, with every call counted.
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryApiKeyStore,
    calls: AtomicUsize,
    finds: AtomicUsize,
    batches: Mutex<Vec<usize>>,
}

impl CountingStore {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn finds(&self) -> usize {
        self.finds.load(Ordering::SeqCst)
    }
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl ApiKeyStore for CountingStore {
    async fn insert(&self, record: &ApiKeyRecord) -> Result<()> {
        self.count();
        self.inner.insert(record).await
    }
    async fn find_by_lookup(&self, lookup: &ApiKeyLookup) -> Result<Option<ApiKeyRecord>> {
        self.count();
        self.finds.fetch_add(1, Ordering::SeqCst);
        self.inner.find_by_lookup(lookup).await
    }
    async fn get(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>> {
        self.count();
        self.inner.get(tenant, id).await
    }
    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ApiKeyRecord>> {
        self.count();
        self.inner.list(tenant, page).await
    }
    async fn revoke(&self, tenant: &TenantId, id: &ApiKeyId, at: OffsetDateTime) -> Result<bool> {
        self.count();
        self.inner.revoke(tenant, id, at).await
    }
    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<bool> {
        self.count();
        self.inner.delete(tenant, id).await
    }
    async fn mark_rotated(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        replaced_by: &ApiKeyId,
        valid_until: OffsetDateTime,
    ) -> Result<bool> {
        self.count();
        self.inner
            .mark_rotated(tenant, id, replaced_by, valid_until)
            .await
    }
    async fn record_usage(&self, usage: &[ApiKeyUsage]) -> Result<()> {
        self.count();
        self.batches.lock().unwrap().push(usage.len());
        self.inner.record_usage(usage).await
    }
}

struct Fixture {
    store: Arc<CountingStore>,
    clock: ManualClock,
    keys: Arc<ApiKeyService>,
    acme: TenantId,
    admin: Principal,
}

fn pepper(byte: u8) -> SecretBytes {
    SecretBytes::new(vec![byte; 32])
}

fn perms(grants: &[&str]) -> PermissionSet {
    grants.iter().map(|g| Grant::parse(g).unwrap()).collect()
}

fn principal(tenant: &str, id: &str, grants: &[&str]) -> Principal {
    Principal::new(
        PrincipalId::new(id).unwrap(),
        TenantId::new(tenant).unwrap(),
        AuthMethod::Password,
    )
    .with_permissions(perms(grants))
}

fn fixture() -> Fixture {
    let store = Arc::new(CountingStore::default());
    let clock = ManualClock::new();
    let keys = ApiKeyService::new(store.clone(), Peppers::new(1, [(1, pepper(1))]).unwrap())
        .with_clock(Arc::new(clock.clone()));
    Fixture {
        store,
        clock,
        keys: Arc::new(keys),
        acme: TenantId::new("acme").unwrap(),
        admin: principal(
            "acme",
            "alice",
            &["keys:manage", "documents:read", "documents:write"],
        ),
    }
}

impl Fixture {
    async fn create(&self, scopes: &[&str]) -> (String, ApiKeyRecord) {
        let created = self
            .keys
            .create(
                &self.admin,
                NewApiKey::new(self.acme.clone(), "ci").with_scopes(perms(scopes)),
            )
            .await
            .unwrap();
        (created.key.expose_secret().clone(), created.record)
    }
}

fn reason(result: Result<impl Sized>) -> AuthFailure {
    match result {
        Err(Error::Unauthenticated { reason }) => reason,
        Err(other) => panic!("expected unauthenticated, got {other:?}"),
        Ok(_) => panic!("expected unauthenticated, got a principal"),
    }
}

#[tokio::test]
async fn bad_checksum_is_rejected_with_zero_store_calls() {
    let f = fixture();
    let (key, _) = f.create(&["documents:read"]).await;
    let before = f.store.calls();

    let mut typo = key.clone().into_bytes();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == b'0' { b'1' } else { b'0' };
    let typo = String::from_utf8(typo).unwrap();
    let mut swapped = key.clone().into_bytes();
    swapped.swap(10, 11);
    let swapped = String::from_utf8(swapped).unwrap();
    let oversized = format!("{key}{}", "A".repeat(10_000));
    for bad in [
        typo.as_str(),
        &swapped,
        &key[..key.len() - 1],
        &oversized,
        "",
        "dcx_",
    ] {
        if bad == key {
            continue;
        }
        assert_eq!(
            reason(f.keys.verify(bad).await),
            AuthFailure::Malformed,
            "{bad:.20}"
        );
    }
    assert_eq!(f.store.calls(), before, "no store call for a malformed key");
}

#[tokio::test]
async fn a_valid_key_authenticates_with_exactly_its_scopes() {
    let f = fixture();
    let (key, record) = f.create(&["documents:read"]).await;
    let principal = f
        .keys
        .authenticate(
            &Credential::ApiKey(SecretString::from(key.as_str())),
            &RequestContext::new(),
        )
        .await
        .unwrap();
    assert_eq!(principal.tenant, f.acme);
    assert_eq!(principal.id, f.admin.id);
    assert_eq!(
        principal.auth_method,
        AuthMethod::ApiKey { key_id: record.id }
    );
    assert!(principal.has_permission(&Permission::DOCUMENTS_READ));
    assert!(!principal.has_permission(&Permission::DOCUMENTS_WRITE));
    assert!(!principal.has_permission(&Permission::KEYS_MANAGE));
    assert!(record.hash.len() == 32 && record.hash_version == 1);
    assert!(
        !record
            .hash
            .windows(8)
            .any(|w| key.as_bytes().windows(8).any(|k| k == w))
    );
}

#[tokio::test]
async fn a_forged_secret_with_a_valid_checksum_is_rejected() {
    let f = fixture();
    let (key, _) = f.create(&["documents:read"]).await;
    // Same lookup id, another secret, and a correct CRC32: passes the
    // format check, must fail the keyed hash.
    let body = format!("{}{}", &key[..17], "A".repeat(30));
    let crc = crc32fast::hash(body.as_bytes());
    let forged = format!("{body}{}", base62_6(crc));
    assert!(f.keys.format().parse(&forged).is_ok());
    assert_eq!(
        reason(f.keys.verify(&forged).await),
        AuthFailure::BadCredential
    );
    // Also once the real key is cached.
    f.keys.verify(&key).await.unwrap();
    assert_eq!(
        reason(f.keys.verify(&forged).await),
        AuthFailure::BadCredential
    );
    // An unknown lookup id with a valid checksum.
    let (_, other) = f.keys.format().generate().unwrap();
    assert_eq!(
        reason(f.keys.verify(other.expose_secret()).await),
        AuthFailure::BadCredential
    );
}

fn base62_6(mut n: u32) -> String {
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for d in out.iter_mut().rev() {
        *d = A[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).unwrap()
}

#[tokio::test]
async fn expired_keys_are_rejected_even_when_cached() {
    let f = fixture();
    let expires = f.clock.now() + time::Duration::seconds(20);
    let created = f
        .keys
        .create(
            &f.admin,
            NewApiKey::new(f.acme.clone(), "short").with_expiry(expires),
        )
        .await
        .unwrap();
    let key = created.key.expose_secret();
    f.keys.verify(key).await.unwrap();
    f.clock.advance(Duration::from_secs(20));
    assert_eq!(reason(f.keys.verify(key).await), AuthFailure::Expired);
    let past = NewApiKey::new(f.acme.clone(), "past").with_expiry(f.clock.now());
    assert!(matches!(
        f.keys.create(&f.admin, past).await,
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn revocation_applies_to_the_next_request_through_the_same_service() {
    let f = fixture();
    let (key, record) = f.create(&["documents:read"]).await;
    f.keys.verify(&key).await.unwrap();
    f.keys.verify(&key).await.unwrap();
    assert_eq!(
        f.store.finds(),
        1,
        "the second verification was served by the cache"
    );

    f.keys.revoke(&f.admin, &f.acme, &record.id).await.unwrap();
    assert_eq!(reason(f.keys.verify(&key).await), AuthFailure::Revoked);
    assert_eq!(
        reason(f.keys.verify(&key).await),
        AuthFailure::Revoked,
        "a revoked key is never cached"
    );
    assert!(matches!(
        f.keys.revoke(&f.admin, &f.acme, &ApiKeyId::new()).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn deletion_removes_the_record_and_applies_to_the_next_request() {
    let f = fixture();
    let audit = Arc::new(docaiche_store::memory::MemoryAuditSink::new());
    let keys = ApiKeyService::new(f.store.clone(), Peppers::new(1, [(1, pepper(1))]).unwrap())
        .with_clock(Arc::new(f.clock.clone()))
        .with_audit(audit.clone());
    let created = keys
        .create(
            &f.admin,
            NewApiKey::new(f.acme.clone(), "alice's laptop")
                .with_scopes(perms(&["documents:read"])),
        )
        .await
        .unwrap();
    let (key, record) = (created.key.expose_secret().clone(), created.record);
    keys.verify(&key).await.unwrap();
    keys.verify(&key).await.unwrap();
    assert_eq!(f.store.finds(), 1, "the second verification was cached");

    keys.delete(&f.admin, &f.acme, &record.id).await.unwrap();
    assert_eq!(
        reason(keys.verify(&key).await),
        AuthFailure::BadCredential,
        "a deleted key is unknown at once, not served from the cache"
    );
    assert_eq!(f.store.finds(), 2, "the cache entry was dropped");
    assert_eq!(f.store.inner.get(&f.acme, &record.id).await.unwrap(), None);
    let page = PageRequest::first(10).unwrap();
    assert!(
        keys.list(&f.admin, &f.acme, &page)
            .await
            .unwrap()
            .items
            .is_empty(),
        "the record is gone, not revoked"
    );
    // Deleting again, or an unknown id, is NotFound (like revoke).
    for id in [record.id, ApiKeyId::new()] {
        assert!(matches!(
            keys.delete(&f.admin, &f.acme, &id).await,
            Err(Error::NotFound { .. })
        ));
    }
    // Audited once, naming the key id (never its name).
    let events = audit.events(&f.acme);
    let deleted: Vec<_> = events
        .iter()
        .filter(|e| e.action == "api_key.delete")
        .collect();
    assert_eq!(deleted.len(), 1, "{events:?}");
    let resource = deleted[0].resource.as_ref().expect("resource");
    assert_eq!(
        (resource.kind.as_str(), resource.id.as_str()),
        ("api_key", record.id.to_string().as_str())
    );
    assert_eq!(deleted[0].actor.as_ref(), Some(&f.admin.id));
    assert!(!serde_json::to_string(&events).unwrap().contains("laptop"));
    // Usage still pending for the deleted key is dropped, not an error.
    keys.flush_usage().await.unwrap();
    assert_eq!(f.store.inner.get(&f.acme, &record.id).await.unwrap(), None);
}

/// Two instances of a service over one store, sharing `bus`: the
/// fixture's (`a`) and a second one (`b`) listening on the bus.
fn two_instances(
    bus: &Arc<LocalInvalidationBus>,
) -> (Fixture, Arc<ApiKeyService>, InvalidationListener) {
    let mut a = fixture();
    let with_bus = |keys: ApiKeyService| keys.with_invalidations(bus.clone());
    let peppers = || Peppers::new(1, [(1, pepper(1))]).unwrap();
    a.keys = Arc::new(with_bus(
        ApiKeyService::new(a.store.clone(), peppers()).with_clock(Arc::new(a.clock.clone())),
    ));
    let b = Arc::new(with_bus(
        ApiKeyService::new(a.store.clone(), peppers()).with_clock(Arc::new(a.clock.clone())),
    ));
    let listener = b.spawn_invalidation_listener().expect("a bus is set");
    (a, b, listener)
}

/// How long an announcement may take to reach the other instance: it is
/// immediate on the in-process bus; the bound is for a loaded test machine.
const SOON: Duration = Duration::from_secs(5);

/// Wait (bounded) until `keys` refuses `key` with `expected`.
async fn refused_soon(keys: &ApiKeyService, key: &str, expected: AuthFailure) {
    tokio::time::timeout(SOON, async {
        while keys.verify(key).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the other instance refuses the key soon");
    assert_eq!(reason(keys.verify(key).await), expected);
}

#[tokio::test]
async fn a_revocation_reaches_the_other_instances_cache_over_the_bus() {
    let bus = Arc::new(LocalInvalidationBus::new());
    let (a, b, listener) = two_instances(&bus);
    listener.subscribed().await;
    // An instance without the bus, for contrast: it keeps its cached copy.
    let deaf = ApiKeyService::new(a.store.clone(), Peppers::new(1, [(1, pepper(1))]).unwrap())
        .with_clock(Arc::new(a.clock.clone()));

    let (key, record) = a.create(&["documents:read"]).await;
    b.verify(&key).await.expect("valid");
    deaf.verify(&key).await.expect("valid");
    let finds = a.store.finds();
    b.verify(&key).await.expect("valid");
    assert_eq!(a.store.finds(), finds, "b serves the key from its cache");

    a.keys.revoke(&a.admin, &a.acme, &record.id).await.unwrap();
    refused_soon(&b, &key, AuthFailure::Revoked).await;
    deaf.verify(&key)
        .await
        .expect("without the bus, the cached key lives until the TTL");

    let (key, record) = a.create(&["documents:read"]).await;
    b.verify(&key).await.expect("valid");
    a.keys.delete(&a.admin, &a.acme, &record.id).await.unwrap();
    refused_soon(&b, &key, AuthFailure::BadCredential).await;
}

#[tokio::test]
async fn a_rotation_reaches_the_other_instances_cache_over_the_bus() {
    let bus = Arc::new(LocalInvalidationBus::new());
    let (a, b, listener) = two_instances(&bus);
    listener.subscribed().await;
    let (old_key, old) = a.create(&["documents:read"]).await;
    b.verify(&old_key).await.expect("cached by b");
    a.keys
        .rotate(&a.admin, &a.acme, &old.id, Duration::from_secs(60))
        .await
        .unwrap();
    // b reads the rotated record, so it ends the old key with the overlap
    // rather than keeping the cached copy for its TTL.
    tokio::time::timeout(SOON, async {
        let finds = a.store.finds();
        while a.store.finds() == finds {
            b.verify(&old_key).await.expect("within the overlap");
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("b drops its cached copy");
    a.clock.advance(Duration::from_secs(60));
    assert_eq!(reason(b.verify(&old_key).await), AuthFailure::Expired);
}

#[tokio::test]
async fn a_listener_starts_from_an_empty_cache() {
    let bus = Arc::new(LocalInvalidationBus::new());
    let f = fixture();
    let keys = Arc::new(
        ApiKeyService::new(f.store.clone(), Peppers::new(1, [(1, pepper(1))]).unwrap())
            .with_clock(Arc::new(f.clock.clone()))
            .with_invalidations(bus.clone()),
    );
    let (key, _) = f.create(&["documents:read"]).await;
    keys.verify(&key).await.expect("valid");
    let finds = f.store.finds();
    // Announcements before the subscription were missed: what was cached
    // then is dropped.
    let listener = keys.spawn_invalidation_listener().expect("a bus is set");
    listener.subscribed().await;
    keys.verify(&key).await.expect("valid");
    assert_eq!(f.store.finds(), finds + 1, "read from the store again");
    let without_bus = Arc::new(ApiKeyService::new(
        f.store.clone(),
        Peppers::new(1, [(1, pepper(1))]).unwrap(),
    ));
    assert!(
        without_bus.spawn_invalidation_listener().is_none(),
        "no bus, no listener"
    );
}

#[tokio::test]
async fn the_cache_expires_after_its_ttl() {
    let f = fixture();
    let (key, _) = f.create(&["documents:read"]).await;
    f.keys.verify(&key).await.unwrap();
    f.clock.advance(Duration::from_secs(29));
    f.keys.verify(&key).await.unwrap();
    assert_eq!(f.store.finds(), 1);
    f.clock.advance(Duration::from_secs(1));
    f.keys.verify(&key).await.unwrap();
    assert_eq!(f.store.finds(), 2);
}

#[tokio::test]
async fn rotation_keeps_the_old_key_for_the_overlap_window_only() {
    let f = fixture();
    let (old_key, old) = f.create(&["documents:read"]).await;
    f.keys.verify(&old_key).await.unwrap(); // cached before the rotation
    let rotated = f
        .keys
        .rotate(&f.admin, &f.acme, &old.id, Duration::from_secs(3600))
        .await
        .unwrap();
    let new_key = rotated.key.expose_secret().clone();
    assert_ne!(new_key, old_key);
    assert_eq!(rotated.record.scopes, old.scopes);

    f.clock.advance(Duration::from_secs(3599));
    f.keys
        .verify(&old_key)
        .await
        .expect("within the overlap window");
    f.keys.verify(&new_key).await.unwrap();
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(reason(f.keys.verify(&old_key).await), AuthFailure::Expired);
    f.keys
        .verify(&new_key)
        .await
        .expect("the successor keeps working");

    assert!(matches!(
        f.keys
            .rotate(&f.admin, &f.acme, &old.id, Duration::from_secs(60))
            .await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        f.keys
            .rotate(
                &f.admin,
                &f.acme,
                &rotated.record.id,
                Duration::from_secs(30 * 24 * 3600)
            )
            .await,
        Err(Error::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn scope_escalation_is_rejected() {
    let f = fixture();
    let before = f.store.calls();
    for scopes in [
        &["documents:read", "admin:access"][..],
        &["documents:*"],
        &["*:*"],
        &["tenants:cross"],
    ] {
        let request = NewApiKey::new(f.acme.clone(), "escalate").with_scopes(perms(scopes));
        assert!(
            matches!(
                f.keys.create(&f.admin, request).await,
                Err(Error::Forbidden { .. })
            ),
            "{scopes:?}"
        );
    }
    assert_eq!(f.store.calls(), before, "nothing was stored");

    // A key that manages keys cannot mint a key with more than itself.
    let (manager_key, _) = f.create(&["keys:manage", "documents:read"]).await;
    let manager = f.keys.verify(&manager_key).await.unwrap().principal.clone();
    let request =
        NewApiKey::new(f.acme.clone(), "escalate").with_scopes(perms(&["documents:write"]));
    assert!(matches!(
        f.keys.create(&manager, request).await,
        Err(Error::Forbidden { permission: Some(ref p) }) if *p == Permission::DOCUMENTS_WRITE
    ));
    // And without keys:manage nothing can be created at all.
    let reader = principal("acme", "bob", &["documents:read"]);
    let request = NewApiKey::new(f.acme.clone(), "x").with_scopes(perms(&["documents:read"]));
    assert!(matches!(
        f.keys.create(&reader, request).await,
        Err(Error::Forbidden { .. })
    ));
}

#[tokio::test]
async fn scopes_outside_the_catalogue_or_over_the_cap_are_refused_before_any_write() {
    let f = fixture();
    let everything = principal("acme", "root", &["*:*"]);
    let before = f.store.calls();
    let too_many: Vec<String> = (0..=docaiche_core::MAX_SCOPES)
        .map(|i| format!("documents:x{i}"))
        .collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    for scopes in [
        &["documents:frobnicate"][..],
        &["reports:*"],
        &["documents:read", "made-up:read"],
        &too_many,
    ] {
        let request = NewApiKey::new(f.acme.clone(), "flood").with_scopes(perms(scopes));
        match f.keys.create(&everything, request).await {
            Err(Error::InvalidInput { fields, .. }) => {
                assert_eq!(fields[0].pointer, "/scopes", "{scopes:?}");
            }
            other => panic!("{scopes:?}: {other:?}"),
        }
    }
    assert_eq!(f.store.calls(), before, "nothing was stored");

    // Known permissions and the wildcards roles use are accepted.
    for scopes in [
        &["documents:read"][..],
        &["documents:*", "jobs:read"],
        &["*:*"],
    ] {
        let request = NewApiKey::new(f.acme.clone(), "ok").with_scopes(perms(scopes));
        f.keys
            .create(&everything, request)
            .await
            .expect("valid scopes");
    }
    // An embedder's own permissions, once in the catalogue.
    let custom = ApiKeyService::new(
        Arc::new(MemoryApiKeyStore::new()),
        Peppers::new(1, [(1, pepper(1))]).unwrap(),
    )
    .with_catalog(
        docaiche_core::PermissionCatalog::builtin()
            .with(Permission::parse("reports:read").unwrap()),
    );
    let request = NewApiKey::new(f.acme.clone(), "reports").with_scopes(perms(&["reports:*"]));
    custom
        .create(&everything, request)
        .await
        .expect("known to this catalogue");

    // A key stored with made-up scopes (before the check existed) is not
    // copied into a new key by rotation.
    let legacy = ApiKeyRecord::new(
        ApiKeyId::new(),
        f.acme.clone(),
        PrincipalId::new("old").unwrap(),
        ApiKeyLookup::new("legacylookup01").unwrap(),
        f.clock.now(),
    )
    .with_scopes(perms(&["documents:frobnicate"]));
    f.store.insert(&legacy).await.unwrap();
    assert!(matches!(
        f.keys
            .rotate(&everything, &f.acme, &legacy.id, Duration::from_secs(60))
            .await,
        Err(Error::Conflict { .. })
    ));
}

#[tokio::test]
async fn a_tenant_cannot_list_rotate_or_revoke_another_tenants_keys() {
    let f = fixture();
    let (acme_key, acme_record) = f.create(&["documents:read"]).await;
    let globex_admin = principal("globex", "mallory", &["keys:manage", "documents:read"]);
    let globex_key = f
        .keys
        .create(
            &globex_admin,
            NewApiKey::new(TenantId::new("globex").unwrap(), "g")
                .with_scopes(perms(&["keys:manage"])),
        )
        .await
        .unwrap();
    // Authenticated through a globex API key.
    let via_key = f
        .keys
        .verify(globex_key.key.expose_secret())
        .await
        .unwrap()
        .principal
        .clone();
    let page = PageRequest::first(10).unwrap();
    for attacker in [&globex_admin, &via_key] {
        assert!(matches!(
            f.keys.list(attacker, &f.acme, &page).await,
            Err(Error::Forbidden { .. })
        ));
        assert!(matches!(
            f.keys.revoke(attacker, &f.acme, &acme_record.id).await,
            Err(Error::Forbidden { .. })
        ));
        assert!(matches!(
            f.keys
                .rotate(attacker, &f.acme, &acme_record.id, Duration::ZERO)
                .await,
            Err(Error::Forbidden { .. })
        ));
        assert!(matches!(
            f.keys.delete(attacker, &f.acme, &acme_record.id).await,
            Err(Error::Forbidden { .. })
        ));
        // Naming their own tenant does not reach acme's record either.
        assert!(matches!(
            f.keys
                .revoke(attacker, &attacker.tenant, &acme_record.id)
                .await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            f.keys
                .delete(attacker, &attacker.tenant, &acme_record.id)
                .await,
            Err(Error::NotFound { .. })
        ));
        let own = f
            .keys
            .list(attacker, &attacker.tenant, &page)
            .await
            .unwrap();
        assert!(own.items.iter().all(|r| r.tenant == attacker.tenant));
    }
    f.keys.verify(&acme_key).await.expect("still valid");

    let platform = principal("ops", "root", &["keys:manage", "tenants:cross"]);
    let listed = f.keys.list(&platform, &f.acme, &page).await.unwrap();
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test]
async fn last_used_is_written_later_in_one_batch() {
    let f = fixture();
    let flusher = f.keys.spawn_usage_flusher();
    while f.clock.pending_sleepers() == 0 {
        tokio::task::yield_now().await; // let the flusher start its first sleep
    }
    let mut records = Vec::new();
    for _ in 0..3 {
        let (key, record) = f.create(&["documents:read"]).await;
        for _ in 0..5 {
            f.keys.verify(&key).await.unwrap();
        }
        records.push(record);
    }
    let stored = f
        .store
        .inner
        .get(&f.acme, &records[0].id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.last_used_at.is_none(),
        "not written on the request path"
    );
    assert!(f.store.batches.lock().unwrap().is_empty());

    f.clock.advance(Duration::from_secs(10));
    for _ in 0..1000 {
        if !f.store.batches.lock().unwrap().is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        *f.store.batches.lock().unwrap(),
        vec![3],
        "one batch of three keys"
    );
    for record in &records {
        let stored = f
            .store
            .inner
            .get(&f.acme, &record.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.last_used_at,
            Some(f.clock.now() - time::Duration::seconds(10))
        );
    }
    drop(flusher);
}

#[tokio::test]
async fn keys_survive_a_pepper_rotation() {
    let f = fixture();
    let (old_key, _) = f.create(&["documents:read"]).await;
    let rotated = ApiKeyService::new(
        f.store.clone(),
        Peppers::new(2, [(1, pepper(1)), (2, pepper(2))]).unwrap(),
    )
    .with_config(ApiKeyConfig::default())
    .unwrap();
    rotated
        .verify(&old_key)
        .await
        .expect("verified with version 1");
    let created = rotated
        .create(
            &f.admin,
            NewApiKey::new(f.acme.clone(), "v2").with_scopes(perms(&["documents:read"])),
        )
        .await
        .unwrap();
    assert_eq!(created.record.hash_version, 2);
    // A service that no longer has pepper 1 rejects old keys.
    let retired = ApiKeyService::new(f.store.clone(), Peppers::new(2, [(2, pepper(2))]).unwrap());
    assert_eq!(
        reason(retired.verify(&old_key).await),
        AuthFailure::BadCredential
    );
    retired.verify(created.key.expose_secret()).await.unwrap();
}

#[tokio::test]
async fn the_key_never_appears_in_debug_output() {
    let f = fixture();
    let created = f
        .keys
        .create(&f.admin, NewApiKey::new(f.acme.clone(), "ci"))
        .await
        .unwrap();
    let secret = created.key.expose_secret().clone();
    let printed = format!("{created:?} {:?}", f.keys);
    assert!(!printed.contains(&secret[17..]), "{printed}");
}

#[tokio::test]
async fn peppers_load_from_a_secret_provider() {
    use docaiche_store::secret::MemorySecretProvider;

    let provider = MemorySecretProvider::new()
        .with_secret("api-key/pepper-v1", pepper(1))
        .unwrap()
        .with_secret("api-key/pepper-v2", pepper(2))
        .unwrap()
        .with_secret("api-key/short", SecretBytes::new(vec![1; 16]))
        .unwrap();
    let peppers = Peppers::load(
        &provider,
        2,
        &[(1, "api-key/pepper-v1"), (2, "api-key/pepper-v2")],
    )
    .await
    .unwrap();
    assert_eq!(peppers.current(), 2);
    assert!(peppers.has_version(1));
    // The same pepper bytes give the same hashes as a directly built set.
    let direct = Peppers::new(1, [(1, pepper(1))]).unwrap();
    let (version, hash) = direct.hash_current("dcx_probe");
    assert!(peppers.verify(version, "dcx_probe", &hash));

    for (versions, current) in [
        (&[(1, "api-key/missing")][..], 1),
        (&[(1, "api-key/short")][..], 1),
        (&[(1, "api-key/pepper-v1")][..], 2),
    ] {
        assert!(matches!(
            Peppers::load(&provider, current, versions).await,
            Err(Error::Misconfigured { .. })
        ));
    }
}
