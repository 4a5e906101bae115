//! The PostgreSQL adapters against a real server on loopback.
//!
//! | suite | variable | what |
//! |---|---|---|
//! | `postgres-store` | `DOCAICHE_TEST_POSTGRES_URL` | conformance of every adapter (web sessions included), two instances sharing one job queue, an index for every query (`EXPLAIN` over 20k+ rows, tenants, second-factor enrolments and document usage included), row-level security, pool figures and health, read replica and its fallback |
//!
//! `./scripts/test.sh` starts PostgreSQL and sets the variable. A missing
//! variable skips loudly, or fails under `CI=true` /
//! `DOCAICHE_REQUIRE_BACKENDS=1` (see `report`). Every test creates its own
//! schema (and, for row-level security, its own role), and drops it at the
//! end, pass or fail, so the tests run in parallel and leave nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/backends/report.rs"]
#[allow(dead_code, unreachable_pub)]
mod report;
#[path = "support/tcp_proxy.rs"]
#[allow(dead_code, unreachable_pub)]
mod tcp_proxy;

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use docaiche_core::document::NewDocument;
use docaiche_core::health::{HealthCheck, HealthStatus};
use docaiche_core::job::NewJob;
use docaiche_core::{
    DocumentStore, ErrorCode, JobId, JobQueue, ManualClock, PrincipalId, TenantId,
};
use docaiche_store::conformance::{self, Harness};
use docaiche_store::postgres::{PgConfig, PgStore, queries as q};
use docaiche_store::sql::PoolConfig;
use sqlx::Row;

const SUITE: &str = "postgres-store";
const VAR: &str = "DOCAICHE_TEST_POSTGRES_URL";

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// What a test body gets: the server URL, its own schema, and a list of
/// statements to run (as the superuser) after it, pass or fail.
#[derive(Clone)]
struct Ctx {
    url: String,
    schema: String,
    cleanup: Arc<Mutex<Vec<String>>>,
}

impl Ctx {
    fn config(&self) -> PgConfig {
        let mut config = PgConfig::new(self.url.clone());
        config.schema = Some(self.schema.clone());
        config.application_name = format!("docaiche-test-{}", self.schema);
        config
    }

    async fn connect(&self) -> PgStore {
        PgStore::connect(&self.config()).await.expect("connect")
    }

    fn on_cleanup(&self, statement: String) {
        self.cleanup.lock().unwrap().push(statement);
    }
}

/// Run `body` in a fresh schema, then drop the schema whatever happened.
async fn in_schema<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = report::require_backend(SUITE, VAR) else {
        return;
    };
    let admin = match sqlx::PgPool::connect(&url).await {
        Ok(pool) => pool,
        Err(e) => {
            report::skip(SUITE, &format!("{VAR} does not answer: {e}"));
            return;
        }
    };
    let schema = format!("docaiche_test_{}", suffix());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let ctx = Ctx {
        url,
        schema: schema.clone(),
        cleanup: Arc::new(Mutex::new(Vec::new())),
    };
    let outcome = tokio::spawn(body(ctx.clone())).await;
    let cleanup: Vec<String> = ctx.cleanup.lock().unwrap().drain(..).collect();
    for statement in cleanup {
        if let Err(e) = sqlx::query(&statement).execute(&admin).await {
            eprintln!("cleanup `{statement}` failed: {e}");
        }
    }
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    match outcome {
        Ok(()) => report::mark_ran(SUITE, &format!("postgres store adapters: {test}")),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("test task failed: {e}"),
    }
}

async fn run_conformance(store: &PgStore, harness: &Harness) {
    conformance::run_document_store(Arc::new(store.documents()), harness).await;
    conformance::run_api_key_store(Arc::new(store.api_keys()), harness).await;
    conformance::run_account_store(Arc::new(store.accounts()), harness).await;
    conformance::run_custom_role_store(Arc::new(store.custom_roles()), harness).await;
    conformance::run_tenant_store(Arc::new(store.tenants()), harness).await;
    conformance::run_revocation_store(Arc::new(store.revocations()), harness).await;
    conformance::run_job_queue(Arc::new(store.jobs()), harness).await;
    // No policy on `web_sessions`: it must work with RLS on all the same.
    conformance::run_web_session_store(Arc::new(store.web_sessions()), harness).await;
    let audit = store.audit();
    conformance::run_audit_sink_with_read_back(Arc::new(audit.clone()), &audit, harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adapters_conform_on_a_manual_clock() {
    in_schema("conformance", |ctx| async move {
        let clock = ManualClock::new();
        let store = ctx.connect().await.with_clock(Arc::new(clock.clone()));
        run_conformance(&store, &Harness::with_manual_clock(clock)).await;
        store.pool().close().await;
    })
    .await;
}

#[tokio::test]
async fn an_unknown_stored_risk_flag_is_an_internal_error_not_dropped() {
    in_schema("unknown risk flag", |ctx| async move {
        let store = ctx.connect().await;
        let tenant = TenantId::new("acme").unwrap();
        let owner = PrincipalId::new("alice").unwrap();
        let doc = NewDocument::new(owner.clone(), "application/pdf", "00", Bytes::new());
        let meta = store.documents().put(&tenant, doc).await.unwrap();
        let text = docaiche_core::document::DocumentText::new(vec!["x".to_owned()])
            .with_risks([docaiche_core::extract::RiskFlag::JavaScript]);
        store
            .documents()
            .put_text(&tenant, &meta.id, &text)
            .await
            .unwrap();
        sqlx::query("UPDATE documents SET risks = 'java_script,teleport'")
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
        store.pool().close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_store_conforms() {
    in_schema("usage store conformance", |ctx| async move {
        let store = ctx.connect().await;
        conformance::run_usage_store(Arc::new(store.usage()), &Harness::without_time()).await;
        store.pool().close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mfa_store_conforms() {
    in_schema("mfa store conformance", |ctx| async move {
        let store = ctx.connect().await;
        conformance::run_mfa_store(Arc::new(store.mfa()), &Harness::without_time()).await;
        store.pool().close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn data_key_store_conforms() {
    in_schema("data key store conformance", |ctx| async move {
        let store = ctx.connect().await;
        conformance::run_data_key_store(Arc::new(store.data_keys()), &Harness::without_time())
            .await;
        store.pool().close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn job_queue_and_revocations_conform_in_real_time() {
    in_schema("conformance in real time", |ctx| async move {
        let store = ctx.connect().await;
        let harness = Harness::real_time();
        conformance::run_job_queue(Arc::new(store.jobs()), &harness).await;
        conformance::run_revocation_store(Arc::new(store.revocations()), &harness).await;
        store.pool().close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_one_queue_without_claiming_a_job_twice() {
    in_schema("skip locked", |ctx| async move {
        let (a, b) = (ctx.connect().await, ctx.connect().await);
        let tenant = TenantId::new("acme").unwrap();
        let kind = format!("shared-{}", suffix());
        let mut enqueued = HashSet::new();
        for i in 0..200 {
            let job = a
                .jobs()
                .enqueue(&tenant, NewJob::new(kind.clone(), serde_json::json!(i)))
                .await
                .unwrap();
            enqueued.insert(job.id);
        }
        let mut workers = Vec::new();
        for (instance, store) in [&a, &b].into_iter().enumerate() {
            for _ in 0..6 {
                let (jobs, kind) = (store.jobs(), kind.clone());
                workers.push(tokio::spawn(async move {
                    let mut claimed = Vec::new();
                    while let Some(lease) = jobs
                        .claim(&[kind.as_str()], Duration::from_secs(60))
                        .await
                        .unwrap()
                    {
                        assert!(
                            jobs.complete(&lease, serde_json::json!(instance))
                                .await
                                .unwrap()
                        );
                        claimed.push((instance, lease.job.id));
                    }
                    claimed
                }));
            }
        }
        let mut claimed: Vec<(usize, JobId)> = Vec::new();
        for worker in workers {
            claimed.extend(worker.await.unwrap());
        }
        let ids: HashSet<JobId> = claimed.iter().map(|(_, id)| *id).collect();
        assert_eq!(claimed.len(), 200, "every job claimed exactly once");
        assert_eq!(ids, enqueued);
        for instance in 0..2 {
            assert!(
                claimed.iter().any(|(i, _)| *i == instance),
                "instance {instance} claimed nothing: the test did not race"
            );
        }
        a.pool().close().await;
        b.pool().close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_queries_use_the_tenant_indexes_on_a_large_table() {
    use docaiche_store::postgres::accounts as a;
    in_schema("explain accounts", |ctx| async move {
        let store = ctx.connect().await;
        let pool = store.pool();
        for load in [
            "INSERT INTO accounts SELECT 'tenant-' || (i % 100), 'u' || lpad(i::text, 8, '0'), \
             'user' || i || '@example.com', '$argon2id$x', '[]', false, i, i \
             FROM generate_series(1, 30000) AS i",
            "ANALYZE accounts",
        ] {
            sqlx::query(load).execute(pool).await.unwrap();
        }
        let (tenant, id, email) = ("tenant-7", "u00000107", "user107@example.com");
        let explain = |sql: &str| format!("EXPLAIN (FORMAT JSON) {sql}");
        let mut plans = Vec::new();
        macro_rules! plan {
            ($name:expr, $sql:expr $(, $bind:expr)*) => {{
                let row = sqlx::query(&explain($sql))
                    $(.bind($bind))*
                    .fetch_one(pool)
                    .await
                    .unwrap_or_else(|e| panic!("explain {}: {e}", $name));
                let text: String = row.try_get_unchecked(0).unwrap();
                plans.push(($name, text));
            }};
        }
        plan!("get", &a::GET, tenant, id);
        plan!("find by email", &a::FIND_BY_EMAIL, tenant, email);
        plan!("list", &a::LIST, tenant, "", 101_i64);
        plan!(
            "set password hash",
            a::SET_PASSWORD_HASH,
            tenant,
            id,
            "$x",
            1_i64
        );
        plan!("set roles", a::SET_ROLES, tenant, id, "[]", 1_i64);
        plan!("set disabled", a::SET_DISABLED, tenant, id, true, 1_i64);
        plan!("delete", a::DELETE, tenant, id);
        for (name, text) in &plans {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut nodes = Vec::new();
            plan_nodes(&json[0]["Plan"], &mut nodes);
            assert!(
                nodes
                    .iter()
                    .all(|n| n["Node Type"].as_str() != Some("Seq Scan")),
                "{name} scans the table: {text}"
            );
            assert!(
                nodes.iter().any(|n| n["Node Type"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Index")),
                "{name} uses no index: {text}"
            );
        }
        store.pool().close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_queries_use_the_primary_keys_on_large_tables() {
    use docaiche_store::postgres::mfa as m;
    in_schema("explain mfa", |ctx| async move {
        let store = ctx.connect().await;
        let pool = store.pool();
        for load in [
            "INSERT INTO mfa_enrolments SELECT 'tenant-' || (i % 100), 'u' || lpad(i::text, 8, '0'), \
             '\\x01'::bytea, 'active', i, i, i FROM generate_series(1, 30000) AS i",
            "INSERT INTO mfa_recovery_codes SELECT 'tenant-' || (i % 100), 'u' || lpad(i::text, 8, '0'), \
             int8send(c), NULL FROM generate_series(1, 30000) AS i, generate_series(1, 10) AS c",
            "ANALYZE mfa_enrolments",
            "ANALYZE mfa_recovery_codes",
        ] {
            sqlx::query(load).execute(pool).await.unwrap();
        }
        let (tenant, id, sealed) = ("tenant-7", "u00000107", vec![1_u8]);
        let explain = |sql: &str| format!("EXPLAIN (FORMAT JSON) {sql}");
        let mut plans = Vec::new();
        macro_rules! plan {
            ($name:expr, $sql:expr $(, $bind:expr)*) => {{
                let row = sqlx::query(&explain($sql))
                    $(.bind($bind))*
                    .fetch_one(pool)
                    .await
                    .unwrap_or_else(|e| panic!("explain {}: {e}", $name));
                let text: String = row.try_get_unchecked(0).unwrap();
                plans.push(($name, text));
            }};
        }
        plan!("get", &m::GET, tenant, id);
        plan!("confirm", m::CONFIRM, tenant, id, sealed.clone(), 9_i64, 1_i64);
        plan!("accept step", m::ACCEPT_STEP, tenant, id, sealed.clone(), 9_i64);
        plan!("use recovery code", m::USE_CODE, tenant, id, vec![0_u8; 8], 1_i64);
        plan!("delete codes", m::DELETE_CODES, tenant, id);
        plan!("delete", m::DELETE, tenant, id);
        for (name, text) in &plans {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut nodes = Vec::new();
            plan_nodes(&json[0]["Plan"], &mut nodes);
            assert!(
                nodes
                    .iter()
                    .all(|n| n["Node Type"].as_str() != Some("Seq Scan")),
                "{name} scans the table: {text}"
            );
            assert!(
                nodes.iter().any(|n| n["Node Type"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Index")),
                "{name} uses no index: {text}"
            );
        }
        store.pool().close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_queries_use_their_indexes_on_a_large_table() {
    use docaiche_store::postgres::tenants as t;
    in_schema("explain tenants", |ctx| async move {
        let store = ctx.connect().await;
        let pool = store.pool();
        for load in [
            "INSERT INTO tenants SELECT 'tenant-' || lpad(i::text, 8, '0'), 'T'::bytea, \
             CASE WHEN i % 100 = 0 THEN 'suspended' ELSE 'active' END, NULL, NULL, '{}', i, i \
             FROM generate_series(1, 30000) AS i",
            "ANALYZE tenants",
        ] {
            sqlx::query(load).execute(pool).await.unwrap();
        }
        let id = "tenant-00000107";
        let explain = |sql: &str| format!("EXPLAIN (FORMAT JSON) {sql}");
        let mut plans = Vec::new();
        macro_rules! plan {
            ($name:expr, $sql:expr $(, $bind:expr)*) => {{
                let row = sqlx::query(&explain($sql))
                    $(.bind($bind))*
                    .fetch_one(pool)
                    .await
                    .unwrap_or_else(|e| panic!("explain {}: {e}", $name));
                let text: String = row.try_get_unchecked(0).unwrap();
                plans.push(($name, text));
            }};
        }
        let none_i64: Option<i64> = None;
        let none_bytes: Option<&[u8]> = None;
        plan!("get", &t::GET, id);
        plan!("list", &t::LIST, "", 101_i64);
        plan!(
            "list by status",
            &t::LIST_BY_STATUS,
            "suspended",
            "",
            101_i64
        );
        plan!("set settings", t::SET_SETTINGS, id, "{}", 1_i64);
        plan!(
            "set status",
            t::SET_STATUS,
            id,
            "active",
            none_i64,
            none_bytes,
            1_i64
        );
        for (name, text) in &plans {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut nodes = Vec::new();
            plan_nodes(&json[0]["Plan"], &mut nodes);
            assert!(
                nodes
                    .iter()
                    .all(|n| n["Node Type"].as_str() != Some("Seq Scan")),
                "{name} scans the table: {text}"
            );
        }
        store.pool().close().await;
    })
    .await;
}

/// Every plan node under `plan`, depth first.
fn plan_nodes<'a>(plan: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    out.push(plan);
    if let Some(children) = plan.get("Plans").and_then(|p| p.as_array()) {
        for child in children {
            plan_nodes(child, out);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_adapter_query_uses_an_index_on_large_tables() {
    in_schema("explain", |ctx| async move {
        let store = ctx.connect().await;
        let pool = store.pool();
        for load in [
            "INSERT INTO documents SELECT gen_random_uuid(), 'tenant-' || (i % 100), \
             'owner-' || (i % 37), NULL, 'application/pdf'::bytea, 4, 'ab'::bytea, \
             '\\x00'::bytea, NULL, i FROM generate_series(1, 30000) AS i",
            "INSERT INTO api_keys SELECT gen_random_uuid(), 'tenant-' || (i % 100), 'alice', \
             'k'::bytea, 'lookup_' || lpad(i::text, 10, '0'), 'h'::bytea, 1, '[]', i, NULL, \
             NULL, NULL, NULL FROM generate_series(1, 20000) AS i",
            "INSERT INTO token_revocations SELECT 'jti-' || i, 1000000 + i \
             FROM generate_series(1, 20000) AS i",
            "INSERT INTO subject_revocations SELECT 'tenant-' || (i % 100), 'u-' || i, i, \
             1000000 + i FROM generate_series(1, 20000) AS i",
            "INSERT INTO jobs SELECT gen_random_uuid(), 'tenant-' || (i % 100), \
             convert_to('kind-' || (i % 50), 'UTF8'), '{}', \
             CASE WHEN i % 100 = 0 THEN 'queued' ELSE 'succeeded' END, 1, 3, 100, NULL, NULL, \
             i, i, i, NULL, NULL FROM generate_series(1, 30000) AS i",
            "INSERT INTO audit_events (id, tenant_id, occurred_at, action, outcome, event) \
             SELECT gen_random_uuid(), 'tenant-' || (i % 100), i, 'a'::bytea, 'success', '{}' \
             FROM generate_series(1, 30000) AS i",
            // 20 keys x 30 buckets per tenant (600 rows) and table.
            "INSERT INTO usage_day SELECT 'tenant-' || (i % 100), 1767225600 + (i / 100 % 30) \
             * 86400, ('00000000-0000-0000-0000-' || lpad((i / 3000)::text, 12, '0'))::uuid, \
             'u-' || (i / 3000 % 7), 'documents', 1, i % 2, 0, 0 \
             FROM generate_series(1, 60000) AS i",
            "INSERT INTO usage_hour SELECT tenant_id, 1767225600 + (bucket_start - 1767225600) \
             / 24, key_id, account, route_class, allowed, rate_limited, denied, invalid_credential \
             FROM usage_day",
            "INSERT INTO usage_minute SELECT tenant_id, (bucket_start - 1767225600) / 1440 \
             + 1767225600, key_id, account, route_class, allowed, rate_limited, denied, \
             invalid_credential FROM usage_day",
            "ANALYZE",
        ] {
            sqlx::query(load).execute(pool).await.unwrap();
        }
        let tenant = "tenant-7";
        let id = uuid::Uuid::now_v7();
        let kinds = vec![b"kind-3".to_vec(), b"kind-4".to_vec()];
        let explain = |sql: &str| format!("EXPLAIN (FORMAT JSON) {sql}");
        let mut plans: Vec<(&str, String)> = Vec::new();
        macro_rules! plan {
            ($name:expr, $sql:expr $(, $bind:expr)*) => {{
                let row = sqlx::query(&explain($sql))
                    $(.bind($bind))*
                    .fetch_one(pool)
                    .await
                    .unwrap_or_else(|e| panic!("explain {}: {e}", $name));
                // EXPLAIN (FORMAT JSON) answers a `json` column, read as its text.
                let text: String = row.try_get_unchecked(0).unwrap();
                plans.push(($name, text));
            }};
        }
        let none_text: Option<&str> = None;
        let none_i64: Option<i64> = None;
        let none_uuid: Option<uuid::Uuid> = None;
        plan!(
            "document insert",
            q::DOCUMENT_INSERT,
            tenant,
            id,
            "alice",
            none_text.map(str::as_bytes),
            b"x".as_slice(),
            1_i64,
            b"x".as_slice(),
            b"x".as_slice(),
            1_i64
        );
        plan!("document get", &q::DOCUMENT_GET, tenant, id);
        plan!("document head", &q::DOCUMENT_HEAD, tenant, id);
        plan!(
            "document list",
            &q::DOCUMENT_LIST,
            tenant,
            uuid::Uuid::nil(),
            101_i64
        );
        plan!(
            "document list by owner",
            &q::DOCUMENT_LIST_BY_OWNER,
            tenant,
            "owner-3",
            uuid::Uuid::nil(),
            101_i64
        );
        plan!("document delete", q::DOCUMENT_DELETE, tenant, id);
        plan!("document usage", q::DOCUMENT_USAGE, tenant);
        plan!(
            "document put text",
            q::DOCUMENT_PUT_TEXT,
            tenant,
            id,
            "[]",
            "uri"
        );
        plan!("document get text", q::DOCUMENT_GET_TEXT, tenant, id);
        plan!(
            "api key insert",
            &q::API_KEY_INSERT,
            tenant,
            id,
            "alice",
            b"n".as_slice(),
            "lookup_x",
            b"h".as_slice(),
            1_i64,
            "[]",
            1_i64,
            none_i64,
            none_i64,
            none_i64,
            none_uuid
        );
        plan!(
            "api key find by lookup",
            &q::API_KEY_FIND_BY_LOOKUP,
            "lookup_0000000042"
        );
        plan!("api key get", &q::API_KEY_GET, tenant, id);
        plan!(
            "api key list",
            &q::API_KEY_LIST,
            tenant,
            uuid::Uuid::nil(),
            101_i64
        );
        plan!("api key revoke", q::API_KEY_REVOKE, tenant, id, 5_i64);
        plan!(
            "api key mark rotated",
            q::API_KEY_MARK_ROTATED,
            tenant,
            id,
            id,
            5_i64
        );
        plan!(
            "api key record usage",
            q::API_KEY_RECORD_USAGE,
            tenant,
            vec![id, uuid::Uuid::now_v7()],
            vec![5_i64, 6]
        );
        plan!("revocation upsert", q::REVOCATION_UPSERT, "jti-1", 5_i64);
        plan!("revocation check", q::REVOCATION_CHECK, "jti-1", 5_i64);
        plan!("revocation purge", q::REVOCATION_PURGE, 1_000_010_i64);
        plan!(
            "subject revocation upsert",
            q::SUBJECT_REVOCATION_UPSERT,
            tenant,
            "u-1",
            5_i64,
            6_i64
        );
        plan!(
            "subject revocation check",
            q::SUBJECT_REVOCATION_CHECK,
            tenant,
            "u-1",
            5_i64
        );
        plan!(
            "token or subject revoked",
            q::TOKEN_OR_SUBJECT_REVOKED,
            "jti-1",
            tenant,
            "u-1",
            5_i64,
            0_i64
        );
        plan!(
            "subject revocation purge",
            q::SUBJECT_REVOCATION_PURGE,
            1_000_010_i64
        );
        plan!(
            "job insert",
            &q::JOB_INSERT,
            tenant,
            id,
            b"k".as_slice(),
            "{}",
            3_i64,
            5_i64,
            5_i64
        );
        plan!(
            "job dead letter",
            q::JOB_DEAD_LETTER,
            &kinds,
            50_000_i64,
            b"lease expired".as_slice()
        );
        plan!(
            "job claim",
            &q::JOB_CLAIM,
            &kinds,
            50_000_i64,
            id,
            60_000_i64
        );
        plan!(
            "job heartbeat",
            q::JOB_HEARTBEAT,
            tenant,
            id,
            id,
            5_i64,
            6_i64,
            5_i64
        );
        plan!(
            "job lease cancelled",
            q::JOB_LEASE_CANCELLED,
            tenant,
            id,
            id
        );
        plan!("job complete", q::JOB_COMPLETE, tenant, id, id, "{}", 5_i64);
        plan!(
            "job fail",
            q::JOB_FAIL,
            tenant,
            id,
            id,
            b"e".as_slice(),
            5_i64,
            Some(6_i64)
        );
        plan!("job cancel", q::JOB_CANCEL, tenant, id, 5_i64);
        plan!("job get", &q::JOB_GET, tenant, id);
        plan!(
            "audit insert",
            q::AUDIT_INSERT,
            Some(tenant),
            id,
            5_i64,
            b"a".as_slice(),
            "success",
            "{}"
        );
        plan!("audit seq of", q::AUDIT_SEQ_OF, Some(tenant), id);
        plan!("audit events", q::AUDIT_EVENTS, tenant, 0_i64, 101_i64);
        // Usage: 30 days with ragged edges (every slot in use), then whole
        // days (the unused slots empty).
        let day0 = 1_767_225_600_i64;
        let ragged = [
            (day0 + 86_400, day0 + 29 * 86_400),
            (day0 + 6 * 3_600, day0 + 86_400),
            (day0 + 29 * 86_400, day0 + 30 * 86_400 - 7_200),
            (day0 + 5 * 3_600 + 1_800, day0 + 6 * 3_600),
            (day0 + 30 * 86_400 - 7_200, day0 + 30 * 86_400 - 7_140),
        ];
        let whole = [(day0, day0 + 30 * 86_400), (0, 0), (0, 0), (0, 0), (0, 0)];
        for (name, slots, rate_limited) in [
            ("usage top (ragged)", ragged, false),
            ("usage top by rate limited (ragged)", ragged, true),
            ("usage top (whole days)", whole, false),
        ] {
            let [(a, b), (c, d), (e, f), (g, h), (i, j)] = slots;
            plan!(
                name,
                &q::usage_top(rate_limited),
                tenant,
                a,
                b,
                c,
                d,
                e,
                f,
                g,
                h,
                i,
                j,
                uuid::Uuid::nil(),
                10_i64
            );
        }
        let key = uuid::Uuid::from_u128(7);
        for bucket in docaiche_core::usage::Bucket::ALL {
            plan!(
                "usage series by key",
                &q::usage_series(bucket, false),
                tenant,
                key,
                day0,
                day0 + 30 * 86_400,
                none_text
            );
            plan!(
                "usage series by account",
                &q::usage_series(bucket, true),
                tenant,
                "u-3",
                day0,
                day0 + 30 * 86_400,
                Some("documents")
            );
        }
        // The control: a query no index serves must be caught, or the
        // check above proves nothing.
        plan!(
            "control without an index",
            "SELECT id FROM documents WHERE content_type = $1",
            b"application/pdf".as_slice()
        );

        let mut seq_scans = Vec::new();
        let mut index_uses = 0;
        for (name, text) in &plans {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut nodes = Vec::new();
            plan_nodes(&json[0]["Plan"], &mut nodes);
            for node in nodes {
                let kind = node["Node Type"].as_str().unwrap_or_default();
                if kind == "Seq Scan" {
                    seq_scans.push(format!("{name}: Seq Scan on {}", node["Relation Name"]));
                }
                if kind.contains("Index") {
                    index_uses += 1;
                }
            }
        }
        assert_eq!(
            seq_scans,
            vec!["control without an index: Seq Scan on \"documents\"".to_owned()],
            "only the control may scan a table"
        );
        assert!(
            index_uses >= 25,
            "only {index_uses} index nodes across {} plans",
            plans.len()
        );
        store.pool().close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_level_security_hides_other_tenants_even_without_a_tenant_predicate() {
    in_schema("row level security", |ctx| async move {
        // As the superuser: migrate and switch RLS on. Superusers bypass
        // RLS, so the adapters under test connect as a plain role.
        let admin = ctx.connect().await;
        let role = format!("docaiche_rls_{}", suffix());
        ctx.on_cleanup(format!("DROP OWNED BY {role}"));
        ctx.on_cleanup(format!("DROP ROLE {role}"));
        for grant in [
            format!("CREATE ROLE {role} LOGIN"),
            format!("GRANT USAGE ON SCHEMA {} TO {role}", ctx.schema),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {role}",
                ctx.schema
            ),
        ] {
            sqlx::query(&grant).execute(admin.pool()).await.unwrap();
        }
        let separator = if ctx.url.contains('?') { '&' } else { '?' };
        let mut config = ctx.config();
        config.url = format!("{}{separator}user={role}", ctx.url).into();
        config.row_level_security = true;
        // Tables without RLS enabled: the switch refuses to pretend.
        let refused = PgStore::connect_without_migrating(&config).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::Misconfigured);
        // So does a superuser connection, which would bypass the policies.
        let mut superuser = ctx.config();
        superuser.row_level_security = true;
        let refused = PgStore::connect(&superuser).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::Misconfigured);
        assert!(refused.to_string().contains("row_level_security"));
        docaiche_store::postgres::enable_row_level_security(admin.pool())
            .await
            .unwrap();
        let store = PgStore::connect_without_migrating(&config).await.unwrap();

        // The adapters keep every contract with the policies enforced
        // (find_by_lookup, claim and tenantless audit events included).
        let clock = ManualClock::new();
        let scoped = store.clone().with_clock(Arc::new(clock.clone()));
        // Usage under RLS: reads scoped to the tenant, the flusher and the
        // retention job through the usage-writer opening.
        conformance::run_usage_store(Arc::new(scoped.usage()), &Harness::without_time()).await;
        // Data keys under RLS: tenant-scoped calls, and `list` walking
        // every tenant through its read-only policy.
        conformance::run_data_key_store(Arc::new(scoped.data_keys()), &Harness::without_time())
            .await;
        // Second-factor enrolments under RLS: both tables, the recovery
        // codes' subqueries included.
        conformance::run_mfa_store(Arc::new(scoped.mfa()), &Harness::without_time()).await;
        run_conformance(&scoped, &Harness::with_manual_clock(clock)).await;

        let (a, b) = (TenantId::new("tenant-a").unwrap(), TenantId::new("tenant-b").unwrap());
        let owner = PrincipalId::new("alice").unwrap();
        for (tenant, n) in [(&a, 3), (&b, 2)] {
            for _ in 0..n {
                let doc = NewDocument::new(owner.clone(), "text/plain", "00", Bytes::from_static(b"x"));
                store.documents().put(tenant, doc).await.unwrap();
            }
        }
        let count_in = |scope: Option<&'static str>, sql: &'static str| {
            let pool = store.pool().clone();
            async move {
                let mut tx = pool.begin().await.unwrap();
                if let Some(tenant) = scope {
                    sqlx::query("SELECT set_config('docaiche.tenant_id', $1, true)")
                        .bind(tenant)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                }
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
                n
            }
        };
        // A query that forgot `WHERE tenant_id = …` sees its tenant only.
        assert_eq!(count_in(Some("tenant-a"), "SELECT count(*) FROM documents").await, 3);
        assert_eq!(count_in(Some("tenant-b"), "SELECT count(*) FROM documents").await, 2);
        // Naming the other tenant does not help.
        assert_eq!(
            count_in(Some("tenant-a"), "SELECT count(*) FROM documents WHERE tenant_id = 'tenant-b'").await,
            0
        );
        // Without a tenant set, nothing at all; nor can a write cross over.
        assert_eq!(count_in(None, "SELECT count(*) FROM documents").await, 0);
        assert_eq!(count_in(None, "SELECT count(*) FROM api_keys").await, 0);
        assert_eq!(count_in(None, "SELECT count(*) FROM jobs").await, 0);
        assert_eq!(count_in(None, "SELECT count(*) FROM mfa_enrolments").await, 0);
        assert_eq!(count_in(None, "SELECT count(*) FROM mfa_recovery_codes").await, 0);
        // Data keys: each tenant sees its own; without a tenant, none.
        {
            use docaiche_core::key_wrapper::WrappedKey;
            use docaiche_store::encryption::DataKeyStore;
            let keys = store.data_keys();
            for (tenant, n) in [(&a, 3), (&b, 2)] {
                for i in 0..n {
                    let subject = PrincipalId::new(format!("subject-{i}")).unwrap();
                    let key = WrappedKey::new("kek", 1, vec![1, 2, 3]);
                    keys.insert_if_absent(tenant, &subject, key).await.unwrap();
                }
            }
        }
        assert_eq!(count_in(None, "SELECT count(*) FROM data_keys").await, 0);
        assert_eq!(count_in(Some("tenant-a"), "SELECT count(*) FROM data_keys").await, 3);
        assert_eq!(count_in(Some("tenant-b"), "SELECT count(*) FROM data_keys WHERE tenant_id <> 'tenant-b'").await, 0);
        assert_eq!(
            count_in(Some("tenant-a"), "WITH d AS (DELETE FROM documents WHERE tenant_id = 'tenant-b' RETURNING 1) SELECT count(*) FROM d").await,
            0
        );
        let mut tx = store.pool().begin().await.unwrap();
        sqlx::query("SELECT set_config('docaiche.tenant_id', 'tenant-a', true)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let smuggled = sqlx::query(
            "INSERT INTO documents (id, tenant_id, owner_id, content_type, size, sha256, content, created_at) \
             VALUES (gen_random_uuid(), 'tenant-b', 'mallory', 'x', 1, 'x', 'x', 1)",
        )
        .execute(&mut *tx)
        .await;
        assert!(smuggled.is_err(), "inserting a row for another tenant must be refused");
        drop(tx);
        // The superuser (bypassing RLS) sees both tenants: the rows exist.
        let all: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM documents WHERE tenant_id IN ('tenant-a', 'tenant-b')",
        )
        .fetch_one(admin.pool())
        .await
        .unwrap();
        assert_eq!(all, 5);
        store.pool().close().await;
        admin.pool().close().await;
    })
    .await;
}

/// Fault test: every server connection of the store is killed with
/// `pg_terminate_backend` mid-run. Operations fail fast as `unavailable`
/// (never hang, never return wrong data), and the pool recovers on its own
/// within 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_fail_fast_and_the_pool_recovers_on_its_own() {
    in_schema("pg_terminate_backend", |ctx| async move {
        let store = ctx.connect().await;
        let admin = sqlx::PgPool::connect(&ctx.url).await.unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let jobs = store.jobs();
        for _ in 0..20 {
            jobs.get(&tenant, &JobId::new()).await.unwrap();
        }
        let application = ctx.config().application_name;
        let killed: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&application)
        .fetch_all(&admin)
        .await
        .unwrap();
        assert!(!killed.is_empty(), "the store had live connections to kill");

        let started = Instant::now();
        let mut failures = 0_u32;
        let mut slowest_failure = Duration::ZERO;
        let recovered = loop {
            let call = Instant::now();
            match jobs.get(&tenant, &JobId::new()).await {
                Ok(found) => {
                    assert!(found.is_none());
                    break started.elapsed();
                }
                Err(error) => {
                    assert_eq!(error.code(), ErrorCode::Unavailable, "{error:?}");
                    failures += 1;
                    slowest_failure = slowest_failure.max(call.elapsed());
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never recovered"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        eprintln!(
            "pg_terminate_backend: {} connections killed, {failures} calls failed \
             (slowest {slowest_failure:?}), recovered after {recovered:?}",
            killed.len()
        );
        assert!(recovered < Duration::from_secs(5), "{recovered:?}");
        assert!(
            slowest_failure < Duration::from_secs(1),
            "{slowest_failure:?}"
        );
        // Writes work again too.
        let document = NewDocument::new(
            docaiche_core::PrincipalId::new("alice").unwrap(),
            "application/pdf",
            "00",
            Bytes::from_static(b"%PDF"),
        );
        store.documents().put(&tenant, document).await.unwrap();
        admin.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_stats_and_health_follow_the_pool() {
    in_schema("pool and health", |ctx| async move {
        let mut config = ctx.config();
        config.pool = PoolConfig::default().with_max_connections(1);
        let store = PgStore::connect(&config).await.unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let before = store.pool_stats().primary;
        for _ in 0..4 {
            store.jobs().get(&tenant, &JobId::new()).await.unwrap();
        }
        let stats = store.pool_stats().primary;
        assert_eq!(stats.acquired, before.acquired + 4);
        assert_eq!((stats.max_connections, stats.waiting), (1, 0));
        assert_eq!(store.health_check().check().await.status, HealthStatus::Up);

        let held = store.pool().acquire().await.unwrap();
        let waiter = {
            let jobs = store.jobs();
            let tenant = tenant.clone();
            tokio::spawn(async move { jobs.get(&tenant, &JobId::new()).await })
        };
        for _ in 0..400 {
            if store.pool_stats().primary.waiting > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(store.pool_stats().primary.is_saturated());
        let health = store.health_check().check().await;
        assert_eq!(health.status, HealthStatus::Degraded);
        assert!(health.detail.unwrap().contains("waiting=1"));
        drop(held);
        waiter.await.unwrap().unwrap();
        let stats = store.pool_stats().primary;
        assert_eq!(stats.waiting, 0);
        assert!(stats.max_acquire > Duration::ZERO);

        store.pool().close().await;
        assert_eq!(
            store.health_check().check().await.status,
            HealthStatus::Down
        );
        assert_eq!(
            store
                .jobs()
                .get(&tenant, &JobId::new())
                .await
                .unwrap_err()
                .code(),
            ErrorCode::Unavailable
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_the_replica_and_writes_to_the_primary() {
    in_schema("read replica", |ctx| async move {
        let mut config = ctx.config();
        config.replica_url = Some(ctx.url.clone().into());
        let store = PgStore::connect(&config).await.unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let doc = NewDocument::new(
            PrincipalId::new("alice").unwrap(),
            "text/plain",
            "00",
            Bytes::from_static(b"x"),
        );
        let meta = store.documents().put(&tenant, doc).await.unwrap();
        assert_eq!(
            store.pool_stats().replica_reads,
            0,
            "a write is not a replica read"
        );
        for _ in 0..3 {
            assert!(
                store
                    .documents()
                    .head(&tenant, &meta.id)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        let stats = store.pool_stats();
        assert_eq!(stats.replica_reads, 3);
        assert_eq!(stats.replica_fallbacks, 0);
        assert_eq!(stats.replica.unwrap().acquired, 3);
        // The server sees the replica pool's connections under their name.
        let replica_name = format!("{}-replica", config.application_name);
        let seen: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(&replica_name)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert!(seen >= 1, "no connection named {replica_name}");
        assert_eq!(store.health_check().check().await.status, HealthStatus::Up);
        store.replica_pool().unwrap().close().await;
        store.pool().close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fall_back_to_the_primary_when_the_replica_is_down() {
    in_schema("replica fallback", |ctx| async move {
        // A port nobody listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = ctx.config();
        config.replica_url = Some(format!("postgres://postgres@127.0.0.1:{port}/test").into());
        config.replica_retry_ms = 400;
        config.replica_pool =
            PoolConfig::default().with_acquire_timeout(Duration::from_millis(300));
        let store = PgStore::connect(&config).await.unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let doc = NewDocument::new(
            PrincipalId::new("alice").unwrap(),
            "text/plain",
            "00",
            Bytes::from_static(b"x"),
        );
        let meta = store.documents().put(&tenant, doc).await.unwrap();
        for _ in 0..3 {
            assert!(
                store
                    .documents()
                    .head(&tenant, &meta.id)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        let stats = store.pool_stats();
        assert_eq!(stats.replica_reads, 0);
        assert_eq!(stats.replica_fallbacks, 3);
        assert!(stats.replica_down);
        assert_eq!(
            stats.replica.unwrap().acquire_failures,
            1,
            "the dead replica is tried once, then skipped"
        );
        // After the retry window, the replica is tried again (and skipped
        // again when it still fails).
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert!(!store.pool_stats().replica_down);
        assert!(
            store
                .documents()
                .head(&tenant, &meta.id)
                .await
                .unwrap()
                .is_some()
        );
        let stats = store.pool_stats();
        assert_eq!(stats.replica.unwrap().acquire_failures, 2);
        assert!(stats.replica_down);
        let health = store.health_check().check().await;
        assert_eq!(health.status, HealthStatus::Degraded);
        assert!(
            !health.detail.unwrap().contains("postgres://"),
            "no connection string in health"
        );
        store.pool().close().await;
    })
    .await;
}

#[tokio::test]
async fn configuration_never_reveals_the_password_and_refuses_bad_values() {
    let config = PgConfig::new("postgres://app:hunter2@db.internal/docaiche");
    assert!(!format!("{config:?}").contains("hunter2"));
    let bad = PgStore::connect(&PgConfig::new("mysql://app:hunter2@db/x\u{0}"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), ErrorCode::Misconfigured);
    assert!(!bad.log_chain().contains("hunter2"), "{}", bad.log_chain());
    for schema in ["public; DROP TABLE jobs", "Upper", "1st", "", "a b"] {
        let mut config = PgConfig::new("postgres://localhost/x");
        config.schema = Some(schema.to_owned());
        let err = PgStore::connect(&config).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Misconfigured, "{schema:?}");
    }
    let parsed: PgConfig = serde_json::from_str(
        r#"{ "url": "postgres://app:hunter2@db/x", "row_level_security": true,
             "pool": { "max_connections": 30 }, "replica_url": "postgres://ro@replica/x" }"#,
    )
    .unwrap();
    assert!(parsed.row_level_security);
    assert_eq!(parsed.pool.max_connections, 30);
    assert!(!format!("{parsed:?}").contains("hunter2"));
}

#[allow(dead_code)]
fn adapters_are_trait_objects(store: &PgStore) -> (Arc<dyn JobQueue>, Arc<dyn DocumentStore>) {
    (Arc::new(store.jobs()), Arc::new(store.documents()))
}

/// Fault test, readiness side: the store reaches PostgreSQL through a TCP
/// proxy that the test cuts (every connection dropped, new ones hung up
/// on), so only this store loses the server. Calls fail fast as
/// `unavailable`, the health check reports the outage and readiness stops
/// reporting `pass`; once the proxy forwards again, calls and health
/// recover on their own within 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_the_outage_while_postgres_is_unreachable_and_recovers() {
    in_schema("readiness during an outage", |ctx| async move {
        use docaiche_core::health::HealthRegistry;
        use docaiche_store::encryption::DataKeyStore;

        let (_, upstream) = tcp_proxy::through(&ctx.url, "127.0.0.1:1".parse().unwrap(), 5432);
        let proxy = tcp_proxy::TcpProxy::start(upstream).await;
        let (url, _) = tcp_proxy::through(&ctx.url, proxy.addr(), 5432);
        let mut config = ctx.config();
        config.url = url.into();
        config.pool = PoolConfig::default().with_acquire_timeout(Duration::from_millis(500));
        let store = PgStore::connect(&config).await.unwrap();
        let registry =
            HealthRegistry::new(Duration::from_secs(2)).with_check(Arc::new(store.health_check()));
        let tenant = TenantId::new("acme").unwrap();
        let keys = store.data_keys();
        let subject = PrincipalId::new("alice").unwrap();
        assert!(keys.get(&tenant, &subject).await.unwrap().is_none());
        let report = registry.check_all().await;
        assert_eq!(report.status, HealthStatus::Up, "{report:?}");

        proxy.cut();
        let call = Instant::now();
        let error = store.jobs().get(&tenant, &JobId::new()).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::Unavailable, "{error:?}");
        let error = keys.get(&tenant, &subject).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::Unavailable, "{error:?}");
        assert!(
            call.elapsed() < Duration::from_secs(3),
            "{:?}",
            call.elapsed()
        );
        let report = registry.check_all().await;
        assert_eq!(
            report.components[0].status,
            HealthStatus::Down,
            "{report:?}"
        );
        // PostgreSQL is critical: readiness fails (`fail`, HTTP 503), so a
        // load balancer stops sending traffic here.
        assert!(!report.status.is_ready(), "{report:?}");
        assert_eq!(report.to_health_json()["status"], "fail");
        let detail = report.components[0].detail.clone().unwrap_or_default();
        assert!(
            !detail.contains("postgres://"),
            "no URL in health: {detail}"
        );

        proxy.restore();
        let restored = Instant::now();
        let back = loop {
            if registry.check_all().await.status == HealthStatus::Up
                && store.jobs().get(&tenant, &JobId::new()).await.is_ok()
            {
                break restored.elapsed();
            }
            assert!(
                restored.elapsed() < Duration::from_secs(10),
                "never recovered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(back < Duration::from_secs(5), "{back:?}");
        assert!(keys.get(&tenant, &subject).await.unwrap().is_none());
        eprintln!("postgres behind a cut proxy: readiness and calls back {back:?} after restore");
        store.pool().close().await;
    })
    .await;
}

/// The data keys of encryption at rest live in PostgreSQL: a second
/// `PgStore` (another server instance, or this one after a restart) reads
/// the documents the first wrote, and crypto-shredding from one is seen by
/// the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_documents_survive_a_restart_and_erasure_reaches_every_instance() {
    in_schema("data keys across instances", |ctx| async move {
        use docaiche_store::encryption::EncryptedDocumentStore;
        use docaiche_store::key_wrapper::LocalKeyWrapper;

        let wrapper = Arc::new(LocalKeyWrapper::generate());
        let instance = |store: &PgStore| {
            EncryptedDocumentStore::new(
                Arc::new(store.documents()),
                Arc::new(store.data_keys()),
                wrapper.clone(),
            )
        };
        let (first, second) = (ctx.connect().await, ctx.connect().await);
        let (a, b) = (instance(&first), instance(&second));
        let tenant = TenantId::new("acme").unwrap();
        let alice = PrincipalId::new("alice").unwrap();
        let doc = NewDocument::new(
            alice.clone(),
            "text/plain",
            "00",
            Bytes::from_static(b"secret"),
        );
        let meta = a.put(&tenant, doc).await.unwrap();
        let stored: Vec<u8> = sqlx::query_scalar("SELECT content FROM documents WHERE id = $1")
            .bind(meta.id.as_uuid())
            .fetch_one(first.pool())
            .await
            .unwrap();
        assert!(stored.starts_with(b"DCE1"), "ciphertext at rest");
        let back = b.get(&tenant, &meta.id).await.unwrap().unwrap();
        assert_eq!(back.content, Bytes::from_static(b"secret"));
        let rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM data_keys WHERE tenant_id = 'acme'")
                .fetch_one(first.pool())
                .await
                .unwrap();
        assert_eq!(rows, 1, "one wrapped key per subject");

        assert!(a.destroy_subject_key(&tenant, &alice).await.unwrap());
        assert_eq!(
            b.get(&tenant, &meta.id).await.unwrap_err().code(),
            ErrorCode::Internal,
            "the other instance cannot read an erased subject's document"
        );
        first.pool().close().await;
        second.pool().close().await;
    })
    .await;
}

#[path = "../../tests/common/spans.rs"]
mod spans;
#[path = "support/store_spans.rs"]
mod store_spans;

#[tokio::test]
async fn each_call_runs_in_a_client_span_named_for_its_table_and_operation() {
    in_schema("spans", |ctx| async move {
        let store = ctx.connect().await;
        store_spans::assert_store_spans(
            "postgresql",
            "acme",
            &store.documents(),
            &store.api_keys(),
            &store.revocations(),
            &store.data_keys(),
        )
        .await;
        store.pool().close().await;
    })
    .await;
}
