//! The whole stack over a plain tower service (no axum): each claim is an
//! answer a client sees.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use docaiche_core::Error;
use docaiche_core::error::FieldError;
use docaiche_http::cors::CorsPolicy;
use docaiche_http::https::{HostHeaderFault, HttpsMode, HttpsPolicy};
use docaiche_http::json::{Validate, from_body, read_limited};
use docaiche_http::{SecureStack, SecurityPolicy, secure_stack};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use serde::Deserialize;
use tower::{Service, ServiceBuilder, ServiceExt as _};
use tower_http::body::Limited;

/// The body of `POST /echo`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Echo {
    name: String,
}

impl Validate for Echo {
    fn validate(&self) -> Vec<FieldError> {
        if self.name.is_empty() {
            vec![FieldError::new("/name", "must not be empty")]
        } else {
            Vec::new()
        }
    }
}

/// The application: `POST /echo` parses an [`Echo`]; `/panic` panics;
/// anything else answers 200 `ok`.
async fn app(request: Request<Limited<Full<Bytes>>>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() == "/panic" {
        panic!("the handler fell over");
    }
    if request.uri().path() != "/echo" {
        return Ok(Response::new(Full::new(Bytes::from_static(b"ok"))));
    }
    let (parts, body) = request.into_parts();
    let result = async {
        let bytes = read_limited(&parts.headers, body, 1024).await?;
        from_body::<Echo>(&parts.headers, &bytes)
    }
    .await;
    Ok(match result {
        Ok(echo) => Response::new(Full::new(Bytes::from(echo.name))),
        Err(error) => error.into_problem_response(),
    })
}

/// What the application's future is, named.
type AppFuture =
    std::pin::Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

/// The application as a nameable function.
type Handler = fn(Request<Limited<Full<Bytes>>>) -> AppFuture;

type App = SecureStack<tower::util::ServiceFn<Handler>>;

fn stack(policy: &SecurityPolicy) -> App {
    let handler: Handler = |request| Box::pin(app(request));
    ServiceBuilder::new()
        .layer(secure_stack(policy))
        .service(tower::service_fn(handler))
}

/// HTTPS behind a proxy at 10.0.0.0/8, redirecting to api.example.
fn behind_proxy() -> SecurityPolicy {
    SecurityPolicy::new()
        .with_https(
            HttpsPolicy::new(HttpsMode::Redirect)
                .with_trusted_proxies(["10.0.0.0/8".parse().expect("cidr")])
                .with_public_origin("https://api.example")
                .expect("origin")
                .with_exempt_path_prefix("/health/"),
        )
        .with_body_limit(4096)
}

fn from_peer(mut request: Request<Full<Bytes>>, peer: &str) -> Request<Full<Bytes>> {
    let peer: SocketAddr = peer.parse().expect("peer");
    request.extensions_mut().insert(peer);
    request
}

async fn send(
    policy: &SecurityPolicy,
    request: Request<Full<Bytes>>,
) -> (http::response::Parts, Bytes) {
    let response = stack(policy)
        .oneshot(request)
        .await
        .expect("the stack answers");
    let (parts, body) = response.into_parts();
    (parts, body.collect().await.expect("body").to_bytes())
}

fn problem_of(parts: &http::response::Parts, body: &[u8]) -> serde_json::Value {
    assert_eq!(
        parts.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    serde_json::from_slice(body).expect("a problem document")
}

fn assert_security_headers(parts: &http::response::Parts) {
    assert_eq!(parts.headers["x-content-type-options"], "nosniff");
    assert_eq!(parts.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(
        parts.headers[header::CONTENT_SECURITY_POLICY],
        docaiche_http::headers::DEFAULT_CSP
    );
    assert_eq!(parts.headers[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(parts.headers["x-request-id"].len(), 36, "{parts:?}");
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path).body(Full::default()).expect("request")
}

fn post_json(path: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request")
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_a_request_id() {
    let policy = SecurityPolicy::new();
    for request in [get("/"), get("/panic"), post_json("/echo", "{")] {
        let (parts, _) = send(&policy, request).await;
        assert_security_headers(&parts);
        assert!(
            !parts
                .headers
                .contains_key(header::STRICT_TRANSPORT_SECURITY),
            "no HSTS over plain HTTP"
        );
    }
}

#[tokio::test]
async fn a_plausible_request_id_is_echoed_and_a_hostile_one_replaced() {
    let policy = SecurityPolicy::new();
    let mut request = get("/");
    request
        .headers_mut()
        .insert("x-request-id", "client-42".parse().expect("value"));
    let (parts, _) = send(&policy, request).await;
    assert_eq!(parts.headers["x-request-id"], "client-42");

    let long = "a".repeat(200);
    for hostile in [
        long.as_bytes(),
        b"fake\"} {\"level\":\"ERROR".as_slice(),
        b"id\x80\xff".as_slice(),
    ] {
        let mut request = get("/");
        request.headers_mut().insert(
            "x-request-id",
            http::HeaderValue::from_bytes(hostile).expect("value"),
        );
        let (parts, _) = send(&policy, request).await;
        let id = parts.headers["x-request-id"].to_str().expect("ascii");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
    // A CR or LF never reaches a header value: `http` refuses it.
    assert!(http::HeaderValue::from_bytes(b"a\r\nx-evil: 1").is_err());
}

#[tokio::test]
async fn bad_json_is_a_400_problem_pointing_at_the_field() {
    let policy = SecurityPolicy::new();
    let (parts, body) = send(&policy, post_json("/echo", r#"{"name":"x","admin":true}"#)).await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
    let problem = problem_of(&parts, &body);
    assert_eq!(problem["errors"][0]["pointer"], "/admin", "{problem}");

    let (parts, body) = send(&policy, post_json("/echo", r#"{"name":""}"#)).await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
    assert_eq!(problem_of(&parts, &body)["errors"][0]["pointer"], "/name");

    let deep: &'static str =
        Box::leak(format!(r#"{{"name":{}{}}}"#, "[".repeat(500), "]".repeat(500)).into_boxed_str());
    let (parts, body) = send(&policy, post_json("/echo", deep)).await;
    assert_eq!(
        parts.status,
        StatusCode::BAD_REQUEST,
        "deep nesting is refused"
    );
    problem_of(&parts, &body);

    let (parts, body) = send(&policy, post_json("/echo", r#"{"name":"ok"}"#)).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(&body[..], b"ok");
}

#[tokio::test]
async fn an_oversized_body_is_a_413_problem_naming_the_limit() {
    let policy = SecurityPolicy::new().with_body_limit(64);
    let big: &'static str =
        Box::leak(format!(r#"{{"name":"{}"}}"#, "x".repeat(100)).into_boxed_str());
    // Declared: refused by the stack's body limit before the handler.
    let mut request = post_json("/echo", big);
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, big.len().into());
    let (parts, body) = send(&policy, request).await;
    assert_eq!(parts.status, StatusCode::PAYLOAD_TOO_LARGE);
    let refusal = problem_of(&parts, &body);
    assert_eq!(refusal["code"], "payload-too-large", "{refusal}");
    assert!(
        refusal["detail"].as_str().expect("detail").contains("64"),
        "{refusal}"
    );
    assert_security_headers(&parts);
    // Undeclared: refused as the handler reads past the limit.
    let (parts, body) = send(&policy, post_json("/echo", big)).await;
    assert_eq!(parts.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem_of(&parts, &body)["code"], "payload-too-large");
}

#[tokio::test]
async fn plain_http_from_an_untrusted_peer_is_redirected_or_refused_whatever_it_claims() {
    let policy = behind_proxy();
    // A client claiming HTTPS itself, with a Host of its choosing.
    let forged = |method: http::Method| {
        let request = Request::builder()
            .method(method)
            .uri("/v1/keys?limit=2")
            .header(header::HOST, "evil.example")
            .header("x-forwarded-proto", "https")
            .body(Full::default())
            .expect("request");
        from_peer(request, "192.0.2.7:40000")
    };
    let (parts, _) = send(&policy, forged(http::Method::GET)).await;
    assert_eq!(parts.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        parts.headers[header::LOCATION],
        "https://api.example/v1/keys?limit=2",
        "never to the request's Host"
    );
    assert_security_headers(&parts);

    let (parts, body) = send(&policy, forged(http::Method::POST)).await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
    assert_eq!(problem_of(&parts, &body)["code"], "invalid-input");

    // No peer address at all: not a trusted proxy either.
    let mut anonymous = forged(http::Method::POST);
    anonymous.extensions_mut().remove::<SocketAddr>();
    let (parts, _) = send(&policy, anonymous).await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);

    // The trusted proxy saying https: served.
    let proxied = from_peer(
        Request::post("/echo")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-forwarded-proto", "https")
            .body(Full::new(Bytes::from_static(br#"{"name":"hi"}"#)))
            .expect("request"),
        "10.1.2.3:443",
    );
    let (parts, body) = send(&policy, proxied).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(&body[..], b"hi");

    // The trusted proxy saying http: redirected all the same.
    let mut plain = forged(http::Method::GET);
    plain
        .headers_mut()
        .insert("x-forwarded-proto", "http".parse().expect("value"));
    plain
        .extensions_mut()
        .insert("10.1.2.3:443".parse::<SocketAddr>().expect("addr"));
    let (parts, _) = send(&policy, plain).await;
    assert_eq!(parts.status, StatusCode::PERMANENT_REDIRECT);

    // Health probes pass over plain HTTP.
    let (parts, _) = send(&policy, from_peer(get("/health/live"), "192.0.2.7:1")).await;
    assert_eq!(parts.status, StatusCode::OK);
}

#[tokio::test]
async fn a_request_marked_with_a_host_header_fault_is_refused() {
    let mut request = get("/");
    request.extensions_mut().insert(HostHeaderFault::Repeated);
    let (parts, body) = send(&SecurityPolicy::new(), request).await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
    let problem = problem_of(&parts, &body);
    assert!(
        problem["detail"].as_str().expect("detail").contains("Host"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_panic_is_a_500_problem_with_a_correlation_id_only() {
    let (parts, body) = send(&SecurityPolicy::new(), get("/panic")).await;
    assert_eq!(parts.status, StatusCode::INTERNAL_SERVER_ERROR);
    let problem = problem_of(&parts, &body);
    assert!(problem["correlation_id"].is_string(), "{problem}");
    assert!(!String::from_utf8_lossy(&body).contains("fell over"));
}

#[tokio::test]
async fn a_cors_preflight_is_answered_with_the_security_headers() {
    let policy = SecurityPolicy::new().with_cors(
        CorsPolicy::new().allow_origins(["https://app.example".parse().expect("origin")]),
    );
    let preflight = Request::builder()
        .method(http::Method::OPTIONS)
        .uri("/echo")
        .header(header::ORIGIN, "https://app.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .body(Full::default())
        .expect("request");
    let (parts, _) = send(&policy, preflight).await;
    assert_eq!(
        parts.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    assert_security_headers(&parts);
}

#[tokio::test]
async fn the_stack_is_a_service_that_stays_ready() {
    let mut service = stack(&SecurityPolicy::new());
    for _ in 0..3 {
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(get("/"))
            .await
            .expect("answer");
        assert_eq!(response.status(), StatusCode::OK);
    }
    let _: Error = Error::invalid_input("keeps the import honest");
}
