//! `GET /health/live` and `GET /health/ready`, answered as
//! `application/health+json`; the checks are assembled in [`crate::health`].

use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_core::health::HEALTH_JSON;

use crate::openapi::{Health, Payload, RouteDoc, schema_ref};
use crate::routes::Endpoint;
use crate::state::AppState;

/// `GET /health/live`: the route of [`live`] and its documentation.
pub(crate) const LIVE: Endpoint = Endpoint::new(
    Method::GET,
    "/health/live",
    RouteDoc::ok(
        "Liveness: the process is up",
        "the process is up",
        Payload::Media(HEALTH_JSON, Some(schema_ref::<Health>)),
    ),
);

/// `GET /health/live`: the process is up.
pub(crate) async fn live() -> Response {
    health_response(StatusCode::OK, &serde_json::json!({ "status": "pass" }))
}

/// `GET /health/ready`: the route of [`ready`] and its documentation.
pub(crate) const READY: Endpoint = Endpoint::new(
    Method::GET,
    "/health/ready",
    RouteDoc {
        errors: &[(
            503,
            "a required check fails (the health report is the body, `application/health+json`)",
        )],
        ..RouteDoc::ok(
            "Readiness: every registered check",
            "every required check passes (optional ones may `warn`)",
            Payload::Media(HEALTH_JSON, Some(schema_ref::<Health>)),
        )
    },
);

/// `GET /health/ready`: every registered check; 503 when the service is down.
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    let report = state.health.check_all().await;
    let status = if report.status.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    health_response(status, &report.to_health_json())
}

/// An uncacheable `application/health+json` response.
fn health_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, HEALTH_JSON),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};
    use docaiche_core::health::HEALTH_JSON;

    use crate::routes::tests::{app_for, get_request, json, send, settings};
    use crate::test_support::TestDir;

    #[tokio::test]
    async fn live_passes_as_health_json() {
        let dir = TestDir::new("app-live");
        let (status, headers, body) =
            send(app_for(dir.path(), settings()), get_request("/health/live")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], HEALTH_JSON);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(json(&body), serde_json::json!({ "status": "pass" }));
    }

    #[tokio::test]
    async fn ready_reports_the_data_dir_check() {
        let dir = TestDir::new("app-ready");
        let (status, headers, body) = send(
            app_for(dir.path(), settings()),
            get_request("/health/ready"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], HEALTH_JSON);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let report = json(&body);
        assert_eq!(report["status"], "pass");
        let check = &report["checks"]["data_dir:responseTime"][0];
        assert_eq!(check["status"], "pass");
        assert_eq!(check["observedUnit"], "ms");
        assert!(check["time"].is_string());
    }

    #[tokio::test]
    async fn ready_is_503_when_the_data_dir_is_missing() {
        let dir = TestDir::new("app-not-ready");
        let app = app_for(&dir.path().join("missing"), settings());
        let (status, headers, body) = send(app, get_request("/health/ready")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::CONTENT_TYPE], HEALTH_JSON);
        let report = json(&body);
        assert_eq!(report["status"], "fail");
        let check = &report["checks"]["data_dir:responseTime"][0];
        assert_eq!(check["status"], "fail");
        assert_eq!(check["output"], "data directory is missing");
        assert!(
            !body.windows(7).any(|w| w == b"missing/"),
            "no path in the public body"
        );
    }

    #[tokio::test]
    async fn ready_is_503_when_the_data_dir_is_not_a_directory() {
        let dir = TestDir::new("app-not-dir");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        let (status, _, body) =
            send(app_for(&file, settings()), get_request("/health/ready")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(json(&body)["status"], "fail");
    }
}
