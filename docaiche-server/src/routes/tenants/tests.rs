//! `/v1/tenants` and the suspension check, end to end through the router.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use docaiche_core::{AuditSink, AuthMethod, Permission, Principal, PrincipalId, TenantId};

use crate::config::Config;
use crate::config::audit::FsyncSetting;
use crate::routes::router;
use crate::routes::tests::{assert_problem, json, send};
use crate::state::AppState;
use crate::state::tests::local_state;
use crate::test_support::{TestDir, key_with};
use crate::wiring::Secrets;

const PLATFORM: &[&str] = &["tenants:cross", "admin:access"];

fn config(dir: &TestDir) -> Config {
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.audit.fsync = FsyncSetting::Never;
    config.audit.checkpoint_every = 0;
    config
}

/// State over memory stores, with the file trail of `config`.
async fn state_with_trail(config: &Config) -> AppState {
    let mut state = local_state(config);
    let secrets = Secrets::from_config(config, &|_| None)
        .await
        .expect("secrets");
    let trail = crate::audit::open(config, &secrets, &|_| None)
        .await
        .expect("trail");
    state.audit = Some(trail);
    state
}

async fn trail_text(state: &AppState, config: &Config) -> String {
    let trail = state.audit.as_ref().expect("trail");
    trail.buffer.flush().await.expect("flushed");
    std::fs::read_to_string(config.audit.file_path(config)).expect("trail file")
}

/// A request with an API key (`x-api-key`) or a bearer token.
fn request(
    method: &str,
    uri: &str,
    credential: &Credential<'_>,
    body: Option<&str>,
) -> Request<Body> {
    let builder = Request::builder().method(method).uri(uri);
    let builder = match credential {
        Credential::Key(key) => builder.header("x-api-key", *key),
        Credential::Bearer(token) => {
            builder.header(header::AUTHORIZATION, format!("Bearer {token}"))
        }
    };
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned())),
        None => builder.body(Body::empty()),
    }
    .expect("request")
}

enum Credential<'a> {
    Key(&'a str),
    Bearer(&'a str),
}

/// A session (access token) of `principal` in `tenant`, holding
/// `documents:read`.
fn session(state: &AppState, tenant: &str, principal: &str) -> String {
    let principal = Principal::new(
        PrincipalId::new(principal).expect("id"),
        TenantId::new(tenant).expect("tenant"),
        AuthMethod::Password,
    )
    .with_permissions([Permission::DOCUMENTS_READ].into_iter().collect());
    state
        .auth
        .issuer
        .issue(&principal)
        .expect("issued")
        .token
        .expose_secret()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_tenant_is_refused_for_every_credential_until_resumed() {
    let dir = TestDir::new("tenants-suspend");
    let config = config(&dir);
    let state = state_with_trail(&config).await;
    let app = router(state.clone());
    let admin = key_with(&state, "platform", PLATFORM).await;
    let admin = Credential::Key(&admin);
    let acme_key = key_with(&state, "acme", &["documents:read"]).await;
    let acme_session = session(&state, "acme", "alice");
    let globex_key = key_with(&state, "globex", &["documents:read"]).await;
    let acme_credentials = [
        Credential::Key(&acme_key),
        Credential::Bearer(&acme_session),
    ];

    let (status, headers, body) = send(
        app.clone(),
        request(
            "POST",
            "/v1/tenants",
            &admin,
            Some(r#"{"id":"acme","display_name":"Acme ' Corp","settings":{"quotas":{"max_documents":2}}}"#),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(headers[header::LOCATION], "/v1/tenants/acme");
    crate::openapi::tests::conforms("created tenant", "TenantView", &body);
    let created = json(&body);
    assert_eq!(created["status"], "active");
    assert_eq!(created["display_name"], "Acme ' Corp");
    assert_eq!(created["settings"]["quotas"]["max_documents"], 2);
    let (status, _, body) = send(
        app.clone(),
        request(
            "POST",
            "/v1/tenants",
            &admin,
            Some(r#"{"id":"acme","display_name":"Again"}"#),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "{}",
        String::from_utf8_lossy(&body)
    );

    for credential in &acme_credentials {
        let (status, _, _) =
            send(app.clone(), request("GET", "/v1/whoami", credential, None)).await;
        assert_eq!(status, StatusCode::OK, "active: served");
    }

    let (status, _, body) = send(
        app.clone(),
        request(
            "POST",
            "/v1/tenants/acme/suspend",
            &admin,
            Some(r#"{"reason":"unpaid invoice"}"#),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    crate::openapi::tests::conforms("suspended tenant", "TenantView", &body);
    let suspended = json(&body);
    assert_eq!(suspended["status"], "suspended");
    assert_eq!(suspended["suspension_reason"], "unpaid invoice");
    assert!(suspended["suspended_at"].is_string());

    // Every credential of the tenant gets the suspension problem, on every
    // route (an unknown one included), at once on this instance.
    for credential in &acme_credentials {
        for uri in ["/v1/whoami", "/v1/documents", "/v1/no-such-route"] {
            let (status, headers, body) =
                send(app.clone(), request("GET", uri, credential, None)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
            let problem = assert_problem(&headers, &body, "tenant-suspended");
            assert!(
                !String::from_utf8_lossy(&body).contains("unpaid"),
                "the reason stays with the operators: {problem}"
            );
        }
    }
    // Other tenants, and the platform administrators, are served.
    let (status, _, _) = send(
        app.clone(),
        request("GET", "/v1/whoami", &Credential::Key(&globex_key), None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(
        app.clone(),
        request("GET", "/v1/tenants?status=suspended", &admin, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    crate::openapi::tests::conforms("tenant list", "TenantList", &body);
    let ids: Vec<String> = json(&body)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, ["acme"]);
    let (_, _, body) = send(
        app.clone(),
        request("GET", "/v1/tenants?status=active", &admin, None),
    )
    .await;
    assert_eq!(json(&body)["items"].as_array().map(Vec::len), Some(0));

    let (status, _, body) = send(
        app.clone(),
        request("POST", "/v1/tenants/acme/resume", &admin, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let resumed = json(&body);
    assert_eq!(resumed["status"], "active");
    assert!(resumed["suspended_at"].is_null());
    for credential in &acme_credentials {
        let (status, _, _) =
            send(app.clone(), request("GET", "/v1/whoami", credential, None)).await;
        assert_eq!(status, StatusCode::OK, "resumed: served again");
    }

    let text = trail_text(&state, &config).await;
    for action in [
        "tenant.create.attempt",
        "tenant.create",
        "tenant.suspend",
        "tenant.resume",
    ] {
        assert!(text.contains(&format!("\"{action}\"")), "{action} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_platform_tenant_can_still_resume_itself() {
    let dir = TestDir::new("tenants-platform");
    let config = config(&dir);
    let state = state_with_trail(&config).await;
    let app = router(state.clone());
    let admin = key_with(&state, "platform", PLATFORM).await;
    let admin = Credential::Key(&admin);
    for uri in ["/v1/tenants", "/v1/tenants/platform/suspend"] {
        let body = if uri.ends_with("suspend") {
            r#"{"reason":"drill"}"#
        } else {
            r#"{"id":"platform","display_name":"Operators"}"#
        };
        let (status, _, body) = send(app.clone(), request("POST", uri, &admin, Some(body))).await;
        assert!(
            status.is_success(),
            "{uri}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let (status, _, _) = send(
        app.clone(),
        request("POST", "/v1/tenants/platform/resume", &admin, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn settings_are_patched_field_by_field_and_bad_input_is_a_problem() {
    let dir = TestDir::new("tenants-settings");
    let state = local_state(&config(&dir));
    let app = router(state.clone());
    let admin = key_with(&state, "platform", PLATFORM).await;
    let admin = Credential::Key(&admin);
    let key_id = "0190c2a8-5f1e-7c3a-8b4d-2e6f7a8b9c0d";
    let create = format!(
        r#"{{"id":"initech","display_name":"Initech","settings":{{"rate_limit":{{"requests":50,"period_secs":60}},"key_rate_limits":{{"{key_id}":{{"requests":5,"period_secs":1}}}},"retention_days":30}}}}"#
    );
    let (status, _, body) = send(
        app.clone(),
        request("POST", "/v1/tenants", &admin, Some(&create)),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );

    // A field present replaces its setting, null clears it, absent keeps it.
    let (status, _, body) = send(
        app.clone(),
        request(
            "PATCH",
            "/v1/tenants/initech",
            &admin,
            Some(
                r#"{"rate_limit":null,"quotas":{"max_storage_bytes":1048576},"require_admin_mfa":true}"#,
            ),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    crate::openapi::tests::conforms("patched tenant", "TenantView", &body);
    let settings = json(&body)["settings"].clone();
    assert!(settings["rate_limit"].is_null());
    assert_eq!(settings["retention_days"], 30);
    assert_eq!(settings["key_rate_limits"][key_id]["requests"], 5);
    assert_eq!(settings["quotas"]["max_storage_bytes"], 1_048_576);
    assert_eq!(settings["require_admin_mfa"], true);
    let (_, _, body) = send(
        app.clone(),
        request("GET", "/v1/tenants/initech", &admin, None),
    )
    .await;
    assert_eq!(json(&body)["settings"], settings, "read back");

    for (method, uri, body) in [
        (
            "POST",
            "/v1/tenants",
            r#"{"id":"bad id","display_name":"x"}"#,
        ),
        ("POST", "/v1/tenants", r#"{"id":"ok","display_name":"   "}"#),
        (
            "POST",
            "/v1/tenants",
            r#"{"id":"ok","display_name":"x","extra":1}"#,
        ),
        (
            "POST",
            "/v1/tenants",
            r#"{"id":"ok","display_name":"x","settings":{"retention_days":0}}"#,
        ),
        (
            "PATCH",
            "/v1/tenants/initech",
            r#"{"rate_limit":{"requests":0,"period_secs":1}}"#,
        ),
        (
            "PATCH",
            "/v1/tenants/initech",
            r#"{"key_rate_limits":{"not-a-key":{"requests":1,"period_secs":1}}}"#,
        ),
        (
            "PATCH",
            "/v1/tenants/initech",
            r#"{"retention_days":99999}"#,
        ),
        (
            "PATCH",
            "/v1/tenants/initech",
            r#"{"quotas":{"max_documents":-1}}"#,
        ),
        (
            "PATCH",
            "/v1/tenants/initech",
            r#"{"require_admin_mfa":"yes"}"#,
        ),
        ("PATCH", "/v1/tenants/initech", "[null, null]"),
        ("PATCH", "/v1/tenants/initech", r#"{"quotas":[null, null]}"#),
        ("PATCH", "/v1/tenants/initech", r#"{"rate_limit":[1, 1]}"#),
        (
            "PATCH",
            "/v1/tenants/initech",
            r#"{"quotas":{"max_storage_bytes":9223372036854775808}}"#,
        ),
        ("POST", "/v1/tenants/initech/suspend", r#"{"reason":""}"#),
        (
            "POST",
            "/v1/tenants/initech/suspend",
            "{\"reason\":\"a\\u0000b\"}",
        ),
        ("GET", "/v1/tenants?status=gone", ""),
        ("GET", "/v1/tenants?after=%27%20OR%201%3D1", ""),
        ("GET", "/v1/tenants/bad%20id", ""),
    ] {
        let body = (!body.is_empty()).then_some(body);
        let (status, headers, answer) = send(app.clone(), request(method, uri, &admin, body)).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {uri} {body:?}: {status} {}",
            String::from_utf8_lossy(&answer)
        );
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    }
    for (method, uri, body) in [
        ("GET", "/v1/tenants/nobody", None),
        ("PATCH", "/v1/tenants/nobody", Some("{}")),
        (
            "POST",
            "/v1/tenants/nobody/suspend",
            Some(r#"{"reason":"x"}"#),
        ),
        ("POST", "/v1/tenants/nobody/resume", None),
    ] {
        let (status, headers, answer) = send(app.clone(), request(method, uri, &admin, body)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_problem(&headers, &answer, "not-found");
    }

    // A tenant administrator without `tenants:cross` may not use them.
    let tenant_admin = key_with(&state, "initech", &["admin:access"]).await;
    let (status, headers, body) = send(
        app.clone(),
        request(
            "POST",
            "/v1/tenants/initech/resume",
            &Credential::Key(&tenant_admin),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&headers, &body, "forbidden");
}

/// An API key of `tenant` with `documents:read`, and its record id.
async fn key_and_id(state: &AppState, tenant: &str) -> (String, String) {
    use docaiche_auth::api_key::NewApiKey;
    let tenant = TenantId::new(tenant).expect("tenant");
    let maker = Principal::new(
        PrincipalId::new("maker").expect("id"),
        tenant.clone(),
        AuthMethod::Internal,
    )
    .with_permissions(
        [Permission::DOCUMENTS_READ, Permission::KEYS_MANAGE]
            .into_iter()
            .collect(),
    );
    let scopes = [Permission::DOCUMENTS_READ].into_iter().collect();
    let created = state
        .auth
        .api_keys
        .create(
            &maker,
            NewApiKey::new(tenant, "limited").with_scopes(scopes),
        )
        .await
        .expect("key");
    (
        created.key.expose_secret().to_owned(),
        created.record.id.to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_overrides_apply_per_key_and_per_tenant_from_the_next_request() {
    let dir = TestDir::new("tenants-limits");
    let state = local_state(&config(&dir));
    let app = router(state.clone());
    let admin = key_with(&state, "platform", PLATFORM).await;
    let admin = Credential::Key(&admin);
    let (limited, limited_id) = key_and_id(&state, "acme").await;
    let (other, _) = key_and_id(&state, "acme").await;
    let create = format!(
        r#"{{"id":"acme","display_name":"Acme","settings":{{"key_rate_limits":{{"{limited_id}":{{"requests":1,"period_secs":3600}}}}}}}}"#
    );
    let (status, _, body) = send(
        app.clone(),
        request("POST", "/v1/tenants", &admin, Some(&create)),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let whoami = |key: &str| request("GET", "/v1/whoami", &Credential::Key(key), None);

    let (status, _, _) = send(app.clone(), whoami(&limited)).await;
    assert_eq!(status, StatusCode::OK, "the key's one request");
    let (status, headers, body) = send(app.clone(), whoami(&limited)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the key's override");
    assert_problem(&headers, &body, "quota-exceeded");
    for _ in 0..3 {
        let (status, _, _) = send(app.clone(), whoami(&other)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "another key of the tenant keeps the configured limit"
        );
    }

    // A tenant-wide override, in force from the next request.
    let (status, _, body) = send(
        app.clone(),
        request(
            "PATCH",
            "/v1/tenants/acme",
            &admin,
            Some(r#"{"rate_limit":{"requests":5,"period_secs":3600}}"#),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let mut served = 0;
    for _ in 0..10 {
        let (status, _, _) = send(app.clone(), whoami(&other)).await;
        if status == StatusCode::OK {
            served += 1;
        } else {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        }
    }
    assert!(
        served < 5,
        "the tenant's 5 per hour, partly spent already: {served}"
    );
    // Other tenants keep the configured limits.
    let globex = key_with(&state, "globex", &["documents:read"]).await;
    for _ in 0..10 {
        let (status, _, _) = send(app.clone(), whoami(&globex)).await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// Two instances on one SQLite store: a suspension made through one is
/// refused by the other (whose cache had not read the tenant yet; once it
/// has, it rereads within `TenantDirectory::DEFAULT_TTL`, tested in
/// `crate::tenants`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_through_one_instance_is_refused_by_another_on_the_same_store() {
    let dir = TestDir::new("tenants-two-instances");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    crate::storage::prepare_data_dir(dir.path()).expect("data dir");
    crate::keys::prepare(&config.key_source()).expect("key");
    let first = AppState::from_config(&config, &|_| None)
        .await
        .expect("first instance");
    let mut second_config = config.clone();
    second_config.audit.path = Some(dir.path().join("second").join("audit.jsonl"));
    let second = AppState::from_config(&second_config, &|_| None)
        .await
        .expect("second instance");
    let admin = key_with(&first, "platform", PLATFORM).await;
    let admin = Credential::Key(&admin);
    let acme = key_with(&first, "acme", &["documents:read"]).await;
    for (uri, body) in [
        ("/v1/tenants", r#"{"id":"acme","display_name":"Acme"}"#),
        ("/v1/tenants/acme/suspend", r#"{"reason":"unpaid"}"#),
    ] {
        let (status, _, answer) = send(
            router(first.clone()),
            request("POST", uri, &admin, Some(body)),
        )
        .await;
        assert!(
            status.is_success(),
            "{uri}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    for state in [&first, &second] {
        let (status, headers, body) = send(
            router(state.clone()),
            request("GET", "/v1/whoami", &Credential::Key(&acme), None),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_problem(&headers, &body, "tenant-suspended");
    }
    // The registry is in the store's database: the second instance lists it.
    let (status, _, body) = send(
        router(second.clone()),
        request("GET", "/v1/tenants/acme", &admin, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["status"], "suspended");
}
