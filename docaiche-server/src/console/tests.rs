//! The console through the whole router, as a browser would use it:
//! sign-in, the session cookie's attributes, CSRF and Fetch Metadata,
//! escaping, keys created and revoked through the API, sign-out, assets.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use serde_json::json as object;

use super::assets;
use crate::routes::accounts::tests::{admin_of, call, config, state_for};
use crate::routes::router;
use crate::routes::tests::send;
use crate::state::AppState;
use crate::test_support::TestDir;

pub(crate) const PASSWORD: &str = "admin passphrase for the tests";

/// A console request: `cookie` (if any), a same-origin browser's Fetch
/// Metadata on `POST`s, and a form body.
pub(crate) fn browser(
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, format!("{}={cookie}", super::COOKIE));
    }
    match form {
        Some(form) => request
            .header("sec-fetch-site", "same-origin")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned())),
        None => request.body(Body::empty()),
    }
    .expect("request")
}

/// `value` encoded for a form body.
pub(super) fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The session cookie a response sets, checking its attributes.
pub(crate) fn session_cookie(headers: &HeaderMap) -> String {
    let set = headers
        .get(header::SET_COOKIE)
        .expect("a cookie is set")
        .to_str()
        .expect("ascii");
    let (pair, attributes) = set.split_once(';').expect("attributes");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(
            attributes.split(';').any(|a| a.trim() == attribute),
            "{attribute} missing from {set}"
        );
    }
    let (name, value) = pair.split_once('=').expect("name=value");
    assert_eq!(name, "__Host-docaiche-console");
    assert_eq!(value.len(), 43);
    value.to_owned()
}

/// Sign in through the form: the cookie.
pub(crate) async fn sign_in(app: &Router, tenant: &str, email: &str, password: &str) -> String {
    let form = format!(
        "tenant={}&email={}&password={}",
        encoded(tenant),
        encoded(email),
        encoded(password)
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
    assert_eq!(headers[header::LOCATION], "/console");
    session_cookie(&headers)
}

/// A page's body as text, asserting its status and security headers.
pub(crate) async fn page(app: &Router, uri: &str, cookie: &str) -> String {
    let (status, headers, body) = send(app.clone(), browser("GET", uri, Some(cookie), None)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{uri}: {}",
        String::from_utf8_lossy(&body)
    );
    assert_csp(&headers);
    String::from_utf8(body.to_vec()).expect("utf-8")
}

pub(super) fn assert_csp(headers: &HeaderMap) {
    assert_eq!(headers[header::CONTENT_SECURITY_POLICY], super::CONSOLE_CSP);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
}

/// The CSRF token of a page's first form.
pub(crate) fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[at..].split('"').next().expect("value").to_owned()
}

async fn signed_in_admin(label: &str) -> (TestDir, AppState, Router, String) {
    let dir = TestDir::new(label);
    let state = state_for(&config(&dir), &|_| None).await;
    let app = router(state.clone());
    admin_of(&state, &app, "acme").await;
    let cookie = sign_in(&app, "acme", "admin@acme.example", PASSWORD).await;
    (dir, state, app, cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_starts_a_fresh_session_and_sign_out_ends_it() {
    let (_dir, _state, app, cookie) = signed_in_admin("console-sign-in").await;

    // The sign-in page: no script or style inline, the CSP of the console.
    let (status, headers, body) =
        send(app.clone(), browser("GET", "/console/sign-in", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_csp(&headers);
    let html = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );
    assert!(html.contains(&assets::JS.path()) && html.contains(&assets::CSS.path()));

    // Without a session: to the sign-in page.
    let (status, headers, _) = send(app.clone(), browser("GET", "/console", None, None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/console/sign-in");

    // A wrong password: refused, nothing set, the typed e-mail kept and
    // escaped.
    let form = "tenant=acme&email=%3Cb%3Eadmin%40acme.example&password=wrong+password+here";
    let (status, headers, body) = send(
        app.clone(),
        browser("POST", "/console/sign-in", None, Some(form)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::SET_COOKIE).is_none());
    let html = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(html.contains("&lt;b&gt;admin@acme.example") && !html.contains("<b>admin"));

    // A cookie planted before sign-in is not promoted: signing in sets a
    // new one.
    let form = format!(
        "tenant=acme&email=admin%40acme.example&password={}",
        encoded(PASSWORD)
    );
    let (status, headers, _) = send(
        app.clone(),
        browser("POST", "/console/sign-in", Some(&cookie), Some(&form)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let second = session_cookie(&headers);
    assert_ne!(second, cookie);

    let overview = page(&app, "/console", &cookie).await;
    assert!(overview.contains("admin@acme.example") || overview.contains("acme"));

    // Sign-out: the cookie is removed and the session ends (the other one
    // lives on).
    let token = csrf_of(&overview);
    let (status, headers, _) = send(
        app.clone(),
        browser(
            "POST",
            "/console/sign-out",
            Some(&cookie),
            Some(&format!("csrf={token}")),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[header::SET_COOKIE]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );
    let (status, _, _) = send(app.clone(), browser("GET", "/console", Some(&cookie), None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    page(&app, "/console", &second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_shown_once_escaped_and_revoked_through_the_api() {
    let (_dir, _state, app, cookie) = signed_in_admin("console-keys").await;
    let list = page(&app, "/console/keys", &cookie).await;
    let token = csrf_of(&list);
    let hostile = "<img src=x onerror=alert(1)>";
    let form = format!(
        "csrf={token}&name={}&scopes=documents%3Aread&scopes=jobs%3Aread&expires_in_days=30",
        encoded(hostile)
    );
    let (status, _, body) = send(
        app.clone(),
        browser("POST", "/console/keys", Some(&cookie), Some(&form)),
    )
    .await;
    let created = String::from_utf8(body.to_vec()).expect("utf-8");
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(!created.contains(hostile));
    assert!(created.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let at = created.find(r#"<code id="new-key">"#).expect("the key") + 19;
    let key = created[at..].split('<').next().expect("key").to_owned();

    // The key works against the API with the scopes chosen.
    let (status, _, body) = send(app.clone(), call("GET", "/v1/whoami", &key, None)).await;
    assert_eq!(status, StatusCode::OK);
    let whoami: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        whoami["permissions"],
        object!(["documents:read", "jobs:read"])
    );

    // Listed, escaped, never with its secret.
    let list = page(&app, "/console/keys", &cookie).await;
    assert!(list.contains("&lt;img src=x onerror=alert(1)&gt;") && !list.contains(hostile));
    assert!(!list.contains(&key));
    let id = list
        .split(r#"action="/console/keys/"#)
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("a revoke form")
        .to_owned();
    let detail = page(&app, &format!("/console/keys/{id}"), &cookie).await;
    assert!(detail.contains(&format!("/console/usage-chart?key={id}")));
    let chart = page(&app, &format!("/console/usage-chart?key={id}"), &cookie).await;
    assert!(chart.contains("<svg") && chart.contains("data-panel-content"));

    // Revoke: the API refuses the key from then on.
    let (status, headers, _) = send(
        app.clone(),
        browser(
            "POST",
            &format!("/console/keys/{id}/revoke"),
            Some(&cookie),
            Some(&format!("csrf={token}")),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/console/keys?status=revoked");
    let (status, _, _) = send(app.clone(), call("GET", "/v1/whoami", &key, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_and_other_sessions_tokens_are_refused() {
    let (_dir, _state, app, cookie) = signed_in_admin("console-csrf").await;
    let other = sign_in(&app, "acme", "admin@acme.example", PASSWORD).await;
    let mine = csrf_of(&page(&app, "/console/keys", &cookie).await);
    let theirs = csrf_of(&page(&app, "/console/keys", &other).await);
    assert_ne!(mine, theirs);
    let create = |token: &str| format!("csrf={token}&name=k&scopes=documents%3Aread");

    // Another session's token, no token, a forged one.
    for token in [theirs.as_str(), "", "AAAA"] {
        let (status, _, _) = send(
            app.clone(),
            browser("POST", "/console/keys", Some(&cookie), Some(&create(token))),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "token {token:?}");
    }
    // The right token from another site (a browser says so).
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let mut request = browser("POST", "/console/keys", Some(&cookie), Some(&create(&mine)));
        request
            .headers_mut()
            .insert(name, value.parse().expect("value"));
        let (status, _, _) = send(app.clone(), request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {value}");
    }
    // A browser without Fetch Metadata: Origin must name the host.
    let mut request = browser("POST", "/console/keys", Some(&cookie), Some(&create(&mine)));
    let headers = request.headers_mut();
    headers.remove("sec-fetch-site");
    headers.insert(header::HOST, "console.example".parse().expect("host"));
    headers.insert(
        header::ORIGIN,
        "https://evil.example".parse().expect("origin"),
    );
    let (status, _, _) = send(app.clone(), request).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Login CSRF: a cross-site sign-in form is refused too.
    let mut request = browser(
        "POST",
        "/console/sign-in",
        None,
        Some(&format!(
            "tenant=acme&email=admin%40acme.example&password={}",
            encoded(PASSWORD)
        )),
    );
    request
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().expect("value"));
    let (status, headers, _) = send(app.clone(), request).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get(header::SET_COOKIE).is_none());
    // And the right token, same origin: created.
    let (status, _, _) = send(
        app.clone(),
        browser("POST", "/console/keys", Some(&cookie), Some(&create(&mine))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_sign_out_through_the_api_ends_the_console_session() {
    let (_dir, state, app, cookie) = signed_in_admin("console-revoked").await;
    page(&app, "/console", &cookie).await;
    // A second of distance: a revocation covers its own second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let login = state.login.service().await.expect("login");
    let tenant = docaiche_core::TenantId::new("acme").expect("tenant");
    let account = login
        .accounts()
        .find_by_email(
            &tenant,
            &docaiche_core::account::AccountEmail::new("admin@acme.example").expect("email"),
        )
        .await
        .expect("store")
        .expect("account");
    login
        .set_disabled(&tenant, &account.id, true)
        .await
        .expect("disabled");
    let (status, headers, _) =
        send(app.clone(), browser("GET", "/console", Some(&cookie), None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/console/sign-in");
}

#[tokio::test]
async fn assets_are_served_by_hashed_name_with_immutable_caching() {
    let dir = TestDir::new("console-assets");
    let state = state_for(&config(&dir), &|_| None).await;
    let app = router(state);
    for asset in [&assets::CSS, &assets::JS] {
        let (status, headers, body) =
            send(app.clone(), browser("GET", &asset.path(), None, None)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert!(!body.is_empty());
    }
    let (status, _, _) = send(
        app.clone(),
        browser(
            "GET",
            "/console/assets/console.0000000000000000.css",
            None,
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
