//! Tests of the audit trail: `[audit]` parsing, the chained file and
//! PostgreSQL trails, keyed hashes of personal details, fail-closed
//! refusals and `GET /v1/admin/audit`.

use crate::routes::audit::AuditPage;
use std::sync::Arc;

use axum::http::{StatusCode, header};
use docaiche_compliance::audit::Verifier;
use docaiche_compliance::audit::{Auditor, BufferConfig, BufferedSink, DetailHasher};
use docaiche_core::audit::{AuditEvent, AuditOutcome};
use docaiche_core::{AuditSink, RequestContext, SecretBytes, TenantId};

use super::*;
use crate::config::{AuditSection, Config, Environment};
use crate::state::AppState;
use crate::test_support::{TestDir, key_with};
use crate::wiring::Secrets;

fn config(dir: &TestDir) -> Config {
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.audit.fsync = FsyncSetting::Never;
    config.audit.checkpoint_every = 2;
    config
}

#[test]
fn section_parses_and_validates() {
    let config = Config::from_toml_str(
        "[audit]\nsink = \"file\"\nfan_out = [\"stdout\"]\nbuffer_capacity = 8\n",
    )
    .expect("parses");
    assert_eq!(config.audit.fan_out, vec![AuditSinkKind::Stdout]);
    assert!(config.audit.problems(false).is_empty());
    let pg = Config::from_toml_str("[audit]\nsink = \"postgres\"\n").expect("parses");
    assert_eq!(pg.audit.problems(false)[0].0, "audit.sink");
    assert!(pg.audit.problems(true).is_empty());
    assert!(!config.audit.fail_closed(Environment::Development));
    assert!(config.audit.fail_closed(Environment::Production));
    let bad = AuditSection {
        buffer_capacity: 0,
        fan_out: vec![AuditSinkKind::File],
        ..AuditSection::default()
    };
    let settings: Vec<_> = bad.problems(true).into_iter().map(|(s, _)| s).collect();
    assert_eq!(settings, ["audit.buffer_capacity", "audit.fan_out"]);
    assert!(Config::from_toml_str("[audit]\nsink = \"carrier-pigeon\"\n").is_err());
}

#[tokio::test]
async fn events_land_on_a_verifiable_chained_trail() {
    let dir = TestDir::new("audit-trail");
    let config = config(&dir);
    let secrets = Secrets::from_config(&config, &|_| None)
        .await
        .expect("secrets");
    let trail = open(&config, &secrets, &|_| None).await.expect("open");
    let sink = trail.sink();
    let tenant = TenantId::new("acme").expect("tenant");
    for action in ["api_key.create", "auth.login", "auth.failure"] {
        let event = AuditEvent::new(
            action,
            AuditOutcome::Success,
            time::OffsetDateTime::now_utc(),
            &RequestContext::new(),
        )
        .by(tenant.clone(), None);
        sink.record(&event).await.expect("recorded");
    }
    sink.flush().await.expect("flushed");
    let path = config.audit.file_path(&config);
    let report = Verifier::new().verify_path(&path).expect("verify");
    assert!(report.is_ok(), "{:?}", report.tamper);
    let text = std::fs::read_to_string(&path).expect("read");
    for action in ["api_key.create", "auth.login", "auth.failure"] {
        assert!(text.contains(action), "{action} missing from the trail");
    }
    assert_eq!(trail.buffer.dropped(), 0);
}

#[tokio::test]
async fn production_without_the_checkpoint_key_refuses_to_start() {
    let dir = TestDir::new("audit-prod");
    let mut config = config(&dir);
    config.environment = Environment::Production;
    let secrets = Secrets::from_config(&Config::default(), &|_| None)
        .await
        .expect("secrets");
    let error = open(&config, &secrets, &|_| None)
        .await
        .expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("audit/checkpoint-key"), "{text}");
    assert!(
        text.contains("DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY"),
        "{text}"
    );
}

#[tokio::test]
async fn sensitive_details_reach_the_file_trail_as_keyed_hashes() {
    let email = "o'brien+audit@example.com";
    let checkpoint = "c".repeat(32);
    let dedicated = "d".repeat(40);
    let derived = derived_key(
        &SecretBytes::from(checkpoint.as_bytes().to_vec()),
        DETAIL_HASH_LABEL,
    );
    let cases = [
        // Only the checkpoint key: the detail key is derived from it.
        (
            vec![("DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY", checkpoint.clone())],
            derived,
        ),
        // The dedicated secret wins.
        (
            vec![
                ("DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY", checkpoint.clone()),
                ("DOCAICHE_SECRET_AUDIT_DETAIL_HASH_KEY", dedicated.clone()),
            ],
            SecretBytes::from(dedicated.as_bytes().to_vec()),
        ),
    ];
    let mut seen = Vec::new();
    for (vars, key) in cases {
        let dir = TestDir::new("audit-hashed");
        let mut config = config(&dir);
        config.secrets.sources = vec!["env".into()];
        let env = move |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        let secrets = Secrets::from_config(&config, &env).await.expect("secrets");
        let trail = open(&config, &secrets, &env).await.expect("open");
        let tenant = TenantId::new("acme").expect("tenant");
        let at = time::OffsetDateTime::now_utc();
        let failure = AuditEvent::new(
            "auth.failure",
            AuditOutcome::Failure,
            at,
            &RequestContext::new(),
        )
        .by(tenant.clone(), None)
        .because("bad_credential")
        .with_detail(
            "subjects",
            serde_json::json!({ "account": email, "client_addr": "192.0.2.9" }),
        );
        let lockout = AuditEvent::new(
            "auth.lockout",
            AuditOutcome::Denied,
            at,
            &RequestContext::new(),
        )
        .by(tenant, None)
        .with_detail("subject_kind", "account".into())
        .with_detail("subject", email.into());
        trail.sink().record(&failure).await.expect("recorded");
        trail.buffer.submit(lockout).expect("queued");
        trail.buffer.flush().await.expect("flushed");

        let path = config.audit.file_path(&config);
        let report = Verifier::new().verify_path(&path).expect("verify");
        assert!(report.is_ok(), "{:?}", report.tamper);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            !text.contains("o'brien") && !text.contains("brien+audit"),
            "{text}"
        );
        let hashed = DetailHasher::from_bytes(&key).expect("key").hash_str(email);
        assert_eq!(text.matches(hashed.as_str()).count(), 2, "{text}");
        assert!(text.contains("192.0.2.9"), "other subjects stay readable");
        seen.push(hashed);
    }
    assert_ne!(
        seen[0], seen[1],
        "the dedicated key replaces the derived one"
    );
}

#[tokio::test]
async fn production_without_any_detail_hash_key_refuses_to_start() {
    let dir = TestDir::new("audit-prod-hash");
    let mut config = config(&dir);
    config.environment = Environment::Production;
    config.audit.checkpoint_every = 0;
    let secrets = Secrets::from_config(&Config::default(), &|_| None)
        .await
        .expect("secrets");
    let text = open(&config, &secrets, &|_| None)
        .await
        .expect_err("refused")
        .to_string();
    assert!(
        text.contains("DOCAICHE_SECRET_AUDIT_DETAIL_HASH_KEY"),
        "{text}"
    );
    assert!(
        text.contains("DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY"),
        "{text}"
    );
}

fn request(method: &str, uri: &str, key: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("x-api-key", key)
        .header("user-agent", "audit-test/1")
        .header("x-request-id", "req-audit-1")
        .body(axum::body::Body::empty())
        .expect("request")
}

fn corpus_pdf() -> Vec<u8> {
    crate::test_support::corpus_pdf("latex-recommended__test.pdf")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_and_document_events_are_chained_verified_and_listed() {
    use crate::routes::tests::{json, send};
    let dir = TestDir::new("audit-server");
    let mut config = config(&dir);
    config.documents.inline_max_bytes = 1024 * 1024;
    crate::storage::prepare_data_dir(dir.path()).expect("data dir");
    let state = AppState::from_config(&config, &|_| None)
        .await
        .expect("state");
    let admin = key_with(
        &state,
        "acme",
        &["tenants:cross", "audit:read", "keys:manage", "documents:*"],
    )
    .await;
    let app = crate::routes::router(state.clone());

    let (status, _, body) = send(
        app.clone(),
        axum::http::Request::post("/v1/keys")
            .header("x-api-key", &admin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(
                r#"{"name":"ci","scopes":["keys:manage"]}"#,
            ))
            .expect("request"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, body) = send(
        app.clone(),
        axum::http::Request::post("/v1/documents?filename=a.pdf")
            .header("x-api-key", &admin)
            .header("user-agent", "audit-test/1")
            .header(header::CONTENT_TYPE, "application/pdf")
            .body(axum::body::Body::from(corpus_pdf()))
            .expect("request"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let id = json(&body)["id"].as_str().expect("id").to_owned();
    let doc = format!("/v1/documents/{id}");
    let (status, _, _) = send(app.clone(), request("GET", &doc, &admin)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(app.clone(), request("DELETE", &doc, &admin)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A bad credential: the failed-authentication tracker's event.
    let (status, _, _) = send(app.clone(), request("GET", "/v1/keys", "dk_not_a_real_key")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let trail = state.audit.as_ref().expect("trail");
    trail.buffer.flush().await.expect("flushed");

    // The trail verifies and holds every event.
    let path = config.audit.file_path(&config);
    let report = Verifier::new().verify_path(&path).expect("verify");
    assert!(report.is_ok(), "{:?}", report.tamper);
    let text = std::fs::read_to_string(&path).expect("read");
    for action in [
        "api_key.create.attempt",
        "api_key.create",
        "document.create",
        "document.read",
        "document.delete",
        "auth.failure",
    ] {
        assert!(text.contains(&format!("\"{action}\"")), "{action} missing");
    }
    assert!(text.contains("audit-test/1"), "the user agent is recorded");

    // Filtered.
    let (status, _, body) = send(
        app.clone(),
        request(
            "GET",
            "/v1/admin/audit?tenant=acme&action=document.read",
            &admin,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let page: AuditPage = serde_json::from_slice(&body).expect("matches its schema");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].event.action, "document.read");
    let resource = page.items[0].event.resource.as_ref().expect("a resource");
    assert_eq!(resource.id, id.as_str());
    assert!(page.next.is_none());
    let actor = page.items[0].event.actor.clone().expect("an actor");

    // Paginated: one at a time, in sequence order, every event once.
    let mut seen = Vec::new();
    let mut uri = "/v1/admin/audit?tenant=acme&limit=1".to_owned();
    loop {
        let (status, _, body) = send(app.clone(), request("GET", &uri, &admin)).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let page: AuditPage = serde_json::from_slice(&body).expect("schema");
        assert!(page.items.len() <= 1);
        seen.extend(page.items.iter().map(|i| i.sequence));
        match page.next {
            Some(next) => uri = format!("/v1/admin/audit?tenant=acme&limit=1&after={next}"),
            None => break,
        }
        assert!(seen.len() < 100, "pagination terminates");
    }
    assert!(seen.len() >= 5, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    // Another tenant's stream is empty; bad filters are 400.
    let (status, _, body) = send(
        app.clone(),
        request("GET", "/v1/admin/audit?tenant=globex", &admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["items"], serde_json::json!([]));
    for bad in [
        "/v1/admin/audit?tenant=acme&outcome=maybe",
        "/v1/admin/audit?tenant=acme&since=yesterday",
        "/v1/admin/audit?tenant=acme&limit=0",
        "/v1/admin/audit?tenant=no%20such",
        "/v1/admin/audit?actor=%27%3B%20DROP%20TABLE%20audit_trail%3B--",
    ] {
        let (status, _, _) = send(app.clone(), request("GET", bad, &admin)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }

    // A tenant administrator (`audit:read`, no cross-tenant permission):
    // its own tenant by default or by name, filtered by actor and action
    // prefix; another tenant is 404, as if it did not exist.
    let tenant_admin = key_with(&state, "acme", &["keys:manage", "audit:read"]).await;
    for uri in ["/v1/admin/audit", "/v1/admin/audit?tenant=acme"] {
        let (status, _, body) = send(app.clone(), request("GET", uri, &tenant_admin)).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let page: AuditPage = serde_json::from_slice(&body).expect("schema");
        assert!(page.items.len() >= 5, "{uri}: {}", page.items.len());
    }
    let (status, _, body) = send(
        app.clone(),
        request(
            "GET",
            &format!("/v1/admin/audit?action_prefix=document.&actor={actor}"),
            &tenant_admin,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let page: AuditPage = serde_json::from_slice(&body).expect("schema");
    let actions: Vec<&str> = page.items.iter().map(|i| i.event.action.as_str()).collect();
    assert_eq!(
        actions,
        ["document.create", "document.read", "document.delete"],
        "{actions:?}"
    );
    let (status, _, body) = send(
        app.clone(),
        request("GET", "/v1/admin/audit?actor=nobody", &tenant_admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["items"], serde_json::json!([]));
    let (status, headers, body) = send(
        app.clone(),
        request("GET", "/v1/admin/audit?tenant=globex", &tenant_admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    crate::routes::tests::assert_problem(&headers, &body, "not-found");
    // Without `audit:read`: 403.
    let reader = key_with(&state, "acme", &["documents:read"]).await;
    let (status, _, _) = send(app.clone(), request("GET", "/v1/admin/audit", &reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn fail_closed_refuses_key_creation_rotation_and_revocation_when_the_trail_is_unwritable() {
    use crate::routes::tests::{json, send};
    use crate::state::tests::local_state;
    let dir = TestDir::new("audit-closed");
    let config = config(&dir);
    let mut state = local_state(&config);
    let buffer = BufferedSink::new(
        Arc::new(crate::test_support::Unwritable),
        BufferConfig::default(),
    );
    state.audit = Some(AuditTrail {
        auditor: Auditor::new(buffer.clone(), true),
        buffer,
        source: ReadBack::None,
        anchor_key: None,
        inbox: None,
    });
    let admin = key_with(&state, "acme", &["keys:manage"]).await;
    let app = crate::routes::router(state);
    let (status, _, body) = send(
        app.clone(),
        axum::http::Request::post("/v1/keys")
            .header("x-api-key", &admin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(
                r#"{"name":"ci","scopes":["keys:manage"]}"#,
            ))
            .expect("request"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        String::from_utf8_lossy(&body)
    );
    // Nothing was created: only the caller's own key is listed.
    let (status, _, body) = send(app.clone(), request("GET", "/v1/keys", &admin)).await;
    assert_eq!(status, StatusCode::OK);
    let items = json(&body)["items"].clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1));
    // Rotation and revocation are refused too, and the key still works.
    let own = items[0]["id"].as_str().expect("key id").to_owned();
    for (method, uri) in [
        ("POST", format!("/v1/keys/{own}/rotate")),
        ("DELETE", format!("/v1/keys/{own}")),
    ] {
        let (status, _, body) = send(app.clone(), request(method, &uri, &admin)).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {uri}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let (status, _, body) = send(app, request("GET", "/v1/keys", &admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["items"].as_array().map(Vec::len), Some(1));
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_sink_chains_key_events_and_lists_them() {
    use crate::routes::tests::send;
    use crate::wiring::tests::on_test_schema;
    const SUITE: &str = "server-postgres";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let dir = TestDir::new("audit-postgres");
    let mut config = config(&dir);
    let (schema, env) = on_test_schema(&url, "audit_test", &mut config).await;
    config.audit.sink = AuditSinkKind::Postgres;
    config.validate().expect("valid");
    crate::storage::prepare_data_dir(dir.path()).expect("data dir");
    crate::keys::prepare(&config.key_source()).expect("keys");
    let state = AppState::from_config(&config, &env)
        .await
        .expect("state on PostgreSQL");
    let admin_key = key_with(
        &state,
        "acme",
        &["tenants:cross", "audit:read", "keys:manage"],
    )
    .await;
    let app = crate::routes::router(state.clone());
    let (status, _, body) = send(
        app.clone(),
        axum::http::Request::post("/v1/keys")
            .header("x-api-key", &admin_key)
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(
                r#"{"name":"ci","scopes":["keys:manage"]}"#,
            ))
            .expect("request"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let trail = state.audit.as_ref().expect("trail");
    trail.buffer.flush().await.expect("flushed");
    let ReadBack::Postgres(pool) = &trail.source else {
        panic!("reads back from PostgreSQL");
    };
    // The table verifies (records and checkpoints).
    let report = docaiche_compliance::audit::PgAuditTrail::existing(pool.clone())
        .verify(&Verifier::new())
        .await
        .expect("verify");
    assert!(report.is_ok(), "{:?}", report.tamper);
    let (status, _, body) = send(
        app.clone(),
        request(
            "GET",
            "/v1/admin/audit?tenant=acme&action=api_key.create",
            &admin_key,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let page: AuditPage = serde_json::from_slice(&body).expect("schema");
    // The test's own key and the one created over HTTP.
    assert_eq!(page.items.len(), 2, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = send(
        app,
        request("GET", "/v1/admin/audit?tenant=acme&limit=1", &admin_key),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let page: AuditPage = serde_json::from_slice(&body).expect("schema");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.next, Some(page.items[0].sequence));
    crate::report::mark_ran(SUITE, &format!("audit schema {}", schema.name));
}
