//! The role routes through the router: the configured roles as listed,
//! and a tenant's custom roles: created, held by an invited account whose
//! tokens carry their permissions, changed and deleted (each seen at the
//! next refresh), on SQLite and on PostgreSQL; escalation and
//! cross-tenant attempts answered 403 and 404.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json as object};

use crate::config::Config;
use crate::openapi::tests::conforms;
use crate::routes::accounts::tests::{
    admin_of, bearer, call, config, redeem, refresh, sign_in, state_for,
};
use crate::routes::router;
use crate::routes::tests::{assert_problem, json, send};
use crate::state::AppState;
use crate::state::tests::local_state;
use crate::test_support::{TestDir, key_with};
#[tokio::test]
async fn roles_are_listed_with_what_the_caller_may_grant() {
    let dir = TestDir::new("roles-list");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let state = local_state(&config);
    let get = |key: String| {
        Request::get("/v1/roles")
            .header("x-api-key", key)
            .body(Body::empty())
            .expect("request")
    };
    let admin = key_with(
        &state,
        "acme",
        &["admin:access", "documents:*", "jobs:read"],
    )
    .await;
    let (status, _, body) = send(router(state.clone()), get(admin)).await;
    assert_eq!(status, StatusCode::OK);
    crate::openapi::tests::conforms("roles", "RoleList", &body);
    let roles = json(&body)["items"].as_array().expect("items").clone();
    let names: Vec<&str> = roles
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "by name");
    for role in &roles {
        let cross = role["cross_tenant"].as_bool().expect("bool");
        let grants: Vec<&str> = role["permissions"]
            .as_array()
            .expect("permissions")
            .iter()
            .map(|p| p.as_str().expect("text"))
            .collect();
        // The caller holds admin:access, documents:* and jobs:read only.
        let within = grants
            .iter()
            .all(|g| ["admin:access", "jobs:read"].contains(g) || g.starts_with("documents:"));
        assert_eq!(role["grantable"], within && !cross, "{role}");
    }
    assert!(
        roles
            .iter()
            .any(|r| r["cross_tenant"] == true && r["grantable"] == false),
        "the platform role is listed and not grantable: {roles:?}"
    );
    let reader = key_with(&state, "acme", &["documents:read"]).await;
    let (status, _, _) = send(router(state), get(reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The permissions `GET /v1/whoami` shows for `credential`.
async fn permissions_of(app: &Router, credential: &str) -> Vec<String> {
    let (status, _, body) = send(app.clone(), call("GET", "/v1/whoami", credential, None)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    json(&body)["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .map(|p| p.as_str().expect("permission").to_owned())
        .collect()
}

/// `POST /v1/roles` of `body` by `credential`: status, headers, body.
async fn put_role(
    app: &Router,
    credential: &str,
    uri: &str,
    body: Value,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    send(app.clone(), call("POST", uri, credential, Some(body))).await
}

/// The custom roles `GET /v1/roles` lists for `credential`, by name.
async fn custom_roles(app: &Router, credential: &str) -> Vec<Value> {
    let (status, _, body) = send(app.clone(), call("GET", "/v1/roles", credential, None)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    conforms("roles", "RoleList", &body);
    json(&body)["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|r| r["custom"] == true)
        .cloned()
        .collect()
}

/// A custom role's life in `tenant`: created by the tenant's
/// administrator, given to an invited account whose tokens then carry its
/// permissions, narrowed and deleted (each seen at the next refresh), every
/// change on the audit trail.
async fn custom_role_lifecycle(state: &AppState, tenant: &str) {
    let app = router(state.clone());
    let admin = bearer(&admin_of(state, &app, tenant).await);

    // Create: 201, Location, the view.
    let (status, headers, body) = put_role(
        &app,
        &admin,
        "/v1/roles",
        object!({
            "name": "auditor",
            "permissions": ["audit:read"],
            "description": "Reads the audit trail",
        }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    conforms("create role", "RoleView", &body);
    assert_eq!(headers[header::LOCATION], "/v1/roles/auditor");
    let created = json(&body);
    assert_eq!(created["custom"], true);
    assert_eq!(created["permissions"], object!(["audit:read"]));
    assert_eq!(created["grantable"], true);
    let listed = custom_roles(&app, &admin).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "auditor");
    assert_eq!(listed[0]["description"], "Reads the audit trail");

    // An account holding it: its token carries audit:read.
    let email = format!("dana@{tenant}.example");
    let (status, _, body) = send(
        app.clone(),
        call(
            "POST",
            "/v1/accounts",
            &admin,
            Some(object!({ "email": email, "roles": ["reader", "auditor"] })),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let invitation = json(&body)["invitation"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let password = "dana's own long passphrase";
    assert_eq!(
        redeem(&app, &invitation, password).await,
        StatusCode::NO_CONTENT
    );
    let pair = sign_in(&app, tenant, &email, password)
        .await
        .expect("sign in");
    let permissions = permissions_of(&app, &bearer(&pair)).await;
    assert!(
        permissions.contains(&"audit:read".to_owned()),
        "{permissions:?}"
    );

    // Replaced: 200; the next refresh carries the change.
    let (status, _, body) = put_role(
        &app,
        &admin,
        "/v1/roles",
        object!({ "name": "auditor", "permissions": ["keys:manage"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    conforms("replace role", "RoleView", &body);
    let pair = refresh(&app, &pair).await.expect("refresh");
    let permissions = permissions_of(&app, &bearer(&pair)).await;
    assert!(
        !permissions.contains(&"audit:read".to_owned()),
        "{permissions:?}"
    );
    assert!(
        permissions.contains(&"keys:manage".to_owned()),
        "{permissions:?}"
    );

    // A configured role is not deleted through the API.
    let (status, headers, body) = send(
        app.clone(),
        call("DELETE", "/v1/roles/reader", &admin, None),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_problem(&headers, &body, "conflict");

    // Deleted: 204, then 404; the next refresh drops its permissions.
    let (status, _, _) = send(
        app.clone(),
        call("DELETE", "/v1/roles/auditor", &admin, None),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = send(
        app.clone(),
        call("DELETE", "/v1/roles/auditor", &admin, None),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let pair = refresh(&app, &pair).await.expect("refresh");
    let permissions = permissions_of(&app, &bearer(&pair)).await;
    assert!(
        !permissions.contains(&"keys:manage".to_owned()),
        "{permissions:?}"
    );
    assert!(custom_roles(&app, &admin).await.is_empty());

    // The trail: each change, with the permissions before and after.
    let trail = key_with(state, tenant, &["audit:read", "admin:access"]).await;
    let (status, _, body) = send(
        app.clone(),
        call(
            "GET",
            "/v1/admin/audit?action_prefix=role.&limit=100",
            &trail,
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
    let changes: Vec<(&str, &str, &str)> = events
        .iter()
        .filter(|e| {
            !e["action"]
                .as_str()
                .unwrap_or_default()
                .ends_with(".attempt")
        })
        .map(|e| {
            (
                e["action"].as_str().expect("action"),
                e["details"]["permissions_before"].as_str().unwrap_or("-"),
                e["details"]["permissions_after"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("role.create", "-", "audit:read"),
            ("role.update", "audit:read", "keys:manage"),
            ("role.delete", "keys:manage", "-"),
        ],
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_role_lives_and_ends_under_its_tenant_admin_on_sqlite() {
    let dir = TestDir::new("roles-sqlite");
    let state = state_for(&config(&dir), &|_| None).await;
    custom_role_lifecycle(&state, "acme").await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_role_lives_and_ends_under_its_tenant_admin_on_postgres() {
    const SUITE: &str = "server-postgres";
    let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
        return;
    };
    let dir = TestDir::new("roles-postgres");
    let mut config = config(&dir);
    let (schema, env) = crate::wiring::tests::on_test_schema(&url, "roles_test", &mut config).await;
    config.validate().expect("valid");
    let state = state_for(&config, &env).await;
    custom_role_lifecycle(&state, "acme").await;
    crate::report::mark_ran(SUITE, &format!("roles schema {}", schema.name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_cannot_grant_what_it_lacks_nor_reach_another_tenants_roles() {
    let dir = TestDir::new("roles-escalation");
    let state = state_for(&config(&dir), &|_| None).await;
    let app = router(state.clone());
    // A limited administrator: accounts, and reading documents and jobs.
    let limited = key_with(
        &state,
        "acme",
        &[
            "accounts:manage",
            "admin:access",
            "documents:read",
            "jobs:read",
        ],
    )
    .await;
    let admin = bearer(&admin_of(&state, &app, "acme").await);
    let role =
        |name: &str, permissions: Value| object!({ "name": name, "permissions": permissions });

    // A permission it lacks: 403 naming it.
    let (status, headers, body) = put_role(
        &app,
        &limited,
        "/v1/roles",
        role("snoop", object!(["audit:read"])),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_problem(&headers, &body, "forbidden");
    assert!(String::from_utf8_lossy(&body).contains("audit:read"));
    // tenants:cross: never, not even for a caller holding everything.
    let platform = key_with(&state, "acme", &["*:*"]).await;
    for caller in [&limited, &admin, &platform] {
        let (status, _, body) = put_role(
            &app,
            caller,
            "/v1/roles",
            role("crosser", object!(["tenants:cross"])),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    // Wildcards, unknown permissions, bad or configured names: 400.
    for bad in [
        role("wild", object!(["documents:*"])),
        role("everything", object!(["*:*"])),
        role("made-up", object!(["documents:frobnicate"])),
        role("twice", object!(["jobs:read", "jobs:read"])),
        role("Bad Name", object!(["jobs:read"])),
        role("'; drop table custom_roles; --", object!(["jobs:read"])),
        role("reader", object!(["jobs:read"])),
        object!({ "name": "x", "permissions": [], "description": "a\u{0}b" }),
        object!({ "name": "x", "permissions": [], "extra": true }),
    ] {
        let (status, headers, body) = put_role(&app, &limited, "/v1/roles", bad.clone()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_problem(&headers, &body, "invalid-input");
    }
    // Within its permissions: fine.
    let (status, _, body) = put_role(
        &app,
        &limited,
        "/v1/roles",
        role("viewer", object!(["documents:read"])),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    // A role granting more than it holds: it may neither replace, delete,
    // nor give it to an account.
    let (status, _, _) = put_role(
        &app,
        &admin,
        "/v1/roles",
        role("key-keeper", object!(["keys:manage"])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = put_role(
        &app,
        &limited,
        "/v1/roles",
        role("key-keeper", object!(["jobs:read"])),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "replacing takes keys:manage away"
    );
    let (status, _, _) = send(
        app.clone(),
        call("DELETE", "/v1/roles/key-keeper", &limited, None),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let invite = |roles: Value| {
        call(
            "POST",
            "/v1/accounts",
            &limited,
            Some(object!({ "email": "erin@acme.example", "roles": roles })),
        )
    };
    let (status, _, _) = send(app.clone(), invite(object!(["key-keeper"]))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = send(app.clone(), invite(object!(["viewer"]))).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(json(&body)["account"]["roles"], object!(["viewer"]));
    let grantable: Vec<(String, bool)> = custom_roles(&app, &limited)
        .await
        .iter()
        .map(|r| {
            (
                r["name"].as_str().expect("name").to_owned(),
                r["grantable"] == true,
            )
        })
        .collect();
    assert_eq!(
        grantable,
        [
            ("key-keeper".to_owned(), false),
            ("viewer".to_owned(), true)
        ]
    );

    // Another tenant's administrator sees none of acme's custom roles.
    let globex = key_with(
        &state,
        "globex",
        &[
            "accounts:manage",
            "admin:access",
            "documents:read",
            "keys:manage",
        ],
    )
    .await;
    assert!(custom_roles(&app, &globex).await.is_empty());
    for uri in ["/v1/roles/viewer", "/v1/roles/key-keeper"] {
        let (status, _, _) = send(app.clone(), call("DELETE", uri, &globex, None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
    for uri in ["/v1/roles?tenant=acme", "/v1/roles/viewer?tenant=acme"] {
        let method = if uri.contains("viewer") {
            "DELETE"
        } else {
            "GET"
        };
        let (status, _, _) = send(app.clone(), call(method, uri, &globex, None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}");
    }
    let (status, _, _) = put_role(
        &app,
        &globex,
        "/v1/roles?tenant=acme",
        role("viewer", object!(["documents:read"])),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nor can it give acme's custom role to its own accounts.
    let (status, _, _) = send(
        app.clone(),
        call(
            "POST",
            "/v1/accounts",
            &globex,
            Some(object!({ "email": "gil@globex.example", "roles": ["viewer"] })),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no such role in globex");
    // Its own role of the same name is its own.
    let (status, _, _) = put_role(
        &app,
        &globex,
        "/v1/roles",
        role("viewer", object!(["keys:manage"])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        custom_roles(&app, &limited).await[1]["permissions"],
        object!(["documents:read"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_bound_to_roles_carries_a_snapshot_of_their_permissions_within_the_callers() {
    let dir = TestDir::new("roles-keys");
    let state = state_for(&config(&dir), &|_| None).await;
    let app = router(state.clone());
    let admin = bearer(&admin_of(&state, &app, "acme").await);
    let (status, _, _) = put_role(
        &app,
        &admin,
        "/v1/roles",
        object!({ "name": "auditor", "permissions": ["audit:read"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let create = |credential: &str, roles: Value| {
        call(
            "POST",
            "/v1/keys",
            credential,
            Some(object!({ "name": "bound", "scopes": ["jobs:read"], "roles": roles })),
        )
    };
    let (status, _, body) = send(app.clone(), create(&admin, object!(["auditor", "reader"]))).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let created = json(&body);
    let mut scopes: Vec<&str> = created["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .map(|s| s.as_str().expect("scope"))
        .collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["audit:read", "documents:read", "jobs:read"]);
    let key = created["key"].as_str().expect("key").to_owned();
    // A snapshot: narrowing the role later does not reach the key.
    let (status, _, _) = put_role(
        &app,
        &admin,
        "/v1/roles",
        object!({ "name": "auditor", "permissions": ["jobs:read"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let permissions = permissions_of(&app, &key).await;
    assert!(
        permissions.contains(&"audit:read".to_owned()),
        "{permissions:?}"
    );

    // No escalation through a role; unknown, cross-tenant or repeated roles: 400.
    let limited = key_with(&state, "acme", &["keys:manage", "jobs:read"]).await;
    let (status, headers, body) = send(app.clone(), create(&limited, object!(["reader"]))).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_problem(&headers, &body, "forbidden");
    let (status, _, _) = send(app.clone(), create(&limited, object!(["auditor"]))).await;
    assert_eq!(status, StatusCode::CREATED, "auditor is jobs:read now");
    for (roles, expected) in [
        (object!(["no-such-role"]), StatusCode::NOT_FOUND),
        (object!(["platform-admin"]), StatusCode::FORBIDDEN),
        (object!(["auditor", "auditor"]), StatusCode::BAD_REQUEST),
    ] {
        let (status, _, body) = send(app.clone(), create(&admin, roles.clone())).await;
        assert_eq!(
            status,
            expected,
            "{roles}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // Another tenant's custom role is unknown here.
    let globex = key_with(
        &state,
        "globex",
        &["keys:manage", "jobs:read", "audit:read"],
    )
    .await;
    let (status, _, _) = send(app.clone(), create(&globex, object!(["auditor"]))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
