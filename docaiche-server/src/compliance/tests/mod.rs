//! Compliance tests: shared helpers, the `[retention]` checks and the
//! scheduled purge (per-tenant settings in `stored_retention`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use docaiche_compliance::privacy::PrivacyRequest;
use docaiche_compliance::retention::{LegalHold, TenantDirectory, resource};
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource};
use docaiche_core::document::NewDocument;
use docaiche_core::{
    AuditSink, Clock, DocumentStore, ManualClock, PrincipalId, RequestContext, TenantId,
};
use time::OffsetDateTime;

use super::*;
use crate::audit::{FsyncSetting, ReadBack};
use crate::config::Config;
use crate::routes::tests::{json, send};
use crate::state::AppState;
use crate::state::tests::local_state;
use crate::test_support::{TestDir, key_with};
use crate::wiring::Secrets;

fn config(dir: &TestDir) -> Config {
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.audit.fsync = FsyncSetting::Never;
    config.audit.checkpoint_every = 0;
    config
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("tenant")
}

/// Unique tenant ids per test run.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// State over memory stores with the file trail of `config`.
async fn state_with_trail(config: &Config) -> AppState {
    let mut state = local_state(config);
    let secrets = Secrets::from_config(config, &|_| None)
        .await
        .expect("secrets");
    let trail = crate::audit::open(config, &secrets, &|_| None)
        .await
        .expect("trail");
    let compliance = Compliance::new(
        config,
        Arc::clone(&state.documents) as Arc<dyn DocumentStore>,
        trail.sink(),
        Arc::clone(&state.auth.clock),
        Arc::clone(&state.auth.stores.tenants),
    )
    .expect("compliance");
    state.compliance = Arc::new(compliance);
    state.audit = Some(trail);
    state
}

fn request(
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> axum::http::Request<Body> {
    let mut builder = axum::http::Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned())),
        None => builder.body(Body::empty()),
    }
    .expect("request")
}

/// Write the trail's buffered records.
async fn flush(state: &AppState) {
    state
        .audit
        .as_ref()
        .expect("trail")
        .buffer
        .flush()
        .await
        .expect("flushed");
}

/// The JSON compliance report of `tenant`, asked with `key` (200).
async fn report_json(state: &AppState, key: &str, tenant: &str) -> serde_json::Value {
    let uri = format!("/v1/admin/compliance/report?tenant={tenant}");
    let (status, _, body) = send(
        crate::routes::router(state.clone()),
        request("GET", &uri, Some(key), None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    json(&body)
}

async fn trail_text(state: &AppState, config: &Config) -> String {
    let trail = state.audit.as_ref().expect("trail");
    trail.buffer.flush().await.expect("flushed");
    std::fs::read_to_string(config.audit.file_path(config)).expect("trail file")
}

#[test]
fn the_section_parses_and_bad_values_are_refused_at_start() {
    let config = Config::from_toml_str(
        "[retention]\ninterval_secs = 600\nmax_per_run = 50\npurge_tenants = [\"acme\"]\n\
         [retention.default]\ndocuments = 90\naudit = 365\n\
         [retention.tenants.globex]\ndocuments = 30\n",
    )
    .expect("parses");
    config.validate().expect("valid");
    let policies = config.retention.policies().expect("policies");
    assert_eq!(policies.days(&tenant("globex"), "documents"), Some(30));
    assert_eq!(policies.days(&tenant("acme"), "documents"), Some(90));
    let directory = config.retention.purge_directory(&config.auth);
    let names = futures_util::FutureExt::now_or_never(directory.tenants())
        .expect("ready")
        .expect("tenants");
    assert_eq!(names, [tenant("acme"), tenant("globex")]);

    let bad = Config::from_toml_str(
        "[retention]\ninterval_secs = 5\nmax_per_run = 0\npurge_tenants = [\"no spaces\"]\n\
         [retention.default]\ndocuments = 0\nexports = 10\n\
         [retention.tenants.acme]\naudit = 99999\n",
    )
    .expect("parses");
    let problems = bad.validate().expect_err("refused").to_string();
    for setting in [
        "retention.interval_secs",
        "retention.max_per_run",
        "retention.purge_tenants",
        "retention.default.documents",
        "retention.default.exports",
        "retention.tenants.acme.audit",
    ] {
        assert!(problems.contains(setting), "{setting} missing: {problems}");
    }
    assert!(bad.retention.policies().is_err());
    assert!(Config::from_toml_str("[retention]\nkeep_forever = true\n").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_job_deletes_expired_keeps_held_and_audits() {
    let dir = TestDir::new("retention-purge");
    let acme = unique("acme");
    let mut config = config(&dir);
    config.retention.default.insert("documents".into(), 30);
    config.retention.purge_tenants = vec![acme.clone()];
    config.validate().expect("valid");
    let base = local_state(&config);
    let secrets = Secrets::from_config(&config, &|_| None)
        .await
        .expect("secrets");
    let trail = crate::audit::open(&config, &secrets, &|_| None)
        .await
        .expect("trail");
    let acme = tenant(&acme);
    let documents: Arc<dyn DocumentStore> = base.documents.clone();
    let put = |owner: &str| {
        NewDocument::new(
            PrincipalId::new(owner).expect("owner"),
            "application/pdf",
            "00",
            axum::body::Bytes::from_static(b"%PDF-1.4 test"),
        )
    };
    let expired = documents.put(&acme, put("alice")).await.expect("put");
    let held = documents.put(&acme, put("bob")).await.expect("put");
    // The purge runs 40 days later on a clock the test controls.
    let clock = Arc::new(ManualClock::starting_at(
        OffsetDateTime::now_utc() + time::Duration::days(40),
    ));
    let compliance = Compliance::new(
        &config,
        Arc::clone(&documents),
        trail.sink(),
        clock.clone(),
        Arc::clone(&base.auth.stores.tenants),
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
    let job = start_purge(&compliance).expect("job").expect("enabled");
    let mut waited = 0;
    while compliance.purger.last_report().is_none() {
        assert!(waited < 500, "the first run finishes");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(job.shutdown(Duration::from_secs(5)).await, Some(1));
    let report = compliance.purger.last_report().expect("report");
    assert_eq!((report.purged(), report.held()), (1, 1), "{report:?}");
    assert!(
        documents
            .head(&acme, &expired.id)
            .await
            .expect("head")
            .is_none()
    );
    assert!(
        documents
            .head(&acme, &held.id)
            .await
            .expect("head")
            .is_some()
    );
    trail.buffer.flush().await.expect("flushed");
    let text = std::fs::read_to_string(config.audit.file_path(&config)).expect("trail");
    let purge_line = text
        .lines()
        .find(|l| l.contains("\"retention.purge\""))
        .expect("retention.purge recorded");
    assert!(purge_line.contains(&expired.id.to_string()), "{purge_line}");
    assert!(
        !text.contains(&held.id.to_string()),
        "the held document is not purged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_deletes_closed_privacy_requests_past_their_period_only() {
    use docaiche_compliance::privacy::{Regulation, RequestKind, RequestStatus};
    let dir = TestDir::new("retention-privacy");
    let acme = unique("acme");
    let mut config = config(&dir);
    config
        .retention
        .default
        .insert("privacy_requests".into(), 30);
    config.retention.purge_tenants = vec![acme.clone()];
    config.validate().expect("valid");
    crate::storage::prepare_data_dir(dir.path()).expect("data dir");
    let state = AppState::from_config(&config, &|_| None)
        .await
        .expect("state");
    // The privacy service's own store, as the purge sees it.
    let requests = Arc::clone(&state.privacy.as_ref().expect("privacy service").requests);
    let acme = tenant(&acme);
    let now = OffsetDateTime::now_utc();
    let request = |status, closed_days_ago: Option<i64>| {
        let mut request = PrivacyRequest::new(
            acme.clone(),
            PrincipalId::new("alice").expect("id"),
            RequestKind::Export,
            Regulation::Gdpr,
            PrincipalId::new("dpo").expect("id"),
            now - time::Duration::days(60),
        );
        request.status = status;
        request.completed_at = closed_days_ago.map(|d| now - time::Duration::days(d));
        request
    };
    let expired = request(RequestStatus::Completed, Some(40));
    let recent = request(RequestStatus::Completed, Some(10));
    let open = request(RequestStatus::Received, None);
    for r in [&expired, &recent, &open] {
        requests.insert(r).await.expect("inserted");
    }

    let job = start_purge(&state.compliance)
        .expect("job")
        .expect("enabled");
    let mut waited = 0;
    while state.compliance.purger.last_report().is_none() {
        assert!(waited < 1000, "the first run finishes");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(job.shutdown(Duration::from_secs(5)).await, Some(1));
    let report = state.compliance.purger.last_report().expect("report");
    assert_eq!(
        report.tenants[&acme][resource::PRIVACY_REQUESTS].purged,
        1,
        "{report:?}"
    );
    let kept = |id| {
        let requests = Arc::clone(&requests);
        let acme = acme.clone();
        async move { requests.get(&acme, &id).await.expect("read").is_some() }
    };
    assert!(!kept(expired.id).await, "closed 40 days ago, over 30");
    assert!(kept(recent.id).await, "closed 10 days ago");
    assert!(kept(open.id).await, "open requests are never purged");

    let text = trail_text(&state, &config).await;
    let purge_line = text
        .lines()
        .find(|l| l.contains("\"retention.purge\""))
        .expect("retention.purge recorded");
    assert!(purge_line.contains(&expired.id.to_string()), "{purge_line}");
    assert!(purge_line.contains("privacy_requests"), "{purge_line}");
    assert!(!text.contains(&open.id.to_string()));
    assert!(!text.contains(&recent.id.to_string()));
}

mod holds;
mod report;
mod stored_retention;
