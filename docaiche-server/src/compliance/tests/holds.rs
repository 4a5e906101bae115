//! Legal holds: the routes and their audit, persistence across restarts
//! (SQLite and PostgreSQL), and fail-closed refusal.

use super::*;
use crate::state::AppState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legal_hold_routes_round_trip_and_are_audited() {
    let dir = TestDir::new("legal-holds");
    let config = config(&dir);
    let state = state_with_trail(&config).await;
    let acme = unique("acme");
    let admin = key_with(&state, "ops", &["tenants:cross", "admin:access"]).await;
    let app = crate::routes::router(state.clone());
    let body = format!(
        r#"{{"tenant":"{acme}","subject":"bob","kind":"documents","reason":"case 2026-17"}}"#
    );
    let (status, headers, body) = send(
        app.clone(),
        request("POST", "/v1/admin/legal-holds", Some(&admin), Some(&body)),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let hold = json(&body);
    let id = hold["id"].as_str().expect("id").to_owned();
    assert_eq!(hold["subject"], "bob");
    assert_eq!(hold["resource_kind"], "documents");
    assert!(
        state
            .compliance
            .holds
            .is_held(
                &tenant(&acme),
                "documents",
                Some(&PrincipalId::new("bob").expect("id"))
            )
            .await
            .expect("held")
    );

    let list = format!("/v1/admin/legal-holds?tenant={acme}");
    let (status, _, body) = send(app.clone(), request("GET", &list, Some(&admin), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["items"][0]["id"], id.as_str());

    // Bad bodies and queries are 400; an unknown hold is 404.
    for bad in [
        r#"{"tenant":"no spaces","reason":"x"}"#,
        r#"{"tenant":"acme","reason":"  "}"#,
        r#"{"tenant":"acme","kind":"exports","reason":"x"}"#,
    ] {
        let (status, _, _) = send(
            app.clone(),
            request("POST", "/v1/admin/legal-holds", Some(&admin), Some(bad)),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, _, _) = send(
        app.clone(),
        request("GET", "/v1/admin/legal-holds", Some(&admin), None),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(
        app.clone(),
        request(
            "DELETE",
            &format!("/v1/admin/legal-holds/{id}?tenant=globex"),
            Some(&admin),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's hold");

    let release = format!("/v1/admin/legal-holds/{id}?tenant={acme}");
    let (status, _, _) = send(app.clone(), request("DELETE", &release, Some(&admin), None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = send(app.clone(), request("DELETE", &release, Some(&admin), None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already released");
    let (_, _, body) = send(app.clone(), request("GET", &list, Some(&admin), None)).await;
    assert!(json(&body)["items"][0]["released_at"].is_string());

    let text = trail_text(&state, &config).await;
    for action in [
        "legal_hold.place.attempt",
        "legal_hold.place",
        "legal_hold.release.attempt",
        "legal_hold.release",
    ] {
        assert!(text.contains(&format!("\"{action}\"")), "{action} missing");
    }
    assert!(
        !text.contains("case 2026-17"),
        "the reason stays off the trail"
    );

    // A tenant administrator without the cross-tenant permission: 403;
    // no credential: 401.
    let tenant_admin = key_with(&state, &acme, &["admin:access", "audit:read"]).await;
    let (status, _, _) = send(
        app.clone(),
        request("GET", &list, Some(&tenant_admin), None),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(app, request("GET", &list, None, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Place a hold over HTTP on the state of `config`, then open a second
/// state on the same configuration: the hold is still there.
async fn holds_survive_a_restart(config: &Config, env: crate::config::EnvLookup<'_>) {
    let acme = unique("acme");
    let state = AppState::from_config(config, env).await.expect("state");
    let admin = key_with(
        &state,
        "ops",
        &[
            "tenants:cross",
            "admin:access",
            "audit:read",
            "privacy:export",
        ],
    )
    .await;
    // The report lists the privacy service's requests (none yet).
    let (status, _, body) = send(
        crate::routes::router(state.clone()),
        request(
            "GET",
            &format!("/v1/admin/compliance/report?tenant={acme}"),
            Some(&admin),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let report = json(&body);
    assert_eq!(report["privacy"]["open"], serde_json::json!([]));
    assert!(
        !report["notes"].to_string().contains("privacy requests"),
        "{report}"
    );
    assert_eq!(report["audit"]["chain"]["status"], "verified", "{report}");
    let body = format!(r#"{{"tenant":"{acme}","kind":"documents","reason":"case 9"}}"#);
    let (status, _, body) = send(
        crate::routes::router(state.clone()),
        request("POST", "/v1/admin/legal-holds", Some(&admin), Some(&body)),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let id = json(&body)["id"].as_str().expect("id").to_owned();
    drop(state);
    let again = AppState::from_config(config, env).await.expect("state");
    let holds = again
        .compliance
        .holds
        .all(&tenant(&acme))
        .await
        .expect("holds");
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].id.to_string(), id);
    // The privacy service and the purge share the same registry.
    assert!(
        again
            .compliance
            .holds
            .is_held(&tenant(&acme), "documents", None)
            .await
            .expect("held")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legal_holds_are_kept_in_the_sqlite_store() {
    let dir = TestDir::new("holds-sqlite");
    let config = config(&dir);
    crate::storage::prepare_data_dir(dir.path()).expect("data dir");
    holds_survive_a_restart(&config, &|_| None).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legal_holds_are_kept_in_the_postgres_store() {
    use crate::wiring::tests::on_test_schema;
    const SUITE: &str = "server-postgres";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let dir = TestDir::new("holds-postgres");
    let mut config = config(&dir);
    let (schema, env) = on_test_schema(&url, "holds_test", &mut config).await;
    config.validate().expect("valid");
    crate::storage::prepare_data_dir(dir.path()).expect("data dir");
    crate::keys::prepare(&config.key_source()).expect("keys");
    holds_survive_a_restart(&config, &env).await;
    let (rows,): (i64,) = docaiche_store::postgres::sqlx::query_as(&format!(
        "SELECT count(*) FROM {}.compliance_legal_holds",
        schema.name
    ))
    .fetch_one(&schema.admin)
    .await
    .expect("the holds table is in the store's schema");
    assert_eq!(rows, 1);
    crate::report::mark_ran(SUITE, &format!("legal holds schema {}", schema.name));
}

#[tokio::test]
async fn fail_closed_refuses_a_hold_the_trail_cannot_record() {
    use docaiche_compliance::audit::{Auditor, BufferConfig, BufferedSink};
    let dir = TestDir::new("holds-closed");
    let config = config(&dir);
    let mut state = local_state(&config);
    let buffer = BufferedSink::new(
        Arc::new(crate::test_support::Unwritable),
        BufferConfig::default(),
    );
    state.audit = Some(crate::audit::AuditTrail {
        auditor: Auditor::new(buffer.clone(), true),
        buffer,
        source: ReadBack::None,
        anchor_key: None,
        inbox: None,
    });
    let acme = unique("acme");
    let admin = key_with(&state, "ops", &["tenants:cross", "admin:access"]).await;
    let body = format!(r#"{{"tenant":"{acme}","reason":"case 3"}}"#);
    let (status, _, _) = send(
        crate::routes::router(state.clone()),
        request("POST", "/v1/admin/legal-holds", Some(&admin), Some(&body)),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let holds = state
        .compliance
        .holds
        .all(&tenant(&acme))
        .await
        .expect("holds");
    assert!(holds.is_empty(), "nothing was placed");
}
