//! The stack in front of an axum router, with the `ValidJson` and `Path`
//! extractors.

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use docaiche_core::error::FieldError;
use docaiche_http::json::{JsonBodyLimit, ValidJson, Validate};
use docaiche_http::rejection::Path;
use docaiche_http::{SecurityPolicy, secure_stack};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde::Deserialize;
use tower::ServiceExt as _;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
}

impl Validate for NewKey {
    fn validate(&self) -> Vec<FieldError> {
        self.scopes
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.contains(':'))
            .map(|(i, _)| FieldError::new(format!("/scopes/{i}"), "not resource:action"))
            .collect()
    }
}

fn app() -> Router {
    Router::new()
        .route(
            "/v1/keys",
            post(|ValidJson(key): ValidJson<NewKey>| async move { key.name }),
        )
        .route(
            "/v1/keys/{id}",
            get(|Path(id): Path<u32>| async move { id.to_string() }),
        )
        .route(
            "/v1/documents/{id}",
            get(|Path(id): Path<uuid::Uuid>| async move { id.to_string() }),
        )
        .layer(secure_stack(&SecurityPolicy::new().with_body_limit(1024)))
        .with_state(JsonBodyLimit::new(256))
}

async fn send(request: Request<Body>) -> (http::response::Parts, serde_json::Value) {
    let response = app().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (parts, json)
}

fn post_json(body: String) -> Request<Body> {
    Request::post("/v1/keys")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("request")
}

#[tokio::test]
async fn valid_json_answers_typed_field_errors_as_problems() {
    let (parts, problem) = send(post_json(r#"{"name":"ci","scopes":["a:b","nope"]}"#.into())).await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        parts.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(problem["errors"][0]["pointer"], "/scopes/1", "{problem}");
    assert_eq!(parts.headers["x-content-type-options"], "nosniff");

    let (parts, problem) = send(post_json(r#"{"name":"ci","tenant":"globex"}"#.into())).await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        problem["errors"][0]["pointer"], "/tenant",
        "unknown fields are refused"
    );

    let deep = format!(
        r#"{{"name":"x","scopes":{}{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let (parts, _) = send(post_json(deep)).await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);

    let (parts, problem) = send(post_json(format!(r#"{{"name":"{}"}}"#, "x".repeat(300)))).await;
    assert_eq!(
        parts.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "over the JSON limit"
    );
    assert_eq!(problem["code"], "payload-too-large");

    let text = Request::post("/v1/keys")
        .body(Body::from("name=x"))
        .expect("request");
    let (parts, _) = send(text).await;
    assert_eq!(parts.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn router_rejections_and_bad_paths_become_problems_with_a_request_id() {
    let (parts, problem) = send(
        Request::get("/v1/keys/%ff")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
    assert!(
        problem["detail"].as_str().expect("detail").contains("`id`"),
        "{problem}"
    );

    let (parts, problem) = send(
        Request::get("/nowhere")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(parts.status, StatusCode::NOT_FOUND);
    assert_eq!(problem["code"], "not-found");
    assert_eq!(parts.headers["x-request-id"].len(), 36);

    let (parts, problem) = send(
        Request::delete("/v1/keys")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(parts.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(problem["code"], "method-not-allowed");
    assert_eq!(parts.headers[header::ALLOW], "POST");

    let (parts, body) = send(
        Request::get("/v1/keys/7")
            .header("x-request-id", "trace-me-7")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, serde_json::json!(7));
    assert_eq!(parts.headers["x-request-id"], "trace-me-7");
}

#[tokio::test]
async fn a_segment_its_type_refuses_is_a_400_problem_not_a_500() {
    // uuid's `Deserialize` refuses with a message of its own, which axum
    // hands over as a custom error: still the client's input.
    let (parts, problem) = send(
        Request::get("/v1/documents/not-a-uuid%0d%0aX-Injected:1")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "invalid-input");
    assert!(
        !problem.to_string().contains("Injected"),
        "the input is not echoed: {problem}"
    );

    let id = uuid::Uuid::new_v4();
    let (parts, _) = send(
        Request::get(format!("/v1/documents/{id}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(parts.status, StatusCode::OK, "a valid id passes");
}
