//! End-to-end tests of the scope-flooding defences and of the JSON rules
//! of the token endpoints, over real sockets against the server of `main`
//! on `127.0.0.1:0`, on its default SQLite store:
//!
//! - `POST /v1/keys` refuses made-up permissions, duplicates, more than
//!   [`MAX_SCOPES`] names, overlong names and bodies over the JSON limit,
//!   each with a problem naming the field; valid scopes still work;
//! - a key record stored with 200 000 scopes (as the code before the
//!   bound let through) lists and exports small and fast;
//! - the tenant listings whose stores return everything (privacy requests,
//!   legal holds) answer a page at a time;
//! - the token endpoints answer 415 to `text/plain` (and to no media type)
//!   and 413 over the JSON limit, like every other JSON route.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use docaiche_core::api_key::{ApiKeyLookup, ApiKeyRecord};
use docaiche_core::problem::PROBLEM_JSON;
use docaiche_core::{ApiKeyId, MAX_SCOPES, Permission, PermissionSet, PrincipalId, TenantId};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::config::Config;
use crate::routes::router;
use crate::state::AppState;
use crate::test_support::TestDir;
use crate::tls::ServerListener;

/// The JSON body limit of the test server (the upload limit stays 16 MiB).
const JSON_LIMIT: usize = 4096;

/// A running server on SQLite; stopped on drop.
struct Server {
    addr: SocketAddr,
    state: AppState,
    /// A key of tenant `acme` with every permission of `tenant-admin`.
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
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Start the server as `main` does, on the store of a fresh data directory.
async fn start() -> Server {
    let dir = TestDir::new("e2e-scopes");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.server.json_body_limit_bytes = JSON_LIMIT;
    config.audit.fsync = crate::audit::FsyncSetting::Never;
    crate::storage::prepare_data_dir(&config.storage.data_dir).expect("data dir");
    crate::keys::prepare(&config.key_source()).expect("keys");
    let state = AppState::from_config(&config, &|_| None)
        .await
        .expect("state");
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
    let listener = ServerListener::new(tcp, None, Duration::from_secs(30));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(crate::shutdown::serve(
        listener.into_serve(),
        router(state.clone()),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    Server {
        addr,
        state,
        key,
        stop: Some(stop),
        _dir: dir,
    }
}

/// A plain-HTTP client.
fn client() -> reqwest::Client {
    crate::test_support::plain_http_client(None)
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
    assert_eq!(headers["content-type"], PROBLEM_JSON);
    let problem: serde_json::Value = serde_json::from_slice(body).expect("problem json");
    assert_eq!(problem["code"], code, "{problem}");
    problem
}

/// The JSON pointers of a problem's field errors.
fn pointers(problem: &serde_json::Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["pointer"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `POST /v1/keys` with `body` as JSON, by the server's admin key.
async fn create_key(server: &Server, body: &str) -> (StatusCode, serde_json::Value) {
    let (status, headers, bytes) = send(
        client()
            .post(server.url("/v1/keys"))
            .header("x-api-key", &server.key)
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
    .await;
    let json = if status.is_success() {
        serde_json::from_slice(&bytes).expect("json")
    } else {
        problem(
            &headers,
            &bytes,
            match status {
                StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
                StatusCode::FORBIDDEN => "forbidden",
                _ => "invalid-input",
            },
        )
    };
    (status, json)
}

#[tokio::test]
async fn the_scope_flooding_attack_is_refused_and_valid_scopes_still_work() {
    let server = start().await;
    let body =
        |scopes: &[String]| serde_json::json!({ "name": "flood", "scopes": scopes }).to_string();
    let names = |n: usize, make: &dyn Fn(usize) -> String| (0..n).map(make).collect::<Vec<_>>();

    // Made-up permissions of a known resource, of an unknown one, and
    // wildcards over resources that do not exist: 400 naming the item.
    for (scopes, pointer) in [
        (vec!["documents:read", "documents:frobnicate"], "/scopes/1"),
        (vec!["reports:read"], "/scopes/0"),
        (vec!["reports:*"], "/scopes/0"),
        (vec!["*:read"], "/scopes/0"),
    ] {
        let scopes: Vec<String> = scopes.into_iter().map(str::to_owned).collect();
        let (status, refused) = create_key(&server, &body(&scopes)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{scopes:?}: {refused}");
        assert_eq!(pointers(&refused), [pointer], "{scopes:?}: {refused}");
    }

    // Duplicates: 400 naming the repeat.
    let repeated = names(3, &|_| "documents:read".to_owned());
    let (status, refused) = create_key(&server, &body(&repeated)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(pointers(&refused), ["/scopes/1", "/scopes/2"], "{refused}");

    // More than MAX_SCOPES names, each short enough for the body to fit
    // the JSON limit: refused while parsing, at `/scopes`.
    let many = names(MAX_SCOPES + 1, &|_| "a:b".to_owned());
    assert!(body(&many).len() < JSON_LIMIT);
    let (status, refused) = create_key(&server, &body(&many)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(pointers(&refused), ["/scopes"], "{refused}");

    // An overlong name: refused at its item, without echoing it.
    let long = vec![format!("documents:{}", "r".repeat(200))];
    let (status, refused) = create_key(&server, &body(&long)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(pointers(&refused), ["/scopes/0"], "{refused}");
    assert!(!refused.to_string().contains(&"r".repeat(100)), "{refused}");

    // Thousands of made-up sub-scopes: over the JSON limit, refused with
    // 413 naming that limit (kept small enough for the client to finish
    // writing before the answer; the full-size attack follows, raw).
    let flood = names(2_000, &|i| format!("documents:x{i}"));
    let (status, refused) = create_key(&server, &body(&flood)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{refused}");
    assert_eq!(
        refused["detail"],
        format!("payload too large: limit is {JSON_LIMIT} bytes")
    );

    // The attack as filed, 200 000 made-up sub-scopes (about 3 MB, far
    // under the 16 MiB upload limit), over a raw connection: refused from
    // its declared length, before a byte of it is sent.
    let flood = body(&names(200_000, &|i| format!("documents:x{i}")));
    let mut raw = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.key,
        flood.len()
    );
    raw.write_all(head.as_bytes()).await.expect("send head");
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut answer))
        .await
        .expect("answered before the body was sent")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload-too-large"), "{answer}");

    // Nothing of the above was stored.
    let (status, _, listed) = send(
        client()
            .get(server.url("/v1/keys"))
            .header("x-api-key", &server.key),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let listed: serde_json::Value = serde_json::from_slice(&listed).expect("json");
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );

    // Valid scopes: known permissions and a wildcard the caller holds.
    let (status, created) = create_key(
        &server,
        r#"{"name":"ci","scopes":["documents:read","documents:*"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["scopes"],
        serde_json::json!(["documents:read", "documents:*"])
    );
    // A known wildcard the caller does not hold: still never granted.
    let (status, _) = create_key(&server, r#"{"name":"x","scopes":["*:*"]}"#).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_stored_record_with_200000_scopes_lists_and_exports_small_and_fast() {
    let server = start().await;
    // As the code before the bound stored it: straight into the store.
    let acme = TenantId::new("acme").expect("tenant");
    let subject = PrincipalId::new("flooder").expect("principal");
    let flood: PermissionSet = (0..200_000)
        .map(|i| Permission::parse(&format!("documents:x{i:06}")).expect("permission"))
        .collect();
    for n in 0..3 {
        let record = ApiKeyRecord::new(
            ApiKeyId::new(),
            acme.clone(),
            subject.clone(),
            ApiKeyLookup::new(format!("legacy{n}{}", uuid::Uuid::new_v4().simple()))
                .expect("lookup"),
            time::OffsetDateTime::now_utc(),
        )
        .with_name("legacy flood")
        .with_hash(1, vec![0; 32])
        .with_scopes(flood.clone());
        server
            .state
            .auth
            .stores
            .api_keys
            .insert(&record)
            .await
            .expect("stored");
    }

    // The listing: every record, each with at most MAX_SCOPES scopes.
    let started = Instant::now();
    let (status, _, body) = send(
        client()
            .get(server.url("/v1/keys?limit=1000"))
            .header("x-api-key", &server.key),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    let listed: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 4, "the admin key and the three legacy ones");
    for item in items {
        let scopes = item["scopes"].as_array().expect("scopes");
        assert!(scopes.len() <= MAX_SCOPES, "{}", scopes.len());
    }
    assert!(body.len() < 64 * 1024, "a small page: {} bytes", body.len());
    assert!(took < Duration::from_secs(5), "listed in {took:?}");

    // The privacy export of the subject owning them: bounded the same way.
    let dpo = crate::test_support::api_key(
        &server.state,
        "acme",
        Some("dpo"),
        "dpo",
        &["privacy:export"],
    )
    .await;
    let started = Instant::now();
    let (status, _, body) = send(
        client()
            .post(server.url("/v1/privacy/export"))
            .header("x-api-key", &dpo)
            .header("content-type", "application/json")
            .body(r#"{"subject":"flooder"}"#),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let bundle: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let keys = bundle["api_keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 3);
    for key in keys {
        let scopes = key["scopes"].as_array().expect("scopes");
        assert_eq!(scopes.len(), MAX_SCOPES);
    }
    assert!(
        body.len() < 64 * 1024,
        "a small export: {} bytes",
        body.len()
    );
    assert!(took < Duration::from_secs(5), "exported in {took:?}");
}

#[tokio::test]
async fn privacy_requests_are_listed_a_page_at_a_time() {
    let server = start().await;
    let dpo = crate::test_support::api_key(
        &server.state,
        "acme",
        Some("dpo"),
        "dpo",
        &["privacy:export"],
    )
    .await;
    let mut made = Vec::new();
    for subject in ["s1", "s2", "s3"] {
        let (status, _, body) = send(
            client()
                .post(server.url("/v1/privacy/export"))
                .header("x-api-key", &dpo)
                .header("content-type", "application/json")
                .body(format!(r#"{{"subject":"{subject}"}}"#)),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let bundle: serde_json::Value = serde_json::from_slice(&body).expect("json");
        made.push(bundle["request_id"].as_str().expect("id").to_owned());
    }
    let mut seen = Vec::new();
    let mut uri = "/v1/privacy/requests?limit=2".to_owned();
    loop {
        let (status, _, body) =
            send(client().get(server.url(&uri)).header("x-api-key", &dpo)).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let page: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2, "{page}");
        seen.extend(
            items
                .iter()
                .map(|i| i["id"].as_str().expect("id").to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => uri = format!("/v1/privacy/requests?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, made, "every request once, oldest first");
    for bad in ["limit=0", "limit=1001", "after=nope"] {
        let (status, headers, body) = send(
            client()
                .get(server.url(&format!("/v1/privacy/requests?{bad}")))
                .header("x-api-key", &dpo),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        problem(&headers, &body, "invalid-input");
    }
}

#[tokio::test]
async fn legal_holds_are_listed_a_page_at_a_time() {
    let server = start().await;
    let admin = crate::test_support::api_key(
        &server.state,
        "acme",
        Some("platform"),
        "platform",
        &["tenants:cross", "admin:access"],
    )
    .await;
    let mut made = Vec::new();
    for case in ["case-1", "case-2", "case-3"] {
        let (status, _, body) = send(
            client()
                .post(server.url("/v1/admin/legal-holds"))
                .header("x-api-key", &admin)
                .header("content-type", "application/json")
                .body(format!(r#"{{"tenant":"globex","reason":"{case}"}}"#)),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let hold: serde_json::Value = serde_json::from_slice(&body).expect("json");
        made.push(hold["id"].as_str().expect("id").to_owned());
    }
    let mut seen = Vec::new();
    let mut uri = "/v1/admin/legal-holds?tenant=globex&limit=2".to_owned();
    loop {
        let (status, _, body) =
            send(client().get(server.url(&uri)).header("x-api-key", &admin)).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let page: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2, "{page}");
        seen.extend(
            items
                .iter()
                .map(|i| i["id"].as_str().expect("id").to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => uri = format!("/v1/admin/legal-holds?tenant=globex&limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, made, "every hold once, oldest first");
}

#[tokio::test]
async fn token_endpoints_answer_415_to_text_plain_and_413_over_the_json_limit() {
    let server = start().await;
    let bodies = [
        (
            "/v1/auth/token",
            r#"{"tenant":"acme","email":"a@example.com","password":"correct horse battery"}"#,
        ),
        ("/v1/auth/refresh", r#"{"refresh_token":"x"}"#),
        ("/v1/auth/revoke", r#"{"token":"x"}"#),
    ];
    for (path, body) in bodies {
        for content_type in [Some("text/plain"), Some("text/plain; charset=utf-8"), None] {
            let mut request = client().post(server.url(path)).body(body.to_owned());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let (status, headers, bytes) = send(request).await;
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{path} {content_type:?}: {}",
                String::from_utf8_lossy(&bytes)
            );
            problem(&headers, &bytes, "unsupported-media-type");
        }
        // Over the JSON limit (far under the upload limit): 413.
        let padded = format!(r#"{{"token":"{}"}}"#, "x".repeat(JSON_LIMIT));
        let (status, headers, bytes) = send(
            client()
                .post(server.url(path))
                .header("content-type", "application/json")
                .body(padded),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        problem(&headers, &bytes, "payload-too-large");
        // JSON is still served: a well-formed but wrong request is a 400
        // or 401, never a 415.
        let (status, _, _) = send(
            client()
                .post(server.url(path))
                .header("content-type", "application/json")
                .body(r#"{"unknown":1}"#),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
    }
}
