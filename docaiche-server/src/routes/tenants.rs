//! `/v1/tenants`: the platform's tenant registry, for platform
//! administrators only (`tenants:cross` and `admin:access`): register,
//! list, read, change the settings of (rate-limit overrides, retention,
//! storage quotas, whether its administrators need a second factor in the
//! console), suspend and resume a tenant.
//!
//! | route | answer |
//! |---|---|
//! | `POST /v1/tenants` | 201 the tenant (409 `conflict` when registered) |
//! | `GET /v1/tenants?status=&after=&limit=` | a page, by id |
//! | `GET /v1/tenants/{tenant}` | the tenant (404 when not registered) |
//! | `PATCH /v1/tenants/{tenant}` | the tenant, the fields sent replaced |
//! | `POST /v1/tenants/{tenant}/suspend` | the tenant, suspended |
//! | `POST /v1/tenants/{tenant}/resume` | the tenant, active |
//!
//! Every change is recorded in the audit trail (`tenant.create`,
//! `tenant.update`, `tenant.suspend`, `tenant.resume`, on the changed
//! tenant's stream, the actor's tenant in `actor_tenant`) before it takes
//! effect, and refused (503) when the trail cannot record it and `[audit]`
//! is fail-closed. A change takes effect on this instance at once and on
//! the others within [`TenantDirectory::DEFAULT_TTL`]
//! (see [`crate::tenants`]): while suspended, every request of the
//! tenant's API keys and sessions is answered 403 `tenant-suspended`.
//!
//! [`TenantDirectory::DEFAULT_TTL`]: crate::tenants::TenantDirectory::DEFAULT_TTL

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_auth::layer::Authenticated;
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource};
use docaiche_core::error::FieldError;
use docaiche_core::page::PageRequest;
use docaiche_core::tenant::{
    MAX_SUSPENSION_REASON_LEN, RateLimitOverride, StatusChange, Tenant, TenantQuotas,
    TenantSettings, TenantStatus, validate_display_name,
};
use docaiche_core::{ApiKeyId, Error, Permission, Principal, RequestContext, TenantId};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::audit::AuditFacts;
use crate::json::{ObjectsOnly, ValidJson, Validate};
use crate::openapi::{Param, Payload, RequestBody, RouteDoc, grammar, schema_ref};
use crate::rejection::Path;
use crate::routes::{Endpoint, RouteGroup};
use crate::state::AppState;

/// Add the `/v1/tenants` routes to `group` (the protected `default`
/// group): platform administrators only.
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    let platform = [Permission::TENANTS_CROSS, Permission::ADMIN_ACCESS];
    group
        .route(CREATE, &platform, create)
        .route(LIST, &platform, list)
        .route(GET, &platform, get)
        .route(UPDATE, &platform, update)
        .route(SUSPEND, &platform, suspend)
        .route(RESUME, &platform, resume)
}

/// A rate limit replacing the configured one.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitBody {
    /// Requests allowed per period (also the burst), at least 1.
    #[schema(minimum = 1, maximum = 4_294_967_295_u64)]
    requests: u32,
    /// The period in seconds, at least 1.
    #[schema(minimum = 1, maximum = 4_294_967_295_u64)]
    period_secs: u32,
}

impl RateLimitBody {
    fn to_override(self) -> Option<RateLimitOverride> {
        Some(RateLimitOverride::new(
            NonZeroU32::new(self.requests)?,
            NonZeroU32::new(self.period_secs)?,
        ))
    }

    const fn from_override(o: RateLimitOverride) -> Self {
        Self {
            requests: o.requests.get(),
            period_secs: o.period_secs.get(),
        }
    }
}

/// Storage quotas; `null` or absent is unlimited.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct QuotasBody {
    /// Most bytes of stored documents.
    max_storage_bytes: Option<u64>,
    /// Most stored documents.
    max_documents: Option<u64>,
}

/// A tenant's settings (a field absent from a `POST` is its default).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SettingsBody {
    /// Replaces the configured per-tenant rate limit (`null`: none).
    rate_limit: Option<RateLimitBody>,
    /// Replace the configured per-key rate limit, by API key id (at most
    /// 1000 keys).
    key_rate_limits: BTreeMap<String, RateLimitBody>,
    /// Replaces the configured document retention, in days (1 to 36500;
    /// `null`: none, the configured period applies), from the next purge
    /// run on. Legal holds still keep what they cover.
    #[schema(minimum = 1, maximum = 36_500)]
    retention_days: Option<u32>,
    /// Storage quotas, enforced at upload (403 `tenant-quota-exceeded`).
    quotas: QuotasBody,
    /// Whether the tenant's administrators (accounts holding
    /// `accounts:manage` or `admin:access`) must pass a TOTP second factor
    /// to sign in to the console (default `false`; platform administrators
    /// always must).
    require_admin_mfa: bool,
}

impl SettingsBody {
    fn from_settings(s: &TenantSettings) -> Self {
        Self {
            rate_limit: s.rate_limit.map(RateLimitBody::from_override),
            key_rate_limits: s
                .key_rate_limits
                .iter()
                .map(|(id, o)| (id.to_string(), RateLimitBody::from_override(*o)))
                .collect(),
            retention_days: s.retention_days,
            quotas: QuotasBody {
                max_storage_bytes: s.quotas.max_storage_bytes,
                max_documents: s.quotas.max_documents,
            },
            require_admin_mfa: s.require_admin_mfa,
        }
    }
}

/// Problems of a rate limit at `pointer`.
fn check_limit(limit: &RateLimitBody, pointer: &str, fields: &mut Vec<FieldError>) {
    if limit.to_override().is_none() {
        fields.push(FieldError::new(
            pointer,
            "requests and period_secs must be at least 1",
        ));
    }
}

/// Problems of quotas at `pointer`: the document's integers are 64-bit
/// signed (`int64`), so a quota above `i64::MAX` is refused.
fn check_quotas(quotas: &QuotasBody, pointer: &str, fields: &mut Vec<FieldError>) {
    let limit = u64::try_from(i64::MAX).unwrap_or(u64::MAX);
    for (name, value) in [
        ("max_storage_bytes", quotas.max_storage_bytes),
        ("max_documents", quotas.max_documents),
    ] {
        if value.is_some_and(|v| v > limit) {
            fields.push(FieldError::new(
                format!("{pointer}/{name}"),
                format!("must be at most {limit}"),
            ));
        }
    }
}

/// Problems of the rate limits of the body.
fn check_key_limits(limits: &BTreeMap<String, RateLimitBody>, fields: &mut Vec<FieldError>) {
    for (id, limit) in limits {
        let pointer = format!(
            "/key_rate_limits/{}",
            id.replace('~', "~0").replace('/', "~1")
        );
        if id.parse::<uuid::Uuid>().is_err() {
            fields.push(FieldError::new(pointer.clone(), "is not an API key id"));
        }
        check_limit(limit, &pointer, fields);
    }
}

/// The key-limit map of the body, its keys checked by `validate`.
fn key_limits(
    limits: &BTreeMap<String, RateLimitBody>,
) -> Result<BTreeMap<ApiKeyId, RateLimitOverride>, Error> {
    limits
        .iter()
        .map(|(id, limit)| {
            let id = id
                .parse::<uuid::Uuid>()
                .map(ApiKeyId::from_uuid)
                .map_err(|_| Error::invalid_input("key_rate_limits: not an API key id"))?;
            let limit = limit.to_override().ok_or_else(|| {
                Error::invalid_input("key_rate_limits: limits must be at least 1")
            })?;
            Ok((id, limit))
        })
        .collect()
}

/// Check `settings`'s own bounds, as field errors.
fn settings_fields(settings: &TenantSettings) -> Vec<FieldError> {
    match settings.validate() {
        Err(Error::InvalidInput { fields, .. }) => fields,
        _ => Vec::new(),
    }
}

/// The body of `POST /v1/tenants`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTenant {
    /// The tenant's id (the `tenant` of its keys and accounts).
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")]
    id: String,
    /// A human name: once trimmed, 1 to 200 characters without control
    /// characters (stored trimmed).
    display_name: String,
    /// Its settings (default: the configuration's).
    #[serde(default)]
    settings: SettingsBody,
}

impl CreateTenant {
    fn settings(&self) -> Result<TenantSettings, Error> {
        let body = &self.settings;
        let mut settings = TenantSettings::default()
            .with_rate_limit(body.rate_limit.and_then(RateLimitBody::to_override))
            .with_retention_days(body.retention_days)
            .with_require_admin_mfa(body.require_admin_mfa)
            .with_quotas(
                TenantQuotas::default()
                    .with_max_storage_bytes(body.quotas.max_storage_bytes)
                    .with_max_documents(body.quotas.max_documents),
            );
        settings.key_rate_limits = key_limits(&body.key_rate_limits)?;
        Ok(settings)
    }
}

impl Validate for CreateTenant {
    fn validate(&self) -> Vec<FieldError> {
        let mut fields = Vec::new();
        if TenantId::new(self.id.as_str()).is_err() {
            fields.push(FieldError::new("/id", "is not a tenant id"));
        }
        if validate_display_name(&self.display_name).is_err() {
            fields.push(FieldError::new(
                "/display_name",
                "must be 1 to 200 characters once trimmed, without control characters",
            ));
        }
        if let Some(limit) = &self.settings.rate_limit {
            check_limit(limit, "/settings/rate_limit", &mut fields);
        }
        check_quotas(&self.settings.quotas, "/settings/quotas", &mut fields);
        let mut key_fields = Vec::new();
        check_key_limits(&self.settings.key_rate_limits, &mut key_fields);
        fields.extend(
            key_fields
                .into_iter()
                .map(|f| FieldError::new(format!("/settings{}", f.pointer), f.detail)),
        );
        if fields.is_empty()
            && let Ok(settings) = self.settings()
        {
            fields.extend(
                settings_fields(&settings)
                    .into_iter()
                    .map(|f| FieldError::new(format!("/settings{}", f.pointer), f.detail)),
            );
        }
        fields
    }
}

/// `Some(value)` for a field present (even `null`), `None` for one absent.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The body of `PATCH /v1/tenants/{tenant}`: each field present replaces
/// that setting (`null` clears it); absent ones are kept.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct UpdateTenant {
    /// Replaces the per-tenant rate-limit override (`null`: none).
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<RateLimitBody>)]
    rate_limit: Option<Option<RateLimitBody>>,
    /// Replaces every per-key override (`{}` or `null`: none).
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<BTreeMap<String, RateLimitBody>>)]
    key_rate_limits: Option<Option<BTreeMap<String, RateLimitBody>>>,
    /// Replaces the document retention override, in days (`null`: none,
    /// the configured period applies), from the next purge run on.
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 36_500)]
    retention_days: Option<Option<u32>>,
    /// Replaces the quotas (`null`: unlimited).
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<QuotasBody>)]
    quotas: Option<Option<QuotasBody>>,
    /// Whether the tenant's administrators must pass a TOTP second factor
    /// to sign in to the console.
    require_admin_mfa: Option<bool>,
}

impl UpdateTenant {
    /// `current` with the fields of this body replaced.
    fn apply(&self, current: &TenantSettings) -> Result<TenantSettings, Error> {
        let mut settings = current.clone();
        if let Some(limit) = self.rate_limit {
            settings.rate_limit = limit.and_then(RateLimitBody::to_override);
        }
        if let Some(limits) = &self.key_rate_limits {
            settings.key_rate_limits = match limits {
                Some(limits) => key_limits(limits)?,
                None => BTreeMap::new(),
            };
        }
        if let Some(days) = self.retention_days {
            settings.retention_days = days;
        }
        if let Some(required) = self.require_admin_mfa {
            settings.require_admin_mfa = required;
        }
        if let Some(quotas) = self.quotas {
            let quotas = quotas.unwrap_or_default();
            settings.quotas = TenantQuotas::default()
                .with_max_storage_bytes(quotas.max_storage_bytes)
                .with_max_documents(quotas.max_documents);
        }
        settings.validate()?;
        Ok(settings)
    }
}

impl Validate for UpdateTenant {
    fn validate(&self) -> Vec<FieldError> {
        let mut fields = Vec::new();
        if let Some(Some(limit)) = &self.rate_limit {
            check_limit(limit, "/rate_limit", &mut fields);
        }
        if let Some(Some(limits)) = &self.key_rate_limits {
            check_key_limits(limits, &mut fields);
        }
        if let Some(Some(quotas)) = &self.quotas {
            check_quotas(quotas, "/quotas", &mut fields);
        }
        if fields.is_empty()
            && let Err(Error::InvalidInput { fields: found, .. }) =
                self.apply(&TenantSettings::default())
        {
            fields.extend(found);
        }
        fields
    }
}

/// The body of `POST /v1/tenants/{tenant}/suspend`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SuspendTenant {
    /// Why: once trimmed, 1 to 500 characters without control characters
    /// (stored trimmed); kept for the platform operators, never shown to
    /// the tenant.
    reason: String,
}

impl Validate for SuspendTenant {
    fn validate(&self) -> Vec<FieldError> {
        if !docaiche_core::tenant::trimmed_text_within(&self.reason, MAX_SUSPENSION_REASON_LEN) {
            vec![FieldError::new(
                "/reason",
                format!(
                    "must be 1 to {MAX_SUSPENSION_REASON_LEN} characters once trimmed, without \
                     control characters"
                ),
            )]
        } else {
            Vec::new()
        }
    }
}

/// One tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantView {
    /// Its id.
    id: String,
    /// Its human name.
    display_name: String,
    /// `active` or `suspended`.
    #[schema(pattern = "^(active|suspended)$")]
    status: &'static str,
    /// When it was suspended (RFC 3339), while it is.
    suspended_at: Option<String>,
    /// Why it was suspended, while it is.
    suspension_reason: Option<String>,
    /// Its settings.
    settings: SettingsBody,
    /// When it was registered (RFC 3339).
    created_at: String,
    /// When it last changed (RFC 3339).
    updated_at: String,
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

impl TenantView {
    fn of(tenant: &Tenant) -> Self {
        Self {
            id: tenant.id.to_string(),
            display_name: tenant.display_name.clone(),
            status: tenant.status.as_str(),
            suspended_at: tenant.suspended_at.map(rfc3339),
            suspension_reason: tenant.suspension_reason.clone(),
            settings: SettingsBody::from_settings(&tenant.settings),
            created_at: rfc3339(tenant.created_at),
            updated_at: rfc3339(tenant.updated_at),
        }
    }
}

/// A page of tenants.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantList {
    /// By id.
    items: Vec<TenantView>,
    /// The `after` of the next page, if there is one.
    next: Option<String>,
}

/// The query of `GET /v1/tenants`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only tenants in this status.
    status: Option<String>,
    /// The cursor of the previous page's `next`.
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<u32>,
}

/// An uncacheable JSON answer.
fn no_store(status: StatusCode, body: &impl Serialize) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// The tenant id of the path, or 400.
fn tenant_of(path: &str) -> Result<TenantId, Error> {
    TenantId::new(path).map_err(|_| Error::invalid_input("tenant is not a tenant id"))
}

/// Record `action` on `tenant` by `caller` before it takes effect
/// (fail-closed as `[audit]` says).
async fn audit(
    state: &AppState,
    caller: &Principal,
    action: &'static str,
    tenant: &TenantId,
    context: &RequestContext,
    detail: Option<(&'static str, serde_json::Value)>,
) -> Result<(), Error> {
    crate::audit::administrative(state, caller, action, context).await?;
    let mut event = AuditEvent::new(
        action,
        AuditOutcome::Success,
        state.auth.clock.now(),
        context,
    )
    .by(tenant.clone(), Some(caller.id.clone()))
    .on(AuditResource::new("tenant", tenant.as_str()))
    .with_detail("actor_tenant", caller.tenant.as_str().into());
    if let Some((name, value)) = detail {
        event = event.with_detail(name, value);
    }
    crate::routes::admin::record_administrative(state, event).await
}

/// `POST /v1/tenants`: the route of [`create`] and its documentation.
pub(crate) const CREATE: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/tenants",
    RouteDoc {
        description: Some(
            "Register a tenant, active, with its settings. Audited (`tenant.create`) \
             before it takes effect.",
        ),
        body: RequestBody::Json {
            schema: schema_ref::<CreateTenant>,
            required: true,
        },
        status: 201,
        errors: &[(409, "the tenant is registered already")],
        ..RouteDoc::ok(
            "Register a tenant (platform administrators)",
            "the tenant",
            Payload::Json(schema_ref::<TenantView>),
        )
    },
);

/// `POST /v1/tenants`: 201 with the tenant and its `Location`.
async fn create(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    ValidJson(ObjectsOnly(request)): ValidJson<ObjectsOnly<CreateTenant>>,
) -> Result<Response, Error> {
    let id = tenant_of(&request.id)?;
    let settings = request.settings()?;
    let tenant = Tenant::new(
        id.clone(),
        request.display_name.trim(),
        state.auth.clock.now(),
    )
    .with_settings(settings);
    audit(&state, &caller, "tenant.create", &id, &context, None).await?;
    state.auth.tenants.store().create(&tenant).await?;
    state.auth.tenants.invalidate(&id);
    let mut response = no_store(StatusCode::CREATED, &TenantView::of(&tenant));
    if let Ok(location) = format!("/v1/tenants/{id}").parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/tenants`: the route of [`list`] and its documentation.
pub(crate) const LIST: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/tenants",
    RouteDoc {
        query: &[
            (
                "status",
                Param::OneOf(&["active", "suspended"]),
                "only the tenants in this status",
            ),
            (
                "after",
                Param::Pattern(grammar::NAME_ID),
                "the cursor of the previous page's `next`",
            ),
            crate::openapi::PAGE_LIMIT_100,
        ],
        errors: &[(400, "an invalid `status`, `after` cursor or `limit`")],
        ..RouteDoc::ok(
            "The registered tenants, a page at a time (platform administrators)",
            "a page of tenants, by id",
            Payload::Json(schema_ref::<TenantList>),
        )
    },
);

/// `GET /v1/tenants`: a page of tenants by id.
async fn list(
    State(state): State<AppState>,
    Authenticated(_caller): Authenticated,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let query = crate::rejection::query(query)?;
    let status = query
        .status
        .as_deref()
        .map(|s| {
            TenantStatus::from_name(s)
                .ok_or_else(|| Error::invalid_input("status must be active or suspended"))
        })
        .transpose()?;
    let page = PageRequest::new(
        query.after,
        query.limit.unwrap_or(crate::page::DEFAULT_LIMIT),
    )?;
    let page = state.auth.tenants.store().list(status, &page).await?;
    Ok(no_store(
        StatusCode::OK,
        &TenantList {
            items: page.items.iter().map(TenantView::of).collect(),
            next: page.next,
        },
    ))
}

/// `GET /v1/tenants/{tenant}`: the route of [`get`] and its documentation.
pub(crate) const GET: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/tenants/{tenant}",
    RouteDoc {
        errors: &[
            (400, "an invalid tenant id"),
            (404, "the tenant is not registered"),
        ],
        ..RouteDoc::ok(
            "A registered tenant (platform administrators)",
            "the tenant",
            Payload::Json(schema_ref::<TenantView>),
        )
    },
);

/// `GET /v1/tenants/{tenant}`.
async fn get(
    State(state): State<AppState>,
    Authenticated(_caller): Authenticated,
    Path(tenant): Path<String>,
) -> Result<Response, Error> {
    let id = tenant_of(&tenant)?;
    let tenant = state
        .auth
        .tenants
        .store()
        .get(&id)
        .await?
        .ok_or_else(|| Error::not_found("tenant"))?;
    Ok(no_store(StatusCode::OK, &TenantView::of(&tenant)))
}

/// The tenant after a change, or 404.
async fn reread(state: &AppState, id: &TenantId) -> Result<Response, Error> {
    state.auth.tenants.invalidate(id);
    let tenant = state
        .auth
        .tenants
        .store()
        .get(id)
        .await?
        .ok_or_else(|| Error::not_found("tenant"))?;
    Ok(no_store(StatusCode::OK, &TenantView::of(&tenant)))
}

/// `PATCH /v1/tenants/{tenant}`: the route of [`update`] and its documentation.
pub(crate) const UPDATE: Endpoint = Endpoint::new(
    Method::PATCH,
    "/v1/tenants/{tenant}",
    RouteDoc {
        description: Some(
            "Each field present replaces that setting (`null` clears it); absent ones \
             are kept. Audited (`tenant.update`) before it takes effect; in force on \
             every instance within seconds.",
        ),
        body: RequestBody::Json {
            schema: schema_ref::<UpdateTenant>,
            required: true,
        },
        errors: &[
            (400, "an invalid tenant id"),
            (404, "the tenant is not registered"),
        ],
        ..RouteDoc::ok(
            "Change a tenant's settings (platform administrators)",
            "the tenant",
            Payload::Json(schema_ref::<TenantView>),
        )
    },
);

/// `PATCH /v1/tenants/{tenant}`.
async fn update(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    Path(tenant): Path<String>,
    ValidJson(ObjectsOnly(request)): ValidJson<ObjectsOnly<UpdateTenant>>,
) -> Result<Response, Error> {
    let id = tenant_of(&tenant)?;
    let store = state.auth.tenants.store();
    let current = store
        .get(&id)
        .await?
        .ok_or_else(|| Error::not_found("tenant"))?;
    let settings = request.apply(&current.settings)?;
    let changed = serde_json::to_value(SettingsBody::from_settings(&settings)).ok();
    audit(
        &state,
        &caller,
        "tenant.update",
        &id,
        &context,
        changed.map(|v| ("settings", v)),
    )
    .await?;
    if !store
        .update_settings(&id, &settings, state.auth.clock.now())
        .await?
    {
        return Err(Error::not_found("tenant"));
    }
    reread(&state, &id).await
}

/// `POST /v1/tenants/{tenant}/suspend`: the route of [`suspend`] and its documentation.
pub(crate) const SUSPEND: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/tenants/{tenant}/suspend",
    RouteDoc {
        description: Some(
            "Every request of the tenant's API keys and sessions is then refused \
             (403 `tenant-suspended`): on this instance at once, on the others within \
             seconds. Audited (`tenant.suspend`) before it takes effect. Suspending a \
             suspended tenant replaces the time and reason.",
        ),
        body: RequestBody::Json {
            schema: schema_ref::<SuspendTenant>,
            required: true,
        },
        errors: &[
            (400, "an invalid tenant id"),
            (404, "the tenant is not registered"),
        ],
        ..RouteDoc::ok(
            "Suspend a tenant (platform administrators)",
            "the tenant, suspended",
            Payload::Json(schema_ref::<TenantView>),
        )
    },
);

/// `POST /v1/tenants/{tenant}/suspend`.
async fn suspend(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    Path(tenant): Path<String>,
    ValidJson(request): ValidJson<SuspendTenant>,
) -> Result<Response, Error> {
    let id = tenant_of(&tenant)?;
    let store = state.auth.tenants.store();
    if store.get(&id).await?.is_none() {
        return Err(Error::not_found("tenant"));
    }
    audit(
        &state,
        &caller,
        "tenant.suspend",
        &id,
        &context,
        Some(("reason", request.reason.as_str().into())),
    )
    .await?;
    let change = StatusChange::Suspend {
        reason: request.reason.trim(),
    };
    if !store
        .set_status(&id, change, state.auth.clock.now())
        .await?
    {
        return Err(Error::not_found("tenant"));
    }
    tracing::warn!(tenant = %id, actor = %caller.id, "tenant suspended");
    reread(&state, &id).await
}

/// `POST /v1/tenants/{tenant}/resume`: the route of [`resume`] and its documentation.
pub(crate) const RESUME: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/tenants/{tenant}/resume",
    RouteDoc {
        description: Some(
            "The tenant's requests are served again (on the other instances within \
             seconds). Audited (`tenant.resume`) before it takes effect; resuming an \
             active tenant changes nothing.",
        ),
        errors: &[
            (400, "an invalid tenant id"),
            (404, "the tenant is not registered"),
        ],
        ..RouteDoc::ok(
            "Resume a suspended tenant (platform administrators)",
            "the tenant, active",
            Payload::Json(schema_ref::<TenantView>),
        )
    },
);

/// `POST /v1/tenants/{tenant}/resume`.
async fn resume(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    Path(tenant): Path<String>,
) -> Result<Response, Error> {
    let id = tenant_of(&tenant)?;
    let store = state.auth.tenants.store();
    if store.get(&id).await?.is_none() {
        return Err(Error::not_found("tenant"));
    }
    audit(&state, &caller, "tenant.resume", &id, &context, None).await?;
    if !store
        .set_status(&id, StatusChange::Resume, state.auth.clock.now())
        .await?
    {
        return Err(Error::not_found("tenant"));
    }
    tracing::info!(tenant = %id, actor = %caller.id, "tenant resumed");
    reread(&state, &id).await
}

#[cfg(test)]
mod tests;
