//! Log capture: the server's own logging pipeline (`log_dispatch`: the
//! filter, JSON lines, the PII redactor) at DEBUG, writing to memory, while
//! the in-process router serves requests full of personal data and
//! credentials. Not one of those values may reach the log.
//!
//! The dispatcher is the test thread's default and the runtime is
//! single-threaded, so every task the requests spawn logs into the capture
//! too. Work moved to the blocking pool (argon2, PDF parsing) and SQLite's
//! connection threads logs nowhere here; the PostgreSQL variant captures
//! the driver's statement logs as well.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use docaiche_core::{AuthMethod, Grant, PermissionSet, Principal, PrincipalId, TenantId};

use crate::config::{Config, EnvLookup};
use crate::routes::router;
use crate::routes::tests::{json, send};
use crate::state::AppState;
use crate::test_support::TestDir;

/// The data subject: a person with an account.
const NAME: &str = "Jane Doe";
/// Their e-mail address (account e-mails are stored lower-case).
const EMAIL: &str = "jane.doe.4711@example.org";
/// Their password.
const PASSWORD: &str = "Tr0ub4dor&3-horse-battery";
/// A wrong password tried first.
const WRONG_PASSWORD: &str = "hunter2-but-longer-Xy9";
/// A phone number, a Visa test card number, a German test IBAN.
const PHONE: &str = "+44 20 7946 0958";
const CARD: &str = "4111 1111 1111 1111";
const IBAN: &str = "DE89 3704 0044 0532 0130 00";
/// The client's address (a documentation range).
const CLIENT: [u8; 4] = [203, 0, 113, 77];
/// The server's listen address in these tests.
const BIND: &str = "127.0.0.1:18443";
/// Every request's id: a non-personal value the log must show.
const REQUEST_ID: &str = "req-log-capture-0001";

/// Everything the fmt layer writes, in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The server's logging pipeline for `config` (its `[log]` format), at
/// DEBUG, writing into the returned capture.
fn capturing(config: &Config) -> (tracing::Dispatch, Capture) {
    let mut config = config.clone();
    config.log.filter = "debug".to_owned();
    let capture = Capture::default();
    let sink = capture.clone();
    let dispatch = crate::cli::log_dispatch(&config, move || sink.clone(), None).expect("pipeline");
    (dispatch, capture)
}

/// A configuration over SQLite in `dir`, listening on [`BIND`].
fn config(dir: &TestDir) -> Config {
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.server.bind = BIND.parse().expect("address");
    config.documents.inline_max_bytes = 1024 * 1024;
    config
}

/// `request` as if it came from [`CLIENT`], with the fixed request id and
/// a user agent carrying personal data.
fn from_client(mut request: Request<Body>) -> Request<Body> {
    let headers = request.headers_mut();
    headers.insert("x-request-id", REQUEST_ID.parse().expect("header"));
    headers.insert(
        header::USER_AGENT,
        format!("crm-sync/2.1 (operator {EMAIL}; callback {PHONE})")
            .parse()
            .expect("header"),
    );
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((CLIENT, 50_123))));
    request
}

fn post_json(uri: &str, credential: Option<&str>, body: &serde_json::Value) -> Request<Body> {
    let mut request = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = credential {
        request = request.header("x-api-key", key);
    }
    from_client(request.body(Body::from(body.to_string())).expect("request"))
}

fn get(uri: &str, authorization: (&str, &str)) -> Request<Body> {
    from_client(
        Request::get(uri)
            .header(authorization.0, authorization.1)
            .body(Body::empty())
            .expect("request"),
    )
}

/// A key of `tenant` holding exactly `grants`, made by an internal caller.
async fn key_with(state: &AppState, tenant: &str, grants: PermissionSet, name: &str) -> String {
    use docaiche_auth::api_key::NewApiKey;
    let tenant = TenantId::new(tenant).expect("tenant");
    let maker = Principal::new(
        PrincipalId::new("maker").expect("id"),
        tenant.clone(),
        AuthMethod::Internal,
    )
    .with_permissions(
        grants
            .iter()
            .cloned()
            .chain([Grant::parse("keys:manage").expect("grant")])
            .collect(),
    );
    let created = state
        .auth
        .api_keys
        .create(&maker, NewApiKey::new(tenant, name).with_scopes(grants))
        .await
        .expect("key");
    created.key.expose_secret().to_owned()
}

/// Send `request`, expecting `want`; the body.
async fn send_expecting(app: &Router, request: Request<Body>, want: StatusCode) -> Vec<u8> {
    let what = format!("{} {}", request.method(), request.uri());
    let (status, _, body) = send(app.clone(), request).await;
    assert_eq!(status, want, "{what}: {}", String::from_utf8_lossy(&body));
    body
}

/// The data-subject export, `POST /v1/privacy/export` for [`EMAIL`], with
/// a key holding exactly the route's permissions (read from the route
/// table, so the step follows the route's guard).
async fn export_personal_data(state: &AppState, app: &Router) {
    let route = crate::routes::route_groups()
        .into_iter()
        .flat_map(|group| group.routes)
        .find(|route| route.method == Method::POST && route.path == "/v1/privacy/export");
    let route = route.expect("POST /v1/privacy/export is routed");
    let grants: PermissionSet = route
        .required
        .iter()
        .map(|p| Grant::parse(&p.to_string()).expect("grant"))
        .collect();
    let dpo = key_with(state, "acme", grants, "dpo").await;
    let (status, _, body) = send(
        app.clone(),
        post_json(
            "/v1/privacy/export",
            Some(&dpo),
            &serde_json::json!({ "email": EMAIL }),
        ),
    )
    .await;
    assert!(
        status.is_success(),
        "export: {status} {}",
        String::from_utf8_lossy(&body)
    );
}

/// `value` as it might be written: as given, without separators, URL- or
/// JSON-escaped.
fn spellings(value: &str) -> Vec<String> {
    let compact: String = value.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let url = value
        .replace('%', "%25")
        .replace(' ', "%20")
        .replace('+', "%2B")
        .replace('@', "%40");
    let json = serde_json::to_string(value).expect("string");
    let json = json.trim_matches('"').to_owned();
    let mut all = vec![value.to_owned(), compact, url, json];
    all.sort();
    all.dedup();
    all
}

#[tokio::test]
async fn no_personal_data_or_credential_reaches_the_log() {
    let dir = TestDir::new("log-capture");
    serve_personal_data_and_check_the_log(&config(&dir), &|_| None).await;
}

/// The same on PostgreSQL, whose driver runs on the runtime's thread: its
/// statement logs (DEBUG, `sqlx::query`) are captured too. (SQLite
/// connections run on threads of their own, outside the capture.)
#[cfg(feature = "postgres")]
#[tokio::test]
async fn no_personal_data_or_credential_reaches_the_log_on_postgres() {
    const SUITE: &str = "server-postgres";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let dir = TestDir::new("log-capture-postgres");
    let mut config = config(&dir);
    let (schema, env) =
        crate::wiring::tests::on_test_schema(&url, "log_capture", &mut config).await;
    config.validate().expect("valid");
    serve_personal_data_and_check_the_log(&config, &env).await;
    crate::report::mark_ran(SUITE, &format!("log capture schema {}", schema.name));
}

/// Set the server up with `config` as an operator does, drive every
/// route that takes personal data or credentials, and check the log holds
/// the requests but none of those values.
async fn serve_personal_data_and_check_the_log(config: &Config, env: EnvLookup<'_>) {
    let (dispatch, capture) = capturing(config);
    let guard = crate::test_support::capture_with(&dispatch);

    // Set-up as an operator does it: the data directory, the key, the
    // first account (`bootstrap-admin`), then the state.
    crate::storage::prepare_data_dir(&config.storage.data_dir).expect("data dir");
    crate::keys::prepare(&config.key_source()).expect("key");
    let args = crate::login::BootstrapAdminArgs {
        tenant: "acme".into(),
        email: EMAIL.into(),
    };
    crate::login::bootstrap_admin(config, &args, env, format!("{PASSWORD}\n").as_bytes())
        .await
        .expect("bootstrap admin");
    let state = AppState::from_config(config, env).await.expect("state");
    let app = router(state.clone());
    let ops = state
        .auth
        .bootstrap_key("acme", "admin", &format!("{NAME} <{EMAIL}>"))
        .await
        .expect("bootstrap key");
    let ops = ops.key.expose_secret().to_owned();

    // A failed, then a successful password login.
    let credentials = |password: &str| serde_json::json!({ "tenant": "acme", "email": EMAIL, "password": password });
    send_expecting(
        &app,
        post_json("/v1/auth/token", None, &credentials(WRONG_PASSWORD)),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let tokens = json(
        &send_expecting(
            &app,
            post_json("/v1/auth/token", None, &credentials(PASSWORD)),
            StatusCode::OK,
        )
        .await,
    );
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();

    // The bearer token, and a forged one (its signature changed).
    let bearer = format!("Bearer {access}");
    send_expecting(
        &app,
        get("/v1/whoami", ("authorization", &bearer)),
        StatusCode::OK,
    )
    .await;
    let forged = format!("{}A", &access[..access.len() - 1]);
    let forged = if forged == access {
        format!("{}B", &access[..access.len() - 1])
    } else {
        forged
    };
    send_expecting(
        &app,
        get("/v1/whoami", ("authorization", &format!("Bearer {forged}"))),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // An API key named after a person.
    let created = json(
        &send_expecting(
            &app,
            post_json(
                "/v1/keys",
                Some(&ops),
                &serde_json::json!({
                    "name": format!("{NAME} <{EMAIL}> {PHONE}"),
                    "scopes": ["documents:read"],
                }),
            ),
            StatusCode::CREATED,
        )
        .await,
    );
    let issued = created["key"].as_str().expect("issued key").to_owned();
    send_expecting(
        &app,
        get(
            "/v1/documents/00000000-0000-0000-0000-000000000000",
            ("x-api-key", &issued),
        ),
        StatusCode::NOT_FOUND,
    )
    .await;
    // Refused input carrying personal data: an unknown field, a bad scope.
    send_expecting(
        &app,
        post_json(
            "/v1/keys",
            Some(&ops),
            &serde_json::json!({
                "name": NAME,
                "scopes": [format!("card:{}", CARD.replace(' ', ""))],
            }),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    send_expecting(
        &app,
        post_json(
            "/v1/keys",
            Some(&ops),
            &serde_json::json!({ "name": NAME, "scopes": ["keys:manage"], "iban": IBAN }),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;

    // A document whose file name names its subject.
    let upload = Request::post("/v1/documents?filename=Jane%20Doe%20passport.pdf")
        .header("x-api-key", &ops)
        .header(header::CONTENT_TYPE, "application/pdf")
        .body(Body::from(crate::test_support::corpus_pdf(
            "latex-recommended__test.pdf",
        )))
        .expect("request");
    send_expecting(&app, from_client(upload), StatusCode::CREATED).await;

    // Personal data in the path of unknown routes (logged as `path`).
    for path in [
        format!("/v1/customers/{}", CARD.replace(' ', "")),
        format!("/v1/customers/{}", IBAN.replace(' ', "")),
        format!("/v1/customers/{}", PHONE.replace(' ', "")),
        format!("/v1/customers/{EMAIL}"),
    ] {
        send_expecting(&app, get(&path, ("x-api-key", &ops)), StatusCode::NOT_FOUND).await;
    }
    // The refresh token at the refresh endpoint.
    let refreshed = json(
        &send_expecting(
            &app,
            post_json(
                "/v1/auth/refresh",
                None,
                &serde_json::json!({ "refresh_token": refresh }),
            ),
            StatusCode::OK,
        )
        .await,
    );

    export_personal_data(&state, &app).await;
    if let Some(trail) = &state.audit {
        docaiche_core::AuditSink::flush(&trail.buffer)
            .await
            .expect("audit flushed");
    }
    drop(guard);

    let log = capture.text();
    // Not vacuous: the request lines are there, with their non-personal
    // fields, and the redactor did its work on what carried personal data.
    assert!(!log.is_empty(), "nothing was logged");
    for expected in [
        REQUEST_ID,
        "\"path\":\"/v1/auth/token\"",
        "\"path\":\"/v1/keys\"",
        "\"path\":\"/v1/documents\"",
        "\"path\":\"/v1/whoami\"",
        "\"http.route\":\"/v1/auth/refresh\"",
        "\"path\":\"/v1/privacy/export\"",
        "finished processing request",
        "[REDACTED:email]",
        "[REDACTED:phone]",
        "[REDACTED:card_number]",
        "[REDACTED:iban]",
    ] {
        assert!(log.contains(expected), "`{expected}` not logged:\n{log}");
    }
    let secret_part = |key: &str| key.rsplit_once('_').map(|(_, s)| s.to_owned());
    let mut forbidden: Vec<String> = [
        NAME,
        EMAIL,
        "jane.doe",
        PASSWORD,
        WRONG_PASSWORD,
        PHONE,
        CARD,
        IBAN,
        "203.0.113.77",
    ]
    .iter()
    .flat_map(|v| spellings(v))
    .collect();
    for key in [&ops, &issued] {
        forbidden.push(key.clone());
        forbidden.extend(secret_part(key));
    }
    for token in [
        &access,
        &forged,
        &refresh,
        refreshed["access_token"].as_str().expect("access"),
        refreshed["refresh_token"].as_str().expect("refresh"),
    ] {
        forbidden.push(token.to_owned());
        // Each part of a JWT (header and claims too: the claims name the
        // subject) and of a refresh token.
        forbidden.extend(
            token
                .split('.')
                .filter(|part| part.len() >= 16)
                .map(ToOwned::to_owned),
        );
    }
    let leaks: Vec<&String> = forbidden
        .iter()
        .filter(|v| log.contains(v.as_str()))
        .collect();
    assert!(leaks.is_empty(), "{leaks:?} reached the log:\n{log}");
}

#[tokio::test]
async fn the_listen_address_is_logged_whole_and_client_addresses_are_not() {
    let dir = TestDir::new("log-capture-bind");
    let config = config(&dir);
    let (dispatch, capture) = capturing(&config);
    let guard = crate::test_support::capture_with(&dispatch);

    crate::cli::log_started(&config, BIND.parse().expect("address"), false);
    // A client on the same network as the server, refused at the gate.
    let app = router(crate::state::tests::local_state(&config));
    let mut request = get("/v1/whoami", ("x-api-key", "dcx_not_a_real_key"));
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 1, 9], 40_000))));
    send_expecting(&app, request, StatusCode::UNAUTHORIZED).await;
    tracing::info!(peer = %SocketAddr::from((CLIENT, 443)), "client address");
    drop(guard);

    let log = capture.text();
    let started = log
        .lines()
        .find(|line| line.contains("server started"))
        .unwrap_or_else(|| panic!("no start-up line:\n{log}"));
    assert!(
        started.contains(&format!("\"address\":\"{BIND}\"")),
        "{started}"
    );
    assert!(log.contains("203.0.113.0"), "{log}");
    assert!(!log.contains("203.0.113.77"), "{log}");
    // The refused client, logged by the gate, cut to its network.
    assert!(log.contains("127.0.1.0"), "{log}");
    assert!(!log.contains("127.0.1.9"), "{log}");
}

/// Records of crates that log through the `log` crate (rustls, tungstenite)
/// reach the same pipeline, filter and redactor, once the bridge `init_logging`
/// installs (`tracing-subscriber`'s `tracing-log`) is in place.
#[test]
fn log_crate_records_reach_the_redacting_pipeline() {
    // The process-wide bridge; another test may have installed it already.
    let _ = tracing_log::LogTracer::init();
    let dir = TestDir::new("log-capture-bridge");
    let (dispatch, capture) = capturing(&config(&dir));
    tracing::dispatcher::with_default(&dispatch, || {
        log::warn!(
            target: "rustls::server",
            "peer jane.doe@example.org sent a bad certificate from 203.0.113.77"
        );
    });
    let log = capture.text();
    let line = log
        .lines()
        .find(|line| line.contains("sent a bad certificate"))
        .unwrap_or_else(|| panic!("the log record did not arrive:\n{log}"));
    assert!(line.contains("rustls::server"), "{line}");
    assert!(line.contains("[REDACTED:email]"), "{line}");
    assert!(!line.contains("jane.doe"), "{line}");
    assert!(!line.contains("203.0.113.77"), "{line}");
}

/// Request ids are what operators search the logs for: a UUID whose middle
/// groups read like a UK phone number (`0201-7946-0958`) reaches the log
/// whole, in the request's lines, while the same digits elsewhere are
/// still redacted.
#[tokio::test]
async fn a_request_logs_its_uuid_request_id_whole() {
    const UUID_ID: &str = "a1b2c3d4-0201-7946-0958-abcdef012345";
    let dir = TestDir::new("log-capture-request-id");
    let config = config(&dir);
    let (dispatch, capture) = capturing(&config);
    let guard = crate::test_support::capture_with(&dispatch);
    let app = router(crate::state::tests::local_state(&config));
    let mut request = get("/v1/whoami", ("x-api-key", "dcx_not_a_real_key"));
    request
        .headers_mut()
        .insert("x-request-id", UUID_ID.parse().expect("header"));
    send_expecting(&app, request, StatusCode::UNAUTHORIZED).await;
    tracing::info!(
        note = "callback 0201-7946-0958",
        "a phone number in a message"
    );
    drop(guard);

    let log = capture.text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(&format!("\"request_id\":\"{UUID_ID}\"")))
        .collect();
    assert!(
        !lines.is_empty(),
        "no line carries the request id whole:\n{log}"
    );
    assert!(!log.contains("[REDACTED:phone]-abcdef012345"), "{log}");
    let message = log
        .lines()
        .find(|line| line.contains("a phone number in a message"))
        .unwrap_or_else(|| panic!("no message line:\n{log}"));
    assert!(message.contains("[REDACTED:phone]"), "{message}");
}
