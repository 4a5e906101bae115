//! A tenant's `retention_days`, set through `PATCH /v1/tenants/{id}`, is
//! its documents period from the next purge run on (memory, SQLite and
//! PostgreSQL registries); a registry that cannot be read purges nothing.

use docaiche_compliance::retention::RetentionSource;
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::tenant::{StatusChange, Tenant, TenantSettings, TenantStatus, TenantStore};
use docaiche_store::memory::MemoryAuditSink;

use super::*;

const PLATFORM: &[&str] = &["tenants:cross", "admin:access", "audit:read"];

/// `config` with a 90-day default for documents (and a configured tenant
/// of 60 days, which other tenants' reports do not name).
fn with_default_documents(mut config: Config) -> Config {
    config.retention.default.insert("documents".into(), 90);
    config
        .retention
        .tenants
        .insert("initech".into(), [("documents".to_owned(), 60)].into());
    config.validate().expect("valid");
    config
}

/// Send `body` to `uri` as a platform administrator; the answer must be a
/// success.
async fn admin_call(
    state: &AppState,
    key: &str,
    method: &str,
    uri: &str,
    body: &str,
) -> serde_json::Value {
    let (status, _, answer) = send(
        crate::routes::router(state.clone()),
        request(method, uri, Some(key), Some(body)),
    )
    .await;
    assert!(
        status.is_success(),
        "{method} {uri}: {status} {}",
        String::from_utf8_lossy(&answer)
    );
    json(&answer)
}

/// Through `state`'s tenants API, register two tenants the configuration
/// does not name and give the first a one-day retention; then purge two
/// days later, on a clock the test holds, over `state`'s document store and
/// tenant registry: the first tenant's documents are gone but the one under
/// a legal hold, the second (on the configured 90 days) keeps its own, and
/// each purge is recorded first.
async fn a_stored_one_day_retention_purges_at_the_next_run(state: &AppState, config: &Config) {
    let (acme, globex) = (unique("acme"), unique("globex"));
    let admin = key_with(state, "platform", PLATFORM).await;
    for id in [&acme, &globex] {
        let body = format!(r#"{{"id":"{id}","display_name":"Tenant"}}"#);
        admin_call(state, &admin, "POST", "/v1/tenants", &body).await;
    }
    let patched = admin_call(
        state,
        &admin,
        "PATCH",
        &format!("/v1/tenants/{acme}"),
        r#"{"retention_days":1}"#,
    )
    .await;
    assert_eq!(patched["settings"]["retention_days"], 1);
    // The tenant's compliance report shows the period in force, and no
    // other tenant's.
    let report = report_json(state, &admin, &acme).await;
    let tenants = &report["retention"]["policies"]["tenants"];
    assert_eq!(tenants[&acme]["documents"], 1, "{report}");
    assert_eq!(tenants.as_object().map(|t| t.len()), Some(1), "{report}");
    assert_eq!(report["retention"]["policies"]["default"]["documents"], 90);
    let (acme, globex) = (tenant(&acme), tenant(&globex));

    // The state's own retention reads the same registry.
    let periods = state.compliance.retention.periods(&acme).await;
    assert_eq!(periods.expect("read")["documents"], 1);
    let visited = state.compliance.retention.tenants().await.expect("listed");
    assert!(visited.contains(&acme) && visited.contains(&globex));

    let documents: Arc<dyn DocumentStore> = state.documents.clone();
    let put = |owner: &'static str| {
        NewDocument::new(
            PrincipalId::new(owner).expect("owner"),
            "application/pdf",
            "00",
            axum::body::Bytes::from_static(b"%PDF-1.4 test"),
        )
    };
    let alice = documents.put(&acme, put("alice")).await.expect("put").id;
    let bob = documents.put(&acme, put("bob")).await.expect("put").id;
    let carol = documents.put(&globex, put("carol")).await.expect("put").id;
    let clock = Arc::new(ManualClock::starting_at(OffsetDateTime::now_utc()));
    let audit = Arc::new(MemoryAuditSink::new());
    let compliance = Compliance::new(
        config,
        Arc::clone(&documents),
        audit.clone(),
        clock.clone(),
        Arc::clone(&state.auth.stores.tenants),
    )
    .expect("compliance");
    compliance
        .holds
        .place(
            LegalHold::new(
                acme.clone(),
                "case 17",
                PrincipalId::new("counsel").expect("id"),
                clock.now(),
            )
            .on_subject(PrincipalId::new("bob").expect("id")),
        )
        .await
        .expect("hold");
    let schedule = compliance.schedule().expect("schedule");

    let report = schedule.run_once().await.expect("a run");
    assert_eq!(report.purged(), 0, "nothing is a day old yet: {report:?}");

    clock.advance(Duration::from_secs(2 * 86_400));
    let report = schedule.run_once().await.expect("a run");
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!((report.purged(), report.held()), (1, 1), "{report:?}");
    assert_eq!(report.tenants[&acme]["documents"].retention_days, 1);
    assert_eq!(report.tenants[&globex]["documents"].retention_days, 90);
    let present = |tenant: TenantId, id| {
        let documents = Arc::clone(&documents);
        async move { documents.head(&tenant, &id).await.expect("head").is_some() }
    };
    assert!(!present(acme.clone(), alice).await, "older than a day");
    assert!(present(acme.clone(), bob).await, "under a legal hold");
    assert!(present(globex.clone(), carol).await, "90 days for globex");
    let events = audit.events(&acme);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].action, "retention.purge");
    let resource = events[0].resource.as_ref().expect("resource");
    assert_eq!(resource.id, alice.to_string());
    assert_eq!(events[0].details["retention_days"], 1);
    assert!(audit.events(&globex).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_set_through_the_api_applies_at_the_next_purge_in_memory() {
    let dir = TestDir::new("stored-retention-memory");
    let config = with_default_documents(config(&dir));
    let state = state_with_trail(&config).await;
    a_stored_one_day_retention_purges_at_the_next_run(&state, &config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_set_through_the_api_applies_at_the_next_purge_on_sqlite() {
    let dir = TestDir::new("stored-retention-sqlite");
    let config = with_default_documents(config(&dir));
    crate::storage::prepare_data_dir(dir.path()).expect("data dir");
    crate::keys::prepare(&config.key_source()).expect("keys");
    let state = AppState::from_config(&config, &|_| None)
        .await
        .expect("state");
    a_stored_one_day_retention_purges_at_the_next_run(&state, &config).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_set_through_the_api_applies_at_the_next_purge_on_postgres() {
    use crate::wiring::tests::on_test_schema;
    const SUITE: &str = "server-postgres";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let dir = TestDir::new("stored-retention-postgres");
    let mut config = config(&dir);
    let (schema, env) = on_test_schema(&url, "stored_retention", &mut config).await;
    let config = with_default_documents(config);
    crate::storage::prepare_data_dir(dir.path()).expect("data dir");
    crate::keys::prepare(&config.key_source()).expect("keys");
    let state = AppState::from_config(&config, &env).await.expect("state");
    a_stored_one_day_retention_purges_at_the_next_run(&state, &config).await;
    let (rows,): (i64,) = docaiche_store::postgres::sqlx::query_as(&format!(
        "SELECT count(*) FROM {}.tenants WHERE (settings::jsonb)->>'retention_days' = '1'",
        schema.name
    ))
    .fetch_one(&schema.admin)
    .await
    .expect("the setting is in the store's schema");
    assert_eq!(rows, 1);
    crate::report::mark_ran(SUITE, &format!("stored retention schema {}", schema.name));
}

/// A tenant registry whose reads fail.
#[derive(Debug)]
struct DownRegistry;

fn down() -> docaiche_core::Error {
    docaiche_core::Error::unavailable("tenants", std::io::Error::other("down"))
}

#[async_trait::async_trait]
impl TenantStore for DownRegistry {
    async fn create(&self, _: &Tenant) -> docaiche_core::Result<()> {
        Err(down())
    }

    async fn get(&self, _: &TenantId) -> docaiche_core::Result<Option<Tenant>> {
        Err(down())
    }

    async fn list(
        &self,
        _: Option<TenantStatus>,
        _: &PageRequest,
    ) -> docaiche_core::Result<Page<Tenant>> {
        Err(down())
    }

    async fn update_settings(
        &self,
        _: &TenantId,
        _: &TenantSettings,
        _: OffsetDateTime,
    ) -> docaiche_core::Result<bool> {
        Err(down())
    }

    async fn set_status(
        &self,
        _: &TenantId,
        _: StatusChange<'_>,
        _: OffsetDateTime,
    ) -> docaiche_core::Result<bool> {
        Err(down())
    }
}

#[tokio::test]
async fn an_unreadable_registry_purges_nothing_and_is_counted_on_metrics() {
    let dir = TestDir::new("stored-retention-down");
    let acme = unique("acme");
    let mut config = config(&dir);
    // One day configured: a registry that cannot be read might say a year.
    config.retention.default.insert("documents".into(), 1);
    config.retention.purge_tenants = vec![acme.clone()];
    config.validate().expect("valid");
    let state = local_state(&config);
    let acme = tenant(&acme);
    let documents: Arc<dyn DocumentStore> = state.documents.clone();
    let kept = documents
        .put(
            &acme,
            NewDocument::new(
                PrincipalId::new("alice").expect("owner"),
                "application/pdf",
                "00",
                axum::body::Bytes::from_static(b"%PDF-1.4 test"),
            ),
        )
        .await
        .expect("put")
        .id;
    let clock = Arc::new(ManualClock::starting_at(
        OffsetDateTime::now_utc() + time::Duration::days(2),
    ));
    let compliance = Compliance::new(
        &config,
        Arc::clone(&documents),
        Arc::new(MemoryAuditSink::new()),
        clock,
        Arc::new(DownRegistry),
    )
    .expect("compliance");
    let schedule = compliance.schedule().expect("schedule");
    assert!(
        schedule.run_once().await.is_none(),
        "no tenant listing: the run is skipped"
    );
    // The configured tenants alone, as a caller of the purger may pass.
    let report = compliance.purger.run(std::slice::from_ref(&acme)).await;
    assert_eq!(report.purged(), 0);
    assert_eq!(
        report.failures.get(&acme).map(String::as_str),
        Some("unavailable")
    );
    assert!(documents.head(&acme, &kept).await.expect("head").is_some());

    let metrics = crate::metrics::Metrics::from_config(&config).expect("metrics");
    metrics.register_source(compliance.retention.clone());
    let text = metrics.render().expect("rendered");
    assert!(
        text.contains("docaiche_retention_settings_read_failures_total 2"),
        "{text}"
    );
}
