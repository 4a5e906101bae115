//! Every refusal is a problem over the wire, the extractors' included
//! ([`crate::rejection`]): issue 16, defect 7.

use axum::http::StatusCode;
use docaiche_core::problem::PROBLEM_JSON;
use tokio::net::TcpStream;

use super::{client, config, problem, read_head, send, start, write};

/// Paths whose `{id}` segment is `%ff` (not UTF-8 once decoded), with the
/// method of their route; every one reachable by the test key's
/// `tenant-admin` role, so the handler's extractor is what answers.
const INVALID_UTF8_SEGMENTS: &[(&str, &str)] = &[
    ("GET", "/v1/documents/%ff"),
    ("DELETE", "/v1/documents/%ff"),
    ("GET", "/v1/documents/%ff/text"),
    ("GET", "/v1/jobs/%ff"),
    ("DELETE", "/v1/keys/%ff"),
    ("POST", "/v1/keys/%ff/rotate"),
];

#[tokio::test]
async fn an_invalid_utf8_path_segment_is_a_400_problem_naming_the_parameter() {
    let server = start(config(|_| {})).await;
    let client = client();
    for (method, path) in INVALID_UTF8_SEGMENTS {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let (status, headers, body) = send(
            client
                .request(method.clone(), server.url(path))
                .header("x-api-key", &server.key),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}");
        let problem = problem(&headers, &body, "invalid-input");
        assert_eq!(problem["status"], 400, "{method} {path}");
        assert_eq!(
            problem["detail"],
            "invalid input: the path parameter `id` is not valid UTF-8 once percent-decoded",
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn rejections_of_unwrapped_extractors_become_problems() {
    let server = start(config(|_| {})).await;
    let client = client();
    // `/test/sleep/{ms}` takes axum's own `Path<u64>`: its text/plain 400
    // is rewritten by the backstop, whatever the reason.
    for path in ["/test/sleep/soon", "/test/sleep/%ff", "/test/sleep/-1"] {
        let (status, headers, body) = send(client.get(server.url(path))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        let problem = problem(&headers, &body, "invalid-input");
        assert_eq!(problem["status"], 400, "{path}");
        // The rejection's own text (which may echo the input) is not sent.
        let detail = problem["detail"].as_str().expect("detail");
        assert!(
            !detail.contains("soon") && !detail.contains("ff"),
            "{detail}"
        );
    }
}

#[tokio::test]
async fn router_and_media_type_refusals_are_problems() {
    let server = start(config(|_| {})).await;
    let client = client();
    let key = &server.key;

    // A method the route does not have: 405 with Allow.
    let (status, headers, body) =
        send(client.put(server.url("/v1/keys")).header("x-api-key", key)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    problem(&headers, &body, "method-not-allowed");
    assert!(headers.contains_key("allow"), "{headers:?}");

    // An unknown route, authenticated: 404.
    let (status, headers, body) =
        send(client.get(server.url("/v1/nope")).header("x-api-key", key)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    problem(&headers, &body, "not-found");

    // A JSON route sent another media type: 415.
    let (status, headers, body) = send(
        client
            .post(server.url("/v1/keys"))
            .header("x-api-key", key)
            .header("content-type", "text/plain")
            .body(r#"{"name":"k","scopes":["documents:read"]}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    problem(&headers, &body, "unsupported-media-type");

    // A query that does not parse: 400.
    let (status, headers, body) = send(
        client
            .get(server.url("/v1/keys?limit=many"))
            .header("x-api-key", key),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    problem(&headers, &body, "invalid-input");

    // Not a WebSocket upgrade on the WebSocket route: 400.
    let (status, headers, body) = send(
        client
            .get(server.url("/v1/events"))
            .header("x-api-key", key),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["content-type"], PROBLEM_JSON);
    problem(&headers, &body, "invalid-input");
}

#[tokio::test]
async fn a_websocket_upgrade_with_a_malformed_key_is_a_400_problem() {
    let server = start(config(|_| {})).await;
    let upgrade = |key: &str| {
        format!(
            "GET /v1/events HTTP/1.1\r\nHost: {}\r\nX-API-Key: {}\r\nConnection: keep-alive, Upgrade\r\n\
             Upgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n",
            server.addr, server.key
        )
    };
    // RFC 6455's sample key: 16 bytes in base64.
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    write(&mut stream, upgrade("dGhlIHNhbXBsZSBub25jZQ==").as_bytes())
        .await
        .expect("write");
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");

    // axum takes any key: only the handler's own check refuses these.
    for key in [
        "not-base64",
        "dGhlIHNhbXBsZSBub25jZQ",
        "dGhlIHNhbXBsZSBub25jZR==",
    ] {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        write(&mut stream, upgrade(key).as_bytes())
            .await
            .expect("write");
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{key}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("content-type: {PROBLEM_JSON}")),
            "{key}: {head}"
        );
    }
}
