//! Behaviour specific to the memory backends: bounds, eviction, forgetting.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use docaiche_core::audit::{AuditEvent, AuditOutcome};
use docaiche_core::cache::CacheKey;
use docaiche_core::document::{DocumentText, NewDocument};
use docaiche_core::job::{JobState, LeaseStatus, NewJob};
use docaiche_core::{
    AuditSink, CacheStore, DocumentStore, Error, ErrorCode, JobQueue, ManualClock, PrincipalId,
    RequestContext, TenantId, TokenRevocationStore,
};
use serde_json::json;

use super::*;

fn n(value: usize) -> NonZeroUsize {
    NonZeroUsize::new(value).expect("test bounds are non-zero")
}

fn tenant() -> TenantId {
    TenantId::new("acme").expect("valid tenant")
}

fn assert_full(err: &Error) {
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
    assert!(
        err.log_chain().contains("is full: limit is"),
        "{}",
        err.log_chain()
    );
}

#[tokio::test]
async fn revocation_store_forgets_expired_entries_before_refusing() {
    let clock = ManualClock::new();
    let store = MemoryRevocationStore::new()
        .with_clock(Arc::new(clock.clone()))
        .with_max_entries(n(2));
    let now = clock.now();
    store
        .revoke("a", now + Duration::from_secs(10))
        .await
        .expect("room");
    store
        .revoke("b", now + Duration::from_secs(100))
        .await
        .expect("room");
    let err = store
        .revoke("c", now + Duration::from_secs(100))
        .await
        .expect_err("full of live entries");
    assert_full(&err);
    assert!(
        store.is_revoked("a").await.expect("answers"),
        "a live revocation is never dropped"
    );
    assert!(store.is_revoked("b").await.expect("answers"));
    // Re-revoking an id already held needs no room.
    store
        .revoke("b", now + Duration::from_secs(200))
        .await
        .expect("idempotent");

    clock.advance(Duration::from_secs(10));
    assert!(
        !store.is_revoked("a").await.expect("answers"),
        "expired at expires_at"
    );
    store
        .revoke("c", now + Duration::from_secs(100))
        .await
        .expect("the expired entry made room");
    assert_eq!(store.len(), 2, "the expired entry was forgotten");
    assert!(store.is_revoked("c").await.expect("answers"));
}

#[tokio::test]
async fn revoking_an_already_expired_token_remembers_nothing() {
    let clock = ManualClock::new();
    let store = MemoryRevocationStore::new().with_clock(Arc::new(clock.clone()));
    store
        .revoke("old", clock.now() - Duration::from_secs(1))
        .await
        .expect("accepted");
    assert!(store.is_empty());
}

#[tokio::test]
async fn cache_forgets_expired_entries_then_evicts_the_soonest_to_expire() {
    let clock = ManualClock::new();
    let cache = MemoryCacheStore::new()
        .with_clock(Arc::new(clock.clone()))
        .with_max_entries(n(3));
    let key = |k: &str| CacheKey::new("test", k).expect("valid key");
    let v = Bytes::from_static(b"v");
    cache
        .set(&key("short"), v.clone(), Duration::from_secs(5))
        .await
        .expect("set");
    cache
        .set(&key("long"), v.clone(), Duration::from_secs(500))
        .await
        .expect("set");
    cache
        .set(&key("mid"), v.clone(), Duration::from_secs(50))
        .await
        .expect("set");
    cache
        .set(&key("new"), v.clone(), Duration::from_secs(100))
        .await
        .expect("set");
    assert_eq!(cache.len(), 3, "bounded");
    assert!(
        cache.get(&key("short")).await.expect("get").is_none(),
        "the entry closest to expiry went"
    );
    for k in ["long", "mid", "new"] {
        assert!(cache.get(&key(k)).await.expect("get").is_some(), "{k}");
    }

    clock.advance(Duration::from_secs(60));
    cache
        .set(&key("later"), v.clone(), Duration::from_secs(1))
        .await
        .expect("set");
    assert!(
        cache.get(&key("long")).await.expect("get").is_some(),
        "the expired `mid` made room, not `long`"
    );
    assert!(cache.get(&key("new")).await.expect("get").is_some());
    assert_eq!(cache.len(), 3);
}

#[tokio::test]
async fn cache_reports_remaining_ttl_from_the_clock() {
    let clock = ManualClock::new();
    let cache = MemoryCacheStore::new().with_clock(Arc::new(clock.clone()));
    let key = CacheKey::new("test", "k").expect("valid key");
    cache
        .set(&key, Bytes::new(), Duration::from_secs(10))
        .await
        .expect("set");
    clock.advance(Duration::from_secs(4));
    let entry = cache.get(&key).await.expect("get").expect("live");
    assert_eq!(entry.ttl_remaining, Duration::from_secs(6));
}

#[tokio::test]
async fn document_store_refuses_writes_beyond_its_byte_bound() {
    let store = MemoryDocumentStore::new().with_max_bytes(n(10));
    let owner = PrincipalId::new("alice").expect("valid principal");
    let doc = |len: usize| {
        NewDocument::new(
            owner.clone(),
            "text/plain",
            "00",
            Bytes::from(vec![b'x'; len]),
        )
    };
    let first = doc(6);
    store.put(&tenant(), first.clone()).await.expect("fits");
    assert_full(&store.put(&tenant(), doc(5)).await.expect_err("6 + 5 > 10"));
    let text = DocumentText::new(vec!["abcd".to_owned()]);
    store
        .put_text(&tenant(), &first.id, &text)
        .await
        .expect("6 + 4 fits");
    assert_eq!(store.bytes_used(), 10);
    let longer = DocumentText::new(vec!["abcde".to_owned()]);
    assert_full(
        &store
            .put_text(&tenant(), &first.id, &longer)
            .await
            .expect_err("6 + 5 > 10"),
    );
    assert_eq!(
        store
            .get_text(&tenant(), &first.id)
            .await
            .expect("get")
            .as_ref(),
        Some(&text),
        "unchanged"
    );
    assert!(store.delete(&tenant(), &first.id).await.expect("delete"));
    assert_eq!(store.bytes_used(), 0, "delete frees content and text");
    store.put(&tenant(), doc(10)).await.expect("room again");
}

#[tokio::test]
async fn api_key_store_refuses_records_beyond_its_bound() {
    let store = MemoryApiKeyStore::new().with_max_records(n(1));
    let record = |lookup: &str| {
        docaiche_core::api_key::ApiKeyRecord::new(
            docaiche_core::ApiKeyId::new(),
            tenant(),
            docaiche_core::PrincipalId::new("alice").expect("valid"),
            docaiche_core::api_key::ApiKeyLookup::new(lookup).expect("valid"),
            time::OffsetDateTime::UNIX_EPOCH,
        )
        .with_name("k")
        .with_hash(1, vec![1])
    };
    docaiche_core::ApiKeyStore::insert(&store, &record("lookup0001"))
        .await
        .expect("fits");
    let err = docaiche_core::ApiKeyStore::insert(&store, &record("lookup0002"))
        .await
        .expect_err("full");
    assert_full(&err);
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn api_key_store_delete_frees_room_and_the_lookup() {
    use docaiche_core::ApiKeyStore as _;
    let store = MemoryApiKeyStore::new().with_max_records(n(1));
    let record = docaiche_core::api_key::ApiKeyRecord::new(
        docaiche_core::ApiKeyId::new(),
        tenant(),
        docaiche_core::PrincipalId::new("alice").expect("valid"),
        docaiche_core::api_key::ApiKeyLookup::new("lookup0001").expect("valid"),
        time::OffsetDateTime::UNIX_EPOCH,
    )
    .with_name("k")
    .with_hash(1, vec![1]);
    store.insert(&record).await.expect("fits");
    assert!(store.delete(&tenant(), &record.id).await.expect("delete"));
    assert!(store.is_empty(), "delete forgets the id and the lookup");
    // The id and lookup indexes let go too: the same record fits again.
    store.insert(&record).await.expect("room again");
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn job_queue_forgets_finished_jobs_before_refusing() {
    let clock = ManualClock::new();
    let queue = MemoryJobQueue::new()
        .with_clock(Arc::new(clock.clone()))
        .with_max_jobs(n(2));
    let done = queue
        .enqueue(&tenant(), NewJob::new("k", json!(1)))
        .await
        .expect("room");
    let lease = queue
        .claim(&["k"], Duration::from_secs(30))
        .await
        .expect("claim")
        .expect("runnable");
    assert!(queue.complete(&lease, json!(null)).await.expect("complete"));
    queue
        .enqueue(&tenant(), NewJob::new("k", json!(2)))
        .await
        .expect("room");
    queue
        .enqueue(&tenant(), NewJob::new("k", json!(3)))
        .await
        .expect("the finished job made room");
    assert!(
        queue.get(&tenant(), &done.id).await.expect("get").is_none(),
        "finished job forgotten"
    );
    assert_full(
        &queue
            .enqueue(&tenant(), NewJob::new("k", json!(4)))
            .await
            .expect_err("all unfinished"),
    );
}

#[tokio::test]
async fn a_lease_lapsing_on_the_last_attempt_dead_letters_the_job() {
    let clock = ManualClock::new();
    let queue = MemoryJobQueue::new().with_clock(Arc::new(clock.clone()));
    let job = queue
        .enqueue(&tenant(), NewJob::new("k", json!(1)).with_max_attempts(1))
        .await
        .expect("enqueue");
    let lease = queue
        .claim(&["k"], Duration::from_secs(1))
        .await
        .expect("claim")
        .expect("runnable");
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        queue
            .heartbeat(&lease, 5, Duration::from_secs(1))
            .await
            .expect("answers"),
        LeaseStatus::Lost,
        "expired, even before a reclaim"
    );
    assert!(
        queue
            .claim(&["k"], Duration::from_secs(1))
            .await
            .expect("claim")
            .is_none()
    );
    let got = queue
        .get(&tenant(), &job.id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.state, JobState::Dead);
    assert_eq!(got.last_error.as_deref(), Some("lease expired"));
}

#[tokio::test]
async fn heartbeat_extends_the_lease_from_now() {
    let clock = ManualClock::new();
    let queue = MemoryJobQueue::new().with_clock(Arc::new(clock.clone()));
    queue
        .enqueue(&tenant(), NewJob::new("k", json!(1)))
        .await
        .expect("enqueue");
    let lease = queue
        .claim(&["k"], Duration::from_secs(10))
        .await
        .expect("claim")
        .expect("runnable");
    clock.advance(Duration::from_secs(9));
    assert_eq!(
        queue
            .heartbeat(&lease, 200, Duration::from_secs(10))
            .await
            .expect("answers"),
        LeaseStatus::Active
    );
    clock.advance(Duration::from_secs(9));
    assert!(
        queue
            .claim(&["k"], Duration::from_secs(10))
            .await
            .expect("claim")
            .is_none(),
        "still leased"
    );
    let got = queue
        .get(&tenant(), &lease.job.id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.progress, 100, "progress is clamped to 100");
    assert!(queue.complete(&lease, json!("ok")).await.expect("complete"));
}

#[tokio::test]
async fn audit_sink_refuses_when_full_and_drops_nothing() {
    let sink = MemoryAuditSink::new().with_max_events(n(2));
    let event = |action: &str| {
        AuditEvent::new(
            action,
            AuditOutcome::Success,
            time::OffsetDateTime::UNIX_EPOCH,
            &RequestContext::new(),
        )
        .by(tenant(), None)
    };
    assert_eq!(
        sink.record(&event("a")).await.expect("room").sequence,
        Some(1)
    );
    assert_eq!(
        sink.record(&event("b")).await.expect("room").sequence,
        Some(2)
    );
    assert_full(&sink.record(&event("c")).await.expect_err("full"));
    let actions: Vec<String> = sink
        .events(&tenant())
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["a", "b"]);
    let untenanted = AuditEvent::new(
        "login",
        AuditOutcome::Failure,
        time::OffsetDateTime::UNIX_EPOCH,
        &RequestContext::new(),
    );
    assert!(sink.record(&untenanted).await.is_err());
    assert!(sink.events_without_tenant().is_empty());
}

#[tokio::test]
async fn memory_health_check_is_up() {
    use docaiche_core::HealthCheck;
    let report = health_check("memory").check().await;
    assert_eq!(report.status, docaiche_core::HealthStatus::Up);
}

#[tokio::test]
async fn memory_documents_count_their_usage() {
    use docaiche_core::DocumentStore;
    let store = crate::memory::MemoryDocumentStore::new();
    let tenant = docaiche_core::TenantId::new("acme").expect("tenant");
    let usage = store.usage(&tenant).await.expect("usage");
    assert_eq!(
        usage,
        Some(docaiche_core::document::StorageUsage::new(0, 0))
    );
}
