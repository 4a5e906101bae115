//! The token endpoints through the router: logins, refresh rotation and
//! reuse, revocation, lockouts and malformed bodies.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use docaiche_auth::password::PasswordConfig;

use super::*;
use crate::config::Config;
use crate::login::Login;
use crate::routes::router;
use crate::routes::tests::{assert_problem, json, send};
use crate::state::AppState;
use crate::state::tests::local_state;

const PASSWORD: &str = "correct horse battery staple";

/// argon2id at the cheapest accepted cost: these tests check behaviour.
fn fast() -> PasswordConfig {
    let mut config = PasswordConfig::default();
    config.memory_kib = 7168;
    config.iterations = 1;
    config
}

/// State with an account `alice@example.com` of `acme` (tenant-admin).
async fn state_with_alice() -> AppState {
    let config = Config::default();
    let mut state = local_state(&config);
    let login = Login::new(&config.auth, &state.auth)
        .expect("login")
        .with_password_config(fast());
    let service = login.service().await.expect("service");
    service
        .create_account(
            &TenantId::new("acme").expect("tenant"),
            AccountEmail::new("alice@example.com").expect("email"),
            &SecretString::from(PASSWORD),
            vec!["tenant-admin".to_owned()],
        )
        .await
        .expect("account");
    state.login = Arc::new(login);
    state
}

fn post(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

fn bearer(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request")
}

fn credentials(email: &str, password: &str) -> String {
    serde_json::json!({ "tenant": "acme", "email": email, "password": password }).to_string()
}

async fn log_in(state: &AppState) -> serde_json::Value {
    let (status, headers, body) = send(
        router(state.clone()),
        post(
            "/v1/auth/token",
            &credentials("Alice@Example.com", PASSWORD),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    json(&body)
}

fn field(value: &serde_json::Value, name: &str) -> String {
    value[name].as_str().expect(name).to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_login_returns_a_token_that_works() {
    let state = state_with_alice().await;
    let tokens = log_in(&state).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900, "15-minute access tokens");
    assert!(
        tokens["refresh_token"]
            .as_str()
            .expect("refresh")
            .starts_with("acme.")
    );
    let (status, _, body) = send(
        router(state.clone()),
        bearer("/v1/whoami", &field(&tokens, "access_token")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let me = json(&body);
    assert_eq!(me["tenant"], "acme");
    assert_eq!(me["auth_method"], "jwt");
    assert_eq!(me["roles"], serde_json::json!(["tenant-admin"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_and_an_unknown_user_get_identical_401s() {
    let state = state_with_alice().await;
    let mut answers = Vec::new();
    for (email, password) in [
        ("alice@example.com", "not the password"),
        ("nobody@example.com", PASSWORD),
    ] {
        let (status, headers, body) = send(
            router(state.clone()),
            post("/v1/auth/token", &credentials(email, password)),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let problem = assert_problem(&headers, &body, "unauthenticated");
        assert_eq!(problem["error"], "invalid_grant");
        answers.push(body);
    }
    assert_eq!(answers[0], answers[1], "byte for byte");
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_are_answered_429_with_retry_after() {
    let state = state_with_alice().await;
    for _ in 0..6 {
        let (status, _, _) = send(
            router(state.clone()),
            post(
                "/v1/auth/token",
                &credentials("alice@example.com", "guess guess"),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password is refused until the lock expires.
    let (status, headers, body) = send(
        router(state.clone()),
        post(
            "/v1/auth/token",
            &credentials("alice@example.com", PASSWORD),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_problem(&headers, &body, "quota-exceeded");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_are_400_invalid_request_with_field_errors() {
    let state = state_with_alice().await;
    for (body, pointers) in [
        ("not json", &[][..]),
        (
            r#"{"tenant": 5, "email": "a@b.c"}"#,
            &["/tenant", "/password"][..],
        ),
        (
            r#"{"tenant": "acme", "email": "not-an-email", "password": "x"}"#,
            &["/email"][..],
        ),
        (
            r#"{"tenant": "acme", "email": "a@b.c", "password": "x", "scope": "all"}"#,
            &["/scope"][..],
        ),
    ] {
        let (status, headers, response) =
            send(router(state.clone()), post("/v1/auth/token", body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let problem = assert_problem(&headers, &response, "invalid-input");
        assert_eq!(problem["error"], "invalid_request");
        let got: Vec<&str> = problem["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["pointer"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got, pointers, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_and_a_replay_revokes_the_whole_family() {
    let state = state_with_alice().await;
    let first = log_in(&state).await;
    let refresh_body = |tokens: &serde_json::Value| {
        serde_json::json!({ "refresh_token": tokens["refresh_token"] }).to_string()
    };
    let (status, _, body) = send(
        router(state.clone()),
        post("/v1/auth/refresh", &refresh_body(&first)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let second = json(&body);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let (status, _, _) = send(
        router(state.clone()),
        bearer("/v1/whoami", &field(&second, "access_token")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The used token again: theft. Both refresh tokens and the access
    // tokens of the session stop working.
    let (status, headers, body) = send(
        router(state.clone()),
        post("/v1/auth/refresh", &refresh_body(&first)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        assert_problem(&headers, &body, "unauthenticated")["error"],
        "invalid_grant"
    );
    let (status, _, _) = send(
        router(state.clone()),
        post("/v1/auth/refresh", &refresh_body(&second)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(
        router(state.clone()),
        bearer("/v1/whoami", &field(&second, "access_token")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_access_token_is_refused_and_junk_revokes_nothing() {
    let state = state_with_alice().await;
    let tokens = log_in(&state).await;
    let access = field(&tokens, "access_token");
    let revoke =
        serde_json::json!({ "token": access, "token_type_hint": "access_token" }).to_string();
    let (status, _, _) = send(router(state.clone()), post("/v1/auth/revoke", &revoke)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(router(state.clone()), bearer("/v1/whoami", &access)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // RFC 7009: an unknown token is not an error.
    let (status, _, _) = send(
        router(state.clone()),
        post("/v1/auth/revoke", r#"{"token": "acme.nonsense"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Revoking the refresh token ends the session.
    let refresh = serde_json::json!({ "token": tokens["refresh_token"] }).to_string();
    let (status, _, _) = send(router(state.clone()), post("/v1/auth/revoke", &refresh)).await;
    assert_eq!(status, StatusCode::OK);
    let again = serde_json::json!({ "refresh_token": tokens["refresh_token"] }).to_string();
    let (status, _, _) = send(router(state.clone()), post("/v1/auth/refresh", &again)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_tenant_can_neither_log_in_nor_use_its_sessions() {
    use docaiche_core::tenant::{StatusChange, Tenant};
    let state = state_with_alice().await;
    let tokens = log_in(&state).await;
    let acme = TenantId::new("acme").expect("tenant");
    let store = state.auth.tenants.store();
    let at = state.auth.clock.now();
    store
        .create(&Tenant::new(acme.clone(), "Acme", at))
        .await
        .expect("registered");
    store
        .set_status(&acme, StatusChange::Suspend { reason: "unpaid" }, at)
        .await
        .expect("suspended");
    state.auth.tenants.invalidate(&acme);

    let (status, headers, body) = send(
        router(state.clone()),
        bearer("/v1/whoami", &field(&tokens, "access_token")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&headers, &body, "tenant-suspended");
    let (status, headers, body) = send(
        router(state.clone()),
        post(
            "/v1/auth/token",
            &credentials("alice@example.com", PASSWORD),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&headers, &body, "tenant-suspended");
    // So does a refresh, which uses the refresh token up.
    let refresh =
        serde_json::json!({ "refresh_token": field(&tokens, "refresh_token") }).to_string();
    let (status, headers, body) =
        send(router(state.clone()), post("/v1/auth/refresh", &refresh)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&headers, &body, "tenant-suspended");
    // A wrong password still gets the plain 401: the suspension is not
    // revealed to whoever does not hold the password.
    let (status, _, _) = send(
        router(state.clone()),
        post("/v1/auth/token", &credentials("alice@example.com", "wrong")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    store
        .set_status(&acme, StatusChange::Resume, at)
        .await
        .expect("resumed");
    state.auth.tenants.invalidate(&acme);
    let tokens = log_in(&state).await;
    let (status, _, _) = send(
        router(state.clone()),
        bearer("/v1/whoami", &field(&tokens, "access_token")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
