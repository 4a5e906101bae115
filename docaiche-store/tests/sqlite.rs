//! The SQLite adapters against the conformance suite and their own promises
//! (migrations, pool figures, health, corrupted rows), on an in-memory
//! database and on a file shared by several pooled connections.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use docaiche_core::document::NewDocument;
use docaiche_core::health::{HealthCheck, HealthStatus};
use docaiche_core::{DocumentStore, ErrorCode, JobQueue, ManualClock, PrincipalId, TenantId};
use docaiche_store::conformance::{self, Harness};
use docaiche_store::sql::PoolConfig;
use docaiche_store::sqlite::{SqliteConfig, SqliteStore};

/// A database file under the temp dir, removed (with its WAL files) on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("docaiche-test-{}.db", uuid::Uuid::new_v4())))
    }

    fn config(&self) -> SqliteConfig {
        SqliteConfig::file(self.0.to_string_lossy())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn run_all(store: SqliteStore, clock: ManualClock) {
    let store = store.with_clock(Arc::new(clock.clone()));
    let harness = Harness::with_manual_clock(clock);
    conformance::run_document_store(Arc::new(store.documents()), &harness).await;
    conformance::run_api_key_store(Arc::new(store.api_keys()), &harness).await;
    conformance::run_account_store(Arc::new(store.accounts()), &harness).await;
    conformance::run_custom_role_store(Arc::new(store.custom_roles()), &harness).await;
    conformance::run_tenant_store(Arc::new(store.tenants()), &harness).await;
    conformance::run_revocation_store(Arc::new(store.revocations()), &harness).await;
    conformance::run_job_queue(Arc::new(store.jobs()), &harness).await;
    conformance::run_web_session_store(Arc::new(store.web_sessions()), &harness).await;
    let audit = store.audit();
    conformance::run_audit_sink_with_read_back(Arc::new(audit.clone()), &audit, &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_store_conforms_in_memory_and_in_a_file() {
    let memory = SqliteStore::connect(&SqliteConfig::in_memory())
        .await
        .unwrap();
    conformance::run_usage_store(Arc::new(memory.usage()), &Harness::without_time()).await;
    let db = TempDb::new();
    let file = SqliteStore::connect(&db.config()).await.unwrap();
    conformance::run_usage_store(Arc::new(file.usage()), &Harness::without_time()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn data_key_store_conforms_in_memory_and_in_a_file() {
    let memory = SqliteStore::connect(&SqliteConfig::in_memory())
        .await
        .unwrap();
    conformance::run_data_key_store(Arc::new(memory.data_keys()), &Harness::without_time()).await;
    let db = TempDb::new();
    let file = SqliteStore::connect(&db.config()).await.unwrap();
    conformance::run_data_key_store(Arc::new(file.data_keys()), &Harness::without_time()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mfa_store_conforms_in_memory_and_in_a_file() {
    let memory = SqliteStore::connect(&SqliteConfig::in_memory())
        .await
        .unwrap();
    conformance::run_mfa_store(Arc::new(memory.mfa()), &Harness::without_time()).await;
    let db = TempDb::new();
    let file = SqliteStore::connect(&db.config()).await.unwrap();
    conformance::run_mfa_store(Arc::new(file.mfa()), &Harness::without_time()).await;
    file.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_database_conforms() {
    let store = SqliteStore::connect(&SqliteConfig::in_memory())
        .await
        .unwrap();
    run_all(store, ManualClock::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_database_with_pooled_connections_conforms() {
    let db = TempDb::new();
    let store = SqliteStore::connect(&db.config()).await.unwrap();
    run_all(store.clone(), ManualClock::new()).await;
    let stats = store.pool_stats();
    assert!(
        stats.size > 1,
        "the concurrent cases opened several connections: {stats:?}"
    );
    store.pool().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_database_conforms_in_real_time() {
    let db = TempDb::new();
    let store = SqliteStore::connect(&db.config()).await.unwrap();
    let harness = Harness::real_time();
    conformance::run_job_queue(Arc::new(store.jobs()), &harness).await;
    conformance::run_revocation_store(Arc::new(store.revocations()), &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_never_claim_a_job_twice() {
    let db = TempDb::new();
    let (a, b) = (
        SqliteStore::connect(&db.config()).await.unwrap(),
        SqliteStore::connect(&db.config()).await.unwrap(),
    );
    let tenant = TenantId::new("acme").unwrap();
    for i in 0..100 {
        a.jobs()
            .enqueue(
                &tenant,
                docaiche_core::job::NewJob::new("shared", serde_json::json!(i)),
            )
            .await
            .unwrap();
    }
    let mut workers = Vec::new();
    for store in [&a, &b] {
        for _ in 0..4 {
            let jobs = store.jobs();
            workers.push(tokio::spawn(async move {
                let mut claimed = Vec::new();
                while let Some(lease) = jobs
                    .claim(&["shared"], std::time::Duration::from_secs(60))
                    .await
                    .unwrap()
                {
                    assert!(jobs.complete(&lease, serde_json::json!(1)).await.unwrap());
                    claimed.push(lease.job.id);
                }
                claimed
            }));
        }
    }
    let mut claimed = Vec::new();
    for worker in workers {
        claimed.extend(worker.await.unwrap());
    }
    let unique: std::collections::HashSet<_> = claimed.iter().copied().collect();
    assert_eq!((claimed.len(), unique.len()), (100, 100));
    a.pool().close().await;
    b.pool().close().await;
}

#[tokio::test]
async fn every_adapter_query_uses_an_index() {
    use docaiche_store::sqlite::queries as q;
    let store = SqliteStore::connect(&SqliteConfig::in_memory())
        .await
        .unwrap();
    let claim = q::job_claim(&["a", "b"], 1, uuid::Uuid::nil(), 2);
    let dead = q::job_dead_letter(&["a", "b"], 1);
    let statements: Vec<(&str, &str)> = vec![
        ("document insert", q::DOCUMENT_INSERT),
        ("document get", &q::DOCUMENT_GET),
        ("document head", &q::DOCUMENT_HEAD),
        ("document list", &q::DOCUMENT_LIST),
        ("document list by owner", &q::DOCUMENT_LIST_BY_OWNER),
        ("document delete", q::DOCUMENT_DELETE),
        ("document put text", q::DOCUMENT_PUT_TEXT),
        ("document get text", q::DOCUMENT_GET_TEXT),
        ("api key insert", &q::API_KEY_INSERT),
        ("api key find by lookup", &q::API_KEY_FIND_BY_LOOKUP),
        ("api key get", &q::API_KEY_GET),
        ("api key list", &q::API_KEY_LIST),
        ("api key revoke", q::API_KEY_REVOKE),
        ("api key mark rotated", q::API_KEY_MARK_ROTATED),
        ("api key record usage", q::API_KEY_RECORD_USAGE),
        ("revocation upsert", q::REVOCATION_UPSERT),
        ("revocation check", q::REVOCATION_CHECK),
        ("revocation purge", q::REVOCATION_PURGE),
        ("subject revocation upsert", q::SUBJECT_REVOCATION_UPSERT),
        ("subject revocation check", q::SUBJECT_REVOCATION_CHECK),
        ("subject revocation purge", q::SUBJECT_REVOCATION_PURGE),
        ("token or subject revoked", q::TOKEN_OR_SUBJECT_REVOKED),
        ("job insert", &q::JOB_INSERT),
        ("job dead letter", dead.sql()),
        ("job claim", claim.sql()),
        ("job heartbeat", q::JOB_HEARTBEAT),
        ("job lease cancelled", q::JOB_LEASE_CANCELLED),
        ("job complete", q::JOB_COMPLETE),
        ("job fail", q::JOB_FAIL),
        ("job cancel", q::JOB_CANCEL),
        ("job get", &q::JOB_GET),
        ("audit insert", q::AUDIT_INSERT),
        ("audit seq of", q::AUDIT_SEQ_OF),
        ("audit events", q::AUDIT_EVENTS),
        // The control: a query no index serves must be caught.
        (
            "control",
            "SELECT id FROM documents WHERE content_type = x'00'",
        ),
    ];
    let mut full_scans = Vec::new();
    for (name, sql) in statements {
        // raw_sql: planned without binding, parameters read as NULL.
        let rows = sqlx::raw_sql(&format!("EXPLAIN QUERY PLAN {sql}"))
            .fetch_all(store.pool())
            .await
            .unwrap_or_else(|e| panic!("explain {name}: {e}"));
        for row in rows {
            use sqlx::Row;
            let detail: String = row.try_get("detail").unwrap();
            // `SCAN CONSTANT ROW` is a SELECT without FROM, not a table.
            if detail.starts_with("SCAN ")
                && !detail.contains("INDEX")
                && detail != "SCAN CONSTANT ROW"
            {
                full_scans.push(format!("{name}: {detail}"));
            }
        }
    }
    assert_eq!(full_scans, vec!["control: SCAN documents".to_owned()]);
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_are_idempotent() {
    let db = TempDb::new();
    let tenant = TenantId::new("acme").unwrap();
    let id = {
        let store = SqliteStore::connect(&db.config()).await.unwrap();
        let doc = NewDocument::new(
            PrincipalId::new("alice").unwrap(),
            "application/pdf",
            "ab12",
            Bytes::from_static(b"%PDF-1.7 \0 bytes"),
        );
        let meta = store.documents().put(&tenant, doc).await.unwrap();
        store.migrate().await.unwrap();
        store.pool().close().await;
        meta.id
    };
    let store = SqliteStore::connect(&db.config()).await.unwrap();
    let got = store.documents().get(&tenant, &id).await.unwrap().unwrap();
    assert_eq!(&got.content[..], b"%PDF-1.7 \0 bytes");
    store.pool().close().await;
}

#[tokio::test]
async fn without_migrating_the_schema_is_absent_until_migrate() {
    let store = SqliteStore::connect_without_migrating(&SqliteConfig::in_memory())
        .await
        .unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let missing = store
        .jobs()
        .get(&tenant, &docaiche_core::JobId::new())
        .await;
    assert_eq!(missing.unwrap_err().code(), ErrorCode::Internal);
    docaiche_store::sqlite::migrate(store.pool()).await.unwrap();
    assert_eq!(
        store
            .jobs()
            .get(&tenant, &docaiche_core::JobId::new())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_corrupted_row_is_an_internal_error_not_garbage() {
    let store = SqliteStore::connect(&SqliteConfig::in_memory())
        .await
        .unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let job = store
        .jobs()
        .enqueue(
            &tenant,
            docaiche_core::job::NewJob::new("extract", serde_json::json!({})),
        )
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET payload = '{not json', state = 'exploded'")
        .execute(store.pool())
        .await
        .unwrap();
    let err = store.jobs().get(&tenant, &job.id).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);

    // A risk flag this build does not know: an error, never a flag dropped.
    let owner = PrincipalId::new("alice").unwrap();
    let doc = NewDocument::new(owner.clone(), "application/pdf", "00", Bytes::new());
    let meta = store.documents().put(&tenant, doc).await.unwrap();
    sqlx::query("UPDATE documents SET risks = 'java_script,teleport', text_pages = '[]'")
        .execute(store.pool())
        .await
        .unwrap();
    let documents = store.documents();
    let page = docaiche_core::page::PageRequest::new(None, 10).unwrap();
    let codes = [
        documents.head(&tenant, &meta.id).await.map(|_| ()),
        documents.get(&tenant, &meta.id).await.map(|_| ()),
        documents.list(&tenant, &page).await.map(|_| ()),
        documents
            .list_by_owner(&tenant, &owner, &page)
            .await
            .map(|_| ()),
        documents.get_text(&tenant, &meta.id).await.map(|_| ()),
    ]
    .map(|result| result.map_err(|e| e.code()).err());
    assert_eq!(codes, [Some(ErrorCode::Internal); 5]);
}

#[tokio::test]
async fn pool_stats_count_acquisitions_and_health_is_up() {
    let store = SqliteStore::connect(&SqliteConfig::in_memory())
        .await
        .unwrap();
    let before = store.pool_stats();
    let tenant = TenantId::new("acme").unwrap();
    for _ in 0..5 {
        store
            .documents()
            .head(&tenant, &docaiche_core::DocumentId::new())
            .await
            .unwrap();
    }
    let after = store.pool_stats();
    assert_eq!(after.acquired, before.acquired + 5);
    assert_eq!(after.waiting, 0);
    assert_eq!(
        after.max_connections, 1,
        "in-memory databases use one connection"
    );
    let health = store.health_check().check().await;
    assert_eq!(health.status, HealthStatus::Up);
    assert!(health.detail.unwrap().contains("size=1"));
}

#[tokio::test]
async fn health_is_down_once_the_pool_is_closed() {
    let store = SqliteStore::connect(&SqliteConfig::in_memory())
        .await
        .unwrap();
    store.pool().close().await;
    assert_eq!(
        store.health_check().check().await.status,
        HealthStatus::Down
    );
    let err = store
        .jobs()
        .claim(&["x"], std::time::Duration::from_secs(1))
        .await;
    assert_eq!(err.unwrap_err().code(), ErrorCode::Unavailable);
}

#[tokio::test]
async fn a_circuit_breaker_fails_fast_once_connections_keep_failing() {
    let breaker = docaiche_core::resilience::CircuitBreaker::builder("sqlite")
        .count_window(2)
        .minimum_calls(2)
        .failure_rate_threshold(50.0)
        .build()
        .unwrap();
    let store = SqliteStore::connect(&SqliteConfig::in_memory())
        .await
        .unwrap()
        .with_circuit_breaker(breaker.clone());
    let tenant = TenantId::new("acme").unwrap();
    let jobs = store.jobs();
    assert_eq!(
        jobs.get(&tenant, &docaiche_core::JobId::new())
            .await
            .unwrap(),
        None
    );
    store.pool().close().await;
    // One success and one failure in a window of two: 50 %, the threshold.
    let err = jobs
        .get(&tenant, &docaiche_core::JobId::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable);
    let failures_before = store.pool_stats().acquire_failures;
    let err = jobs
        .get(&tenant, &docaiche_core::JobId::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::CircuitOpen);
    assert_eq!(
        store.pool_stats().acquire_failures,
        failures_before,
        "an open breaker does not even try the pool"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_degraded_while_callers_wait_for_the_only_connection() {
    let db = TempDb::new();
    let mut config = db.config();
    config.pool = PoolConfig::default().with_max_connections(1);
    let store = SqliteStore::connect(&config).await.unwrap();
    let held = store.pool().acquire().await.unwrap();
    let waiter = {
        let documents = store.documents();
        tokio::spawn(async move {
            let tenant = TenantId::new("acme").unwrap();
            documents
                .head(&tenant, &docaiche_core::DocumentId::new())
                .await
        })
    };
    for _ in 0..200 {
        if store.pool_stats().waiting > 0 {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let stats = store.pool_stats();
    assert!(stats.is_saturated(), "{stats:?}");
    assert_eq!(
        store.health_check().check().await.status,
        HealthStatus::Degraded
    );
    drop(held);
    waiter.await.unwrap().unwrap();
    assert_eq!(store.pool_stats().waiting, 0);
    assert_eq!(store.health_check().check().await.status, HealthStatus::Up);
    store.pool().close().await;
}

#[test]
fn config_deserializes_and_validates() {
    let config: SqliteConfig = serde_json::from_str(
        r#"{ "path": "/var/lib/docaiche/store.db",
             "pool": { "max_connections": 8, "min_connections": 1, "acquire_timeout_ms": 250,
                       "idle_timeout_ms": null } }"#,
    )
    .unwrap();
    assert_eq!(config.pool.max_connections, 8);
    assert_eq!(config.pool.idle_timeout_ms, None);
    assert!(serde_json::from_str::<SqliteConfig>(r#"{ "pth": "typo" }"#).is_err());
    let bad: PoolConfig = serde_json::from_str(r#"{ "max_connections": 0 }"#).unwrap();
    assert_eq!(
        bad.validate("sqlite.pool").unwrap_err().code(),
        ErrorCode::Misconfigured
    );
}

#[tokio::test]
async fn invalid_pool_settings_are_refused_at_connect() {
    let mut config = SqliteConfig::in_memory();
    config.path = std::env::temp_dir()
        .join(format!("docaiche-never-{}.db", uuid::Uuid::new_v4()))
        .to_string_lossy()
        .into_owned();
    config.pool.max_connections = 0;
    let err = SqliteStore::connect(&config).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Misconfigured);
}

#[allow(dead_code)]
fn assert_traits(store: &SqliteStore) -> Arc<dyn JobQueue> {
    Arc::new(store.jobs())
}

/// Encryption at rest on SQLite: the wrapped per-subject keys live beside
/// the documents, so encrypted documents survive a restart; the key store
/// keeps its contract (one key per subject under races, compare-and-swap
/// replace, destroy, ordered paging).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_documents_survive_a_reopen_with_their_keys_in_sqlite() {
    use docaiche_core::SecretBytes;
    use docaiche_core::key_wrapper::WrappedKey;
    use docaiche_store::encryption::{DataKeyStore, EncryptedDocumentStore};
    use docaiche_store::key_wrapper::LocalKeyWrapper;

    let file = TempDb::new();
    let kek = || LocalKeyWrapper::from_key_bytes(1, SecretBytes::new(vec![9; 32])).unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let id = {
        let store = SqliteStore::connect(&file.config()).await.unwrap();
        let encrypted = EncryptedDocumentStore::new(
            Arc::new(store.documents()),
            Arc::new(store.data_keys()),
            Arc::new(kek()),
        );
        let document = NewDocument::new(
            PrincipalId::new("alice").unwrap(),
            "application/pdf",
            "00",
            Bytes::from_static(b"%PDF secret"),
        );
        encrypted.put(&tenant, document).await.unwrap().id
    };
    let store = SqliteStore::connect(&file.config()).await.unwrap();
    let encrypted = EncryptedDocumentStore::new(
        Arc::new(store.documents()),
        Arc::new(store.data_keys()),
        Arc::new(kek()),
    );
    let back = encrypted.get(&tenant, &id).await.unwrap().unwrap();
    assert_eq!(back.content, Bytes::from_static(b"%PDF secret"));
    let raw = store.documents().get(&tenant, &id).await.unwrap().unwrap();
    assert!(!raw.content.windows(6).any(|w| w == b"secret"));

    // The key store's own contract.
    let keys = store.data_keys();
    let bob = PrincipalId::new("bob").unwrap();
    let stale = WrappedKey::new("local", 1, vec![0xff; 60]);
    let racing = (0..8)
        .map(|i| keys.insert_if_absent(&tenant, &bob, WrappedKey::new("local", 1, vec![i; 60])));
    let winners = futures_util::future::join_all(racing).await;
    let winner = winners[0].as_ref().unwrap().clone();
    assert!(
        winners.iter().all(|w| w.as_ref().unwrap() == &winner),
        "one key per subject"
    );
    assert!(
        !keys
            .replace(
                &tenant,
                &bob,
                &stale,
                WrappedKey::new("local", 2, vec![2; 60])
            )
            .await
            .unwrap(),
        "a replace against a key that is not current changes nothing"
    );
    let newer = WrappedKey::new("local", 2, vec![3; 60]);
    assert!(
        keys.replace(&tenant, &bob, &winner, newer.clone())
            .await
            .unwrap()
    );
    assert_eq!(keys.get(&tenant, &bob).await.unwrap(), Some(newer));
    let all = keys.list(None, 10).await.unwrap();
    let names: Vec<&str> = all.iter().map(|k| k.subject.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    let after = keys
        .list(Some((&tenant, &PrincipalId::new("alice").unwrap())), 10)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert!(keys.destroy(&tenant, &bob).await.unwrap());
    assert!(!keys.destroy(&tenant, &bob).await.unwrap());
    assert_eq!(keys.get(&tenant, &bob).await.unwrap(), None);
}

#[path = "../../tests/common/spans.rs"]
mod spans;
#[path = "support/store_spans.rs"]
mod store_spans;

#[tokio::test]
async fn each_call_runs_in_a_client_span_named_for_its_table_and_operation() {
    let store = SqliteStore::connect(&SqliteConfig::in_memory())
        .await
        .unwrap();
    store_spans::assert_store_spans(
        "sqlite",
        "acme",
        &store.documents(),
        &store.api_keys(),
        &store.revocations(),
        &store.data_keys(),
    )
    .await;
}
