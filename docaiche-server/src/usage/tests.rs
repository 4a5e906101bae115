//! Usage counting through the real router: exact counts per outcome after a
//! flush, on SQLite and on PostgreSQL; the usage routes' tenant scoping and
//! input checks; the metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use docaiche_auth::api_key::NewApiKey;
use docaiche_core::usage::{Bucket, UsageCounts, UsageFilter, UsageQuery, UsageStore};
use docaiche_core::{
    ApiKeyId, AuthMethod, Clock, ManualClock, Permission, PermissionSet, Principal, PrincipalId,
    TenantId,
};

use crate::config::Config;
use crate::routes::router;
use crate::routes::tests::{assert_problem, json, send};
use crate::state::AppState;
use crate::state::tests::state_with_clock;
use crate::test_support::TestDir;

/// Allowed, denied and rate-limited requests of the counted key, and
/// requests with a revoked key.
const ALLOWED: usize = 5;
const DENIED: usize = 3;
const LIMITED: usize = 4;
const INVALID: usize = 2;

/// A key of `tenant` acting as `principal` with exactly `scopes`: its
/// text and id.
async fn key(
    state: &AppState,
    tenant: &str,
    principal: &str,
    scopes: &[Permission],
) -> (String, ApiKeyId) {
    let tenant = TenantId::new(tenant).expect("tenant");
    let all = docaiche_core::Grant::parse("*:*").expect("grant");
    let maker = Principal::new(
        PrincipalId::new("maker").expect("id"),
        tenant.clone(),
        AuthMethod::Internal,
    )
    .with_permissions([all].into_iter().collect());
    let scopes: PermissionSet = scopes.iter().cloned().collect();
    let created = state
        .auth
        .api_keys
        .create(
            &maker,
            NewApiKey::new(tenant, "usage")
                .with_scopes(scopes)
                .acting_as(PrincipalId::new(principal).expect("principal")),
        )
        .await
        .expect("key");
    (created.key.expose_secret().to_owned(), created.record.id)
}

/// Revoke key `id` of `tenant`.
async fn revoke(state: &AppState, tenant: &str, id: &ApiKeyId) {
    let tenant = TenantId::new(tenant).expect("tenant");
    let all = docaiche_core::Grant::parse("*:*").expect("grant");
    let maker = Principal::new(
        PrincipalId::new("maker").expect("id"),
        tenant.clone(),
        AuthMethod::Internal,
    )
    .with_permissions([all].into_iter().collect());
    state
        .auth
        .api_keys
        .revoke(&maker, &tenant, id)
        .await
        .expect("revoke");
}

/// `t` as the query takes it.
fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

fn get(uri: &str, key: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(uri);
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    builder.body(Body::empty()).expect("request")
}

/// A configuration whose `default` class allows `ALLOWED + DENIED`
/// requests per principal an hour.
fn config(dir: &TestDir) -> Config {
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.rate_limit.limits.policies.insert(
        "default".into(),
        serde_json::from_value(serde_json::json!({
            "limits": [{
                "key": "principal",
                "limit": ALLOWED + DENIED,
                "period_secs": 3600,
            }]
        }))
        .expect("policy"),
    );
    config
}

/// The sum of a query's points.
async fn total(store: &dyn UsageStore, tenant: &TenantId, query: &UsageQuery) -> UsageCounts {
    let mut total = UsageCounts::default();
    for point in store.series(tenant, query).await.expect("series") {
        total.merge(&point.counts);
    }
    total
}

/// `ALLOWED`, `DENIED`, `LIMITED` and `INVALID` requests through the real
/// router over `store`: exactly those counts in the store after a flush.
async fn counts_are_exact(dir: &TestDir, store: Arc<dyn UsageStore>) {
    let config = config(dir);
    let clock = Arc::new(ManualClock::new());
    let state = state_with_clock(&config, clock.clone())
        .with_usage_store(Arc::clone(&store))
        .expect("usage store");
    let usage = Arc::clone(&state.usage);
    let mut flusher = usage.flusher().expect("flusher").expect("counting is on");
    let (counted, counted_id) = key(&state, "acme", "alice", &[Permission::KEYS_MANAGE]).await;
    let (revoked, revoked_id) = key(&state, "acme", "bob", &[Permission::KEYS_MANAGE]).await;
    let (reader, _) = key(&state, "acme", "carol", &[Permission::KEYS_MANAGE]).await;
    revoke(&state, "acme", &revoked_id).await;
    let app: Router = router(state);

    for _ in 0..ALLOWED {
        let (status, _, _) = send(app.clone(), get("/v1/usage/top", Some(&counted))).await;
        assert_eq!(status, StatusCode::OK);
    }
    for _ in 0..DENIED {
        // `admin:access`: the permission guard refuses.
        let (status, _, _) = send(app.clone(), get("/v1/roles", Some(&counted))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    for _ in 0..LIMITED {
        let (status, _, _) = send(app.clone(), get("/v1/usage/top", Some(&counted))).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    for _ in 0..INVALID {
        let (status, _, _) = send(app.clone(), get("/v1/usage/top", Some(&revoked))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Not attributable: a bearer token that does not verify, a malformed
    // key. Not counted at all: no credential.
    let mut forged = get("/v1/usage/top", None);
    forged.headers_mut().insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_static("Bearer not.a.token"),
    );
    assert_eq!(send(app.clone(), forged).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(app.clone(), get("/v1/usage/top", Some("dcx_nonsense"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(app.clone(), get("/v1/usage/top", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The revoked key's refusals are charged in a task (a store read):
    // flush until they are in, then check everything exactly.
    clock.advance(Duration::from_secs(10));
    let tenant = TenantId::new("acme").expect("tenant");
    let from = clock.now() - time::Duration::HOUR;
    let to = clock.now() + time::Duration::HOUR;
    let by_key = |id: ApiKeyId| UsageQuery::for_key(id, from, to, Bucket::Minute).expect("query");
    let mut invalid = UsageCounts::default();
    for _ in 0..500 {
        flusher.flush().await.expect("flush");
        invalid = total(store.as_ref(), &tenant, &by_key(revoked_id)).await;
        if invalid.invalid_credential >= INVALID as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let n = |count: usize| count as u64;
    assert_eq!(invalid, UsageCounts::new(0, 0, 0, n(INVALID)));
    assert_eq!(
        total(store.as_ref(), &tenant, &by_key(counted_id)).await,
        UsageCounts::new(n(ALLOWED), n(LIMITED), n(DENIED), 0),
        "each request counted once, by outcome"
    );
    for bucket in [Bucket::Hour, Bucket::Day] {
        let whole = UsageQuery::new(UsageFilter::Tenant, from, to + time::Duration::DAY, bucket)
            .expect("query");
        assert_eq!(
            total(store.as_ref(), &tenant, &whole).await,
            UsageCounts::new(n(ALLOWED), n(LIMITED), n(DENIED), n(INVALID)),
            "the {bucket} rollup agrees"
        );
    }
    assert_eq!(usage.unattributed(), 2, "the forged token and the bad key");

    // The same, through `GET /v1/usage` (the reader is another principal:
    // its own limit).
    let uri = format!(
        "/v1/usage?key={counted_id}&bucket=minute&from={}&to={}",
        rfc3339(from),
        rfc3339(to),
    );
    let (status, _, body) = send(app.clone(), get(&uri, Some(&reader))).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let body = json(&body);
    assert_eq!(
        body["total"],
        serde_json::json!({
            "requests": n(ALLOWED + LIMITED + DENIED),
            "allowed": n(ALLOWED),
            "rate_limited": n(LIMITED),
            "denied": n(DENIED),
            "invalid_credential": 0,
        })
    );
    assert_eq!(body["points"][0]["route_class"], "default");
    let (status, _, body) = send(
        app.clone(),
        get(
            &format!(
                "/v1/usage/top?by=limited&from={}&to={}",
                rfc3339(from),
                rfc3339(to),
            ),
            Some(&reader),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let body = json(&body);
    assert_eq!(body["items"][0]["key"], counted_id.to_string());
    assert_eq!(body["items"][0]["counts"]["rate_limited"], n(LIMITED));
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn usage_counts_are_exact_per_outcome_on_sqlite() {
    let dir = TestDir::new("usage-exact-sqlite");
    let sqlite = docaiche_store::sqlite::SqliteStore::connect(
        &docaiche_store::sqlite::SqliteConfig::in_memory(),
    )
    .await
    .expect("sqlite");
    counts_are_exact(&dir, Arc::new(sqlite.usage())).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_are_exact_per_outcome_on_postgres() {
    use docaiche_store::postgres::{PgConfig, PgStore};

    const SUITE: &str = "server-postgres";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = format!(
        "docaiche_usage_{}",
        &ApiKeyId::new().to_string().replace('-', "")[..16]
    );
    let admin = crate::wiring::tests::admin(&url).await;
    docaiche_store::postgres::sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("create the test schema");
    let _drop = crate::wiring::tests::Schema {
        admin,
        name: schema.clone(),
    };
    let mut pg = PgConfig::new(url.clone());
    pg.schema = Some(schema);
    let store = PgStore::connect(&pg).await.expect("connect");
    let dir = TestDir::new("usage-exact-postgres");
    counts_are_exact(&dir, Arc::new(store.usage())).await;
}

/// A state with counting over a memory store, and a router over it.
async fn app(dir: &TestDir) -> (AppState, Router) {
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let state = state_with_clock(&config, Arc::new(docaiche_core::SystemClock::new()))
        .with_usage_store(Arc::new(docaiche_store::memory::MemoryUsageStore::new()))
        .expect("usage store");
    (state.clone(), router(state))
}

#[tokio::test]
async fn a_key_or_tenant_of_another_tenant_is_not_found() {
    let dir = TestDir::new("usage-cross-tenant");
    let (state, app) = app(&dir).await;
    let (_, acme_key) = key(&state, "acme", "alice", &[Permission::KEYS_MANAGE]).await;
    let (globex, globex_key) = key(&state, "globex", "gina", &[Permission::KEYS_MANAGE]).await;
    let (platform, _) = key(
        &state,
        "globex",
        "root",
        &[Permission::KEYS_MANAGE, Permission::TENANTS_CROSS],
    )
    .await;

    // Another tenant's key: 404, not 403 (its existence is not told).
    let (status, headers, body) = send(
        app.clone(),
        get(&format!("/v1/usage?key={acme_key}"), Some(&globex)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_problem(&headers, &body, "not-found");
    // Another tenant by name: 404 without `tenants:cross`.
    for uri in ["/v1/usage?tenant=acme", "/v1/usage/top?tenant=acme"] {
        let (status, _, _) = send(app.clone(), get(uri, Some(&globex))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
    // Its own key and tenant: 200.
    let (status, _, body) = send(
        app.clone(),
        get(&format!("/v1/usage?key={globex_key}"), Some(&globex)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["tenant"], "globex");
    // With `tenants:cross`: the named tenant and its keys.
    let (status, _, body) = send(
        app.clone(),
        get(
            &format!("/v1/usage?tenant=acme&key={acme_key}"),
            Some(&platform),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["tenant"], "acme");
    let (status, _, _) = send(app, get("/v1/usage/top?tenant=acme", Some(&platform))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_usage_queries_are_problems() {
    let dir = TestDir::new("usage-bad-queries");
    let (state, app) = app(&dir).await;
    let (reader, _) = key(&state, "acme", "alice", &[Permission::KEYS_MANAGE]).await;
    for uri in [
        "/v1/usage?bucket=week",
        "/v1/usage?key=not-a-key",
        "/v1/usage?from=yesterday",
        "/v1/usage?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
        "/v1/usage?bucket=minute&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "/v1/usage?tenant=a%2Fb",
        "/v1/usage?unknown=1",
        "/v1/usage/top?by=bytes",
        "/v1/usage/top?n=0",
        "/v1/usage/top?n=1001",
        "/v1/usage/top?n=-1",
        "/v1/usage/top?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        let (status, headers, body) = send(app.clone(), get(uri, Some(&reader))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_problem(&headers, &body, "invalid-input");
    }
    // An unknown key of the caller's tenant: 404.
    let (status, _, _) = send(
        app.clone(),
        get(&format!("/v1/usage?key={}", ApiKeyId::new()), Some(&reader)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Without `keys:manage`: 403.
    let (other, _) = key(&state, "acme", "bob", &[Permission::DOCUMENTS_READ]).await;
    let (status, _, _) = send(app, get("/v1/usage", Some(&other))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn nothing_is_counted_with_usage_disabled() {
    let dir = TestDir::new("usage-disabled");
    let mut config = config(&dir);
    config.usage.enabled = false;
    let state = state_with_clock(&config, Arc::new(docaiche_core::SystemClock::new()));
    assert!(!state.usage.is_enabled());
    assert!(state.usage.flusher().expect("flusher").is_none());
    let (reader, _) = key(&state, "acme", "alice", &[Permission::KEYS_MANAGE]).await;
    let app = router(state.clone());
    let (status, _, body) = send(app, get("/v1/usage", Some(&reader))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["points"], serde_json::json!([]));
    assert!(state.usage.recorder().is_none());
}

#[tokio::test]
async fn the_recorder_figures_are_on_metrics() {
    let dir = TestDir::new("usage-metrics");
    let (state, app) = app(&dir).await;
    let (reader, _) = key(&state, "acme", "alice", &[Permission::KEYS_MANAGE]).await;
    let (status, _, _) = send(app, get("/v1/usage", Some(&reader))).await;
    assert_eq!(status, StatusCode::OK);
    let text = state.metrics.render().expect("render");
    for line in [
        "docaiche_usage_series 1",
        "docaiche_usage_lost_batches_total 0",
        "docaiche_usage_lost_requests_total 0",
        "docaiche_usage_flushed_batches_total 0",
        "docaiche_usage_unattributed_failures_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
}

#[tokio::test]
async fn retention_drops_old_rows_and_counts_its_runs() {
    use docaiche_core::usage::{RouteClass, UsageBatch, UsageRow, UsageSubject};

    let dir = TestDir::new("usage-retention");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let clock = Arc::new(ManualClock::new());
    let store: Arc<dyn UsageStore> = Arc::new(docaiche_store::memory::MemoryUsageStore::new());
    let state = state_with_clock(&config, clock.clone())
        .with_usage_store(Arc::clone(&store))
        .expect("usage store");
    // Three days old: past the minute retention (48 h), within the hour one.
    let tenant = TenantId::new("acme").expect("tenant");
    let old = Bucket::Minute.floor(clock.now() - time::Duration::days(3));
    let key = ApiKeyId::new();
    let row = UsageRow::new(
        tenant.clone(),
        UsageSubject::for_key(key),
        RouteClass::new("default").expect("class"),
        old,
        UsageCounts::new(7, 0, 0, 0),
    );
    store
        .record_batch(&UsageBatch::new(old, vec![row]))
        .await
        .expect("batch");
    let (from, to) = (old - time::Duration::DAY, old + time::Duration::DAY);
    let minutes = UsageQuery::for_key(key, from, to, Bucket::Minute).expect("query");
    let hours = UsageQuery::for_key(key, from, to, Bucket::Hour).expect("query");
    assert_eq!(total(store.as_ref(), &tenant, &minutes).await.allowed, 7);

    state.usage.apply_retention().await.expect("retention");
    assert!(
        total(store.as_ref(), &tenant, &minutes).await.is_zero(),
        "minute rows dropped"
    );
    assert_eq!(
        total(store.as_ref(), &tenant, &hours).await.allowed,
        7,
        "hour rows kept"
    );
    let text = state.metrics.render().expect("render");
    assert!(
        text.lines()
            .any(|l| l == "docaiche_usage_retention_runs_total 1"),
        "{text}"
    );
}

/// A usage store that is down: every write fails.
#[derive(Debug)]
struct DownStore;

#[async_trait::async_trait]
impl UsageStore for DownStore {
    async fn record_batch(
        &self,
        _: &docaiche_core::usage::UsageBatch,
    ) -> docaiche_core::Result<bool> {
        Err(docaiche_core::Error::unavailable(
            "usage store",
            std::io::Error::other("down"),
        ))
    }
    async fn series(
        &self,
        _: &TenantId,
        _: &UsageQuery,
    ) -> docaiche_core::Result<Vec<docaiche_core::usage::UsagePoint>> {
        Ok(Vec::new())
    }
    async fn top_keys(
        &self,
        _: &TenantId,
        _: &docaiche_core::usage::TopQuery,
    ) -> docaiche_core::Result<Vec<docaiche_core::usage::KeyUsage>> {
        Ok(Vec::new())
    }
    async fn apply_retention(
        &self,
        _: time::OffsetDateTime,
        _: &docaiche_core::usage::UsageRetention,
    ) -> docaiche_core::Result<docaiche_core::usage::RetentionReport> {
        Ok(docaiche_core::usage::RetentionReport::default())
    }
}

/// With one pending batch allowed, a store outage loses one interval per
/// failed flush, and the metrics say how many batches and requests.
#[tokio::test]
async fn a_lost_flush_is_counted_in_the_metrics() {
    let dir = TestDir::new("usage-lost-flush");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.usage.max_pending_batches = 1;
    let clock = Arc::new(ManualClock::new());
    let state = state_with_clock(&config, clock.clone())
        .with_usage_store(Arc::new(DownStore))
        .expect("usage store");
    let mut flusher = state
        .usage
        .flusher()
        .expect("flusher")
        .expect("counting is on");
    let (reader, _) = key(&state, "acme", "alice", &[Permission::KEYS_MANAGE]).await;
    let app = router(state.clone());
    for requests in [2, 3] {
        for _ in 0..requests {
            let (status, _, _) = send(app.clone(), get("/v1/usage", Some(&reader))).await;
            assert_eq!(status, StatusCode::OK);
        }
        clock.advance(Duration::from_secs(10));
        assert!(flusher.flush().await.is_err(), "the store is down");
    }
    // The first interval's batch was dropped for the second; the second
    // waits for the next flush.
    assert_eq!(flusher.pending_batches(), 1);
    let text = state.metrics.render().expect("render");
    for line in [
        "docaiche_usage_lost_batches_total 1",
        "docaiche_usage_lost_requests_total 2",
        "docaiche_usage_failed_flushes_total 2",
        "docaiche_usage_flushed_batches_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
}
