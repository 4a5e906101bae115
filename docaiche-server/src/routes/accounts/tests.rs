//! The account routes through the router: the whole life of an invited
//! account on SQLite and on PostgreSQL, escalation and cross-tenant
//! attempts, and the listing's filters.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use docaiche_core::account::AccountEmail;
use docaiche_core::{SecretString, TenantId};
use serde_json::{Value, json as object};

use crate::config::Config;
use crate::openapi::tests::conforms;
use crate::routes::router;
use crate::routes::tests::{assert_problem, json, send};
use crate::state::AppState;
use crate::test_support::{TestDir, api_key, key_with};

const ADMIN_PASSWORD: &str = "admin passphrase for the tests";
const BOB_PASSWORD: &str = "bob's own long passphrase";

/// A request with `credential` (`Bearer …` or an API key) and an
/// optional JSON body.
pub(crate) fn call(
    method: &str,
    uri: &str,
    credential: &str,
    body: Option<Value>,
) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    request = if let Some(token) = credential.strip_prefix("Bearer ") {
        request.header(header::AUTHORIZATION, format!("Bearer {token}"))
    } else {
        request.header("x-api-key", credential)
    };
    match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .expect("request")
}

/// A public JSON `POST`.
fn post_public(uri: &str, body: &Value) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request")
}

/// Sign in to `tenant` as `email`: the token pair, or the status.
pub(crate) async fn sign_in(
    app: &Router,
    tenant: &str,
    email: &str,
    password: &str,
) -> Result<Value, StatusCode> {
    let (status, _, body) = send(
        app.clone(),
        post_public(
            "/v1/auth/token",
            &object!({ "tenant": tenant, "email": email, "password": password }),
        ),
    )
    .await;
    if status == StatusCode::OK {
        Ok(json(&body))
    } else {
        Err(status)
    }
}

/// A refreshed pair, or the status.
pub(crate) async fn refresh(app: &Router, pair: &Value) -> Result<Value, StatusCode> {
    let (status, _, body) = send(
        app.clone(),
        post_public(
            "/v1/auth/refresh",
            &object!({ "refresh_token": pair["refresh_token"] }),
        ),
    )
    .await;
    if status == StatusCode::OK {
        Ok(json(&body))
    } else {
        Err(status)
    }
}

/// `Bearer <access token>` of `pair`.
pub(crate) fn bearer(pair: &Value) -> String {
    format!(
        "Bearer {}",
        pair["access_token"].as_str().expect("access token")
    )
}

/// The roles `GET /v1/whoami` shows for `credential`, or the status.
async fn roles_of(app: &Router, credential: &str) -> Result<Vec<String>, StatusCode> {
    let (status, _, body) = send(app.clone(), call("GET", "/v1/whoami", credential, None)).await;
    if status != StatusCode::OK {
        return Err(status);
    }
    Ok(json(&body)["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|r| r.as_str().expect("role").to_owned())
        .collect())
}

/// Set a password with `token`: the status.
pub(crate) async fn redeem(app: &Router, token: &str, password: &str) -> StatusCode {
    send(
        app.clone(),
        post_public(
            "/v1/auth/password",
            &object!({ "token": token, "password": password }),
        ),
    )
    .await
    .0
}

/// The state of `config` on its store (the data directory prepared).
pub(crate) async fn state_for(config: &Config, env: crate::config::EnvLookup<'_>) -> AppState {
    crate::storage::prepare_data_dir(&config.storage.data_dir).expect("data dir");
    crate::keys::prepare(&config.key_source()).expect("keys");
    AppState::from_config(config, env).await.expect("state")
}

/// A tenant administrator's account in `tenant`, signed in.
pub(crate) async fn admin_of(state: &AppState, app: &Router, tenant: &str) -> Value {
    let email = format!("admin@{tenant}.example");
    state
        .login
        .service()
        .await
        .expect("login")
        .create_account(
            &TenantId::new(tenant).expect("tenant"),
            AccountEmail::new(&email).expect("email"),
            &SecretString::from(ADMIN_PASSWORD),
            vec!["tenant-admin".to_owned()],
        )
        .await
        .expect("admin account");
    sign_in(app, tenant, &email, ADMIN_PASSWORD)
        .await
        .expect("the admin signs in")
}

/// The life of an invited account, by its tenant's administrator: the
/// invitation, a password, sign-in, roles granted then removed (each seen
/// at the next refresh), disabled (its tokens and API keys stop at once),
/// enabled, reset, signed out, deleted; every change on the audit trail
/// with actor and roles before and after.
async fn account_lifecycle(state: &AppState, tenant: &str) {
    let app = router(state.clone());
    let admin = bearer(&admin_of(state, &app, tenant).await);
    let bob_email = format!("Bob@{tenant}.example");

    // Invite.
    let (status, headers, body) = send(
        app.clone(),
        call(
            "POST",
            "/v1/accounts",
            &admin,
            Some(object!({ "email": bob_email, "roles": ["reader"] })),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    conforms("invite", "InvitedAccount", &body);
    let invited = json(&body);
    let bob = invited["account"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        headers[header::LOCATION],
        format!("/v1/accounts/{bob}").as_str()
    );
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(invited["account"]["email"], bob_email.to_lowercase());
    assert_eq!(invited["account"]["status"], "active");
    assert_eq!(invited["invitation"]["kind"], "invitation");
    let invitation = invited["invitation"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    // The same e-mail again: 409.
    let (status, headers, body) = send(
        app.clone(),
        call(
            "POST",
            "/v1/accounts",
            &admin,
            Some(object!({ "email": bob_email, "roles": [] })),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_problem(&headers, &body, "conflict");

    // Nobody signs in before the invitation is redeemed.
    assert_eq!(
        sign_in(&app, tenant, &bob_email, BOB_PASSWORD).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    // A refused password does not spend the invitation; a forged token is 401.
    assert_eq!(
        redeem(&app, &invitation, "too short").await,
        StatusCode::BAD_REQUEST
    );
    let forged = format!("{}x", &invitation[..invitation.len() - 1]);
    assert_eq!(
        redeem(&app, &forged, BOB_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        redeem(&app, &invitation, BOB_PASSWORD).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        redeem(&app, &invitation, "another long passphrase").await,
        StatusCode::UNAUTHORIZED,
        "single use"
    );
    let pair = sign_in(&app, tenant, &bob_email, BOB_PASSWORD)
        .await
        .expect("bob signs in");
    assert_eq!(
        roles_of(&app, &bearer(&pair)).await,
        Ok(vec!["reader".to_owned()])
    );

    // Grant, then remove, a role: each seen at the next refresh.
    let roles_uri = format!("/v1/accounts/{bob}/roles");
    let (status, _, body) = send(
        app.clone(),
        call(
            "PUT",
            &roles_uri,
            &admin,
            Some(object!({ "roles": ["reader", "editor"] })),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    conforms("roles", "AccountView", &body);
    let pair = refresh(&app, &pair).await.expect("refresh");
    let mut roles = roles_of(&app, &bearer(&pair)).await.expect("whoami");
    roles.sort();
    assert_eq!(roles, ["editor", "reader"]);
    let (status, _, _) = send(
        app.clone(),
        call(
            "PUT",
            &roles_uri,
            &admin,
            Some(object!({ "roles": ["reader"] })),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let pair = refresh(&app, &pair).await.expect("refresh");
    assert_eq!(
        roles_of(&app, &bearer(&pair)).await,
        Ok(vec!["reader".to_owned()])
    );

    // Disable: the access token, the refresh token and the API keys stop.
    let bob_key = api_key(state, tenant, Some(&bob), "bob-laptop", &["documents:read"]).await;
    assert!(roles_of(&app, &bob_key).await.is_ok());
    let (status, _, body) = send(
        app.clone(),
        call("POST", &format!("/v1/accounts/{bob}/disable"), &admin, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["status"], "disabled");
    assert_eq!(
        roles_of(&app, &bearer(&pair)).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        refresh(&app, &pair).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        roles_of(&app, &bob_key).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        sign_in(&app, tenant, &bob_email, BOB_PASSWORD).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    let (_, _, body) = send(
        app.clone(),
        call("GET", "/v1/accounts?status=disabled", &admin, None),
    )
    .await;
    conforms("list", "AccountPage", &body);
    let listed: Vec<Value> = json(&body)["items"].as_array().expect("items").clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], bob.as_str());

    // Enable (a second later: revocations are by issue time, in seconds),
    // then a reset: the old password stops, the new one works.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _, _) = send(
        app.clone(),
        call("POST", &format!("/v1/accounts/{bob}/enable"), &admin, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let pair = sign_in(&app, tenant, &bob_email, BOB_PASSWORD)
        .await
        .expect("enabled again");
    let (status, _, body) = send(
        app.clone(),
        call(
            "POST",
            &format!("/v1/accounts/{bob}/password-reset"),
            &admin,
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    conforms("reset", "TokenView", &body);
    let reset = json(&body)["token"].as_str().expect("token").to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        redeem(&app, &reset, "bob's brand new passphrase").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        refresh(&app, &pair).await.err(),
        Some(StatusCode::UNAUTHORIZED),
        "a reset ends sessions"
    );
    assert!(
        sign_in(&app, tenant, &bob_email, BOB_PASSWORD)
            .await
            .is_err()
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let pair = sign_in(&app, tenant, &bob_email, "bob's brand new passphrase")
        .await
        .expect("the new password");
    assert!(roles_of(&app, &bearer(&pair)).await.is_ok());

    // Force sign-out.
    let (status, _, _) = send(
        app.clone(),
        call(
            "POST",
            &format!("/v1/accounts/{bob}/sign-out"),
            &admin,
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        roles_of(&app, &bearer(&pair)).await,
        Err(StatusCode::UNAUTHORIZED)
    );

    // A platform administrator suspends the tenant: every credential of it
    // gets the suspension problem (sessions, API keys, sign-ins), until it
    // is resumed.
    let platform = key_with(state, "platform", &["tenants:cross", "admin:access"]).await;
    let (status, _, body) = send(
        app.clone(),
        call(
            "POST",
            "/v1/tenants",
            &platform,
            Some(object!({ "id": tenant, "display_name": "Acme" })),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let admin_email = format!("admin@{tenant}.example");
    let (status, _, _) = send(
        app.clone(),
        call(
            "POST",
            &format!("/v1/tenants/{tenant}/suspend"),
            &platform,
            Some(object!({ "reason": "unpaid invoice" })),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let tenant_key = key_with(state, tenant, &["documents:read"]).await;
    for credential in [&admin, &tenant_key] {
        let (status, headers, body) =
            send(app.clone(), call("GET", "/v1/accounts", credential, None)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_problem(&headers, &body, "tenant-suspended");
    }
    let (status, headers, body) = send(
        app.clone(),
        post_public(
            "/v1/auth/token",
            &object!({ "tenant": tenant, "email": admin_email, "password": ADMIN_PASSWORD }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&headers, &body, "tenant-suspended");
    let (status, _, _) = send(
        app.clone(),
        call(
            "POST",
            &format!("/v1/tenants/{tenant}/resume"),
            &platform,
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(app.clone(), call("GET", "/v1/accounts", &admin, None)).await;
    assert_eq!(status, StatusCode::OK, "resumed: served again");

    // The trail: every change, by the admin, with the roles before and after.
    let trail = state.audit.as_ref().expect("trail");
    docaiche_core::AuditSink::flush(&trail.buffer)
        .await
        .expect("flushed");
    let auditor = key_with(state, tenant, &["audit:read"]).await;
    let (status, _, body) = send(
        app.clone(),
        call(
            "GET",
            "/v1/admin/audit?action_prefix=account.&limit=500",
            &auditor,
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let events: Vec<Value> = json(&body)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["event"].clone())
        .collect();
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    for action in [
        "account.create",
        "account.password_set",
        "account.roles",
        "account.disable",
        "account.enable",
        "account.password_reset",
        "account.sign_out",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let changes: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["action"] == "account.roles")
        .map(|e| {
            assert!(
                e["actor"].as_str().is_some_and(|a| a.starts_with('u')),
                "{e}"
            );
            (
                e["details"]["roles_before"].as_str().expect("before"),
                e["details"]["roles_after"].as_str().expect("after"),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [("reader", "reader editor"), ("reader editor", "reader")]
    );

    // Delete: through the erasure, which takes privacy:erase beside
    // accounts:manage (tenant-admin alone is refused).
    let (status, _, _) = send(
        app.clone(),
        call("DELETE", &format!("/v1/accounts/{bob}"), &admin, None),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let eraser = key_with(state, tenant, &["accounts:manage", "privacy:erase"]).await;
    let (status, headers, body) = send(
        app.clone(),
        call("DELETE", &format!("/v1/accounts/{bob}"), &eraser, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(
        headers[header::LOCATION]
            .to_str()
            .is_ok_and(|l| l.starts_with("/v1/privacy/requests/"))
    );
    assert_eq!(json(&body)["report"]["account_deleted"], true);
    let (status, _, _) = send(
        app.clone(),
        call("GET", &format!("/v1/accounts/{bob}"), &admin, None),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A configuration on SQLite under `dir`.
pub(crate) fn config(dir: &TestDir) -> Config {
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.audit.fsync = crate::audit::FsyncSetting::Never;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_account_lives_and_ends_under_its_admin_on_sqlite() {
    let dir = TestDir::new("accounts-sqlite");
    let state = state_for(&config(&dir), &|_| None).await;
    account_lifecycle(&state, "acme").await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_account_lives_and_ends_under_its_admin_on_postgres() {
    const SUITE: &str = "server-postgres";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let dir = TestDir::new("accounts-postgres");
    let mut config = config(&dir);
    let (schema, env) =
        crate::wiring::tests::on_test_schema(&url, "accounts_test", &mut config).await;
    config.validate().expect("valid");
    let state = state_for(&config, &env).await;
    account_lifecycle(&state, "acme").await;
    crate::report::mark_ran(SUITE, &format!("accounts schema {}", schema.name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_one_grants_more_than_they_hold_or_reaches_another_tenant() {
    let dir = TestDir::new("accounts-escalation");
    let state = state_for(&config(&dir), &|_| None).await;
    let app = router(state.clone());
    // A limited administrator: accounts, and reading documents and jobs.
    let limited = key_with(
        &state,
        "acme",
        &["accounts:manage", "documents:read", "jobs:read"],
    )
    .await;
    let invite = |credential: &str, roles: Value| {
        call(
            "POST",
            "/v1/accounts",
            credential,
            Some(object!({ "email": "carol@acme.example", "roles": roles })),
        )
    };
    // `editor` holds documents:* — more than documents:read.
    let (status, headers, body) = send(app.clone(), invite(&limited, object!(["editor"]))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&headers, &body, "forbidden");
    // A cross-tenant role is never an account's (403); an unknown role is
    // a reference to nothing (404); a repeated one is malformed (400).
    for (roles, expected) in [
        (object!(["platform-admin"]), StatusCode::FORBIDDEN),
        (object!(["no-such-role"]), StatusCode::NOT_FOUND),
        (object!(["reader", "reader"]), StatusCode::BAD_REQUEST),
    ] {
        let (status, _, body) = send(app.clone(), invite(&limited, roles.clone())).await;
        assert_eq!(
            status,
            expected,
            "{roles}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // `reader` is within its permissions.
    let (status, _, body) = send(app.clone(), invite(&limited, object!(["reader"]))).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let carol = json(&body)["account"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Nor can it take away a role it could not give.
    let full = key_with(
        &state,
        "acme",
        &["accounts:manage", "documents:*", "jobs:read"],
    )
    .await;
    let (status, _, _) = send(
        app.clone(),
        call(
            "PUT",
            &format!("/v1/accounts/{carol}/roles"),
            &full,
            Some(object!({ "roles": ["editor"] })),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(
        app.clone(),
        call(
            "PUT",
            &format!("/v1/accounts/{carol}/roles"),
            &limited,
            Some(object!({ "roles": [] })),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "demoting an editor takes documents:*"
    );

    // Another tenant's administrator sees nothing of acme's: 404 for every
    // route on carol's id, and for `?tenant=acme` without tenants:cross.
    let globex = key_with(
        &state,
        "globex",
        &["accounts:manage", "documents:*", "privacy:erase"],
    )
    .await;
    for (method, path, body) in [
        ("GET", format!("/v1/accounts/{carol}"), None),
        (
            "PUT",
            format!("/v1/accounts/{carol}/roles"),
            Some(object!({ "roles": [] })),
        ),
        ("POST", format!("/v1/accounts/{carol}/disable"), None),
        ("POST", format!("/v1/accounts/{carol}/enable"), None),
        ("POST", format!("/v1/accounts/{carol}/password-reset"), None),
        ("POST", format!("/v1/accounts/{carol}/sign-out"), None),
        ("DELETE", format!("/v1/accounts/{carol}/mfa"), None),
        ("DELETE", format!("/v1/accounts/{carol}"), None),
        ("GET", "/v1/accounts?tenant=acme".to_owned(), None),
        ("GET", format!("/v1/accounts/{carol}?tenant=acme"), None),
    ] {
        let (status, headers, body) = send(app.clone(), call(method, &path, &globex, body)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_problem(&headers, &body, "not-found");
    }
    let (_, _, body) = send(app.clone(), call("GET", "/v1/accounts", &globex, None)).await;
    assert_eq!(json(&body)["items"], object!([]), "globex has no accounts");
    // With tenants:cross, the platform reaches acme's accounts.
    let platform = key_with(&state, "platform", &["accounts:manage", "tenants:cross"]).await;
    let (status, _, body) = send(
        app.clone(),
        call(
            "GET",
            &format!("/v1/accounts/{carol}?tenant=acme"),
            &platform,
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["tenant"], "acme");
    // Deleting needs privacy:erase too.
    let (status, _, _) = send(
        app.clone(),
        call("DELETE", &format!("/v1/accounts/{carol}"), &full, None),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listing_filters_by_role_status_and_email_prefix_a_page_at_a_time() {
    let dir = TestDir::new("accounts-list");
    let state = state_for(&config(&dir), &|_| None).await;
    let app = router(state.clone());
    let admin = key_with(
        &state,
        "acme",
        &["accounts:manage", "documents:*", "jobs:read"],
    )
    .await;
    for (email, roles) in [
        ("ann@acme.example", object!(["reader"])),
        ("anna@acme.example", object!(["editor"])),
        ("ben@acme.example", object!(["reader"])),
        ("o'brien%_@acme.example", object!([])),
    ] {
        let (status, _, body) = send(
            app.clone(),
            call(
                "POST",
                "/v1/accounts",
                &admin,
                Some(object!({ "email": email, "roles": roles })),
            ),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let emails = |body: &[u8]| -> Vec<String> {
        let mut emails: Vec<String> = json(body)["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|a| a["email"].as_str().expect("email").to_owned())
            .collect();
        emails.sort();
        emails
    };
    for (query, expected) in [
        ("role=reader", vec!["ann@acme.example", "ben@acme.example"]),
        (
            "email_prefix=AN",
            vec!["ann@acme.example", "anna@acme.example"],
        ),
        ("email_prefix=o'brien%25_", vec!["o'brien%_@acme.example"]),
        ("email_prefix=%25", vec![]),
        ("role=editor&status=active", vec!["anna@acme.example"]),
        ("status=disabled", vec![]),
    ] {
        let (status, _, body) = send(
            app.clone(),
            call("GET", &format!("/v1/accounts?{query}"), &admin, None),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(emails(&body), expected, "{query}");
    }
    // Pages of one, followed to the end: every account once.
    let mut seen = Vec::new();
    let mut uri = "/v1/accounts?limit=1".to_owned();
    loop {
        let (_, _, body) = send(app.clone(), call("GET", &uri, &admin, None)).await;
        let page = json(&body);
        seen.extend(emails(&body));
        match page["next"].as_str() {
            Some(next) => uri = format!("/v1/accounts?limit=1&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    for query in [
        "status=gone",
        "limit=0",
        "after=%27%20OR%201%3D1",
        "bogus=1",
    ] {
        let (status, headers, body) = send(
            app.clone(),
            call("GET", &format!("/v1/accounts?{query}"), &admin, None),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_problem(&headers, &body, "invalid-input");
    }
}
