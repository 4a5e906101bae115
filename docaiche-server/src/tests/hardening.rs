//! Regression tests for the outside security review's findings on
//! credentials, each an attack performed over real HTTP against servers
//! on `127.0.0.1:0`, from other loopback addresses where the source
//! matters (Linux routes all of 127.0.0.0/8 to the loopback interface, so
//! a client socket bound to 127.0.0.2 is another client address):
//!
//! - forged API keys carrying a victim's public lookup part, and wrong
//!   passwords for a victim's account, sent from other addresses, never
//!   lock the victim's valid key or known device out, and the attacker's
//!   own source is slowed;
//! - an erased subject's access token, refresh token and every key
//!   (including one its token created) are refused within a second on two
//!   instances sharing PostgreSQL and Redis.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::state::AppState;

/// A server of `state` on `127.0.0.1:0`, stopped when the sender drops.
async fn serve(state: AppState) -> (SocketAddr, oneshot::Sender<()>) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let listener = crate::tls::ServerListener::new(tcp, None, Duration::from_secs(30));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(crate::shutdown::serve(
        listener.into_serve(),
        crate::routes::router(state),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    (addr, stop)
}

/// A plain-HTTP client whose connections come from `from` (a loopback
/// address).
fn client_from(from: &str) -> reqwest::Client {
    crate::test_support::plain_http_client(Some(from.parse::<IpAddr>().expect("address")))
}

/// `GET /v1/whoami` with `X-API-Key: key`: the status.
async fn whoami_with_key(client: &reqwest::Client, addr: SocketAddr, key: &str) -> StatusCode {
    client
        .get(format!("http://{addr}/v1/whoami"))
        .header("x-api-key", key)
        .send()
        .await
        .expect("whoami")
        .status()
}

/// `GET /v1/whoami` with a bearer token: the status.
#[cfg(all(feature = "postgres", feature = "redis"))]
async fn whoami_with_token(client: &reqwest::Client, addr: SocketAddr, token: &str) -> StatusCode {
    client
        .get(format!("http://{addr}/v1/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .expect("whoami")
        .status()
}

/// `POST path` with a JSON body (and a `Cookie` header): status, the
/// `Set-Cookie` header, the body.
async fn post_json(
    client: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    body: &Value,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = client
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("post");
    let status = response.status();
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, set_cookie, body)
}

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attacker_from_other_addresses_never_locks_out_a_victims_key_or_known_device() {
    let dir = crate::test_support::TestDir::new("hardening-lockout");
    let mut config = crate::config::Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    // A lock of a minute at least, so a slow machine cannot see it expire
    // between the attack and the last check.
    config.auth.lockout.account = docaiche_auth::lockout::BackoffPolicy::new(5, 60_000, 300);
    let state = crate::state::tests::local_state(&config);
    let victim_key = state
        .auth
        .bootstrap_key("acme", "victim", "ci")
        .await
        .expect("key")
        .key
        .expose_secret()
        .to_owned();
    state
        .login
        .service()
        .await
        .expect("login")
        .create_account(
            &docaiche_core::TenantId::new("acme").expect("tenant"),
            docaiche_core::account::AccountEmail::new("victim@example.com").expect("email"),
            &docaiche_core::SecretString::from(PASSWORD),
            vec!["tenant-admin".to_owned()],
        )
        .await
        .expect("account");
    let (addr, _stop) = serve(state).await;
    let victim = client_from("127.1.0.3");
    let login = |password: &str| json!({"tenant": "acme", "email": "victim@example.com", "password": password});

    // The victim signed in from their laptop once: a device cookie.
    let (status, set_cookie, _) =
        post_json(&victim, addr, "/v1/auth/token", &login(PASSWORD), None).await;
    assert_eq!(status, StatusCode::OK);
    let set_cookie = set_cookie.expect("a device cookie is set");
    assert!(
        set_cookie.contains("HttpOnly")
            && set_cookie.contains("Secure")
            && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let device = set_cookie.split(';').next().expect("name=value").to_owned();

    // The attacker knows the key's public part (type prefix and lookup id)
    // and the account's e-mail, and sends from six other addresses.
    let forged = format!("{}{}", &victim_key[..17], "Z".repeat(victim_key.len() - 17));
    let mut slowed_keys = 0;
    let mut slowed_logins = 0;
    for attacker in 2..8 {
        let attacker = client_from(&format!("127.0.0.{attacker}"));
        for _ in 0..15 {
            match whoami_with_key(&attacker, addr, &forged).await {
                StatusCode::TOO_MANY_REQUESTS => slowed_keys += 1,
                status => assert_eq!(status, StatusCode::UNAUTHORIZED),
            }
        }
        for _ in 0..4 {
            let (status, _, _) =
                post_json(&attacker, addr, "/v1/auth/token", &login("guess"), None).await;
            match status {
                StatusCode::TOO_MANY_REQUESTS => slowed_logins += 1,
                status => assert_eq!(status, StatusCode::UNAUTHORIZED),
            }
        }
        // Meanwhile the victim's key and known device keep working.
        assert_eq!(
            whoami_with_key(&victim, addr, &victim_key).await,
            StatusCode::OK,
            "the victim's valid key during the attack"
        );
    }
    let (status, _, body) = post_json(
        &victim,
        addr,
        "/v1/auth/token",
        &login(PASSWORD),
        Some(&device),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the victim's password on a known device during the attack: {body}"
    );
    assert!(body["access_token"].is_string());
    // The guesser was slowed: each address past its ten free failures,
    // and the account for clients it does not know.
    assert!(
        slowed_keys >= 6 * 4,
        "forged keys answered 429: {slowed_keys}"
    );
    assert!(slowed_logins > 0, "wrong passwords answered 429");
    let (status, _, _) = post_json(
        &client_from("127.2.0.9"),
        addr,
        "/v1/auth/token",
        &login(PASSWORD),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "an unknown client waits while the account is under attack"
    );
}

/// The erasure test of the review: two instances on one PostgreSQL
/// database and one Redis (token revocations and API key announcements).
#[cfg(all(feature = "postgres", feature = "redis"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_subjects_credentials_are_refused_within_a_second_on_every_instance() {
    use std::time::Instant;

    use crate::config::{AnnounceBackend, RevocationBackend};

    const SUITE: &str = "server-redis";
    let Some(pg_url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let Some(redis_url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_REDIS_URL") else {
        return;
    };
    let dir = crate::test_support::TestDir::new("hardening-erase");
    let mut config = crate::config::Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let (_schema, pg_env) =
        crate::wiring::tests::on_test_schema(&pg_url, "erase_test", &mut config).await;
    config.revocation.backend = RevocationBackend::Redis;
    config.revocation.announce_api_keys = AnnounceBackend::Redis;
    config.revocation.url_source = Some("env:TEST_REDIS_URL".into());
    // The checks below fail many times from one address, by design: no
    // lockout may turn their 401 into a 429.
    let generous = docaiche_auth::lockout::BackoffPolicy::new(100_000, 1000, 1);
    config.auth.lockout.client_addr = generous;
    config.auth.lockout.network = generous;
    config.validate().expect("valid");
    let env = move |name: &str| {
        pg_env(name).or_else(|| (name == "TEST_REDIS_URL").then(|| redis_url.clone()))
    };
    crate::storage::prepare_data_dir(dir.path()).expect("data dir");
    crate::keys::prepare(&config.key_source()).expect("keys");
    let a = AppState::from_config(&config, &env)
        .await
        .expect("instance a");
    // One writer per file trail: the second instance keeps its own.
    let mut second = config.clone();
    second.audit.path = Some(dir.path().join("b").join("audit.jsonl"));
    let b = AppState::from_config(&second, &env)
        .await
        .expect("instance b");
    for state in [&a, &b] {
        let listening = state.auth.invalidation_listener().expect("listens");
        tokio::time::timeout(Duration::from_secs(5), listening.subscribed())
            .await
            .expect("subscribed to the announcements");
    }
    let tenant = format!("t{}", uuid::Uuid::new_v4().simple());
    let acme = docaiche_core::TenantId::new(&tenant).expect("tenant");
    let account = a
        .login
        .service()
        .await
        .expect("login")
        .create_account(
            &acme,
            docaiche_core::account::AccountEmail::new("alice@example.com").expect("email"),
            &docaiche_core::SecretString::from(PASSWORD),
            vec!["tenant-admin".to_owned()],
        )
        .await
        .expect("account");
    let alice = account.id.as_str().to_owned();
    let issued_key = crate::test_support::api_key(
        &a,
        &tenant,
        Some(&alice),
        "alice-laptop",
        &["documents:read"],
    )
    .await;
    let dpo =
        crate::test_support::api_key(&a, &tenant, Some("dpo"), "dpo", &["privacy:erase"]).await;
    let (addr_a, _stop_a) = serve(a).await;
    let (addr_b, _stop_b) = serve(b).await;
    let client = client_from("127.0.0.1");

    // Alice signs in on A; her access token works on both instances and
    // creates a key that never expires, on B.
    let (status, _, tokens) = post_json(
        &client,
        addr_a,
        "/v1/auth/token",
        &json!({"tenant": tenant, "email": "alice@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let response = client
        .post(format!("http://{addr_b}/v1/keys"))
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .body(json!({"name": "alice-forever", "scopes": ["documents:read"]}).to_string())
        .send()
        .await
        .expect("create key");
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("json");
    let created_key = created["key"].as_str().expect("key").to_owned();
    let keys = [issued_key, created_key];
    for addr in [addr_a, addr_b] {
        assert_eq!(
            whoami_with_token(&client, addr, &access).await,
            StatusCode::OK
        );
        for key in &keys {
            assert_eq!(whoami_with_key(&client, addr, key).await, StatusCode::OK);
        }
    }

    // The DPO erases alice on A.
    let response = client
        .post(format!("http://{addr_a}/v1/privacy/erase"))
        .header("x-api-key", &dpo)
        .header("content-type", "application/json")
        .body(json!({"subject": alice}).to_string())
        .send()
        .await
        .expect("erase");
    let erased_at = Instant::now();
    assert!(response.status().is_success(), "{}", response.status());

    // Within a second, on both instances: every credential refused.
    let all_refused = |addr: SocketAddr| {
        let (client, access, keys) = (&client, &access, &keys);
        async move {
            let mut refused =
                whoami_with_token(client, addr, access).await == StatusCode::UNAUTHORIZED;
            for key in keys {
                refused &= whoami_with_key(client, addr, key).await == StatusCode::UNAUTHORIZED;
            }
            refused
        }
    };
    loop {
        if all_refused(addr_a).await && all_refused(addr_b).await {
            break;
        }
        assert!(
            erased_at.elapsed() < Duration::from_secs(1),
            "an erased subject's credential still works after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for addr in [addr_a, addr_b] {
        let (status, _, body) = post_json(
            &client,
            addr,
            "/v1/auth/refresh",
            &json!({"refresh_token": refresh}),
            None,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "refresh on {addr}: {body}"
        );
    }
    assert!(erased_at.elapsed() < Duration::from_secs(1));
    // And the token can no longer create anything.
    let response = client
        .post(format!("http://{addr_b}/v1/keys"))
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .body(json!({"name": "after-erasure", "scopes": ["documents:read"]}).to_string())
        .send()
        .await
        .expect("create key");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    crate::report::mark_ran(SUITE, "an erased subject refused on two instances");
}
