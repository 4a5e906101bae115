//! The administrative routes of `[retention]`: legal holds
//! (`/v1/admin/legal-holds`) and the compliance report
//! (`/v1/admin/compliance/report`, built by `crate::compliance`), with
//! their OpenAPI schemas.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_auth::layer::Authenticated;
use docaiche_compliance::audit::Criticality;
use docaiche_compliance::retention::LegalHold;
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource};
use docaiche_core::error::FieldError;
use docaiche_core::{Error, Permission, Principal, PrincipalId, RequestContext, TenantId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::audit::AuditFacts;
use crate::compliance::report::{DEFAULT_DAYS, MAX_DAYS, build_report};
use crate::config::retention::KINDS;
use crate::json::{ValidJson, Validate};
use crate::openapi::{Param, Payload, RequestBody, RouteDoc, grammar, schema_ref};
use crate::rejection::Path;
use crate::routes::Endpoint;
use crate::routes::RouteGroup;
use crate::state::AppState;

/// Add the legal-hold and compliance-report routes to `group` (the
/// protected `default` group).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    let holds = [Permission::TENANTS_CROSS, Permission::ADMIN_ACCESS];
    group
        .route(PLACE_HOLD, &holds, place_hold)
        .route(LIST_HOLDS, &holds, list_holds)
        .route(RELEASE_HOLD, &holds, release_hold)
        .route(REPORT, &[Permission::AUDIT_READ], report)
}

/// Longest legal-hold reason, in characters.
pub(crate) const MAX_REASON: usize = 500;

/// The body of `POST /v1/admin/legal-holds` (its schema:
/// [`crate::openapi`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlaceHold {
    /// The tenant whose data is held.
    tenant: String,
    /// Hold only this data subject's data (default: every subject).
    #[serde(default)]
    subject: Option<String>,
    /// Hold only this resource kind: `documents`, `audit` or
    /// `privacy_requests` (default: every kind).
    #[serde(default)]
    kind: Option<String>,
    /// Why: a case or matter reference (1 to 500 characters).
    reason: String,
}

impl Validate for PlaceHold {
    fn validate(&self) -> Vec<FieldError> {
        let mut fields = Vec::new();
        if TenantId::new(self.tenant.as_str()).is_err() {
            fields.push(FieldError::new("/tenant", "is not a tenant id"));
        }
        if self
            .subject
            .as_ref()
            .is_some_and(|s| PrincipalId::new(s.as_str()).is_err())
        {
            fields.push(FieldError::new("/subject", "is not a principal id"));
        }
        if self
            .kind
            .as_ref()
            .is_some_and(|k| !KINDS.contains(&k.as_str()))
        {
            fields.push(FieldError::new(
                "/kind",
                format!("must be one of {}", KINDS.join(", ")),
            ));
        }
        let length = self.reason.chars().count();
        if self.reason.trim().is_empty()
            || length > MAX_REASON
            || self.reason.chars().any(char::is_control)
        {
            fields.push(FieldError::new(
                "/reason",
                format!("must be 1 to {MAX_REASON} characters, without control characters"),
            ));
        }
        fields
    }
}

/// The `tenant` query of the legal-hold routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantQuery {
    /// The tenant (required).
    tenant: String,
}

/// The tenant of `query`, checked.
fn tenant_of(query: Result<Query<TenantQuery>, QueryRejection>) -> Result<TenantId, Error> {
    let query = crate::rejection::query(query)?;
    TenantId::new(query.tenant).map_err(|_| Error::invalid_input("tenant is not a tenant id"))
}

/// An uncacheable JSON answer.
fn no_store(status: StatusCode, body: &impl Serialize) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// The event of `caller` doing `action` to the hold `hold` (on the held
/// tenant's stream).
fn hold_event(
    action: &str,
    outcome: AuditOutcome,
    caller: &Principal,
    hold: &LegalHold,
    at: OffsetDateTime,
    context: &RequestContext,
) -> AuditEvent {
    let mut event = AuditEvent::new(action, outcome, at, context)
        .by(hold.tenant.clone(), Some(caller.id.clone()))
        .on(AuditResource::new("legal_hold", hold.id.to_string()))
        .with_detail("actor_tenant", caller.tenant.as_str().into());
    if let Some(kind) = &hold.resource_kind {
        event = event.with_detail("resource_kind", kind.as_str().into());
    }
    if hold.subject.is_some() {
        event = event.with_detail("scope", "subject".into());
    }
    event
}

/// Record an administrative event before acting: through the trail's
/// auditor (refused when unrecordable and `[audit]` is fail-closed), or,
/// without a trail, through the stores' sink.
pub(crate) async fn record_administrative(
    state: &AppState,
    event: AuditEvent,
) -> Result<(), Error> {
    match &state.audit {
        Some(trail) => trail
            .auditor
            .audit(event, Criticality::Administrative)
            .await
            .map(|_| ()),
        None => state.auth.stores.audit.record(&event).await.map(|_| ()),
    }
}

/// Record a routine event (queued; drops are counted).
async fn record_routine(state: &AppState, event: AuditEvent) {
    let recorded = match &state.audit {
        Some(trail) => trail
            .auditor
            .audit(event, Criticality::Routine)
            .await
            .map(|_| ()),
        None => state.auth.stores.audit.record(&event).await.map(|_| ()),
    };
    if let Err(error) = recorded {
        tracing::warn!(error = %error.log_chain(), "audit event not recorded");
    }
}

/// `POST /v1/admin/legal-holds`: the route of [`place_hold`] and its documentation.
pub(crate) const PLACE_HOLD: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/admin/legal-holds",
    RouteDoc {
        description: Some(
            "A hold on a tenant's data (one subject and/or one kind, or all of                  it) suspends the retention purge and erasure of what it covers.                  Audited (`legal_hold.place`) before it takes effect; refused (503)                  when the trail cannot record it and `[audit]` is fail-closed.",
        ),
        body: RequestBody::Json {
            schema: schema_ref::<crate::routes::admin::PlaceHold>,
            required: true,
        },
        status: 201,
        ..RouteDoc::ok(
            "Place a legal hold (cross-tenant administrators with `admin:access`)",
            "the hold",
            Payload::Json(schema_ref::<crate::routes::admin::LegalHoldDoc>),
        )
    },
);

/// `POST /v1/admin/legal-holds`: place a hold; 201 with the hold.
async fn place_hold(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    ValidJson(request): ValidJson<PlaceHold>,
) -> Result<Response, Error> {
    let tenant = TenantId::new(request.tenant)
        .map_err(|_| Error::invalid_input("tenant is not a tenant id"))?;
    caller.authorize_tenant(&tenant, &Permission::ADMIN_ACCESS)?;
    let compliance = &state.compliance;
    let mut hold = LegalHold::new(
        tenant,
        request.reason,
        caller.id.clone(),
        compliance.clock.now(),
    );
    if let Some(subject) = request.subject {
        hold = hold.on_subject(
            PrincipalId::new(subject).map_err(|_| Error::invalid_input("invalid subject"))?,
        );
    }
    if let Some(kind) = request.kind {
        hold = hold.on_kind(kind);
    }
    crate::audit::administrative(&state, &caller, "legal_hold.place", &context).await?;
    let event = hold_event(
        "legal_hold.place",
        AuditOutcome::Success,
        &caller,
        &hold,
        hold.placed_at,
        &context,
    );
    record_administrative(&state, event).await?;
    if let Err(error) = compliance.holds.place(hold.clone()).await {
        let failed = hold_event(
            "legal_hold.place",
            AuditOutcome::Failure,
            &caller,
            &hold,
            compliance.clock.now(),
            &context,
        )
        .because(error.code().as_str());
        record_routine(&state, failed).await;
        return Err(error);
    }
    let mut response = no_store(StatusCode::CREATED, &hold);
    if let Ok(location) =
        format!("/v1/admin/legal-holds/{}?tenant={}", hold.id, hold.tenant).parse()
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/admin/legal-holds`: the route of [`list_holds`] and its documentation.
pub(crate) const LIST_HOLDS: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/admin/legal-holds",
    RouteDoc {
        query: &[
            (
                "tenant",
                Param::Required(&Param::Pattern(grammar::NAME_ID)),
                "the tenant whose holds are listed (required)",
            ),
            crate::openapi::PAGE_AFTER,
            crate::openapi::PAGE_LIMIT_100,
        ],
        errors: &[(
            400,
            "a missing or invalid `tenant`, an invalid `after` cursor or `limit`",
        )],
        ..RouteDoc::ok(
            "A tenant's legal holds, active and released, a page at a time",
            "a page of holds, oldest first",
            Payload::Json(schema_ref::<crate::routes::admin::LegalHoldList>),
        )
    },
);

/// `GET /v1/admin/legal-holds?tenant=`: the holds of the tenant, active
/// or released, oldest first, a page at a time (`after`, `limit`).
async fn list_holds(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<HoldsQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let query = crate::rejection::query(query)?;
    let tenant = TenantId::new(query.tenant)
        .map_err(|_| Error::invalid_input("tenant is not a tenant id"))?;
    caller.authorize_tenant(&tenant, &Permission::ADMIN_ACCESS)?;
    let holds = state.compliance.holds.all(&tenant).await?;
    let (holds, next) = crate::page::of(holds, |hold| hold.id, query.after, query.limit)?;
    Ok(no_store(
        StatusCode::OK,
        &LegalHoldList { items: holds, next },
    ))
}

/// The query of `GET /v1/admin/legal-holds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldsQuery {
    /// The tenant (required).
    tenant: String,
    /// The cursor of the previous page's `next`.
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<u32>,
}

/// `DELETE /v1/admin/legal-holds/{id}`: the route of [`release_hold`] and its documentation.
pub(crate) const RELEASE_HOLD: Endpoint = Endpoint::new(
    Method::DELETE,
    "/v1/admin/legal-holds/{id}",
    RouteDoc {
        description: Some(
            "Audited (`legal_hold.release`) before it takes effect; the released                  hold stays listed.",
        ),
        query: &[(
            "tenant",
            Param::Required(&Param::Pattern(grammar::NAME_ID)),
            "the tenant of the hold (required)",
        )],
        status: 204,
        errors: &[(400, "a missing or invalid `tenant`")],
        ..RouteDoc::ok("Release a legal hold", "released", Payload::Empty)
    },
);

/// `DELETE /v1/admin/legal-holds/{id}?tenant=`: release an active hold;
/// 204. The release is recorded before it takes effect.
async fn release_hold(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    Path(id): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let tenant = tenant_of(query)?;
    caller.authorize_tenant(&tenant, &Permission::ADMIN_ACCESS)?;
    let compliance = &state.compliance;
    let id = id.to_ascii_lowercase();
    let hold = compliance
        .holds
        .active(&tenant)
        .await?
        .into_iter()
        .find(|h| h.id.to_string() == id)
        .ok_or_else(|| Error::not_found("legal_hold"))?;
    crate::audit::administrative(&state, &caller, "legal_hold.release", &context).await?;
    let now = compliance.clock.now();
    let event = hold_event(
        "legal_hold.release",
        AuditOutcome::Success,
        &caller,
        &hold,
        now,
        &context,
    );
    record_administrative(&state, event).await?;
    if !compliance.holds.release(&tenant, &hold.id, now).await? {
        return Err(Error::not_found("legal_hold"));
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, "no-store")],
    )
        .into_response())
}

/// The query of `GET /v1/admin/compliance/report`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// The tenant; default: the caller's.
    tenant: Option<String>,
    /// The period: this many days up to now (default 30).
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    days: Option<u32>,
    /// `json` or `html` (default: from `Accept`, else JSON).
    format: Option<String>,
}

/// Whether the answer is HTML: `format=html`, or no `format` and an
/// `Accept` naming `text/html`.
fn wants_html(format: Option<&str>, headers: &HeaderMap) -> Result<bool, Error> {
    match format {
        Some("html") => Ok(true),
        Some("json") => Ok(false),
        Some(_) => Err(Error::invalid_input("format must be json or html")),
        None => Ok(headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.split(';').next().is_some_and(|m| m.trim() == "text/html"))),
    }
}

/// `GET /v1/admin/compliance/report`: the route of [`report`] and its documentation.
pub(crate) const REPORT: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/admin/compliance/report",
    RouteDoc {
        description: Some(
            "Audit coverage and chain verification (bounded: 256 MiB of trail \
             files or 1000000 rows, 10 s), retention policies, active holds and \
             the last purge, open data-subject requests, API key and secret ages, \
             failed logins and lockouts. `format=html` or `Accept: text/html` \
             answers a self-contained HTML page (`text/html; charset=utf-8`).",
        ),
        query: &[
            (
                "tenant",
                Param::Pattern(grammar::NAME_ID),
                "the tenant reported on (default: the caller's; another needs \
                 `tenants:cross`)",
            ),
            (
                "days",
                Param::Integer(1, 366),
                "the period, in days up to now (default 30)",
            ),
            (
                "format",
                Param::OneOf(&["json", "html"]),
                "`json` (default) or `html`",
            ),
        ],
        errors: &[
            (400, "an invalid `tenant`, `days` or `format`"),
            (
                404,
                "`tenant` names another tenant and the caller lacks `tenants:cross`",
            ),
        ],
        ..RouteDoc::ok(
            "A tenant's compliance report (administrators with `audit:read`)",
            "the report",
            Payload::JsonOr(
                schema_ref::<crate::routes::admin::ComplianceReportDoc>,
                "text/html; charset=utf-8",
            ),
        )
    },
);

/// `GET /v1/admin/compliance/report`: a tenant's compliance report.
async fn report(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let query = crate::rejection::query(query)?;
    let tenant = crate::routes::audit::readable_tenant(&caller, query.tenant.as_deref())?;
    let days = query.days.unwrap_or(DEFAULT_DAYS);
    if days == 0 || days > MAX_DAYS {
        return Err(Error::invalid_input(format!(
            "days must be between 1 and {MAX_DAYS}"
        )));
    }
    let html = wants_html(query.format.as_deref(), &headers)?;
    let (report, notes) = build_report(&state, &caller, &tenant, days).await?;
    if html {
        return Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            report.to_html(),
        )
            .into_response());
    }
    let mut body = serde_json::to_value(&report)
        .map_err(|e| Error::internal_with("report not serialisable", e))?;
    if let Some(object) = body.as_object_mut() {
        object.insert("period_days".to_owned(), days.into());
        object.insert("notes".to_owned(), notes.into());
    }
    Ok(no_store(StatusCode::OK, &body))
}

/// A legal hold (the OpenAPI schema of the legal-hold routes).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct LegalHoldDoc {
    /// Hold id (UUIDv7).
    id: String,
    /// The tenant whose data is held.
    tenant: String,
    /// The data subject held; none for every subject.
    subject: Option<String>,
    /// The resource kind held; none for every kind.
    resource_kind: Option<String>,
    /// Why.
    reason: String,
    /// Who placed it.
    placed_by: String,
    /// When (RFC 3339).
    placed_at: String,
    /// When it was released (RFC 3339); none while active.
    released_at: Option<String>,
}

/// A tenant's legal holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LegalHoldList {
    /// The holds of the page, active or released, oldest first.
    #[schema(value_type = Vec<LegalHoldDoc>)]
    items: Vec<LegalHold>,
    /// The cursor of the next page (`after`), `null` on the last one.
    next: Option<String>,
}

/// A compliance report (the OpenAPI schema of its JSON form).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct ComplianceReportDoc {
    /// When it was generated (RFC 3339).
    generated_at: String,
    /// The tenant.
    tenant: Option<String>,
    /// Events per action, missing expected actions, chain status.
    #[schema(value_type = Object)]
    audit: serde_json::Value,
    /// Policies, active holds, the last purge.
    #[schema(value_type = Object)]
    retention: serde_json::Value,
    /// Open data-subject requests and their deadlines.
    #[schema(value_type = Object)]
    privacy: serde_json::Value,
    /// API key and secret ages.
    #[schema(value_type = Object)]
    keys: serde_json::Value,
    /// Failed logins and lockouts.
    #[schema(value_type = Object)]
    auth: serde_json::Value,
    /// The period, in days up to `generated_at`.
    period_days: u32,
    /// What the report could not cover.
    notes: Vec<String>,
}
