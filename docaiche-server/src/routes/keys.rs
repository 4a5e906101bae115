//! The API routes: API key management (`/v1/keys`), the cross-tenant admin
//! listing (`/v1/admin/...`), `GET /v1/whoami` and the public JWKS.
//!
//! Handlers take the caller from the [`Authenticated`] extractor (the auth
//! gate put it there) and never from the request: the tenant of every key
//! operation is the caller's own, except on `/v1/admin` routes, where the
//! guard requires `tenants:cross` and the service checks it again. A key
//! of another tenant is answered 404, exactly like a missing one.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_auth::api_key::{CreatedApiKey, NewApiKey};
use docaiche_auth::layer::Authenticated;
use docaiche_core::api_key::ApiKeyRecord;
use docaiche_core::error::FieldError;
use docaiche_core::{
    ApiKeyId, Error, Grant, MAX_PERMISSION_LEN, MAX_SCOPES, Permission, PermissionCatalog,
    PermissionSet,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::json::{ValidJson, Validate};
use crate::openapi::{Jwks, Payload, RequestBody, RouteDoc, schema_ref};
use crate::rejection::Path;
use crate::routes::Endpoint;
use crate::routes::RouteGroup;
use crate::state::AppState;

/// Longest key lifetime a caller may ask for: ten years.
pub(crate) const MAX_EXPIRES_IN_SECS: u64 = 10 * 365 * 24 * 3600;

/// Add the API routes to `group` (the protected `default` group).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    let manage = [Permission::KEYS_MANAGE];
    let cross = [Permission::TENANTS_CROSS, Permission::KEYS_MANAGE];
    group
        .route(WHOAMI, &[], whoami)
        .route(CREATE_KEY, &manage, create_key)
        .route(list::LIST_KEYS, &manage, list::list_keys)
        .route(GET_KEY, &manage, get_key)
        .route(ROTATE_KEY, &manage, rotate_key)
        .route(REVOKE_KEY, &manage, revoke_key)
        .route(list::ADMIN_LIST_KEYS, &cross, list::admin_list_keys)
}

/// `GET /.well-known/jwks.json`: the route of [`jwks`] and its documentation.
pub(crate) const JWKS: Endpoint = Endpoint::new(
    Method::GET,
    "/.well-known/jwks.json",
    RouteDoc::ok(
        "The public keys verifying the server's JWTs (RFC 7517)",
        "the JWK set; HMAC keys never appear",
        Payload::Json(schema_ref::<Jwks>),
    ),
);

/// `GET /.well-known/jwks.json`: the public keys of the server's JWT key
/// set (RFC 7517). Public; HMAC keys never appear.
pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.auth.jwt_keys.jwks()),
    )
        .into_response()
}

/// `GET /v1/whoami`: the route of [`whoami`] and its documentation.
pub(crate) const WHOAMI: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/whoami",
    RouteDoc::ok(
        "The authenticated caller",
        "the caller's principal, tenant, roles and permissions",
        Payload::Json(schema_ref::<Whoami<'static>>),
    ),
);

/// `GET /v1/whoami`.
// Written straight from the caller; fields in the order the keys sort.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Whoami<'a> {
    /// `api_key`, `jwt`, `oidc` or `other`.
    auth_method: &'static str,
    /// Every permission held (`resource:action`).
    #[schema(value_type = Vec<String>)]
    permissions: &'a PermissionSet,
    /// The principal id.
    principal: &'a str,
    /// The roles.
    roles: &'a [String],
    /// The tenant.
    tenant: &'a str,
}

/// `GET /v1/whoami`: the authenticated caller.
///
/// The hottest authenticated route: it reads the caller where the auth gate
/// put it (as [`Authenticated`] does, without cloning it) and writes the
/// body straight from it.
async fn whoami(request: axum::extract::Request) -> Response {
    let Some(caller) = docaiche_core::Principal::from_extensions(request.extensions()) else {
        return Error::unauthenticated(docaiche_core::AuthFailure::Missing).into_response();
    };
    let method = match &caller.auth_method {
        docaiche_core::AuthMethod::ApiKey { .. } => "api_key",
        docaiche_core::AuthMethod::Jwt { .. } => "jwt",
        docaiche_core::AuthMethod::Oidc { .. } => "oidc",
        _ => "other",
    };
    let body = Whoami {
        auth_method: method,
        permissions: &caller.permissions,
        principal: caller.id.as_str(),
        roles: &caller.roles,
        tenant: caller.tenant.as_str(),
    };
    // Sized for a typical caller, so the body is written without regrowing.
    let mut bytes = Vec::with_capacity(256);
    match serde_json::to_writer(&mut bytes, &body) {
        Ok(()) => {
            let mut response = Response::new(axum::body::Body::from(bytes));
            // Room for what the stack adds, so that no layer regrows it.
            let headers = response.headers_mut();
            *headers = crate::routes::answer_headers(2);
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => Error::internal_with("cannot encode the caller", e).into_response(),
    }
}

/// The body of `POST /v1/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    /// Human label.
    #[schema(pattern = "\\S")]
    name: String,
    // The permissions the key carries. Described by `ScopeList`'s schema: a
    // doc comment here would make utoipa wrap the inlined array in an
    // `allOf` with `type: object`, a schema no value satisfies.
    #[schema(inline)]
    scopes: ScopeList,
    // Roles whose permissions the key also carries: tenant roles of the
    // configuration or custom roles of the tenant, expanded once, at
    // creation (a snapshot: later changes to a role do not reach the key).
    // The schema is `RoleNames`'.
    #[serde(default)]
    roles: Option<crate::routes::accounts::RoleNames>,
    /// Lifetime in seconds; none for a key that does not expire.
    #[schema(minimum = 1, maximum = 315_360_000)]
    #[serde(default, deserialize_with = "crate::json::integer::json")]
    expires_in_secs: Option<u64>,
}

/// The `scopes` of `POST /v1/keys` as sent: at most [`MAX_SCOPES`] names
/// of at most [`MAX_PERMISSION_LEN`] bytes each, refused while parsing
/// (so a flood of names is never collected), then checked against the
/// [`PermissionCatalog`] by [`Validate`], each problem naming its item
/// (`/scopes/3`).
#[derive(Debug)]
pub(crate) struct ScopeList(Vec<String>);

impl<'de> Deserialize<'de> for ScopeList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error as _, SeqAccess, Visitor};

        /// One name, refused past its length before it is copied.
        struct Name(String);

        impl<'de> Deserialize<'de> for Name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
                if name.len() > MAX_PERMISSION_LEN {
                    return Err(D::Error::custom(format!(
                        "a permission is at most {MAX_PERMISSION_LEN} bytes"
                    )));
                }
                Ok(Self(name.into_owned()))
            }
        }

        struct Names;

        impl<'de> Visitor<'de> for Names {
            type Value = ScopeList;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an array of at most {MAX_SCOPES} permission names")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ScopeList, A::Error> {
                let mut names = Vec::new();
                while let Some(Name(name)) = seq.next_element()? {
                    if names.len() == MAX_SCOPES {
                        return Err(A::Error::custom(format!(
                            "at most {MAX_SCOPES} permissions"
                        )));
                    }
                    names.push(name);
                }
                Ok(ScopeList(names))
            }
        }

        deserializer.deserialize_seq(Names)
    }
}

impl ScopeList {
    /// The field errors of these names: unknown to `catalog`, or repeated.
    fn problems(&self, catalog: &PermissionCatalog) -> Vec<FieldError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut fields = Vec::new();
        if self.0.is_empty() {
            fields.push(FieldError::new(
                "/scopes",
                "must name at least one permission",
            ));
        }
        for (index, name) in self.0.iter().enumerate() {
            let pointer = format!("/scopes/{index}");
            match catalog.parse_grant(name) {
                Err(_) => fields.push(FieldError::new(
                    pointer,
                    "not a permission of the catalogue (see the enum of the OpenAPI document)",
                )),
                Ok(grant) => {
                    if !seen.insert(grant) {
                        fields.push(FieldError::new(pointer, "repeats an earlier permission"));
                    }
                }
            }
        }
        fields
    }

    /// The validated names as a set (call after [`Self::problems`] found
    /// none; an invalid name is left out).
    fn to_set(&self) -> PermissionSet {
        self.0
            .iter()
            .filter_map(|name| Grant::parse(name).ok())
            .collect()
    }
}

impl utoipa::PartialSchema for ScopeList {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, Ref};

        // Items: the `Permission` schema, the catalogue's names.
        ArrayBuilder::new()
            .description(Some(
                "The permissions the key carries: a subset of the caller's, 1 to 64 \
                 distinct names of the permission catalogue (or its wildcards).",
            ))
            .items(Ref::from_schema_name(
                <crate::openapi::PermissionName as utoipa::ToSchema>::name(),
            ))
            .min_items(Some(1))
            .max_items(Some(MAX_SCOPES))
            .unique_items(true)
            .into()
    }
}

impl utoipa::ToSchema for ScopeList {}

/// The optional body of `POST /v1/keys/{id}/rotate`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateKey {
    /// How long the old key keeps working, in seconds.
    #[schema(minimum = 0, maximum = 315_360_000)]
    #[serde(default, deserialize_with = "crate::json::integer::json")]
    overlap_secs: Option<u64>,
}

impl Validate for CreateKey {
    fn validate(&self) -> Vec<FieldError> {
        let mut fields = Vec::new();
        if self.name.trim().is_empty() {
            fields.push(FieldError::new("/name", "must not be blank"));
        }
        fields.extend(self.scopes.problems(&PermissionCatalog::builtin()));
        if let Some(roles) = &self.roles
            && roles.names().len() > crate::routes::accounts::MAX_ROLES
        {
            fields.push(FieldError::new(
                "/roles",
                format!("at most {} roles", crate::routes::accounts::MAX_ROLES),
            ));
        }
        if self
            .expires_in_secs
            .is_some_and(|secs| secs == 0 || secs > MAX_EXPIRES_IN_SECS)
        {
            fields.push(FieldError::new(
                "/expires_in_secs",
                "must be between 1 and 315360000 (ten years)",
            ));
        }
        fields
    }
}

impl Validate for RotateKey {
    fn validate(&self) -> Vec<FieldError> {
        match self.overlap_secs {
            Some(secs) if secs > MAX_EXPIRES_IN_SECS => vec![FieldError::new(
                "/overlap_secs",
                "must be at most 315360000 (ten years)",
            )],
            _ => Vec::new(),
        }
    }
}

/// `POST /v1/keys`: the route of [`create_key`] and its documentation.
pub(crate) const CREATE_KEY: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/keys",
    RouteDoc {
        description: Some(
            "The key carries `scopes` plus the permissions of `roles` (tenant roles of \
             the configuration or custom roles of the tenant), expanded at creation: \
             a snapshot, which later changes to a role do not reach. Every permission \
             must be the caller's.",
        ),
        body: RequestBody::Json {
            schema: schema_ref::<crate::routes::keys::CreateKey>,
            required: true,
        },
        errors: &[
            (
                403,
                "a scope or a role's permission the caller lacks, or a cross-tenant role",
            ),
            (
                404,
                "a role that is neither a tenant role of the configuration nor a custom \
                 role of the tenant",
            ),
        ],
        status: 201,
        ..RouteDoc::ok(
            "Create an API key in the caller's tenant",
            "the key, shown this once (`Location: /v1/keys/{id}`)",
            Payload::Json(schema_ref::<CreatedKey<'static>>),
        )
    },
);

/// `POST /v1/keys`: create a key in the caller's tenant; 201 with the key,
/// shown this once.
async fn create_key(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::audit::AuditFacts(context): crate::audit::AuditFacts,
    ValidJson(request): ValidJson<CreateKey>,
) -> Result<Response, Error> {
    let mut scopes = request.scopes.to_set();
    if let Some(roles) = &request.roles {
        expand_roles(&state, &caller.tenant, roles.names(), &mut scopes).await?;
    }
    let mut new = NewApiKey::new(caller.tenant.clone(), request.name).with_scopes(scopes);
    if let Some(secs) = request.expires_in_secs {
        // Validated: 1 ..= MAX_EXPIRES_IN_SECS.
        let lifetime = time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX));
        new = new.with_expiry(state.auth.clock.now() + lifetime);
    }
    crate::audit::administrative(&state, &caller, "api_key.create", &context).await?;
    let created = state.auth.api_keys.create(&caller, new).await?;
    Ok(created_response(&created))
}

/// Add to `scopes` the grants of `roles` in `tenant`: a configured,
/// tenant-scoped role's grants, else the permissions of the tenant's custom
/// role of that name. The key service then refuses (403) scopes beyond the
/// caller's, as for `scopes` themselves.
///
/// # Errors
/// 400 naming the first unknown, cross-tenant or repeated role, or when
/// the scopes grow past [`MAX_SCOPES`]; `Unavailable` on a store outage.
async fn expand_roles(
    state: &AppState,
    tenant: &docaiche_core::TenantId,
    roles: &[String],
    scopes: &mut PermissionSet,
) -> Result<(), Error> {
    let invalid = |index: usize, detail: &str| {
        Error::invalid_fields(
            "the JSON body failed validation",
            vec![FieldError::new(
                format!("/roles/{index}"),
                detail.to_owned(),
            )],
        )
    };
    let policy = &state.auth.policy;
    for (index, name) in roles.iter().enumerate() {
        if roles[..index].contains(name) {
            return Err(invalid(index, "repeats an earlier role"));
        }
        let grants = match policy.role(name) {
            Some(_) if policy.is_cross_tenant(name) => None,
            Some(role) => Some(role.grants.clone()),
            None => state
                .auth
                .stores
                .custom_roles
                .get(tenant, name)
                .await?
                .map(|role| role.permissions),
        };
        // A role that does not exist is a reference to nothing (404, as
        // for accounts); a cross-tenant one is never bound to a key (403).
        let Some(grants) = grants else {
            return Err(if policy.is_cross_tenant(name) {
                Error::missing_permission(Permission::TENANTS_CROSS)
            } else {
                Error::not_found("role")
            });
        };
        for grant in grants.iter() {
            scopes.insert(grant.clone());
        }
    }
    if scopes.len() > MAX_SCOPES {
        return Err(Error::invalid_fields(
            "the JSON body failed validation",
            vec![FieldError::new(
                "/roles",
                format!("the scopes and the roles' permissions exceed {MAX_SCOPES} permissions"),
            )],
        ));
    }
    Ok(())
}

/// `POST /v1/keys/{id}/rotate`: the route of [`rotate_key`] and its documentation.
pub(crate) const ROTATE_KEY: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/keys/{id}/rotate",
    RouteDoc {
        description: Some("The old key keeps working for the overlap."),
        errors: &[
            (
                400,
                "an overlap over `auth.api_keys.max_rotation_overlap_secs`",
            ),
            (
                409,
                "the key is revoked, expired or already rotated, or carries scopes \
                 a new key could not",
            ),
        ],
        body: RequestBody::Json {
            schema: schema_ref::<crate::routes::keys::RotateKey>,
            required: false,
        },
        status: 201,
        ..RouteDoc::ok(
            "Rotate an API key: a successor key",
            "the successor key, shown this once",
            Payload::Json(schema_ref::<CreatedKey<'static>>),
        )
    },
);

/// `POST /v1/keys/{id}/rotate`: a successor key (201, shown this once); the
/// old key keeps working for the overlap.
async fn rotate_key(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::audit::AuditFacts(context): crate::audit::AuditFacts,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Error> {
    // The body is optional; when present it is JSON like any other, under
    // the same limit.
    let body = crate::json::read_limited(&headers, body, state.http.json_body_limit()).await?;
    let request: RotateKey = if body.is_empty() {
        RotateKey::default()
    } else {
        crate::json::from_body(&headers, &body)?
    };
    let id = key_id(&id)?;
    let overlap = request
        .overlap_secs
        .map_or(state.auth.rotation_overlap, std::time::Duration::from_secs);
    crate::audit::administrative(&state, &caller, "api_key.rotate", &context).await?;
    let created = state
        .auth
        .api_keys
        .rotate(&caller, &caller.tenant, &id, overlap)
        .await?;
    Ok(created_response(&created))
}

/// `GET /v1/keys/{id}`: the route of [`get_key`] and its documentation.
pub(crate) const GET_KEY: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/keys/{id}",
    RouteDoc {
        errors: &[(404, "no key of the caller's tenant has this id")],
        ..RouteDoc::ok(
            "An API key's record (never its secret)",
            "the key",
            Payload::Json(schema_ref::<KeyView>),
        )
    },
);

/// `GET /v1/keys/{id}`: one key of the caller's tenant.
async fn get_key(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let id = key_id(&id)?;
    let record = state
        .auth
        .api_keys
        .get(&caller, &caller.tenant, &id)
        .await?;
    Ok(no_store(StatusCode::OK, &KeyView::from(&record)))
}

/// `DELETE /v1/keys/{id}`: the route of [`revoke_key`] and its documentation.
pub(crate) const REVOKE_KEY: Endpoint = Endpoint::new(
    Method::DELETE,
    "/v1/keys/{id}",
    RouteDoc {
        status: 204,
        ..RouteDoc::ok("Revoke an API key", "revoked", Payload::Empty)
    },
);

/// `DELETE /v1/keys/{id}`: revoke a key of the caller's tenant; 204.
async fn revoke_key(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::audit::AuditFacts(context): crate::audit::AuditFacts,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let id = key_id(&id)?;
    crate::audit::administrative(&state, &caller, "api_key.revoke", &context).await?;
    state
        .auth
        .api_keys
        .revoke(&caller, &caller.tenant, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A key id from the path; an unparsable one is as missing as any other.
fn key_id(raw: &str) -> Result<ApiKeyId, Error> {
    raw.parse().map_err(|_| Error::not_found("api_key"))
}

/// The 201 answer to a created or rotated key.
fn created_response(created: &CreatedApiKey) -> Response {
    let body = CreatedKey {
        record: KeyView::from(&created.record),
        key: created.key.expose_secret(),
    };
    let mut response = no_store(StatusCode::CREATED, &body);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/keys/{}", created.record.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// An API key record (never its secret or hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ApiKey)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyView {
    /// The key id.
    id: String,
    /// Its tenant.
    tenant: String,
    /// The principal the key acts as.
    principal: String,
    /// Human label.
    name: String,
    /// The permissions it carries.
    scopes: Vec<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
    /// RFC 3339; none for a key that does not expire.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
    /// The successor of a rotated key.
    replaced_by: Option<String>,
}

impl From<&ApiKeyRecord> for KeyView {
    fn from(record: &ApiKeyRecord) -> Self {
        let time = |t: OffsetDateTime| t.format(&Rfc3339).ok();
        Self {
            id: record.id.to_string(),
            tenant: record.tenant.as_str().to_owned(),
            principal: record.principal.as_str().to_owned(),
            name: record.name.clone(),
            scopes: record.scopes.iter().map(ToString::to_string).collect(),
            created_at: time(record.created_at).unwrap_or_default(),
            expires_at: record.expires_at.and_then(time),
            last_used_at: record.last_used_at.and_then(time),
            revoked_at: record.revoked_at.and_then(time),
            replaced_by: record.replaced_by.map(|id| id.to_string()),
        }
    }
}

/// A created or rotated key: the record and the key itself, shown once.
// No `Debug`: it holds the secret.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedKey<'a> {
    /// The record.
    #[serde(flatten)]
    record: KeyView,
    /// The key: send it as `X-API-Key`. Shown this once.
    key: &'a str,
}

/// A JSON response that no cache may keep.
pub(super) fn no_store(status: StatusCode, body: &impl Serialize) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

pub(crate) mod list;
#[cfg(test)]
mod tests;
