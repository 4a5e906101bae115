//! The data-subject request routes (`/v1/privacy/export`, `/v1/privacy/erase`,
//! `/v1/privacy/requests`): the request bodies and their checks, subject
//! resolution by principal id or e-mail, and the OpenAPI schemas; the
//! services that carry them out are `crate::privacy`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_auth::layer::Authenticated;
use docaiche_compliance::privacy::{
    ErasureReport, PrivacyRequest, Regulation, RequestKind, SubjectRightsService,
};
use docaiche_core::account::AccountEmail;
use docaiche_core::error::FieldError;
use docaiche_core::{Error, Permission, Principal, PrincipalId, TenantId};
use serde::{Deserialize, Serialize};

use crate::audit::AuditFacts;
use crate::json::{ValidJson, Validate};
use crate::openapi::{Param, Payload, RequestBody, RouteDoc, grammar, schema_ref};
use crate::privacy::PrivacyServices;
use crate::rejection::Path;
use crate::routes::Endpoint;
use crate::routes::RouteGroup;
use crate::state::AppState;

/// Add the privacy routes to `group` (the protected `default` group).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    group
        .route(EXPORT, &[Permission::PRIVACY_EXPORT], export)
        .route(ERASE, &[Permission::PRIVACY_ERASE], erase)
        // The service lets either permission read the requests.
        .route(LIST_REQUESTS, &[], list_requests)
        .route(GET_REQUEST, &[], get_request)
}

/// The body of `POST /v1/privacy/export` and `POST /v1/privacy/erase`
/// (its schema: [`crate::openapi`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubjectRequest {
    /// The data subject's principal id (exactly one of `subject` and
    /// `email`).
    subject: Option<String>,
    /// The e-mail of the subject's password account (exactly one of
    /// `subject` and `email`).
    email: Option<String>,
    /// The tenant; default: the caller's (another needs `tenants:cross`).
    tenant: Option<String>,
    /// The law whose deadline applies: `gdpr` (30 days, the default) or
    /// `ccpa` (45 days).
    regulation: Option<Regulation>,
}

/// Whether `email` has the form the OpenAPI document gives the privacy
/// routes (`openapi::grammar::EMAIL`): printable ASCII without spaces,
/// with a non-empty local part and domain. Narrower than `AccountEmail`
/// (which trims and takes any Unicode), so that the document can state the
/// rule exactly; an account with another address is named by `subject`.
fn documented_email(email: &str) -> bool {
    email.bytes().all(|b| b.is_ascii_graphic())
        && email
            .rsplit_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
}

impl Validate for SubjectRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut fields = Vec::new();
        match (&self.subject, &self.email) {
            (Some(_), Some(_)) => fields.push(FieldError::new(
                "/email",
                "give either subject or email, not both",
            )),
            (None, None) => {
                fields.push(FieldError::new("/subject", "subject or email is required"))
            }
            _ => {}
        }
        if let Some(subject) = &self.subject
            && let Err(e) = PrincipalId::new(subject.as_str())
        {
            fields.push(FieldError::new("/subject", e.to_string()));
        }
        if let Some(email) = &self.email {
            if let Err(e) = AccountEmail::new(email.as_str()) {
                fields.push(FieldError::new("/email", e.to_string()));
            } else if !documented_email(email) {
                fields.push(FieldError::new(
                    "/email",
                    "must be printable ASCII without spaces, of the form local@domain",
                ));
            }
        }
        if let Some(tenant) = &self.tenant
            && let Err(e) = TenantId::new(tenant.as_str())
        {
            fields.push(FieldError::new("/tenant", e.to_string()));
        }
        fields
    }
}

/// The configured services, or 503.
fn services(state: &AppState) -> Result<&PrivacyServices, Error> {
    state.privacy.as_deref().ok_or_else(|| {
        Error::unavailable(
            "privacy requests",
            std::io::Error::other("the privacy services are not configured"),
        )
    })
}

/// The tenant, subject and regulation of `body`, once `caller` may act on
/// the tenant with `permission` (checked before an e-mail is looked up,
/// so that no answer tells about another tenant's accounts).
async fn resolve(
    privacy: &PrivacyServices,
    caller: &Principal,
    body: SubjectRequest,
    permission: &Permission,
) -> Result<(TenantId, PrincipalId, Regulation), Error> {
    let invalid = |pointer: &str, e: Error| {
        Error::invalid_fields(
            "the JSON body failed validation",
            vec![FieldError::new(pointer, e.to_string())],
        )
    };
    let tenant = match body.tenant {
        Some(tenant) => TenantId::new(tenant).map_err(|e| invalid("/tenant", e))?,
        None => caller.tenant.clone(),
    };
    caller.authorize_tenant(&tenant, permission)?;
    let subject = match (body.subject, body.email) {
        (Some(subject), None) => PrincipalId::new(subject).map_err(|e| invalid("/subject", e))?,
        (None, Some(email)) => {
            let email = AccountEmail::new(email).map_err(|e| invalid("/email", e))?;
            privacy
                .accounts
                .find_by_email(&tenant, &email)
                .await?
                .ok_or_else(|| Error::not_found("account"))?
                .id
        }
        // `validate` refused both and neither.
        _ => {
            return Err(Error::invalid_fields(
                "the JSON body failed validation",
                vec![FieldError::new(
                    "/subject",
                    "give exactly one of subject and email",
                )],
            ));
        }
    };
    Ok((tenant, subject, body.regulation.unwrap_or(Regulation::Gdpr)))
}

/// The location of request `id`.
fn location(request: &PrivacyRequest) -> HeaderValue {
    HeaderValue::from_str(&format!("/v1/privacy/requests/{}", request.id))
        .unwrap_or_else(|_| HeaderValue::from_static("/v1/privacy/requests"))
}

/// Resolve the subject of `body` and record a request of `kind` for it:
/// the service, the tenant and the recorded request.
async fn submit<'a>(
    state: &'a AppState,
    caller: &Principal,
    context: &docaiche_core::RequestContext,
    body: SubjectRequest,
    kind: RequestKind,
) -> Result<(&'a SubjectRightsService, TenantId, PrivacyRequest), Error> {
    let privacy = services(state)?;
    let permission = match kind {
        RequestKind::Export => Permission::PRIVACY_EXPORT,
        // Erasure, and any kind a later version adds: the stronger right.
        _ => Permission::PRIVACY_ERASE,
    };
    let (tenant, subject, regulation) = resolve(privacy, caller, body, &permission).await?;
    let request = privacy
        .service
        .submit(caller, &tenant, subject, kind, regulation, context)
        .await?;
    Ok((&privacy.service, tenant, request))
}

/// `POST /v1/privacy/export`: the route of [`export`] and its documentation.
pub(crate) const EXPORT: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/privacy/export",
    RouteDoc {
        description: Some(
            "Records an access/portability request (GDPR Art. 15 and 20, CCPA right \
             to know) with its legal deadline and carries it out: the subject's \
             account, documents with their text, API keys (never hashes) and audit \
             entries, as one JSON attachment (`Location: /v1/privacy/requests/{id}`). \
             Name the subject by `subject` (principal id) or `email` (their account); \
             another tenant needs `tenants:cross`.",
        ),
        body: RequestBody::Json {
            schema: schema_ref::<crate::routes::privacy::SubjectRequest>,
            required: true,
        },
        errors: &[
            (403, "the principal may not export in that tenant"),
            (404, "no account has that e-mail in the tenant"),
            (
                409,
                "the subject holds more documents than one export carries",
            ),
        ],
        ..RouteDoc::ok(
            "Export everything held about a data subject",
            "the export bundle (`Content-Disposition: attachment`), never cached",
            Payload::Json(schema_ref::<crate::routes::privacy::SubjectExport>),
        )
    },
);

/// `POST /v1/privacy/export`: record an export request and carry it out.
async fn export(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    ValidJson(body): ValidJson<SubjectRequest>,
) -> Result<Response, Error> {
    let (service, tenant, request) =
        submit(&state, &caller, &context, body, RequestKind::Export).await?;
    let bundle = service
        .export(&caller, &tenant, &request.id, &context)
        .await?;
    let json = serde_json::to_vec(&bundle)
        .map_err(|e| Error::internal_with("cannot serialize the export bundle", e))?;
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"subject-export-{}.json\"",
        request.id
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let mut response = (StatusCode::OK, json).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::LOCATION, location(&request));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /v1/privacy/erase`: the route of [`erase`] and its documentation.
pub(crate) const ERASE: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/privacy/erase",
    RouteDoc {
        description: Some(
            "Records an erasure request (GDPR Art. 17, CCPA right to delete) and \
             carries it out: the subject's documents, account and API key records \
             are deleted, their data key destroyed, and the audit trail keeps a \
             `privacy.erase` tombstone naming only their pseudonym.",
        ),
        body: RequestBody::Json {
            schema: schema_ref::<crate::routes::privacy::SubjectRequest>,
            required: true,
        },
        errors: &[
            (403, "the principal may not erase in that tenant"),
            (404, "no account has that e-mail in the tenant"),
            (
                409,
                "a legal hold covers the subject (the request is `rejected`)",
            ),
        ],
        ..RouteDoc::ok(
            "Erase a data subject",
            "the completed request and what was erased",
            Payload::Json(schema_ref::<crate::routes::privacy::Erasure<'static>>),
        )
    },
);

/// `POST /v1/privacy/erase`: record an erasure request and carry it out.
async fn erase(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    ValidJson(body): ValidJson<SubjectRequest>,
) -> Result<Response, Error> {
    let (service, tenant, request) =
        submit(&state, &caller, &context, body, RequestKind::Erase).await?;
    carry_out(service, &caller, &context, &tenant, &request).await
}

/// Erase `subject` of `tenant` for `caller` as `POST /v1/privacy/erase`
/// does (a recorded GDPR request, then the erasure), for the routes that
/// delete a person's account (`DELETE /v1/accounts/{id}`).
///
/// # Errors
/// As `POST /v1/privacy/erase`: 503 without privacy services, 403 without
/// `privacy:erase` on `tenant`, 409 under a legal hold.
pub(crate) async fn erase_subject(
    state: &AppState,
    caller: &Principal,
    context: &docaiche_core::RequestContext,
    tenant: &TenantId,
    subject: PrincipalId,
) -> Result<Response, Error> {
    let service = &services(state)?.service;
    let request = service
        .submit(
            caller,
            tenant,
            subject,
            RequestKind::Erase,
            Regulation::Gdpr,
            context,
        )
        .await?;
    carry_out(service, caller, context, tenant, &request).await
}

/// Carry out the recorded erasure `request`: the answer of the erasure
/// routes.
async fn carry_out(
    service: &SubjectRightsService,
    caller: &Principal,
    context: &docaiche_core::RequestContext,
    tenant: &TenantId,
    request: &PrivacyRequest,
) -> Result<Response, Error> {
    let report = service.erase(caller, tenant, &request.id, context).await?;
    let request = service.get(caller, tenant, &request.id).await?;
    let mut response = (
        StatusCode::OK,
        Json(Erasure {
            request: &request,
            report: &report,
            api_key_records_deleted: report.api_keys_deleted,
        }),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location(&request));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The query of the `GET` routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantQuery {
    /// The tenant; default: the caller's.
    tenant: Option<String>,
}

/// The tenant of `query`, or the caller's.
fn tenant_of(
    caller: &Principal,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<TenantId, Error> {
    let query = crate::rejection::query(query)?;
    match query.tenant {
        Some(tenant) => {
            TenantId::new(tenant).map_err(|_| Error::invalid_input("tenant is not a tenant id"))
        }
        None => Ok(caller.tenant.clone()),
    }
}

/// An uncacheable JSON answer.
fn no_store(body: &impl Serialize) -> Response {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response()
}

/// `GET /v1/privacy/requests`: the route of [`list_requests`] and its documentation.
pub(crate) const LIST_REQUESTS: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/privacy/requests",
    RouteDoc {
        query: &[
            (
                "tenant",
                Param::Pattern(grammar::NAME_ID),
                "the tenant (default: the caller's; another needs `tenants:cross`)",
            ),
            crate::openapi::PAGE_AFTER,
            crate::openapi::PAGE_LIMIT_100,
        ],
        errors: &[
            (400, "an invalid `tenant`, `after` cursor or `limit`"),
            (
                403,
                "the principal holds neither `privacy:export` nor `privacy:erase` on the tenant",
            ),
        ],
        ..RouteDoc::ok(
            "The tenant's data-subject requests (the DPO's queue), a page at a time",
            "a page of requests, oldest first, with status and deadline",
            Payload::Json(schema_ref::<crate::routes::privacy::PrivacyRequestList>),
        )
    },
);

/// `GET /v1/privacy/requests`: the tenant's requests, oldest first, a page
/// at a time (the store keeps at most a bounded number per tenant; a page
/// renders at most `limit` of them).
async fn list_requests(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<RequestsQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let query = crate::rejection::query(query)?;
    let tenant = match query.tenant {
        Some(tenant) => {
            TenantId::new(tenant).map_err(|_| Error::invalid_input("tenant is not a tenant id"))?
        }
        None => caller.tenant.clone(),
    };
    let requests = services(&state)?.service.list(&caller, &tenant).await?;
    let (items, next) = crate::page::of(requests, |r| r.id, query.after, query.limit)?;
    Ok(no_store(&PrivacyRequestList { items, next }))
}

/// The query of `GET /v1/privacy/requests`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestsQuery {
    /// The tenant; default: the caller's.
    tenant: Option<String>,
    /// The cursor of the previous page's `next`.
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<u32>,
}

/// `GET /v1/privacy/requests/{id}`: the route of [`get_request`] and its documentation.
pub(crate) const GET_REQUEST: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/privacy/requests/{id}",
    RouteDoc {
        query: &[(
            "tenant",
            Param::Pattern(grammar::NAME_ID),
            "the tenant (default: the caller's; another needs `tenants:cross`)",
        )],
        errors: &[
            (400, "an invalid `tenant`"),
            (
                403,
                "the principal holds neither `privacy:export` nor `privacy:erase` on the tenant",
            ),
        ],
        ..RouteDoc::ok(
            "A data-subject request: status, deadline, failure",
            "the request",
            Payload::Json(schema_ref::<crate::routes::privacy::PrivacyRequestDoc>),
        )
    },
);

/// `GET /v1/privacy/requests/{id}`: one request of the tenant; an unknown
/// id, or another tenant's, is 404.
async fn get_request(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let tenant = tenant_of(&caller, query)?;
    let service = &services(&state)?.service;
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        // Authorization first (as the service checks it): a malformed id
        // then tells nothing more than an unknown one.
        caller
            .authorize_tenant(&tenant, &Permission::PRIVACY_EXPORT)
            .or_else(|_| caller.authorize_tenant(&tenant, &Permission::PRIVACY_ERASE))?;
        return Err(Error::not_found("privacy_request"));
    };
    let request = service.get(&caller, &tenant, &id).await?;
    Ok(no_store(&request))
}

// The schemas below mirror the JSON the handlers send (the library's
// types); the tests parse real answers into them, unknown fields refused.

/// One data-subject request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct PrivacyRequestDoc {
    /// Request id (UUIDv7).
    id: String,
    /// The tenant.
    tenant: String,
    /// The subject; after an erasure, their pseudonym.
    subject: String,
    /// `export` or `erase`.
    kind: String,
    /// `gdpr` or `ccpa`.
    regulation: String,
    /// `received`, `in_progress`, `completed`, `rejected` or `failed`.
    status: String,
    /// Who filed it.
    requested_by: String,
    /// When it was received (RFC 3339).
    received_at: String,
    /// The legal deadline (RFC 3339).
    deadline: String,
    /// When it was completed or rejected.
    completed_at: Option<String>,
    /// Why it was rejected or failed (`legal_hold`, an error code).
    failure: Option<String>,
}

/// The tenant's requests.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrivacyRequestList {
    /// Oldest first.
    #[schema(value_type = Vec<PrivacyRequestDoc>)]
    items: Vec<PrivacyRequest>,
    /// The cursor of the next page (`after`), `null` on the last one.
    next: Option<String>,
}

/// Everything held about a subject (`docaiche.subject-export.v1`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct SubjectExport {
    /// `docaiche.subject-export.v1`.
    format: String,
    /// The request this answers.
    request_id: String,
    /// The tenant.
    tenant: String,
    /// The subject.
    subject: String,
    /// When the bundle was made (RFC 3339).
    generated_at: String,
    /// The subject's password account (never its password hash).
    #[schema(value_type = Option<Object>)]
    account: Option<serde_json::Value>,
    /// Documents owned by the subject: `meta` and extracted `text`.
    #[schema(value_type = Vec<Object>)]
    documents: Vec<serde_json::Value>,
    /// API keys acting as the subject (metadata, never hashes).
    #[schema(value_type = Vec<Object>)]
    api_keys: Vec<serde_json::Value>,
    /// Audit entries about the subject.
    #[schema(value_type = Vec<Object>)]
    audit_events: Vec<serde_json::Value>,
    /// The subject's privacy requests.
    privacy_requests: Vec<PrivacyRequestDoc>,
}

/// What an erasure did.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct ErasureReportDoc {
    /// The pseudonym that replaces the subject.
    pseudonym: String,
    /// Documents deleted.
    documents_deleted: u64,
    /// API keys revoked (those not revoked before the erasure).
    api_keys_revoked: u64,
    /// API key records deleted (revoked ones included).
    api_keys_deleted: u64,
    /// Whether the subject's data key was destroyed (crypto-shredding).
    data_key_destroyed: bool,
    /// Whether a password account was deleted.
    account_deleted: Option<bool>,
    /// Whether every token issued to the subject until the erasure was
    /// revoked on the shared revocation store.
    credentials_revoked: bool,
}

/// The answer of `POST /v1/privacy/erase`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Erasure<'a> {
    /// The request, completed, naming the pseudonym.
    #[schema(value_type = PrivacyRequestDoc)]
    request: &'a PrivacyRequest,
    /// What was done.
    #[schema(value_type = ErasureReportDoc)]
    report: &'a ErasureReport,
    /// API key records deleted from the store: the same as
    /// `report.api_keys_deleted` (kept for earlier clients).
    api_key_records_deleted: u64,
}
