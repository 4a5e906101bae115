//! `/v1/roles`: the roles an account can hold, and the tenant's own.
//!
//! | route | permission | what |
//! |---|---|---|
//! | `GET /v1/roles` | `admin:access` | the roles of the configuration (`[auth.rbac]`) and the tenant's custom roles, their permissions, and whether the caller may grant each |
//! | `POST /v1/roles` | `accounts:manage` | create or replace a custom role of the tenant |
//! | `DELETE /v1/roles/{name}` | `accounts:manage` | delete a custom role of the tenant |
//!
//! Platform roles (wildcards, `tenants:cross`) stay in configuration. A
//! custom role ([`docaiche_core::custom_role`]) is a named set of *exact*
//! permissions of the built-in catalogue, defined by a tenant
//! administrator for its own tenant; accounts hold it like a configured
//! role (`/v1/accounts`), and their tokens carry its permissions as
//! concrete `permissions` from the next sign-in or refresh.
//!
//! No escalation: a caller may create, change or delete a custom role only
//! when it holds every permission the role grants (before and after the
//! change), and `tenants:cross` is never a custom permission (403).
//! Unknown permissions, wildcards, and names of configured roles are 400;
//! a configured role cannot be deleted (409). Every route acts on the
//! caller's tenant, or with `tenants:cross` on the tenant named by
//! `?tenant=`; another tenant's custom role answers 404 like a missing
//! one. Every change is audited before it happens (`role.create.attempt`,
//! `role.update.attempt`, `role.delete.attempt`) and after, with the
//! permissions before and after.
//!
//! Reading stays with `admin:access` (the administrator console's
//! permission) rather than `accounts:manage`: the route groups require all
//! the permissions they list, and the list of roles tells which
//! permissions exist, which a console shows its administrators anyway.
//!
//! Deleting a custom role leaves its name on the accounts holding it,
//! where it grants nothing; re-creating a role of that name grants its new
//! permissions to them again.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_auth::layer::Authenticated;
use docaiche_core::audit::AuditResource;
use docaiche_core::custom_role::{
    CustomRole, MAX_CUSTOM_ROLE_PERMISSIONS, MAX_DESCRIPTION_LEN, MAX_ROLE_NAME_LEN,
    is_valid_role_name,
};
use docaiche_core::error::FieldError;
use docaiche_core::{Error, Grant, Permission, PermissionCatalog, PermissionSet, TenantId};
use serde::{Deserialize, Serialize};

use super::accounts::{TenantQuery, attempt, done, event_on};
use super::documents::no_store;
use crate::audit::AuditFacts;
use crate::json::{ValidJson, Validate};
use crate::openapi::{Param, Payload, RequestBody, RouteDoc, grammar, schema_ref};
use crate::rejection::Path;
use crate::routes::{Endpoint, RouteGroup};
use crate::state::AppState;

/// Add the role routes to `group` (the protected `default` group).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    group
        .route(LIST_ROLES, &[Permission::ADMIN_ACCESS], list_roles)
        .route(PUT_ROLE, &[Permission::ACCOUNTS_MANAGE], put_role)
        .route(DELETE_ROLE, &[Permission::ACCOUNTS_MANAGE], delete_role)
}

/// `?tenant=` of every role route.
const TENANT_PARAM: (&str, Param, &str) = (
    "tenant",
    Param::Pattern(grammar::NAME_ID),
    "the tenant whose custom roles are listed or managed (default: the caller's; \
     another needs `tenants:cross`, else 404)",
);

/// The tenant `caller` acts on.
fn tenant_of(
    caller: &docaiche_core::Principal,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<TenantId, Error> {
    let query = crate::rejection::query(query)?;
    super::audit::readable_tenant(caller, query.tenant())
}

/// `GET /v1/roles`: the route of [`list_roles`] and its documentation.
pub(crate) const LIST_ROLES: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/roles",
    RouteDoc {
        query: &[TENANT_PARAM],
        errors: &[(400, "an invalid tenant")],
        ..RouteDoc::ok(
            "The roles, their permissions, and which the caller may grant",
            "every configured role, then the tenant's custom roles, each by name",
            Payload::Json(schema_ref::<RoleList>),
        )
    },
);

/// The roles.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleList {
    /// The configured roles by name, then the tenant's custom roles by name.
    items: Vec<RoleView>,
}

/// One role.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleView {
    /// Its name.
    name: String,
    /// What it grants (`resource:action`, `resource:*` or `*:*`; a custom
    /// role only `resource:action`).
    permissions: Vec<String>,
    /// Whether it acts across tenants (a platform role).
    cross_tenant: bool,
    /// Whether the tenant defined it (`POST /v1/roles`) rather than the
    /// configuration.
    custom: bool,
    /// What a custom role is for, if its creator said.
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// Whether the caller may grant it: it holds every permission of the
    /// role, and the role is not cross-tenant unless the caller is.
    grantable: bool,
}

impl RoleView {
    /// The view of custom `role` for `caller`.
    fn custom(role: &CustomRole, caller: &docaiche_core::Principal) -> Self {
        Self {
            name: role.name.clone(),
            permissions: role.permissions.iter().map(ToString::to_string).collect(),
            cross_tenant: false,
            custom: true,
            description: role.description.clone(),
            grantable: caller.permissions.contains_all(&role.permissions),
        }
    }
}

/// `GET /v1/roles`: every role of the configuration, then the tenant's
/// custom roles.
async fn list_roles(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let tenant = tenant_of(&caller, query)?;
    let caller_crosses = caller.has_permission(&Permission::TENANTS_CROSS);
    let mut items: Vec<RoleView> = state
        .auth
        .policy
        .roles()
        .map(|(role, cross_tenant)| RoleView {
            name: role.name.clone(),
            permissions: role.grants.iter().map(ToString::to_string).collect(),
            cross_tenant,
            custom: false,
            description: None,
            grantable: caller.permissions.contains_all(&role.grants)
                && (!cross_tenant || caller_crosses),
        })
        .collect();
    let custom = state.auth.stores.custom_roles.list(&tenant).await?;
    items.extend(
        custom
            .iter()
            // Configured names win (a clash can only follow a configuration
            // change): the shadowed custom role grants nothing.
            .filter(|role| state.auth.policy.role(&role.name).is_none())
            .map(|role| RoleView::custom(role, &caller)),
    );
    Ok(no_store(&RoleList { items }))
}

/// `POST /v1/roles`: the route of [`put_role`] and its documentation.
pub(crate) const PUT_ROLE: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/roles",
    RouteDoc {
        description: Some(
            "Creates the tenant's custom role `name`, or replaces its permissions and \
             description. Each permission must be an exact permission of the catalogue \
             (no wildcards) that the caller holds, never `tenants:cross`; replacing a \
             role also needs every permission it granted before, and answers 200 \
             instead of 201. Accounts holding the role get the change at their next \
             sign-in or token refresh. A tenant defines at most 100 custom roles.",
        ),
        query: &[TENANT_PARAM],
        body: RequestBody::Json {
            schema: schema_ref::<PutRole>,
            required: true,
        },
        status: 201,
        also: Some((200, "the role, replaced")),
        errors: &[
            (400, "an invalid tenant"),
            (403, "a permission the caller lacks, or `tenants:cross`"),
            (409, "the tenant already defines 100 custom roles"),
        ],
        ..RouteDoc::ok(
            "Create or replace a custom role of the tenant",
            "the role, created (`Location: /v1/roles/{name}`)",
            Payload::Json(schema_ref::<RoleView>),
        )
    },
);

/// The body of `POST /v1/roles`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutRole {
    /// The role's name: lowercase letters, digits, `-` and `_`, starting
    /// with a letter; not the name of a configured role.
    #[schema(pattern = "^[a-z][a-z0-9_-]{0,63}$", max_length = 64)]
    name: String,
    /// What it grants: exact permissions (`resource:action`) of the
    /// catalogue, each held by the caller.
    #[schema(max_items = 64)]
    permissions: Vec<String>,
    /// What the role is for (no control characters).
    #[schema(max_length = 500, pattern = "^[^\\x00-\\x1f\\x7f]*$")]
    description: Option<String>,
}

impl Validate for PutRole {
    fn validate(&self) -> Vec<FieldError> {
        let mut fields = Vec::new();
        if !is_valid_role_name(&self.name) {
            fields.push(FieldError::new(
                "/name",
                format!(
                    "1 to {MAX_ROLE_NAME_LEN} lowercase letters, digits, - and _, starting \
                     with a letter"
                ),
            ));
        }
        if self.permissions.len() > MAX_CUSTOM_ROLE_PERMISSIONS {
            fields.push(FieldError::new(
                "/permissions",
                format!("at most {MAX_CUSTOM_ROLE_PERMISSIONS} permissions"),
            ));
            return fields;
        }
        let catalog = PermissionCatalog::builtin();
        for (index, name) in self.permissions.iter().enumerate() {
            let at = format!("/permissions/{index}");
            match catalog.parse_grant(name) {
                Ok(Grant::Exact(_)) if self.permissions[..index].contains(name) => {
                    fields.push(FieldError::new(at, "repeats an earlier permission"));
                }
                Ok(Grant::Exact(_)) => {}
                Ok(_) => fields.push(FieldError::new(
                    at,
                    "a custom role holds exact permissions only, not wildcards",
                )),
                Err(_) => fields.push(FieldError::new(
                    at,
                    "not a permission of the catalogue (GET /v1/permissions)",
                )),
            }
        }
        if let Some(description) = &self.description
            && (description.len() > MAX_DESCRIPTION_LEN
                || description.chars().any(char::is_control))
        {
            fields.push(FieldError::new(
                "/description",
                format!("at most {MAX_DESCRIPTION_LEN} bytes without control characters"),
            ));
        }
        fields
    }
}

/// Refuse with 403 unless `caller` holds every permission of `permissions`
/// (naming the first it lacks), and `tenants:cross` always.
fn check_held(caller: &docaiche_core::Principal, permissions: &PermissionSet) -> Result<(), Error> {
    for grant in permissions.iter() {
        match grant {
            Grant::Exact(p) if *p == Permission::TENANTS_CROSS => {
                return Err(Error::missing_permission(p.clone()));
            }
            Grant::Exact(p) if !caller.has_permission(p) => {
                return Err(Error::missing_permission(p.clone()));
            }
            Grant::Exact(_) => {}
            // Never stored nor accepted (`PutRole::validate`): refuse anyway.
            _ => return Err(Error::Forbidden { permission: None }),
        }
    }
    Ok(())
}

/// A space-separated list of `permissions`, for the audit trail.
fn joined(permissions: &PermissionSet) -> String {
    permissions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `POST /v1/roles`: create or replace a custom role.
async fn put_role(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    query: Result<Query<TenantQuery>, QueryRejection>,
    ValidJson(body): ValidJson<PutRole>,
) -> Result<Response, Error> {
    let tenant = tenant_of(&caller, query)?;
    if state.auth.policy.role(&body.name).is_some() {
        return Err(Error::invalid_fields(
            "the JSON body failed validation",
            vec![FieldError::new(
                "/name",
                "names a role of the configuration; choose another name",
            )],
        ));
    }
    let catalog = PermissionCatalog::builtin();
    let permissions: PermissionSet = body
        .permissions
        .iter()
        .map(|name| catalog.parse_grant(name))
        .collect::<Result<_, _>>()?;
    check_held(&caller, &permissions)?;
    let store = &state.auth.stores.custom_roles;
    let before = store.get(&tenant, &body.name).await?;
    if let Some(before) = &before {
        // Replacing takes the old permissions away from the role's holders.
        check_held(&caller, &before.permissions)?;
    }
    let now = state.auth.clock.now();
    let mut role = CustomRole::new(tenant.clone(), body.name.clone(), [], now)?
        .with_description(body.description);
    role.permissions = permissions;
    role.validate()?;
    let action = if before.is_some() {
        "role.update"
    } else {
        "role.create"
    };
    let mut record = event_on(
        action,
        &caller,
        &tenant,
        AuditResource::new("role", &role.name),
        &context,
    )
    .with_detail("permissions_after", joined(&role.permissions).into());
    if let Some(before) = &before {
        record = record.with_detail("permissions_before", joined(&before.permissions).into());
    }
    attempt(&state, &record).await?;
    let created = store.put(&role).await?;
    if let Some(before) = &before
        && !created
    {
        role.created_at = before.created_at;
    }
    done(&state, record).await;
    let view = RoleView::custom(&role, &caller);
    if !created {
        return Ok(no_store(&view));
    }
    let mut response = (
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(view),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/roles/{}", role.name)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `DELETE /v1/roles/{name}`: the route of [`delete_role`] and its
/// documentation.
pub(crate) const DELETE_ROLE: Endpoint = Endpoint::new(
    Method::DELETE,
    "/v1/roles/{name}",
    RouteDoc {
        description: Some(
            "The caller must hold every permission of the role. Accounts holding it \
             lose its permissions at their next sign-in or token refresh; the name \
             stays on them and grants nothing.",
        ),
        query: &[TENANT_PARAM],
        status: 204,
        errors: &[
            (403, "the role grants a permission the caller lacks"),
            (
                409,
                "a role of the configuration, which only configuration changes",
            ),
        ],
        ..RouteDoc::ok(
            "Delete a custom role of the tenant",
            "deleted",
            Payload::Empty,
        )
    },
);

/// `DELETE /v1/roles/{name}`: delete a custom role.
async fn delete_role(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    Path(name): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<StatusCode, Error> {
    let tenant = tenant_of(&caller, query)?;
    if state.auth.policy.role(&name).is_some() {
        return Err(Error::conflict(
            "a role of the configuration cannot be deleted through the API",
        ));
    }
    let store = &state.auth.stores.custom_roles;
    let role = store
        .get(&tenant, &name)
        .await?
        .ok_or_else(|| Error::not_found("role"))?;
    check_held(&caller, &role.permissions)?;
    let record = event_on(
        "role.delete",
        &caller,
        &tenant,
        AuditResource::new("role", &role.name),
        &context,
    )
    .with_detail("permissions_before", joined(&role.permissions).into());
    attempt(&state, &record).await?;
    if !store.delete(&tenant, &role.name).await? {
        return Err(Error::not_found("role"));
    }
    done(&state, record).await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests;
