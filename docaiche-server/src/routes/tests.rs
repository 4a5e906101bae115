//! Tests of the router: fallbacks, panics, limits, timeouts, request ids,
//! CORS and the rate limit of every route, and the helpers other modules
//! test through the router with.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use docaiche_core::problem::PROBLEM_JSON;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::*;
use crate::config::Config;
use crate::edge::REQUEST_ID;
use crate::state::HttpSettings;
use crate::state::tests::local_state;
use crate::test_support::TestDir;

/// Routes that exist only in tests, in the `default` class.
pub(super) fn routes(group: RouteGroup) -> RouteGroup {
    group
        .route(test_only(Method::GET, "/test/panic"), &[], panics)
        .route(
            test_only(Method::GET, "/test/sleep/{ms}"),
            &[],
            |Path(ms): Path<u64>| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                "slept"
            },
        )
        .route(
            test_only(Method::POST, "/test/echo"),
            &[],
            |body: Bytes| async move { body },
        )
}

/// A test-only route (`/test/*`: the OpenAPI document leaves them out).
const fn test_only(method: Method, path: &'static str) -> Endpoint {
    Endpoint::new(
        method,
        path,
        crate::openapi::RouteDoc::ok("test only", "test only", crate::openapi::Payload::Empty),
    )
}

/// A handler that panics with a message that must not reach the client.
async fn panics() -> &'static str {
    panic!("secret-bearing panic message: password=hunter2")
}

pub(crate) fn settings() -> HttpSettings {
    HttpSettings {
        request_timeout: Duration::from_secs(5),
        body_limit: 1024,
        json_body_limit: 1024,
        allowed_origins: vec!["https://app.example".into()],
    }
}

pub(crate) fn app_for(dir: &std::path::Path, http: HttpSettings) -> Router {
    let mut config = Config::default();
    config.storage.data_dir = dir.to_path_buf();
    let mut state = local_state(&config);
    state.http = http;
    router(state)
}

pub(crate) async fn send(
    app: Router,
    request: Request<Body>,
) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let response = app.oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

pub(crate) fn get_request(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

pub(crate) fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("json body")
}

pub(crate) fn assert_problem(
    headers: &http::HeaderMap,
    body: &[u8],
    code: &str,
) -> serde_json::Value {
    assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
    let problem = json(body);
    assert_eq!(
        problem["type"],
        format!("{}{code}", docaiche_core::problem::PROBLEM_TYPE_BASE),
        "{problem}"
    );
    assert_eq!(problem["code"], code);
    problem
}

#[tokio::test]
async fn an_unknown_route_is_a_401_anonymously_and_a_404_problem_when_authenticated() {
    let dir = TestDir::new("app-404");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let state = local_state(&config);
    let key = state
        .auth
        .bootstrap_key("acme", "admin", "test")
        .await
        .expect("key");
    let app = router(state);
    let (status, headers, body) = send(app.clone(), get_request("/nope")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_problem(&headers, &body, "unauthenticated");
    let request = Request::get("/nope")
        .header("x-api-key", key.key.expose_secret())
        .body(Body::empty())
        .expect("request");
    let (status, headers, body) = send(app, request).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let problem = assert_problem(&headers, &body, "not-found");
    assert_eq!(problem["status"], 404);
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let dir = TestDir::new("app-405");
    let request = Request::delete("/health/live")
        .body(Body::empty())
        .expect("request");
    let (status, headers, body) = send(app_for(dir.path(), settings()), request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let problem = assert_problem(&headers, &body, "method-not-allowed");
    assert_eq!(problem["status"], 405);
    let allow = headers[header::ALLOW].to_str().expect("ascii");
    assert!(allow.contains("GET"), "{allow}");
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_problem_without_the_message() {
    let dir = TestDir::new("app-panic");
    let (status, headers, body) =
        send(app_for(dir.path(), settings()), get_request("/test/panic")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let problem = assert_problem(&headers, &body, "internal");
    assert!(problem["correlation_id"].is_string());
    let text = String::from_utf8(body).expect("utf-8");
    for leaked in ["hunter2", "password", "panic"] {
        assert!(!text.contains(leaked), "{leaked} leaked: {text}");
    }
    assert!(
        headers.contains_key(REQUEST_ID),
        "the request id survives a panic"
    );
}

#[tokio::test]
async fn an_oversize_body_is_a_413_problem() {
    let dir = TestDir::new("app-413");
    // Declared length over the limit: refused before the handler runs.
    let declared = Request::post("/test/echo")
        .header(header::CONTENT_LENGTH, 2048)
        .body(Body::from(vec![b'x'; 2048]))
        .expect("request");
    // No declared length: refused while the handler reads the body.
    let streamed = Request::post("/test/echo")
        .body(Body::from(vec![b'x'; 2048]))
        .expect("request");
    for request in [declared, streamed] {
        let (status, headers, body) = send(app_for(dir.path(), settings()), request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let problem = assert_problem(&headers, &body, "payload-too-large");
        assert_eq!(problem["detail"], "payload too large: limit is 1024 bytes");
    }
    // Within the limit it passes.
    let small = Request::post("/test/echo")
        .body(Body::from("hello"))
        .expect("request");
    let (status, _, body) = send(app_for(dir.path(), settings()), small).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"hello");
}

#[tokio::test]
async fn a_request_over_the_timeout_is_a_timeout_problem() {
    let dir = TestDir::new("app-timeout");
    let http = HttpSettings {
        request_timeout: Duration::from_millis(50),
        ..settings()
    };
    let (status, headers, body) =
        send(app_for(dir.path(), http), get_request("/test/sleep/5000")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    let problem = assert_problem(&headers, &body, "timeout");
    assert!(problem["correlation_id"].is_string());
}

#[tokio::test]
async fn the_request_id_is_echoed_or_generated() {
    let dir = TestDir::new("app-request-id");
    let request = Request::get("/health/live")
        .header(REQUEST_ID, "client-chosen-id-42")
        .body(Body::empty())
        .expect("request");
    let (_, headers, _) = send(app_for(dir.path(), settings()), request).await;
    assert_eq!(headers[REQUEST_ID], "client-chosen-id-42");

    let (_, headers, _) = send(app_for(dir.path(), settings()), get_request("/nope")).await;
    let generated = headers[REQUEST_ID].to_str().expect("ascii");
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let dir = TestDir::new("app-cors");
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/health/live")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .body(Body::empty())
            .expect("request")
    };
    let (_, headers, _) = send(
        app_for(dir.path(), settings()),
        preflight("https://app.example"),
    )
    .await;
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    let (_, headers, _) = send(
        app_for(dir.path(), settings()),
        preflight("https://evil.example"),
    )
    .await;
    assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
}

/// A concrete path for a route pattern (`{param}` → `1`).
pub(crate) fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_answers_with_ratelimit_headers() {
    let dir = TestDir::new("app-every-route-limited");
    let mut walked = 0;
    for group in route_groups() {
        // Test-only routes include a panicking handler, answered by the
        // outer panic layer; every production route is walked.
        for route in group
            .routes
            .iter()
            .filter(|r| !r.path.starts_with("/test/"))
        {
            let path = route.path;
            let request = Request::builder()
                .method(route.method.clone())
                .uri(concrete(path))
                .body(Body::empty())
                .expect("request");
            let (status, headers, _) = send(app_for(dir.path(), settings()), request).await;
            let policy = headers
                .get("ratelimit-policy")
                .unwrap_or_else(|| panic!("{path} ({status}) has no RateLimit-Policy"));
            let name = policy.to_str().expect("ascii");
            assert!(
                name.starts_with(&format!("\"{}-", group.class)),
                "{path}: {name}"
            );
            assert!(headers.contains_key("ratelimit"), "{path} has no RateLimit");
            walked += 1;
        }
    }
    assert!(walked >= 2, "the health routes at least");
    // Unknown routes and wrong methods are limited as well.
    for request in [
        get_request("/nope"),
        Request::delete("/health/live")
            .body(Body::empty())
            .expect("request"),
    ] {
        let (status, headers, _) = send(app_for(dir.path(), settings()), request).await;
        assert!(status.is_client_error());
        assert!(headers.contains_key("ratelimit-policy"), "{status}");
        assert!(headers.contains_key("ratelimit"), "{status}");
    }
}

#[test]
fn route_groups_use_only_the_checked_classes() {
    for group in route_groups() {
        assert!(
            crate::config::RateLimitSection::CLASSES.contains(&group.class),
            "{} is not checked at start-up",
            group.class
        );
    }
}

#[tokio::test]
async fn health_probes_are_rate_limited_per_client_address() {
    let dir = TestDir::new("app-probes-limited");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.rate_limit.limits.policies.insert(
        "probes".into(),
        serde_json::from_value(serde_json::json!({
            "limits": [{ "key": "client_addr", "limit": 2, "period_secs": 60 }]
        }))
        .expect("policy"),
    );
    let app = router(local_state(&config));
    let probe = |peer: &str| {
        let mut request = get_request("/health/live");
        let peer: std::net::SocketAddr = peer.parse().expect("addr");
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        request
    };
    for _ in 0..2 {
        let (status, _, _) = send(app.clone(), probe("192.0.2.10:5000")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, body) = send(app.clone(), probe("192.0.2.10:5001")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_problem(&headers, &body, "quota-exceeded");
    assert_eq!(headers[header::RETRY_AFTER], "30");
    assert_eq!(headers["ratelimit"], "\"probes-client-addr\";r=0;t=30");
    // Another client is not affected.
    let (status, headers, _) = send(app, probe("192.0.2.11:5000")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["ratelimit-policy"],
        "\"probes-client-addr\";q=2;w=60"
    );
}

/// A router on the Redis backend, the URL given by `url` (as the value
/// of the `env:` reference), falling back in process.
#[cfg(feature = "redis")]
async fn redis_app(dir: &std::path::Path, url: String) -> Router {
    let mut config = Config::default();
    config.storage.data_dir = dir.to_path_buf();
    config.rate_limit.backend = crate::config::RateLimitBackend::Redis;
    config.rate_limit.redis_url = Some("env:DOCAICHE_TEST_REDIS_URL".into());
    let env = move |name: &str| (name == "DOCAICHE_TEST_REDIS_URL").then(|| url.clone());
    config.validate().expect("valid");
    router(
        AppState::from_config(&config, &env)
            .await
            .expect("redis state"),
    )
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn the_redis_backend_limits_and_reports_redis_in_readiness() {
    let Ok(url) = std::env::var("DOCAICHE_TEST_REDIS_URL") else {
        eprintln!("skipping: DOCAICHE_TEST_REDIS_URL is not set");
        return;
    };
    let dir = TestDir::new("app-redis");
    let app = redis_app(dir.path(), url).await;
    let (status, headers, _) = send(app.clone(), get_request("/health/live")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("ratelimit-policy"));
    assert!(headers.contains_key("ratelimit"));

    let (status, _, body) = send(app, get_request("/health/ready")).await;
    assert_eq!(status, StatusCode::OK);
    let report = json(&body);
    assert_eq!(report["status"], "pass", "{report}");
    assert!(
        report.to_string().contains("redis_rate_limit"),
        "the Redis check is registered: {report}"
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_refused_redis_falls_back_quickly_and_degrades_readiness() {
    let dir = TestDir::new("app-redis-down");
    let started = std::time::Instant::now();
    let app = redis_app(dir.path(), "redis://127.0.0.1:1".into()).await;
    for _ in 0..3 {
        let (status, headers, _) = send(app.clone(), get_request("/health/live")).await;
        assert_eq!(status, StatusCode::OK, "fallback decides");
        assert!(headers.contains_key("ratelimit-policy"));
        assert!(headers.contains_key("ratelimit"));
    }
    let (status, _, body) = send(app, get_request("/health/ready")).await;
    assert_eq!(status, StatusCode::OK, "an optional check degrades");
    let report = json(&body);
    assert_eq!(report["status"], "warn", "{report}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
