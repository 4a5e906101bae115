//! The console on two instances sharing one database: a session signed in
//! through one is accepted by the other, and signing out through either
//! ends it on both (the sessions live in the `[store]` database).

use axum::http::{StatusCode, header};

use crate::config::{Config, EnvLookup};
use crate::console::tests::{PASSWORD, browser, csrf_of, page, sign_in};
use crate::routes::accounts::tests::admin_of;
use crate::routes::router;
use crate::routes::tests::send;
use crate::state::AppState;
use crate::test_support::TestDir;

/// Two instances of `config` (each with its own audit trail: a file trail
/// has one writer) and the session checks.
async fn one_session_on_two_instances(dir: &TestDir, config: &Config, env: EnvLookup<'_>) {
    crate::storage::prepare_data_dir(dir.path()).expect("data dir");
    crate::keys::prepare(&config.key_source()).expect("keys");
    let a = AppState::from_config(config, env)
        .await
        .expect("instance a");
    let mut second = config.clone();
    second.audit.path = Some(dir.path().join("b").join("audit.jsonl"));
    let b = AppState::from_config(&second, env)
        .await
        .expect("instance b");
    let (app_a, app_b) = (router(a.clone()), router(b.clone()));
    admin_of(&a, &app_a, "acme").await;

    // Signed in through a, accepted by b.
    let cookie = sign_in(&app_a, "acme", "admin@acme.example", PASSWORD).await;
    let overview = page(&app_b, "/console", &cookie).await;
    assert!(overview.contains("acme"), "{overview}");

    // Signed out through b (its CSRF token is the session's, whichever
    // instance renders it), ended on a.
    let (status, _, _) = send(
        app_b.clone(),
        browser(
            "POST",
            "/console/sign-out",
            Some(&cookie),
            Some(&format!("csrf={}", csrf_of(&overview))),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    for app in [&app_a, &app_b] {
        let (status, headers, _) =
            send(app.clone(), browser("GET", "/console", Some(&cookie), None)).await;
        assert_eq!(
            status,
            StatusCode::SEE_OTHER,
            "the session ended everywhere"
        );
        assert_eq!(headers[header::LOCATION], "/console/sign-in");
    }

    // And the other way round: in through b, out through a.
    let cookie = sign_in(&app_b, "acme", "admin@acme.example", PASSWORD).await;
    let overview = page(&app_a, "/console", &cookie).await;
    let (status, _, _) = send(
        app_a.clone(),
        browser(
            "POST",
            "/console/sign-out",
            Some(&cookie),
            Some(&format!("csrf={}", csrf_of(&overview))),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(app_b, browser("GET", "/console", Some(&cookie), None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_session_is_shared_by_two_instances_on_sqlite() {
    let dir = TestDir::new("console-two-instances-sqlite");
    let config = crate::routes::accounts::tests::config(&dir);
    one_session_on_two_instances(&dir, &config, &|_| None).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_session_is_shared_by_two_instances_on_postgres() {
    const SUITE: &str = "server-postgres";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let dir = TestDir::new("console-two-instances-postgres");
    let mut config = crate::routes::accounts::tests::config(&dir);
    let (schema, env) =
        crate::wiring::tests::on_test_schema(&url, "console_sessions_test", &mut config).await;
    config.validate().expect("valid");
    one_session_on_two_instances(&dir, &config, &env).await;
    // The sessions were rows of the test schema, and both are gone.
    let rows: i64 = docaiche_store::postgres::sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {}.web_sessions",
        schema.name
    ))
    .fetch_one(&schema.admin)
    .await
    .expect("count");
    assert_eq!(rows, 0);
    crate::report::mark_ran(SUITE, "a console session shared by two instances");
}
