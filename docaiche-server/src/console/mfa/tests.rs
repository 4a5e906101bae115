//! The second factor through the whole router, on a clock the tests move:
//! sign-in with password and code (a new cookie), a code refused on second
//! use, recovery codes used once, pending sessions kept to the factor's
//! pages, enrolment required of platform administrators and of a tenant's
//! administrators when it says so, and guesses locked out.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use docaiche_auth::mfa::{Algorithm, Digits, STEP_SECONDS, Totp};
use docaiche_core::account::AccountEmail;
use docaiche_core::tenant::{Tenant, TenantSettings};
use docaiche_core::{Clock, ManualClock, SecretString, TenantId};

use super::super::tests::{PASSWORD, browser, csrf_of, encoded, page, session_cookie};
use crate::routes::accounts::tests::{call, config};
use crate::routes::router;
use crate::routes::tests::send;
use crate::state::AppState;
use crate::state::tests::state_with_clock;
use crate::test_support::TestDir;

/// A router over memory stores on a manual clock.
fn app_on_clock(label: &str) -> (TestDir, AppState, Router, ManualClock) {
    let dir = TestDir::new(label);
    let clock = ManualClock::new();
    let state = state_with_clock(&config(&dir), Arc::new(clock.clone()));
    let app = router(state.clone());
    (dir, state, app, clock)
}

/// An account `email` in `tenant` with `role` and the tests' password.
async fn account(state: &AppState, tenant: &str, email: &str, role: &str) {
    state
        .login
        .service()
        .await
        .expect("login")
        .create_account(
            &TenantId::new(tenant).expect("tenant"),
            AccountEmail::new(email).expect("email"),
            &SecretString::from(PASSWORD),
            vec![role.to_owned()],
        )
        .await
        .expect("account");
}

/// Post the sign-in form: where it sends the browser, and the cookie.
async fn sign_in(app: &Router, tenant: &str, email: &str) -> (String, String) {
    let form = format!(
        "tenant={}&email={}&password={}",
        encoded(tenant),
        encoded(email),
        encoded(PASSWORD)
    );
    let (status, headers, body) = send(
        app.clone(),
        browser("POST", "/console/sign-in", None, Some(&form)),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "{}",
        String::from_utf8_lossy(&body)
    );
    (location(&headers), session_cookie(&headers))
}

fn location(headers: &HeaderMap) -> String {
    headers[header::LOCATION]
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// `POST uri` with `cookie` and `form` (the page's CSRF token first): the
/// status, headers and body text.
async fn post(
    app: &Router,
    uri: &str,
    cookie: &str,
    form: &str,
) -> (StatusCode, HeaderMap, String) {
    let (status, headers, body) =
        send(app.clone(), browser("POST", uri, Some(cookie), Some(form))).await;
    (
        status,
        headers,
        String::from_utf8(body.to_vec()).expect("utf-8"),
    )
}

/// The text between `start` and the next `<`.
fn text_after<'h>(html: &'h str, start: &str) -> &'h str {
    let at = html.find(start).expect(start) + start.len();
    html[at..].split('<').next().expect("text")
}

/// Enrol `cookie`'s account from its second-factor page: the app's TOTP
/// and the recovery codes (the enrolment still pending).
async fn begin_enrolment(app: &Router, cookie: &str) -> (Totp, Vec<String>, String) {
    let status = page(app, "/console/account/mfa", cookie).await;
    let csrf = csrf_of(&status);
    let (code, _, html) = post(
        app,
        "/console/account/mfa/enroll",
        cookie,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{html}");
    let uri = text_after(&html, r#"<code id="mfa-uri">"#);
    assert!(uri.starts_with("otpauth://totp/DocAIche:"), "{uri}");
    let secret = text_after(&html, r#"<code id="mfa-secret">"#);
    let totp = Totp::from_base32(secret, Algorithm::Sha1, Digits::Six).expect("secret");
    let recovery: Vec<String> = html
        .split(r#"<ol id="mfa-recovery-codes">"#)
        .nth(1)
        .and_then(|rest| rest.split("</ol>").next())
        .expect("the codes")
        .split("<code>")
        .skip(1)
        .filter_map(|c| c.split('<').next())
        .map(str::to_owned)
        .collect();
    assert_eq!(recovery.len(), 10);
    (totp, recovery, csrf_of(&html))
}

/// The code of `totp` now.
fn code_now(totp: &Totp, clock: &ManualClock) -> String {
    totp.code_at(clock.now()).expose_secret().to_owned()
}

/// A six-digit code that is none of `totp`'s in the window.
fn wrong_code(totp: &Totp, clock: &ManualClock) -> String {
    let step = Totp::step_at(clock.now()).expect("step");
    let window: Vec<String> = (step - 1..=step + 1)
        .map(|s| totp.code_at_step(s).expose_secret().to_owned())
        .collect();
    (0..10u32)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !window.contains(c))
        .expect("a code outside the window")
}

fn next_step(clock: &ManualClock) {
    clock.advance(Duration::from_secs(STEP_SECONDS));
}

/// Post `code` on the code page of pending session `cookie`.
async fn submit_code(app: &Router, cookie: &str, code: &str) -> (StatusCode, HeaderMap, String) {
    let (status, _, body) = send(
        app.clone(),
        browser("GET", "/console/sign-in/code", Some(cookie), None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let csrf = csrf_of(std::str::from_utf8(&body).expect("utf-8"));
    post(
        app,
        "/console/sign-in/code",
        cookie,
        &format!("csrf={csrf}&code={}", encoded(code)),
    )
    .await
}

/// A GET with `cookie`: its status and where it redirects.
async fn get(app: &Router, uri: &str, cookie: &str) -> (StatusCode, Option<String>) {
    let (status, headers, _) = send(app.clone(), browser("GET", uri, Some(cookie), None)).await;
    (
        status,
        headers
            .get(header::LOCATION)
            .map(|l| l.to_str().expect("ascii").to_owned()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_code_sign_in_and_a_code_is_refused_on_second_use() {
    let (_dir, state, app, clock) = app_on_clock("mfa-sign-in");
    account(&state, "acme", "admin@acme.example", "tenant-admin").await;
    let (next, cookie) = sign_in(&app, "acme", "admin@acme.example").await;
    assert_eq!(next, "/console", "not enrolled, not required");

    // Enrol: a wrong first code leaves it pending, the right one confirms.
    let (totp, recovery, csrf) = begin_enrolment(&app, &cookie).await;
    let confirm = |code: String| format!("csrf={csrf}&code={code}");
    let (status, _, _) = post(
        &app,
        "/console/account/mfa/confirm",
        &cookie,
        &confirm(wrong_code(&totp, &clock)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let first = code_now(&totp, &clock);
    let (status, headers, _) = post(
        &app,
        "/console/account/mfa/confirm",
        &cookie,
        &confirm(first.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/console/account/mfa");
    assert!(
        page(&app, "/console/account/mfa", &cookie)
            .await
            .contains("active")
    );

    // Sign in again: the password only reaches the code page.
    let (next, pending) = sign_in(&app, "acme", "admin@acme.example").await;
    assert_eq!(next, "/console/sign-in/code");
    for uri in ["/console", "/console/keys", "/console/usage-chart"] {
        assert_eq!(
            get(&app, uri, &pending).await,
            (
                StatusCode::SEE_OTHER,
                Some("/console/sign-in/code".to_owned())
            ),
            "{uri}"
        );
    }
    // The code that confirmed the enrolment is spent: a replay.
    let (status, _, html) = submit_code(&app, &pending, &first).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{html}");
    assert!(html.contains("not accepted"));

    // The next step's code passes once; the session gets a new cookie.
    next_step(&clock);
    let code = code_now(&totp, &clock);
    let (status, headers, _) = submit_code(&app, &pending, &code).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/console");
    let promoted = session_cookie(&headers);
    assert_ne!(promoted, pending);
    page(&app, "/console", &promoted).await;
    page(&app, "/console/keys", &promoted).await;
    assert_eq!(
        get(&app, "/console", &pending).await,
        (StatusCode::SEE_OTHER, Some("/console/sign-in".to_owned())),
        "the pending cookie is ended"
    );
    let (_, again) = sign_in(&app, "acme", "admin@acme.example").await;
    let (status, _, _) = submit_code(&app, &again, &code).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a code is accepted once");

    // A recovery code signs in once.
    let (status, headers, _) = submit_code(&app, &again, &recovery[0]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/console");
    let (_, again) = sign_in(&app, "acme", "admin@acme.example").await;
    let (status, _, _) = submit_code(&app, &again, &recovery[0]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        page(&app, "/console/account/mfa", &promoted)
            .await
            .contains("9 unused recovery codes")
    );

    // Turning it off takes a current code.
    let csrf = csrf_of(&page(&app, "/console/account/mfa", &promoted).await);
    let (status, _, _) = post(
        &app,
        "/console/account/mfa/disable",
        &promoted,
        &format!("csrf={csrf}&code={}", wrong_code(&totp, &clock)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    next_step(&clock);
    let (status, _, _) = post(
        &app,
        "/console/account/mfa/disable",
        &promoted,
        &format!("csrf={csrf}&code={}", code_now(&totp, &clock)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (next, _) = sign_in(&app, "acme", "admin@acme.example").await;
    assert_eq!(next, "/console");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_admin_without_enrolment_is_sent_to_enrolment() {
    let (_dir, state, app, clock) = app_on_clock("mfa-platform");
    account(
        &state,
        "platform",
        "root@platform.example",
        "platform-admin",
    )
    .await;
    let (next, pending) = sign_in(&app, "platform", "root@platform.example").await;
    assert_eq!(next, "/console/account/mfa");
    for uri in ["/console", "/console/keys", "/console/sign-in/code"] {
        let (status, location) = get(&app, uri, &pending).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{uri}");
        assert_ne!(location.as_deref(), Some("/console"), "{uri}");
    }
    let (status, _) = get(&app, "/console/sign-in/code", &pending).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The enrolment page, without the console's navigation.
    let html = page(&app, "/console/account/mfa", &pending).await;
    assert!(html.contains("requires a second factor") && !html.contains("/console/keys"));
    let (totp, _, csrf) = begin_enrolment(&app, &pending).await;
    let (status, headers, _) = post(
        &app,
        "/console/account/mfa/confirm",
        &pending,
        &format!("csrf={csrf}&code={}", code_now(&totp, &clock)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/console");
    let promoted = session_cookie(&headers);
    assert_ne!(promoted, pending);
    page(&app, "/console", &promoted).await;
    // From now on: a code at every sign-in.
    let (next, _) = sign_in(&app, "platform", "root@platform.example").await;
    assert_eq!(next, "/console/sign-in/code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_requiring_a_second_factor_sends_only_its_admins_to_enrolment() {
    let (_dir, state, app, _clock) = app_on_clock("mfa-tenant");
    let acme = Tenant::new(
        TenantId::new("acme").expect("id"),
        "Acme",
        state.auth.clock.now(),
    )
    .with_settings(TenantSettings::default().with_require_admin_mfa(true));
    state
        .auth
        .stores
        .tenants
        .create(&acme)
        .await
        .expect("registered");
    account(&state, "acme", "admin@acme.example", "tenant-admin").await;
    account(&state, "acme", "reader@acme.example", "reader").await;
    account(&state, "globex", "admin@globex.example", "tenant-admin").await;
    let (next, pending) = sign_in(&app, "acme", "admin@acme.example").await;
    assert_eq!(next, "/console/account/mfa");
    assert_eq!(
        get(&app, "/console", &pending).await.0,
        StatusCode::SEE_OTHER
    );
    let (next, _) = sign_in(&app, "acme", "reader@acme.example").await;
    assert_eq!(next, "/console", "not an administrator");
    let (next, _) = sign_in(&app, "globex", "admin@globex.example").await;
    assert_eq!(next, "/console", "another tenant's setting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_codes_lock_the_second_factor() {
    let (_dir, state, app, clock) = app_on_clock("mfa-lockout");
    account(&state, "acme", "admin@acme.example", "tenant-admin").await;
    let (_, cookie) = sign_in(&app, "acme", "admin@acme.example").await;
    let (totp, _, csrf) = begin_enrolment(&app, &cookie).await;
    let (status, _, _) = post(
        &app,
        "/console/account/mfa/confirm",
        &cookie,
        &format!("csrf={csrf}&code={}", code_now(&totp, &clock)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    next_step(&clock);

    let (_, pending) = sign_in(&app, "acme", "admin@acme.example").await;
    let wrong = wrong_code(&totp, &clock);
    // Five free failures, then the sixth starts a lock.
    for attempt in 1..=6 {
        let (status, _, _) = submit_code(&app, &pending, &wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let right = code_now(&totp, &clock);
    let (status, headers, html) = submit_code(&app, &pending, &right).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{html}");
    assert!(headers.contains_key(header::RETRY_AFTER));
    // A right password does not clear the code's counter.
    let (_, pending) = sign_in(&app, "acme", "admin@acme.example").await;
    let (status, _, _) = submit_code(&app, &pending, &right).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Once the lock has passed, the right code signs in.
    clock.advance(Duration::from_secs(2));
    let (status, headers, _) = submit_code(&app, &pending, &right).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/console");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_resets_a_lost_second_factor_through_the_api() {
    let (_dir, state, app, clock) = app_on_clock("mfa-reset");
    account(&state, "acme", "admin@acme.example", "tenant-admin").await;
    let (_, cookie) = sign_in(&app, "acme", "admin@acme.example").await;
    let (totp, _, csrf) = begin_enrolment(&app, &cookie).await;
    let (status, _, _) = post(
        &app,
        "/console/account/mfa/confirm",
        &cookie,
        &format!("csrf={csrf}&code={}", code_now(&totp, &clock)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let id = state
        .auth
        .stores
        .accounts
        .find_by_email(
            &TenantId::new("acme").expect("tenant"),
            &AccountEmail::new("admin@acme.example").expect("email"),
        )
        .await
        .expect("store")
        .expect("account")
        .id;
    let uri = format!("/v1/accounts/{id}/mfa");
    // Not with less than the account's own roles grant.
    let limited = crate::test_support::key_with(&state, "acme", &["accounts:manage"]).await;
    let (status, _, _) = send(app.clone(), call("DELETE", &uri, &limited, None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (next, _) = sign_in(&app, "acme", "admin@acme.example").await;
    assert_eq!(next, "/console/sign-in/code");
    let admin = crate::test_support::key_with(
        &state,
        "acme",
        &[
            "documents:*",
            "jobs:read",
            "keys:manage",
            "accounts:manage",
            "audit:read",
            "admin:access",
        ],
    )
    .await;
    for _ in 0..2 {
        let (status, _, body) = send(app.clone(), call("DELETE", &uri, &admin, None)).await;
        assert_eq!(
            status,
            StatusCode::NO_CONTENT,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let (next, _) = sign_in(&app, "acme", "admin@acme.example").await;
    assert_eq!(next, "/console", "the password alone again");
}
