//! Tests of the key routes: the key lifecycle, tenant isolation, scope
//! escalation, bearer JWTs, permissions of every protected route, rate
//! limits and lockouts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use docaiche_core::{AuthMethod, ManualClock, Principal, PrincipalId, TenantId};

use super::*;
use crate::config::{BindingConfig, Config};
use crate::routes::tests::{assert_problem, concrete, get_request, json, send};
use crate::routes::{Access, router};
use crate::state::tests::{local_state, state_with_clock};
use crate::test_support::TestDir;

/// A request with `key` as its API key.
fn with_key(method: Method, uri: &str, key: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("x-api-key", key)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

/// A request from `peer`, with `key` if any.
fn from_peer(uri: &str, peer: &str, key: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(uri);
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    let mut request = builder.body(Body::empty()).expect("request");
    let peer: SocketAddr = peer.parse().expect("addr");
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// A key of `tenant` with exactly `scopes`, made by an internal caller.
async fn key_with(state: &AppState, tenant: &str, scopes: &[Permission]) -> String {
    let tenant = TenantId::new(tenant).expect("tenant");
    let all = docaiche_core::Grant::parse("*:*").expect("grant");
    let maker = Principal::new(
        PrincipalId::new("maker").expect("id"),
        tenant.clone(),
        AuthMethod::Internal,
    )
    .with_permissions([all].into_iter().collect());
    let scopes: PermissionSet = scopes.iter().cloned().collect();
    let created = state
        .auth
        .api_keys
        .create(&maker, NewApiKey::new(tenant, "test").with_scopes(scopes))
        .await
        .expect("key");
    created.key.expose_secret().to_owned()
}

fn config_in(dir: &TestDir) -> Config {
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config
}

#[tokio::test]
async fn every_protected_route_is_401_anonymously_and_403_without_its_permission() {
    let dir = TestDir::new("api-rbac");
    // The forged credentials below trip the failed-authentication
    // backoff after a few routes: the clock moves past it per route.
    let clock = ManualClock::new();
    let state = state_with_clock(&config_in(&dir), Arc::new(clock.clone()));
    let app = router(state.clone());
    let mut guarded = 0;
    for group in crate::routes::route_groups() {
        if group.access == Access::Public {
            continue;
        }
        for route in &group.routes {
            let uri = concrete(route.path);
            let request = |key: Option<&str>| {
                let mut builder = Request::builder().method(route.method.clone()).uri(&uri);
                if let Some(key) = key {
                    builder = builder.header("x-api-key", key);
                }
                builder.body(Body::from("{}")).expect("request")
            };
            // No credential: 401 problem with WWW-Authenticate.
            let (status, headers, body) = send(app.clone(), request(None)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {uri}", route.method);
            assert!(headers.contains_key(header::WWW_AUTHENTICATE), "{uri}");
            assert_problem(&headers, &body, "unauthenticated");
            // A forged credential: 401 too.
            let (status, _, _) = send(app.clone(), request(Some("dcx_forged"))).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {uri}", route.method);
            // Every required permission, each one missing in turn: 403.
            for missing in &route.required {
                let mut scopes: Vec<Permission> = route
                    .required
                    .iter()
                    .filter(|p| *p != missing)
                    .cloned()
                    .collect();
                // A filler scope (a key needs one) that is not the missing one.
                scopes.push(if *missing == Permission::DOCUMENTS_READ {
                    Permission::AUDIT_READ
                } else {
                    Permission::DOCUMENTS_READ
                });
                let key = key_with(&state, "acme", &scopes).await;
                let (status, headers, body) = send(app.clone(), request(Some(&key))).await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {uri} without {missing}",
                    route.method
                );
                assert_problem(&headers, &body, "forbidden");
            }
            if route.path.starts_with("/v1/keys") || route.path.starts_with("/v1/admin") {
                assert!(!route.required.is_empty(), "{} is unguarded", route.path);
                guarded += 1;
            }
            clock.advance(Duration::from_secs(600));
        }
    }
    assert!(guarded >= 5, "the /v1/keys and /v1/admin routes: {guarded}");
}

#[tokio::test]
async fn a_key_is_created_used_listed_rotated_and_revoked() {
    let dir = TestDir::new("api-lifecycle");
    let clock = ManualClock::new();
    let state = state_with_clock(&config_in(&dir), Arc::new(clock.clone()));
    let admin = state
        .auth
        .bootstrap_key("acme", "admin", "boot")
        .await
        .expect("bootstrap");
    let admin = admin.key.expose_secret().to_owned();
    let app = router(state);

    // Create: 201, the key shown once, never cached.
    let (status, headers, body) = send(
        app.clone(),
        with_key(
            Method::POST,
            "/v1/keys",
            &admin,
            r#"{"name":"ci","scopes":["documents:read"],"expires_in_secs":86400}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{}", json(&body));
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let created = json(&body);
    let ci = created["key"].as_str().expect("key").to_owned();
    let ci_id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["tenant"], "acme");
    assert_eq!(created["scopes"], serde_json::json!(["documents:read"]));
    assert!(created["expires_at"].is_string());
    assert!(created.get("hash").is_none());

    // Use: the key authenticates with its scopes only.
    let (status, _, body) = send(app.clone(), with_key(Method::GET, "/v1/whoami", &ci, "")).await;
    assert_eq!(status, StatusCode::OK);
    let me = json(&body);
    assert_eq!(me["tenant"], "acme");
    assert_eq!(me["auth_method"], "api_key");
    assert_eq!(me["permissions"], serde_json::json!(["documents:read"]));
    let (status, _, _) = send(app.clone(), with_key(Method::GET, "/v1/keys", &ci, "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // List, a page at a time; the key itself never appears again.
    let (status, _, body) = send(
        app.clone(),
        with_key(Method::GET, "/v1/keys?limit=1", &admin, ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let first = json(&body);
    assert_eq!(first["items"].as_array().expect("items").len(), 1);
    let next = first["next"].as_str().expect("a second page").to_owned();
    let (_, _, body) = send(
        app.clone(),
        with_key(
            Method::GET,
            &format!("/v1/keys?limit=1&after={next}"),
            &admin,
            "",
        ),
    )
    .await;
    let second = json(&body);
    let ids: Vec<&str> = [&first, &second]
        .iter()
        .flat_map(|p| p["items"].as_array().expect("items"))
        .map(|k| k["id"].as_str().expect("id"))
        .collect();
    assert!(ids.contains(&ci_id.as_str()), "{ids:?}");
    let text = format!("{first}{second}");
    assert!(
        !text.contains(&ci) && !text.contains(&admin),
        "a key was listed"
    );
    let (status, headers, body) = send(
        app.clone(),
        with_key(Method::GET, "/v1/keys?limit=abc", &admin, ""),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_problem(&headers, &body, "invalid-input");

    // Rotate: both keys work within the overlap, then only the new one.
    let (status, _, body) = send(
        app.clone(),
        with_key(
            Method::POST,
            &format!("/v1/keys/{ci_id}/rotate"),
            &admin,
            r#"{"overlap_secs":60}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{}", json(&body));
    let rotated = json(&body);
    let ci2 = rotated["key"].as_str().expect("key").to_owned();
    let ci2_id = rotated["id"].as_str().expect("id").to_owned();
    assert_ne!(ci2, ci);
    for key in [&ci, &ci2] {
        let (status, _, _) = send(app.clone(), with_key(Method::GET, "/v1/whoami", key, "")).await;
        assert_eq!(status, StatusCode::OK, "within the overlap");
    }
    clock.advance(Duration::from_secs(61));
    let (status, _, _) = send(app.clone(), with_key(Method::GET, "/v1/whoami", &ci, "")).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old key after the overlap"
    );
    let (status, _, _) = send(app.clone(), with_key(Method::GET, "/v1/whoami", &ci2, "")).await;
    assert_eq!(status, StatusCode::OK);

    // Revoke: the next request is refused; revoking again is idempotent.
    let uri = format!("/v1/keys/{ci2_id}");
    let (status, _, _) = send(app.clone(), with_key(Method::DELETE, &uri, &admin, "")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, headers, body) =
        send(app.clone(), with_key(Method::GET, "/v1/whoami", &ci2, "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_problem(&headers, &body, "unauthenticated");
    let (status, _, _) = send(app, with_key(Method::DELETE, &uri, &admin, "")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn scope_escalation_and_bad_bodies_are_refused() {
    let dir = TestDir::new("api-escalation");
    let state = local_state(&config_in(&dir));
    let admin = state
        .auth
        .bootstrap_key("acme", "admin", "boot")
        .await
        .expect("bootstrap");
    let admin = admin.key.expose_secret().to_owned();
    let app = router(state);
    for scopes in [r#"["tenants:cross"]"#, r#"["*:*"]"#, r#"["privacy:erase"]"#] {
        let body = format!(r#"{{"name":"x","scopes":{scopes}}}"#);
        let (status, headers, body) = send(
            app.clone(),
            with_key(Method::POST, "/v1/keys", &admin, &body),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{scopes}");
        assert_problem(&headers, &body, "forbidden");
    }
    for body in [
        "",
        "{",
        r#"{"name":"x"}"#,
        r#"{"name":"x","scopes":[]}"#,
        r#"{"name":"x","scopes":["documents:read"],"tenant":"globex"}"#,
        r#"{"name":"x","scopes":["not a permission"]}"#,
        r#"{"name":"x","scopes":["documents:read"],"expires_in_secs":0}"#,
        r#"{"name":"","scopes":["documents:read"]}"#,
    ] {
        let (status, headers, response) = send(
            app.clone(),
            with_key(Method::POST, "/v1/keys", &admin, body),
        )
        .await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {status}"
        );
        assert_problem(&headers, &response, "invalid-input");
    }
}

#[tokio::test]
async fn a_tenant_cannot_list_rotate_or_revoke_another_tenants_keys() {
    let dir = TestDir::new("api-tenants");
    let mut config = config_in(&dir);
    config.auth.bindings.push(BindingConfig {
        tenant: "ops".into(),
        principal: "root".into(),
        role: "platform-admin".into(),
        cross_tenant: true,
    });
    let state = local_state(&config);
    let acme = state
        .auth
        .bootstrap_key("acme", "admin", "a")
        .await
        .expect("acme");
    let globex = state
        .auth
        .bootstrap_key("globex", "admin", "g")
        .await
        .expect("globex");
    let root = state
        .auth
        .bootstrap_key("ops", "root", "r")
        .await
        .expect("root");
    let (acme_key, globex_id) = (acme.key.expose_secret().to_owned(), globex.record.id);
    let app = router(state);

    // Another tenant's key answers exactly like a missing one.
    let missing = ApiKeyId::new();
    let mut answers = Vec::new();
    for id in [globex_id, missing] {
        for (method, uri) in [
            (Method::DELETE, format!("/v1/keys/{id}")),
            (Method::POST, format!("/v1/keys/{id}/rotate")),
        ] {
            let (status, headers, body) =
                send(app.clone(), with_key(method, &uri, &acme_key, "")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            let mut problem = assert_problem(&headers, &body, "not-found");
            problem.as_object_mut().expect("object").remove("instance");
            problem
                .as_object_mut()
                .expect("object")
                .remove("correlation_id");
            answers.push(problem);
        }
    }
    assert_eq!(answers[0], answers[2]);
    assert_eq!(answers[1], answers[3]);
    // The globex key still works.
    let (status, _, _) = send(
        app.clone(),
        with_key(Method::GET, "/v1/whoami", globex.key.expose_secret(), ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Listing shows only the caller's tenant; the admin route is refused.
    let (_, _, body) = send(
        app.clone(),
        with_key(Method::GET, "/v1/keys", &acme_key, ""),
    )
    .await;
    let listed = json(&body);
    for item in listed["items"].as_array().expect("items") {
        assert_eq!(item["tenant"], "acme");
    }
    let (status, _, _) = send(
        app.clone(),
        with_key(Method::GET, "/v1/admin/tenants/globex/keys", &acme_key, ""),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The explicitly bound cross-tenant administrator may list it.
    let (status, _, body) = send(
        app,
        with_key(
            Method::GET,
            "/v1/admin/tenants/globex/keys",
            root.key.expose_secret(),
            "",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let listed = json(&body);
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], globex_id.to_string());
}

#[tokio::test]
async fn a_bearer_jwt_of_the_server_key_is_accepted_and_a_tampered_one_refused() {
    let dir = TestDir::new("api-jwt");
    let config = config_in(&dir);
    let state = local_state(&config);
    let alice = Principal::new(
        PrincipalId::new("alice").expect("id"),
        TenantId::new("acme").expect("tenant"),
        AuthMethod::Password,
    )
    .with_roles(vec!["tenant-admin".into()]);
    let token = state.auth.issuer.issue(&alice).expect("issued");
    let token = token.token.expose_secret().to_owned();
    // A token signed by another key under the same kid.
    let other =
        crate::state::tests::test_auth(&config, Arc::new(docaiche_core::SystemClock::new()));
    let foreign = other.issuer.issue(&alice).expect("issued");
    let app = router(state);
    let bearer = |token: &str, uri: &str| {
        Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request")
    };
    let (status, _, body) = send(app.clone(), bearer(&token, "/v1/whoami")).await;
    assert_eq!(status, StatusCode::OK);
    let me = json(&body);
    assert_eq!(me["auth_method"], "jwt");
    assert_eq!(me["principal"], "alice");
    let (status, _, _) = send(app.clone(), bearer(&token, "/v1/keys")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "tenant-admin expands to keys:manage"
    );

    let mut tampered = token.clone();
    let last = tampered.pop().expect("char");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (dot1, _) = token.split_once('.').expect("jwt");
    let payload_swapped = format!(
        "{dot1}.{}",
        foreign
            .token
            .expose_secret()
            .split_once('.')
            .expect("jwt")
            .1
    );
    for bad in [
        tampered.as_str(),
        foreign.token.expose_secret(),
        payload_swapped.as_str(),
        "not-a-jwt",
    ] {
        let (status, headers, body) = send(app.clone(), bearer(bad, "/v1/whoami")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        assert!(headers.contains_key(header::WWW_AUTHENTICATE));
        assert_problem(&headers, &body, "unauthenticated");
    }

    // The JWKS is public and holds the public key only.
    let (status, _, body) = send(app, get_request("/.well-known/jwks.json")).await;
    assert_eq!(status, StatusCode::OK);
    let jwks = json(&body);
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], config.auth.jwt.kid);
    assert_eq!(keys[0]["kty"], "OKP");
    assert!(keys[0].get("d").is_none(), "no private part: {jwks}");
}

#[tokio::test]
async fn anonymous_requests_are_rate_limited_by_client_address() {
    let dir = TestDir::new("api-anon-limit");
    let mut config = config_in(&dir);
    config.rate_limit.limits.policies.insert(
        "default".into(),
        serde_json::from_value(serde_json::json!({
            "limits": [{ "key": "principal", "limit": 2, "period_secs": 60 }]
        }))
        .expect("policy"),
    );
    let state = local_state(&config);
    let key = key_with(&state, "acme", &[Permission::DOCUMENTS_READ]).await;
    let app: Router = router(state);
    for _ in 0..2 {
        let (status, headers, _) =
            send(app.clone(), from_peer("/v1/keys", "192.0.2.10:5000", None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers.contains_key("ratelimit"));
    }
    let (status, headers, body) = send(
        app.clone(),
        from_peer("/v1/whoami", "192.0.2.10:5001", None),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_problem(&headers, &body, "quota-exceeded");
    assert!(headers.contains_key(header::RETRY_AFTER));
    // Another address is not affected; nor is an authenticated caller
    // at the same address, who is counted as itself.
    let (status, _, _) = send(
        app.clone(),
        from_peer("/v1/whoami", "192.0.2.11:5000", None),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(app, from_peer("/v1/whoami", "192.0.2.10:5002", Some(&key))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn repeated_bad_credentials_lock_the_client_out() {
    let dir = TestDir::new("api-lockout");
    let mut config = config_in(&dir);
    config.auth.lockout.client_addr = docaiche_auth::lockout::BackoffPolicy::new(3, 1000, 60);
    let state = local_state(&config);
    let app = router(state);
    let forged = "dcx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (status, _, _) = send(
            app.clone(),
            from_peer("/v1/whoami", "198.51.100.7:4000", Some(forged)),
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "locked out after repeated failures: {statuses:?}"
    );
    // Another client is not locked.
    let (status, _, _) = send(
        app,
        from_peer("/v1/whoami", "203.0.113.9:4000", Some(forged)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_bootstrap_key_persists_in_sqlite_across_restarts() {
    let dir = TestDir::new("api-bootstrap");
    let config = config_in(&dir);
    crate::storage::prepare_data_dir(dir.path()).expect("data dir");
    let key = {
        let (auth, _) = crate::state::open_auth(&config, &|_| None)
            .await
            .expect("auth");
        let created = auth
            .bootstrap_key("acme", "admin", "first")
            .await
            .expect("key");
        assert!(!auth.flushes_usage());
        created.key.expose_secret().to_owned()
    };
    // A restart: the generated pepper and the database are read back.
    let (auth, backends) = crate::state::open_auth(&config, &|_| None)
        .await
        .expect("auth again");
    let check = &backends.stores.health_checks[0];
    let verified = auth.api_keys.verify(&key).await.expect("still valid");
    assert_eq!(verified.principal.tenant.as_str(), "acme");
    assert!(verified.principal.has_permission(&Permission::KEYS_MANAGE));
    assert!(
        !verified
            .principal
            .has_permission(&Permission::TENANTS_CROSS)
    );
    assert!(check.check().await.status.is_ready());
    // Bad tenants and principals are refused, nothing is printed.
    assert!(
        auth.bootstrap_key("Not A Tenant!", "admin", "x")
            .await
            .is_err()
    );
    assert!(auth.bootstrap_key("acme", "", "x").await.is_err());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for file in ["keys/api-key-pepper-v1", "keys/jwt-signing-ed25519.pem"] {
            let meta = std::fs::metadata(dir.path().join(file)).expect(file);
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
        }
    }
}
