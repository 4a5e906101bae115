//! Tests of the metrics: the production check, the scrape token, the RED
//! families, the live sources and the separate listener.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use docaiche_core::resilience::CircuitBreaker;

use super::*;
use crate::config::Config;

#[test]
fn production_refuses_public_metrics_without_a_token_or_a_listener_of_their_own() {
    let refused = |edit: &dyn Fn(&mut Config)| {
        let mut config = Config::default();
        config.environment = crate::config::Environment::Production;
        edit(&mut config);
        let mut named = Vec::new();
        findings(&config, &mut |severity, setting, _| {
            named.push((setting.to_owned(), severity));
        });
        named
    };
    use crate::config::Severity;
    assert_eq!(
        refused(&|_| {}),
        [("metrics.bind".to_owned(), Severity::DevelopmentDefault)]
    );
    assert!(refused(&|c| c.metrics.bind = Some("10.0.0.5:9100".parse().expect("addr"))).is_empty());
    assert!(refused(&|c| c.metrics.token_source = Some("env:SCRAPE".into())).is_empty());
    assert!(refused(&|c| c.metrics.enabled = false).is_empty());
    assert_eq!(
        refused(&|c| c.metrics.bind = Some(c.server.bind)),
        [("metrics.bind".to_owned(), Severity::Invalid)]
    );
}
use crate::routes::router;
use crate::routes::tests::{get_request, send};
use crate::state::tests::local_state;
use crate::test_support::TestDir;

/// The value of the sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn a_scrape_reports_red_metrics_per_route_pattern_and_limiter_figures() {
    let dir = TestDir::new("metrics-scrape");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let state = local_state(&config);
    let key = state
        .auth
        .bootstrap_key("acme", "admin", "metrics")
        .await
        .expect("key");
    let app = router(state);
    for _ in 0..3 {
        let (status, _, _) = send(app.clone(), get_request("/health/live")).await;
        assert_eq!(status, StatusCode::OK);
    }
    // A route with a parameter is counted under its pattern.
    let request = Request::delete("/v1/keys/no-such-key")
        .header("x-api-key", key.key.expose_secret())
        .body(Body::empty())
        .expect("request");
    let (status, _, _) = send(app.clone(), request).await;
    assert!(status.is_client_error(), "{status}");
    let (status, _, _) = send(app.clone(), get_request("/test/panic")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, _, _) = send(app.clone(), get_request("/no/such/route/42")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, headers, body) = send(app, get_request("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], OPENMETRICS);
    let text = String::from_utf8(body).expect("utf-8");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"docaiche_http_requests_total{method="GET",route="/health/live",status="200"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/v1/keys/{id}",status="#),
        "the pattern, not the URI: {text}"
    );
    assert!(!text.contains("no-such-key"), "no raw path: {text}");
    assert!(!text.contains("/no/such/route"), "no raw path: {text}");
    assert_eq!(
        sample(
            &text,
            r#"docaiche_http_requests_total{method="GET",route="unmatched",status="401"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"docaiche_http_request_errors_total{method="GET",route="/test/panic"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"docaiche_http_request_duration_seconds_count{method="GET",route="/health/live"}"#
        ),
        Some(3.0),
        "{text}"
    );
    // The SLO threshold (default 250 ms) is a bucket boundary.
    assert!(
        text.lines().any(
            |l| l.starts_with("docaiche_http_request_duration_seconds_bucket{")
                && l.contains(r#"le="0.25""#)
                && l.contains(r#"route="/health/live""#)
                && l.ends_with(" 3")
        ),
        "{text}"
    );
    // The limiter's counters by policy.
    let allowed = sample(
        &text,
        r#"docaiche_ratelimit_decisions_total{policy="probes",outcome="allowed"}"#,
    )
    .unwrap_or_else(|| panic!("probes policy counted: {text}"));
    assert!(allowed >= 3.0, "{text}");
    // The event hub's figures.
    assert!(text.contains("docaiche_events_connections"), "{text}");
    assert!(text.contains("docaiche_http_requests_in_flight"), "{text}");
}

#[tokio::test]
async fn a_pool_a_breaker_and_a_gauge_are_read_at_scrape_time() {
    let config = Config::default();
    let metrics = Metrics::from_config(&config).expect("metrics");
    let dir = TestDir::new("metrics-pool");
    let store = docaiche_store::sqlite::SqliteStore::connect(
        &docaiche_store::sqlite::SqliteConfig::file(dir.path().join("m.db").to_string_lossy()),
    )
    .await
    .expect("sqlite");
    for probe in pools(store) {
        metrics.register_pool(probe);
    }
    let breaker = CircuitBreaker::builder("redis").build().expect("breaker");
    metrics.register_breaker(breaker);
    metrics.register_gauge("audit_queue_depth", "Audit events waiting", Arc::new(|| 7));
    let text = metrics.render().expect("render");
    assert!(
        text.contains(r#"docaiche_db_pool_max_connections{pool="sqlite"}"#),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"docaiche_circuit_breaker_state{breaker="redis",state="closed"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "docaiche_audit_queue_depth "),
        Some(7.0),
        "{text}"
    );
}

#[tokio::test]
async fn a_configured_token_guards_the_scrape_and_disabled_metrics_are_404() {
    // SAFETY of the test: a variable only this test reads.
    let dir = TestDir::new("metrics-token");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-scrape-token\n").expect("write");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.metrics.token_source = Some(format!("file:{}", token_file.display()));
    let app = router(local_state(&config));
    let (status, _, _) = send(app.clone(), get_request("/metrics")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let wrong = Request::get("/metrics")
        .header(header::AUTHORIZATION, "Bearer s3cret-scrape-tokeN")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(app.clone(), wrong).await.0, StatusCode::UNAUTHORIZED);
    let right = Request::get("/metrics")
        .header(header::AUTHORIZATION, "Bearer s3cret-scrape-token")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(app, right).await.0, StatusCode::OK);

    config.metrics.enabled = false;
    let app = router(local_state(&config));
    assert_eq!(
        send(app, get_request("/metrics")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn the_token_never_prints() {
    let token = ScrapeToken(b"hunter2".to_vec());
    assert!(!format!("{token:?}").contains("hunter2"));
    assert!(token.matches(b"hunter2"));
    assert!(!token.matches(b"hunter"));
    assert!(!token.matches(b"hunter22"));
}
