//! `GET /v1/roles`: the roles of the configuration (`[auth.rbac]`), their
//! permissions, and whether the caller may grant each.

use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use docaiche_auth::layer::Authenticated;
use docaiche_core::{Error, Permission};
use serde::Serialize;

use super::documents::no_store;
use crate::openapi::{Payload, RouteDoc, schema_ref};
use crate::routes::{Endpoint, RouteGroup};
use crate::state::AppState;

/// Add `GET /v1/roles` to `group` (the protected `default` group):
/// administrators (`admin:access`).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    group.route(LIST_ROLES, &[Permission::ADMIN_ACCESS], list_roles)
}

/// `GET /v1/roles`: the route of [`list_roles`] and its documentation.
pub(crate) const LIST_ROLES: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/roles",
    RouteDoc::ok(
        "The roles, their permissions, and which the caller may grant",
        "every configured role, by name",
        Payload::Json(schema_ref::<RoleList>),
    ),
);

/// The roles.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleList {
    /// By name.
    items: Vec<RoleView>,
}

/// One role.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleView {
    /// Its name.
    name: String,
    /// What it grants (`resource:action`, `resource:*` or `*:*`).
    permissions: Vec<String>,
    /// Whether it acts across tenants (a platform role).
    cross_tenant: bool,
    /// Whether the caller may grant it: it holds every permission of the
    /// role, and the role is not cross-tenant unless the caller is.
    grantable: bool,
}

/// `GET /v1/roles`: every role of the configuration.
async fn list_roles(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Response, Error> {
    let caller_crosses = caller.has_permission(&Permission::TENANTS_CROSS);
    let items = state
        .auth
        .policy
        .roles()
        .map(|(role, cross_tenant)| RoleView {
            name: role.name.clone(),
            permissions: role.grants.iter().map(ToString::to_string).collect(),
            cross_tenant,
            grantable: caller.permissions.contains_all(&role.grants)
                && (!cross_tenant || caller_crosses),
        })
        .collect();
    Ok(no_store(&RoleList { items }))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};

    use crate::config::Config;
    use crate::routes::router;
    use crate::routes::tests::{json, send};
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
}
