//! End-to-end tests of the HTTP hardening over real sockets: the server of
//! `main` (router, [`crate::tls::ServerListener`], [`crate::shutdown::serve`])
//! on `127.0.0.1:0`, plain or with TLS from a certificate made by `rcgen`,
//! driven by reqwest (rustls) and, where the test must control the bytes on
//! the wire (oversize and streamed bodies, idle connections), by a raw TCP
//! client.

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use docaiche_core::problem::PROBLEM_JSON;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::config::Config;
use crate::http::HttpsMode;
use crate::routes::router;
use crate::state::tests::local_state;
use crate::test_support::TestDir;
use crate::tls::ServerListener;

mod contract;
mod rejections;

/// The body limit of the test servers.
const BODY_LIMIT: usize = 1024;

/// A running server; stopped on drop.
struct Server {
    addr: SocketAddr,
    /// `https` or `http`.
    scheme: &'static str,
    /// An API key of tenant `acme` with every permission of `tenant-admin`.
    key: String,
    stop: Option<oneshot::Sender<()>>,
    _dir: TestDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Server {
    /// The URL of `path` on this server.
    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }
}

/// The test configuration, edited by `edit`.
fn config(edit: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    config.server.body_limit_bytes = BODY_LIMIT;
    config.cors.allowed_origins = vec!["https://app.example".into()];
    edit(&mut config);
    config
}

/// Start the server for `config` as `main` does (TLS when `[http]` names
/// certificate files), closing connections idle for `idle`.
async fn start_with(mut config: Config, idle: Duration) -> Server {
    let tls = match (&config.http.tls_cert_file, &config.http.tls_key_file) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key).expect("tls")),
        _ => None,
    };
    let dir = TestDir::new("e2e");
    config.storage.data_dir = dir.path().to_path_buf();
    let state = local_state(&config);
    let key = state
        .auth
        .bootstrap_key("acme", "admin", "e2e")
        .await
        .expect("bootstrap key")
        .key
        .expose_secret()
        .to_owned();
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = ServerListener::new(tcp, tls, idle);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(crate::shutdown::serve(
        listener.into_serve(),
        router(state),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    Server {
        addr,
        scheme,
        key,
        stop: Some(stop),
        _dir: dir,
    }
}

/// A plain-HTTP server for `config`.
async fn start(config: Config) -> Server {
    start_with(config, Duration::from_secs(30)).await
}

/// A self-signed certificate for `127.0.0.1` and `localhost` in PEM files
/// under `dir`, set in `config`, and a client trusting it.
fn with_tls(config: &mut Config, dir: &TestDir) -> reqwest::Client {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("certificate");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).expect("write cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
    config.http.tls_cert_file = Some(cert);
    config.http.tls_key_file = Some(key);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(generated.cert.der().clone()).expect("root");
    client_trusting(roots)
}

/// A client trusting `roots` (rustls, ring) that neither follows
/// redirects nor uses a proxy.
fn client_trusting(roots: rustls::RootCertStore) -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A plain-HTTP client.
fn client() -> reqwest::Client {
    client_trusting(rustls::RootCertStore::empty())
}

/// Status, headers and body of `request`.
async fn send(
    request: reqwest::RequestBuilder,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let response = request.send().await.expect("response");
    let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

/// The problem in `body`, checking the media type and the code.
fn problem(headers: &reqwest::header::HeaderMap, body: &[u8], code: &str) -> serde_json::Value {
    assert_eq!(headers[header::CONTENT_TYPE.as_str()], PROBLEM_JSON);
    let problem: serde_json::Value = serde_json::from_slice(body).expect("problem json");
    assert_eq!(problem["code"], code, "{problem}");
    problem
}

/// The security headers every response carries; HSTS only if `hsts`.
fn assert_security_headers(headers: &reqwest::header::HeaderMap, hsts: bool, what: &str) {
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(
        headers["content-security-policy"],
        crate::http::DEFAULT_CSP,
        "{what}"
    );
    assert!(headers.contains_key("x-request-id"), "{what}");
    assert_eq!(
        headers.get("strict-transport-security").is_some(),
        hsts,
        "{what}"
    );
}

/// Write `bytes` to a raw connection.
async fn write(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// Read one response head (and whatever body arrived with it) from a raw
/// connection, waiting at most five seconds.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(5), async {
        while !out.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server answered within five seconds");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let server = start(config(|_| {})).await;
    let client = client();
    let preflight = client
        .request(reqwest::Method::OPTIONS, server.url("/v1/keys"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST");
    for (what, request) in [
        ("200", client.get(server.url("/health/live"))),
        ("401", client.get(server.url("/v1/whoami"))),
        (
            "404",
            client
                .get(server.url("/nope"))
                .header("x-api-key", &server.key),
        ),
        ("405", client.delete(server.url("/health/live"))),
        ("preflight", preflight),
    ] {
        let (status, headers, _) = send(request).await;
        assert!(status.as_u16() < 500, "{what}: {status}");
        // Plain HTTP in development: no HSTS.
        assert_security_headers(&headers, false, what);
    }
}

#[tokio::test]
async fn tls_serves_with_hsts_and_drops_clients_speaking_plain_http() {
    let dir = TestDir::new("e2e-tls");
    let mut config = config(|_| {});
    let client = with_tls(&mut config, &dir);
    let server = start(config).await;
    let (status, headers, body) = send(client.get(server.url("/health/live"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, br#"{"status":"pass"}"#);
    assert_security_headers(&headers, true, "over TLS");
    assert_eq!(headers["strict-transport-security"], "max-age=31536000");
    // The whole API, not only the probes.
    let (status, _, body) = send(
        client
            .get(server.url("/v1/whoami"))
            .header("x-api-key", &server.key),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let whoami: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(whoami["tenant"], "acme");

    // Plain HTTP on the TLS port: no HTTP answer, the connection is closed.
    let mut raw = TcpStream::connect(server.addr).await.expect("connect");
    write(
        &mut raw,
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("send");
    let answer = read_head(&mut raw).await;
    assert!(!answer.contains("HTTP/1.1 200"), "{answer}");
    // And a plain client cannot talk to it.
    let url = format!("http://{}/health/live", server.addr);
    assert!(client.get(url).send().await.is_err());
}

#[tokio::test]
async fn cors_preflights_answer_allowed_origins_only() {
    let server = start(config(|c| c.cors.allow_credentials = true)).await;
    let client = client();
    let preflight = |origin: &str| {
        client
            .request(reqwest::Method::OPTIONS, server.url("/v1/keys"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "x-api-key, content-type")
    };
    let (status, headers, _) = send(preflight("https://app.example")).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let methods = headers["access-control-allow-methods"]
        .to_str()
        .expect("ascii");
    assert!(methods.contains("POST"), "{methods}");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    assert!(allowed.contains("x-api-key"), "{allowed}");
    assert_eq!(headers["access-control-max-age"], "600");
    assert!(
        headers.get_all("vary").iter().any(|v| v
            .to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("origin"))),
        "responses vary by origin"
    );

    for refused in ["https://evil.example", "http://app.example", "null"] {
        let (_, headers, _) = send(preflight(refused)).await;
        assert!(
            !headers.contains_key("access-control-allow-origin"),
            "{refused} was allowed"
        );
        // (tower-http still sends Allow-Credentials; without Allow-Origin
        // the browser fails the check, so it grants nothing.)
    }
    // A simple cross-origin request from a refused origin gets no grant
    // either (the browser then hides the answer from the page).
    let (_, headers, _) = send(
        client
            .get(server.url("/health/live"))
            .header("origin", "https://evil.example"),
    )
    .await;
    assert!(!headers.contains_key("access-control-allow-origin"));
    let (_, headers, _) = send(
        client
            .get(server.url("/health/live"))
            .header("origin", "https://app.example"),
    )
    .await;
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
}

#[tokio::test]
async fn plain_http_behind_a_proxy_is_redirected_or_refused_by_x_forwarded_proto() {
    // The test client connects from 127.0.0.1: it plays the trusted proxy.
    let server = start(config(|c| {
        c.http.https = HttpsMode::Redirect;
        c.http.trusted_proxies = vec!["127.0.0.1/32".into()];
        c.http.public_origin = Some("https://api.example".into());
    }))
    .await;
    let client = client();

    // Plain GET through the proxy: a permanent redirect to the public
    // origin (see `transport` for a Host the server does not know).
    let (status, headers, _) = send(
        client
            .get(server.url("/v1/keys?limit=2"))
            .header("host", "api.example:8080"),
    )
    .await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers["location"], "https://api.example/v1/keys?limit=2");
    assert_security_headers(&headers, true, "redirect");

    // A plain POST is refused, not redirected: its body already crossed.
    let (status, headers, body) = send(
        client
            .post(server.url("/v1/keys"))
            .header("content-type", "application/json")
            .body("{}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let refused = problem(&headers, &body, "invalid-input");
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("HTTPS")),
        "{refused}"
    );

    // The proxy says the client used HTTPS: the request goes through.
    let (status, headers, _) = send(
        client
            .get(server.url("/v1/whoami"))
            .header("x-forwarded-proto", "https")
            .header("x-api-key", &server.key),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["strict-transport-security"], "max-age=31536000");

    // Probes are exempt.
    let (status, _, _) = send(client.get(server.url("/health/live"))).await;
    assert_eq!(status, StatusCode::OK);

    // A peer that is not a trusted proxy cannot claim HTTPS.
    let untrusted = start(config(|c| {
        c.http.https = HttpsMode::Refuse;
        c.http.trusted_proxies = vec!["10.0.0.0/8".into()];
    }))
    .await;
    let (status, headers, body) = send(
        client
            .get(untrusted.url("/v1/whoami"))
            .header("x-forwarded-proto", "https")
            .header("x-api-key", &untrusted.key),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    problem(&headers, &body, "invalid-input");
}

#[tokio::test]
async fn a_declared_oversize_body_is_refused_before_it_is_sent() {
    let server = start(config(|_| {})).await;
    let mut raw = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.key,
        100 * 1024 * 1024
    );
    write(&mut raw, head.as_bytes()).await.expect("send head");
    // Only the head is sent: 100 MiB are never written.
    let started = Instant::now();
    let answer = read_head(&mut raw).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(PROBLEM_JSON), "{answer}");
    assert!(answer.contains("payload-too-large"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // The same through reqwest.
    let (status, headers, body) = send(
        client()
            .post(server.url("/v1/keys"))
            .header("x-api-key", &server.key)
            .header("content-type", "application/json")
            .body(vec![b' '; BODY_LIMIT + 1]),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let refused = problem(&headers, &body, "payload-too-large");
    assert_eq!(
        refused["detail"],
        format!("payload too large: limit is {BODY_LIMIT} bytes")
    );
}

#[tokio::test]
async fn a_streamed_oversize_body_is_refused_while_the_client_is_still_sending() {
    let server = start(config(|_| {})).await;
    let mut raw = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        server.key
    );
    write(&mut raw, head.as_bytes()).await.expect("send head");
    // Chunks past the limit, and no final chunk: the body never ends.
    let chunk = format!("200\r\n{}\r\n", " ".repeat(0x200));
    for _ in 0..(BODY_LIMIT / 0x200 + 2) {
        write(&mut raw, chunk.as_bytes()).await.expect("send chunk");
    }
    let answer = read_head(&mut raw).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload-too-large"), "{answer}");
}

#[tokio::test]
async fn json_bodies_are_validated_with_field_level_problems() {
    let server = start(config(|_| {})).await;
    let client = client();
    let post = |content_type: Option<&str>, body: &str| {
        let mut request = client
            .post(server.url("/v1/keys"))
            .header("x-api-key", &server.key)
            .body(body.to_owned());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request
    };
    let json = Some("application/json");

    // Wrong or missing content types: 415.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let (status, headers, body) = send(post(
            content_type,
            r#"{"name":"x","scopes":["documents:read"]}"#,
        ))
        .await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        problem(&headers, &body, "unsupported-media-type");
    }

    // Malformed JSON, unknown fields, wrong types, failed validation: 400
    // with the field's pointer.
    for (body, pointer) in [
        ("{", ""),
        (r#"{"name":"x","scopes":["documents:read"]} []"#, ""),
        (
            r#"{"name":"x","scopes":["documents:read"],"tenant":"globex"}"#,
            "/tenant",
        ),
        (r#"{"scopes":["documents:read"]}"#, "/name"),
        (r#"{"name":"x","scopes":"documents:read"}"#, "/scopes"),
        (
            r#"{"name":"x","scopes":["documents:read"],"expires_in_secs":-1}"#,
            "/expires_in_secs",
        ),
        (
            r#"{"name":"x","scopes":["documents:read"],"expires_in_secs":0}"#,
            "/expires_in_secs",
        ),
    ] {
        let (status, headers, response) = send(post(json, body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let refused = problem(&headers, &response, "invalid-input");
        assert_eq!(
            refused["errors"][0]["pointer"], pointer,
            "{body}: {refused}"
        );
        assert!(refused["errors"][0]["detail"].is_string(), "{refused}");
    }
    let (_, headers, response) = send(post(json, r#"{"name":" ","scopes":[]}"#)).await;
    let refused = problem(&headers, &response, "invalid-input");
    let pointers: Vec<&str> = refused["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    assert_eq!(pointers, ["/name", "/scopes"], "{refused}");

    // A valid body.
    let (status, _, _) = send(post(
        Some("application/json; charset=utf-8"),
        r#"{"name":"ci","scopes":["documents:read"]}"#,
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn responses_are_compressed_when_negotiated_and_large_enough() {
    let server = start(config(|c| c.http.compression_min_bytes = 64)).await;
    let client = client();
    let whoami = |encoding: Option<&str>| {
        let mut request = client
            .get(server.url("/v1/whoami"))
            .header("x-api-key", &server.key);
        if let Some(encoding) = encoding {
            request = request.header("accept-encoding", encoding);
        }
        request
    };
    let (_, headers, plain) = send(whoami(None)).await;
    assert!(!headers.contains_key("content-encoding"));
    assert!(plain.len() >= 64, "the body is worth compressing");

    let (status, headers, gzipped) = send(whoami(Some("gzip"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(headers.get_all("vary").iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("accept-encoding"))
    }));
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&gzipped[..])
        .read_to_end(&mut decoded)
        .expect("gzip");
    assert_eq!(decoded, plain);

    let (_, headers, brotli) = send(whoami(Some("br;q=1, gzip;q=0.5"))).await;
    assert_eq!(headers["content-encoding"], "br");
    assert_ne!(brotli, plain);

    // Too small to be worth it.
    let (_, headers, body) = send(
        client
            .get(server.url("/health/live"))
            .header("accept-encoding", "gzip, br"),
    )
    .await;
    assert!(!headers.contains_key("content-encoding"));
    assert_eq!(body, br#"{"status":"pass"}"#);
    // Not accepted.
    let (_, headers, _) = send(whoami(Some("identity"))).await;
    assert!(!headers.contains_key("content-encoding"));
}

#[tokio::test]
async fn idle_and_stalled_connections_are_closed() {
    let idle = Duration::from_millis(300);
    let server = start_with(config(|_| {}), idle).await;
    // Connect and say nothing.
    let mut raw = TcpStream::connect(server.addr).await.expect("connect");
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut buf))
        .await
        .expect("closed within five seconds");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= idle, "{:?}", started.elapsed());

    // Half a request head, then silence.
    let mut raw = TcpStream::connect(server.addr).await.expect("connect");
    write(&mut raw, b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("send");
    let read = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut buf))
        .await
        .expect("closed within five seconds");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    // A keep-alive connection that finished a request is closed when idle
    // too; one that keeps talking is not.
    let mut raw = TcpStream::connect(server.addr).await.expect("connect");
    for _ in 0..3 {
        write(&mut raw, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("send");
        let answer = read_head(&mut raw).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        tokio::time::sleep(idle / 3).await;
    }

    // A TLS client that never finishes its handshake.
    let dir = TestDir::new("e2e-tls-idle");
    let mut tls_config = config(|_| {});
    with_tls(&mut tls_config, &dir);
    let tls_server = start_with(tls_config, idle).await;
    let mut raw = TcpStream::connect(tls_server.addr).await.expect("connect");
    write(&mut raw, &[0x16, 0x03, 0x01])
        .await
        .expect("a partial ClientHello");
    let read = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut buf))
        .await
        .expect("closed within five seconds");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn request_ids_are_generated_or_kept_over_the_wire() {
    let server = start(config(|_| {})).await;
    let client = client();
    let (_, headers, _) = send(
        client
            .get(server.url("/health/live"))
            .header("x-request-id", "from-the-client-1"),
    )
    .await;
    assert_eq!(headers["x-request-id"], "from-the-client-1");
    let (_, headers, _) = send(client.get(server.url("/health/live"))).await;
    assert_eq!(headers["x-request-id"].len(), 36);
}

mod transport;
