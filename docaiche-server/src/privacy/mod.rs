//! Data-subject requests over HTTP (GDPR Art. 15, 17, 20; CCPA), carried
//! out by `docaiche_compliance::privacy::SubjectRightsService`:
//!
//! | route | permission | what |
//! |---|---|---|
//! | `POST /v1/privacy/export` | `privacy:export` | everything held about a subject, as one JSON bundle |
//! | `POST /v1/privacy/erase` | `privacy:erase` | erase a subject; a pseudonymised tombstone stays on the audit trail |
//! | `GET /v1/privacy/requests` | `privacy:export` or `privacy:erase` | the tenant's requests (the DPO's queue), a page at a time (`after`, `limit`) |
//! | `GET /v1/privacy/requests/{id}` | `privacy:export` or `privacy:erase` | one request: status, deadline, failure |
//!
//! Both `POST` bodies name the subject by principal id or by the e-mail of
//! their password account (exactly one), optionally the tenant (default:
//! the caller's; another tenant needs `tenants:cross`) and the regulation
//! whose deadline applies (`gdpr`, the default, 30 days; `ccpa`, 45 days):
//!
//! ```json
//! {"email": "alice@example.com", "regulation": "gdpr"}
//! ```
//!
//! The service checks the permission on the request's tenant itself (the
//! route guard only checks it is held at all), records every request with
//! its deadline (in the `[store]` database), and audits every step naming
//! the subject by a keyed pseudonym. The pseudonym key is the secret
//! `privacy/pseudonym-key`; without it, a key derived from the audit
//! checkpoint key `audit/checkpoint-key`; in development without either, a
//! key generated under `<data_dir>/keys` when no secret source is
//! configured, else an ephemeral one (production refuses to start).
//!
//! Erasure first revokes the subject on the token revocation store
//! (`[revocation]`): every access token issued to them up to the erasure
//! is refused from then on, on every instance sharing that store (Redis
//! for several instances), so no credential of theirs can create anything
//! while the rest runs. It then deletes the subject's documents, password
//! account (which ends their refresh tokens: a refresh re-reads the
//! account) and API key records (the library revokes the keys, then
//! deletes their records; both through the server's API key service, so
//! the keys stop working at once on this instance and, with
//! `[revocation] announce_api_keys = "redis"`, on every other), destroys
//! their data key (crypto-shredding), looks once more for keys stored
//! meanwhile, and replaces them by their pseudonym in the request records.
//! A legal hold covering the subject refuses it (409).

use std::sync::Arc;

use async_trait::async_trait;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_auth::api_key::ApiKeyService;
use docaiche_auth::layer::Authenticated;
use docaiche_compliance::privacy::{
    CryptoShredder, PrivacyRequest, PrivacyRequestStore, Regulation, RequestKind,
    SubjectAuditSource, SubjectRightsService, event_concerns,
};
use docaiche_core::account::AccountEmail;
use docaiche_core::api_key::{ApiKeyLookup, ApiKeyRecord, ApiKeyUsage};
use docaiche_core::audit::AuditEvent;
use docaiche_core::error::FieldError;
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::{
    AccountStore, ApiKeyId, ApiKeyStore, AuthMethod, Error, Permission, Principal, PrincipalId,
    SecretBytes, TenantId,
};
use docaiche_store::encryption::EncryptedDocumentStore;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::app::{AppState, Backends, RouteGroup};
use crate::audit::{AuditFacts, AuditTrail, ReadBack};
use crate::backends::{Secrets, StorePool};
use crate::config::{Config, Environment};
use crate::json::{ValidJson, Validate};
use crate::rejection::Path;

/// The secret keying the pseudonyms.
pub(crate) const PSEUDONYM_SECRET: &str = "privacy/pseudonym-key";

/// The secrets the privacy routes read through the chain (the `env`
/// source snapshots their variables too).
pub(crate) const SECRET_NAMES: &[&str] = &[PSEUDONYM_SECRET];

/// The label deriving the pseudonym key from the audit checkpoint key.
const DERIVATION_LABEL: &str = "docaiche/privacy-pseudonym/v1";

/// Most audit records read back for one export.
const MAX_SCANNED: usize = 1_000_000;

/// Records read back per page.
const SCAN_PAGE: usize = 5_000;

/// The privacy services of the server.
#[derive(Debug)]
pub(crate) struct PrivacyServices {
    /// The library service.
    pub(crate) service: SubjectRightsService,
    /// The service's request store (the `privacy_requests` retention
    /// purges it).
    pub(crate) requests: Arc<dyn PrivacyRequestStore>,
    /// Password accounts, for subjects named by e-mail.
    accounts: Arc<dyn AccountStore>,
}

impl PrivacyServices {
    /// The services over the backends of `config`, for `state`: its
    /// encrypted document store (data keys are shredded on erasure), its
    /// legal holds (a hold on a subject refuses their erasure) and its API
    /// key service (revocations and deletions take effect at once).
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for a missing or short pseudonym key in
    /// production; the store's error when its tables cannot be migrated.
    pub(crate) async fn open(
        config: &Config,
        backends: &Backends,
        state: &AppState,
    ) -> Result<Self, Error> {
        let documents = Arc::clone(&state.documents);
        let stores = &backends.stores;
        let key = pseudonym_key(config, &backends.secrets).await?;
        let requests = request_store(&stores.sql).await?;
        let mut service = SubjectRightsService::new(
            Arc::clone(&documents) as Arc<dyn docaiche_core::DocumentStore>,
            Arc::new(RevokingKeyStore {
                store: Arc::clone(&stores.api_keys),
                service: Arc::clone(&state.auth.api_keys),
            }),
            Arc::clone(&requests),
            backends.audit.sink(),
            Arc::new(docaiche_core::SystemClock::new()),
            &key,
        )?
        .with_shredder(Arc::new(StoreShredder(documents)))
        .with_legal_holds(Arc::clone(&state.compliance.holds))
        .with_accounts(Arc::clone(&stores.accounts))
        .with_revocations(
            Arc::clone(&state.auth.stores.revocations),
            SUBJECT_REVOCATION_KEPT,
        );
        if !matches!(backends.audit.source, ReadBack::None) {
            service = service.with_audit_source(Arc::new(TrailSource(backends.audit.clone())));
        }
        Ok(Self {
            service,
            requests,
            accounts: Arc::clone(&stores.accounts),
        })
    }
}

/// How long an erased subject's revocation is remembered: past the
/// longest life of anything issued to them before (a session lasts at most
/// 30 days; access tokens, ours or an external issuer's, far less).
const SUBJECT_REVOCATION_KEPT: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Where the privacy requests are kept: beside the other tables of the
/// `[store]` database.
async fn request_store(pool: &StorePool) -> Result<Arc<dyn PrivacyRequestStore>, Error> {
    use docaiche_compliance::privacy::sql;
    Ok(match pool {
        StorePool::Sqlite(store) => {
            Arc::new(sql::SqliteComplianceStore::new(store.pool().clone()).await?)
        }
        #[cfg(feature = "postgres")]
        StorePool::Postgres(pool) => Arc::new(sql::PgComplianceStore::new(pool.clone()).await?),
    })
}

/// The pseudonym key: the secret `privacy/pseudonym-key`; else derived
/// from the audit checkpoint key; in production without either, a
/// refusal; in development, a key generated under `<data_dir>/keys` when
/// no secret source is configured (like the other development secrets),
/// else an ephemeral one.
async fn pseudonym_key(config: &Config, secrets: &Secrets) -> Result<SecretBytes, Error> {
    if let Some(chain) = secrets.chain() {
        if let Some(found) = chain.get(PSEUDONYM_SECRET).await? {
            if found.value.len() < 32 {
                return Err(Error::misconfigured(
                    "privacy",
                    format!("the secret `{PSEUDONYM_SECRET}` must be at least 32 bytes"),
                ));
            }
            return Ok(found.value);
        }
        let checkpoint = docaiche_compliance::audit::CheckpointKey::DEFAULT_SECRET;
        if let Some(found) = chain.get(checkpoint).await? {
            return Ok(crate::audit::derived_key(&found.value, DERIVATION_LABEL));
        }
    }
    if config.environment == Environment::Production {
        let variable = docaiche_store::EnvSecretProvider::new()
            .variable_name(PSEUDONYM_SECRET)
            .unwrap_or_else(|_| PSEUDONYM_SECRET.to_owned());
        return Err(Error::misconfigured(
            "privacy",
            format!(
                "the secret `{PSEUDONYM_SECRET}` (at least 32 random bytes), or the audit \
                 checkpoint key it can be derived from, is in none of the configured secret \
                 sources; set {variable}"
            ),
        ));
    }
    if secrets.chain().is_some() {
        // Sources are configured but lack the key: nothing is written
        // beside them.
        tracing::warn!(
            secret = PSEUDONYM_SECRET,
            "pseudonym key not configured: using an ephemeral key for this process; \
             pseudonyms will differ after a restart (development only)"
        );
        let key = crate::keys::random_key()
            .map_err(|e| Error::internal_with("cannot generate an ephemeral pseudonym key", e))?;
        return Ok(SecretBytes::from(key.to_vec()));
    }
    let path = config
        .storage
        .data_dir
        .join("keys")
        .join("privacy-pseudonym-key");
    let (key, created) =
        crate::keys::generated_secret(&path, || crate::keys::random_key().map(|k| k.to_vec()))
            .map_err(|e| {
                Error::internal_with(
                    format!("cannot create the development secret {}", path.display()),
                    e,
                )
            })?;
    if created {
        tracing::warn!(
            path = %path.display(),
            "using a generated development pseudonym key; set the secret \
             `privacy/pseudonym-key` before serving real users"
        );
    }
    Ok(key)
}

/// The API key store of the service, revoking and deleting through the
/// server's API key service so that an erased subject's key stops working
/// at once (the service caches verified keys).
#[derive(Debug)]
struct RevokingKeyStore {
    store: Arc<dyn ApiKeyStore>,
    service: Arc<ApiKeyService>,
}

#[async_trait]
impl ApiKeyStore for RevokingKeyStore {
    async fn insert(&self, record: &ApiKeyRecord) -> docaiche_core::Result<()> {
        self.store.insert(record).await
    }

    async fn find_by_lookup(
        &self,
        lookup: &ApiKeyLookup,
    ) -> docaiche_core::Result<Option<ApiKeyRecord>> {
        self.store.find_by_lookup(lookup).await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
    ) -> docaiche_core::Result<Option<ApiKeyRecord>> {
        self.store.get(tenant, id).await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> docaiche_core::Result<Page<ApiKeyRecord>> {
        self.store.list(tenant, page).await
    }

    async fn revoke(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        _at: OffsetDateTime,
    ) -> docaiche_core::Result<bool> {
        found(self.service.revoke(&eraser(tenant)?, tenant, id).await)
    }

    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId) -> docaiche_core::Result<bool> {
        found(self.service.delete(&eraser(tenant)?, tenant, id).await)
    }

    async fn mark_rotated(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        successor: &ApiKeyId,
        old_expires_at: OffsetDateTime,
    ) -> docaiche_core::Result<bool> {
        self.store
            .mark_rotated(tenant, id, successor, old_expires_at)
            .await
    }

    async fn record_usage(&self, usage: &[ApiKeyUsage]) -> docaiche_core::Result<()> {
        self.store.record_usage(usage).await
    }
}

/// The internal principal the erasure acts through (audited as
/// `api_key.revoke` and `api_key.delete` by it), in the request's tenant
/// only.
fn eraser(tenant: &TenantId) -> docaiche_core::Result<Principal> {
    Ok(Principal::new(
        PrincipalId::new("privacy-erasure")?,
        tenant.clone(),
        AuthMethod::Internal,
    )
    .with_permissions([Permission::KEYS_MANAGE].into_iter().collect()))
}

/// The store contract's answer for an API key service call: `NotFound` is
/// `false` (the key is not, or no longer, in the tenant).
fn found(result: docaiche_core::Result<()>) -> docaiche_core::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Crypto-shredding through the encrypted document store.
#[derive(Debug)]
struct StoreShredder(Arc<EncryptedDocumentStore>);

#[async_trait]
impl CryptoShredder for StoreShredder {
    async fn destroy_subject_key(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
    ) -> docaiche_core::Result<bool> {
        self.0.destroy_subject_key(tenant, subject).await
    }
}

/// The audit entries about a subject, read back from the server's trail
/// (the file trail or the `audit_trail` table), bounded by
/// [`MAX_SCANNED`] records.
#[derive(Debug)]
struct TrailSource(AuditTrail);

#[async_trait]
impl SubjectAuditSource for TrailSource {
    async fn events_about(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        limit: usize,
    ) -> docaiche_core::Result<Vec<AuditEvent>> {
        // What is still buffered belongs in the export too.
        docaiche_core::AuditSink::flush(&self.0.buffer).await?;
        let mut found = Vec::new();
        let mut after = 0;
        let mut scanned = 0;
        loop {
            let Some((items, next)) =
                crate::audit::read_page(&self.0.source, tenant, after, SCAN_PAGE).await?
            else {
                return Ok(found);
            };
            scanned += items.len();
            found.extend(
                items
                    .into_iter()
                    .map(|(_, event)| event)
                    .filter(|event| event_concerns(event, subject)),
            );
            found.truncate(limit);
            match next {
                Some(next) if found.len() < limit && scanned < MAX_SCANNED => after = next,
                Some(_) if scanned >= MAX_SCANNED => {
                    tracing::warn!(
                        scanned,
                        "audit read-back for a subject export stopped at its bound"
                    );
                    return Ok(found);
                }
                _ => return Ok(found),
            }
        }
    }
}

/// Add the privacy routes to `group` (the protected `default` group).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    group
        .route(
            Method::POST,
            "/v1/privacy/export",
            &[Permission::PRIVACY_EXPORT],
            export,
        )
        .route(
            Method::POST,
            "/v1/privacy/erase",
            &[Permission::PRIVACY_ERASE],
            erase,
        )
        // The service lets either permission read the requests.
        .route(Method::GET, "/v1/privacy/requests", &[], list_requests)
        .route(Method::GET, "/v1/privacy/requests/{id}", &[], get_request)
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

/// `POST /v1/privacy/erase`: record an erasure request and carry it out.
async fn erase(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    ValidJson(body): ValidJson<SubjectRequest>,
) -> Result<Response, Error> {
    let (service, tenant, request) =
        submit(&state, &caller, &context, body, RequestKind::Erase).await?;
    let report = service
        .erase(&caller, &tenant, &request.id, &context)
        .await?;
    let request = service.get(&caller, &tenant, &request.id).await?;
    let mut response = (
        StatusCode::OK,
        Json(serde_json::json!({
            "request": request,
            "report": report,
            // Kept for clients of the earlier answer: the same number as
            // `report.api_keys_deleted`.
            "api_key_records_deleted": report.api_keys_deleted,
        })),
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
    let Query(query) =
        query.map_err(|e| Error::invalid_input(format!("invalid query: {}", e.body_text())))?;
    match query.tenant {
        Some(tenant) => {
            TenantId::new(tenant).map_err(|_| Error::invalid_input("tenant is not a tenant id"))
        }
        None => Ok(caller.tenant.clone()),
    }
}

/// An uncacheable JSON answer.
fn no_store(body: serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response()
}

/// `GET /v1/privacy/requests`: the tenant's requests, oldest first, a page
/// at a time (the store keeps at most a bounded number per tenant; a page
/// renders at most `limit` of them).
async fn list_requests(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<RequestsQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let Query(query) =
        query.map_err(|e| Error::invalid_input(format!("invalid query: {}", e.body_text())))?;
    let tenant = match query.tenant {
        Some(tenant) => {
            TenantId::new(tenant).map_err(|_| Error::invalid_input("tenant is not a tenant id"))?
        }
        None => caller.tenant.clone(),
    };
    let requests = services(&state)?.service.list(&caller, &tenant).await?;
    let (items, next) = crate::page::of(requests, |r| r.id, query.after, query.limit)?;
    Ok(no_store(
        serde_json::json!({ "items": items, "next": next }),
    ))
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
    Ok(no_store(serde_json::json!(request)))
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct PrivacyRequestList {
    /// Oldest first.
    items: Vec<PrivacyRequestDoc>,
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct Erasure {
    /// The request, completed, naming the pseudonym.
    request: PrivacyRequestDoc,
    /// What was done.
    report: ErasureReportDoc,
    /// API key records deleted from the store: the same as
    /// `report.api_keys_deleted` (kept for earlier clients).
    api_key_records_deleted: u64,
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::Request;
    use docaiche_compliance::audit::Verifier;
    use docaiche_compliance::retention::LegalHold;
    use docaiche_core::{DocumentStore as _, SecretString};
    use serde_json::Value;

    use super::*;
    use crate::app::tests::{assert_problem, json, send};
    use crate::test_support::TestDir;

    const PASSWORD: &str = "correct horse battery staple";
    /// A phrase of the extracted text of `groff__letter.pdf`.
    const PHRASE: &str = "Minidoux Corporation";

    fn config(dir: &TestDir) -> Config {
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.audit.fsync = crate::audit::FsyncSetting::Never;
        config.audit.checkpoint_every = 2;
        config.documents.inline_max_bytes = 1024 * 1024;
        config
    }

    /// The state of `config` on its store (the data directory prepared).
    async fn state_for(config: &Config, env: crate::config::EnvLookup<'_>) -> AppState {
        crate::storage::prepare_data_dir(&config.storage.data_dir).expect("data dir");
        crate::keys::prepare(&config.key_source()).expect("keys");
        AppState::from_config(config, env).await.expect("state")
    }

    async fn key_as(
        state: &AppState,
        tenant: &str,
        principal: &str,
        name: &str,
        grants: &[&str],
    ) -> String {
        crate::test_support::api_key(state, tenant, Some(principal), name, grants).await
    }

    fn post(uri: &str, key: &str, body: &str) -> Request<Body> {
        Request::post(uri)
            .header("x-api-key", key)
            .header(header::CONTENT_TYPE, "application/json")
            .header("user-agent", "privacy-test/1")
            .header("x-request-id", "req-privacy-1")
            .body(Body::from(body.to_owned()))
            .expect("request")
    }

    fn get(uri: &str, key: &str) -> Request<Body> {
        Request::get(uri)
            .header("x-api-key", key)
            .body(Body::empty())
            .expect("request")
    }

    fn text(body: &[u8]) -> String {
        String::from_utf8_lossy(body).into_owned()
    }

    /// A data subject with a password account, an API key acting as them
    /// and two uploaded documents with their extracted text.
    struct Subject {
        id: String,
        email: String,
        key: String,
        key_name: String,
        filename: String,
        documents: Vec<String>,
    }

    async fn subject_with_data(state: &AppState, app: &Router, tenant: &str) -> Subject {
        let email = format!("alice.{tenant}@example.com");
        let account = state
            .login
            .service()
            .await
            .expect("login")
            .create_account(
                &TenantId::new(tenant).expect("tenant"),
                AccountEmail::new(email.as_str()).expect("email"),
                &SecretString::from(PASSWORD),
                vec!["editor".to_owned()],
            )
            .await
            .expect("account");
        let id = account.id.as_str().to_owned();
        let key_name = format!("alice-laptop-{tenant}");
        let key = key_as(state, tenant, &id, &key_name, &["documents:*"]).await;
        let filename = format!("alice-letter-{tenant}.pdf");
        let pdf = crate::test_support::corpus_pdf("groff__letter.pdf");
        let mut documents = Vec::new();
        for n in 0..2 {
            let (status, _, body) = send(
                app.clone(),
                Request::post(format!("/v1/documents?filename={n}-{filename}"))
                    .header("x-api-key", &key)
                    .header(header::CONTENT_TYPE, "application/pdf")
                    .body(Body::from(pdf.clone()))
                    .expect("request"),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{}", text(&body));
            let doc = json(&body)["id"].as_str().expect("id").to_owned();
            // Extracted in the request (under `inline_max_bytes`).
            let (status, _, body) =
                send(app.clone(), get(&format!("/v1/documents/{doc}/text"), &key)).await;
            assert_eq!(status, StatusCode::OK, "{}", text(&body));
            assert!(text(&body).contains(PHRASE), "{}", text(&body));
            documents.push(doc);
        }
        Subject {
            id,
            email,
            key,
            key_name,
            filename,
            documents,
        }
    }

    /// Whether `needle` occurs in `haystack`, as text or hex-encoded (a
    /// PostgreSQL `bytea` printed as text).
    fn occurs(haystack: &[u8], needle: &str) -> bool {
        let hex = hex::encode(needle.as_bytes());
        [needle.as_bytes(), hex.as_bytes()]
            .iter()
            .any(|n| haystack.windows(n.len()).any(|w| w == *n))
    }

    /// Every value of every row of every table of the SQLite database
    /// file of `config`, read through a connection of its own.
    async fn sqlite_dump(config: &Config) -> Vec<u8> {
        use sqlx::Row as _;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(config.storage.data_dir.join("docaiche.db"))
            .read_only(true);
        let connection = sqlx::SqlitePool::connect_with(options)
            .await
            .expect("open the database file");
        let pool = &connection;
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(pool)
                .await
                .expect("tables");
        assert!(tables.iter().any(|t| t == "accounts"), "{tables:?}");
        let mut dump = Vec::new();
        for table in tables {
            let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info(\"{table}\")"))
                .fetch_all(pool)
                .await
                .expect("columns")
                .iter()
                .map(|row| row.get::<String, _>(1))
                .collect();
            for column in columns {
                let values: Vec<Option<Vec<u8>>> = sqlx::query_scalar(&format!(
                    "SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\""
                ))
                .fetch_all(pool)
                .await
                .expect("values");
                for value in values.into_iter().flatten() {
                    dump.extend_from_slice(&value);
                    dump.push(b'\n');
                }
            }
        }
        connection.close().await;
        dump
    }

    fn assert_nothing_left(dump: &[u8], subject: &Subject) {
        for needle in [
            subject.email.as_str(),
            subject.filename.as_str(),
            PHRASE,
            subject.key_name.as_str(),
        ] {
            assert!(!occurs(dump, needle), "`{needle}` is still in the database");
        }
    }

    /// Export `subject`'s data as `dpo`, checking the answer's headers.
    async fn export(app: &Router, dpo: &str, body: &str) -> Value {
        let (status, headers, bytes) =
            send(app.clone(), post("/v1/privacy/export", dpo, body)).await;
        assert_eq!(status, StatusCode::OK, "{}", text(&bytes));
        let bundle = json(&bytes);
        let id = bundle["request_id"].as_str().expect("request id");
        assert_eq!(
            headers[header::LOCATION],
            format!("/v1/privacy/requests/{id}")
        );
        assert_eq!(
            headers[header::CONTENT_DISPOSITION],
            format!("attachment; filename=\"subject-export-{id}.json\"")
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let _: SubjectExport = serde_json::from_slice(&bytes).expect("matches its schema");
        bundle
    }

    /// Erase `subject` and check nothing of them is readable through the
    /// API; the pseudonym.
    async fn erase_and_check_api(
        app: &Router,
        tenant: &str,
        dpo: &str,
        admin: &str,
        subject: &Subject,
    ) -> String {
        let body = serde_json::json!({ "email": subject.email }).to_string();
        let (status, _, bytes) = send(app.clone(), post("/v1/privacy/erase", dpo, &body)).await;
        assert_eq!(status, StatusCode::OK, "{}", text(&bytes));
        let _: Erasure = serde_json::from_slice(&bytes).expect("matches its schema");
        let answer = json(&bytes);
        let report = &answer["report"];
        let pseudonym = report["pseudonym"].as_str().expect("pseudonym").to_owned();
        assert!(pseudonym.starts_with("erased-"), "{pseudonym}");
        assert_ne!(pseudonym, subject.id);
        assert_eq!(report["documents_deleted"], 2, "{answer}");
        assert_eq!(report["api_keys_revoked"], 1, "{answer}");
        assert_eq!(report["data_key_destroyed"], true, "{answer}");
        assert_eq!(report["account_deleted"], true, "{answer}");
        assert_eq!(report["credentials_revoked"], true, "{answer}");
        assert_eq!(report["api_keys_deleted"], 1, "{answer}");
        assert_eq!(answer["api_key_records_deleted"], 1, "{answer}");
        assert_eq!(answer["request"]["status"], "completed");
        assert_eq!(answer["request"]["subject"], pseudonym.as_str());
        assert!(!text(&bytes).contains(&subject.email));

        // Nothing of the subject through the API.
        for doc in &subject.documents {
            for uri in [
                format!("/v1/documents/{doc}"),
                format!("/v1/documents/{doc}/text"),
            ] {
                let (status, _, _) = send(app.clone(), get(&uri, admin)).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            }
        }
        let (status, _, _) = send(app.clone(), get("/v1/whoami", &subject.key)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "their API key");
        let login = serde_json::json!({
            "tenant": tenant, "email": subject.email, "password": PASSWORD,
        });
        let (status, _, _) = send(
            app.clone(),
            Request::post("/v1/auth/token")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(login.to_string()))
                .expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "their password login");
        let again = export(
            app,
            dpo,
            &serde_json::json!({ "subject": subject.id }).to_string(),
        )
        .await;
        assert_eq!(again["documents"], serde_json::json!([]));
        assert_eq!(again["api_keys"], serde_json::json!([]));
        assert!(again["account"].is_null(), "{again}");
        // The e-mail is unknown now.
        let (status, _, _) = send(app.clone(), post("/v1/privacy/export", dpo, &body)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // The tombstone names the pseudonym only.
        let (status, _, bytes) = send(
            app.clone(),
            get(
                &format!("/v1/admin/audit?tenant={tenant}&action=privacy.erase"),
                admin,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", text(&bytes));
        let items = json(&bytes)["items"].clone();
        let tombstone = &items[0]["event"];
        assert_eq!(tombstone["outcome"], "success", "{items}");
        assert_eq!(tombstone["resource"]["kind"], "data_subject");
        assert_eq!(tombstone["resource"]["id"], pseudonym.as_str());
        assert_eq!(tombstone["details"]["documents_deleted"], 2);
        assert_eq!(tombstone["details"]["api_keys_deleted"], 1);
        // With the request's facts.
        assert_eq!(tombstone["user_agent"], "privacy-test/1");
        assert_eq!(tombstone["request_id"], "req-privacy-1");
        let event = tombstone.to_string();
        assert!(!event.contains(&subject.id) && !event.contains(&subject.email));
        pseudonym
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_export_bundles_the_account_documents_keys_and_audit_entries() {
        let dir = TestDir::new("privacy-export");
        let config = config(&dir);
        let state = state_for(&config, &|_| None).await;
        let app = crate::app::router(state.clone());
        let subject = subject_with_data(&state, &app, "acme").await;
        let dpo = key_as(&state, "acme", "dpo", "dpo", &["privacy:export"]).await;

        let body = serde_json::json!({ "email": subject.email }).to_string();
        let bundle = export(&app, &dpo, &body).await;
        let raw = bundle.to_string();
        assert_eq!(bundle["format"], "docaiche.subject-export.v1");
        assert_eq!(bundle["subject"], subject.id.as_str());
        assert_eq!(bundle["tenant"], "acme");
        assert_eq!(
            bundle["account"]["email"],
            subject.email.as_str(),
            "{bundle}"
        );
        assert!(!raw.contains("password_hash") && !raw.contains("$argon2"));
        let documents = bundle["documents"].as_array().expect("documents");
        assert_eq!(documents.len(), 2);
        for document in documents {
            assert!(document["text"].to_string().contains(PHRASE), "{document}");
            let name = document["meta"]["filename"].as_str().expect("filename");
            assert!(name.ends_with(&subject.filename), "{name}");
        }
        let keys = bundle["api_keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["name"], subject.key_name.as_str());
        assert!(keys[0].get("hash").is_none());
        assert!(!raw.contains(&subject.key), "the key itself");
        let events = bundle["audit_events"].as_array().expect("events");
        let uploads = events
            .iter()
            .filter(|e| e["action"] == "document.create" && e["actor"] == subject.id.as_str())
            .count();
        assert_eq!(uploads, 2, "{events:?}");
        assert_eq!(bundle["privacy_requests"].as_array().map(Vec::len), Some(1));

        // The request record: completed, with its deadline.
        let id = bundle["request_id"].as_str().expect("id");
        let uri = format!("/v1/privacy/requests/{id}");
        let (status, headers, bytes) = send(app.clone(), get(&uri, &dpo)).await;
        assert_eq!(status, StatusCode::OK, "{}", text(&bytes));
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let _: PrivacyRequestDoc = serde_json::from_slice(&bytes).expect("schema");
        let request = json(&bytes);
        assert_eq!(request["status"], "completed");
        assert_eq!(request["kind"], "export");
        assert_eq!(request["regulation"], "gdpr");
        assert_eq!(request["requested_by"], "dpo");
        assert!(request["deadline"].is_string());
        let (status, _, bytes) = send(app.clone(), get("/v1/privacy/requests", &dpo)).await;
        assert_eq!(status, StatusCode::OK);
        let _: PrivacyRequestList = serde_json::from_slice(&bytes).expect("schema");
        assert_eq!(json(&bytes)["items"][0]["id"], id);
        // Another tenant's DPO, an unknown id and a malformed one: 404.
        let globex = key_as(&state, "globex", "dpo", "dpo", &["privacy:export"]).await;
        for (uri, key) in [
            (uri.clone(), &globex),
            (
                format!("/v1/privacy/requests/{}", uuid::Uuid::now_v7()),
                &dpo,
            ),
            ("/v1/privacy/requests/not-a-uuid".to_owned(), &dpo),
        ] {
            let (status, headers, bytes) = send(app.clone(), get(&uri, key)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert_problem(&headers, &bytes, "not-found");
        }

        // Without `privacy:export`: 403, at the guard or in the service.
        let reader = key_as(&state, "acme", "reader", "r", &["documents:read"]).await;
        let (status, headers, bytes) =
            send(app.clone(), post("/v1/privacy/export", &reader, &body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_problem(&headers, &bytes, "forbidden");
        let (status, _, _) = send(app.clone(), get(&uri, &reader)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // Another tenant without `tenants:cross`: 403, and no e-mail lookup.
        for cross in [
            serde_json::json!({ "subject": subject.id, "tenant": "globex" }),
            serde_json::json!({ "email": subject.email, "tenant": "globex" }),
        ] {
            let (status, headers, bytes) = send(
                app.clone(),
                post("/v1/privacy/export", &dpo, &cross.to_string()),
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{cross}");
            assert_problem(&headers, &bytes, "forbidden");
        }
        // Bad bodies: field-level problems.
        for (bad, pointer) in [
            (r#"{"subject": 5}"#, "/subject"),
            (r#"{"subject": "a", "colour": "red"}"#, "/colour"),
            (r#"{}"#, "/subject"),
            (r#"{"subject": "a", "email": "a@example.com"}"#, "/email"),
            (r#"{"email": "not an e-mail"}"#, "/email"),
            (r#"{"subject": "a", "tenant": "Not A Tenant!"}"#, "/tenant"),
            (r#"{"subject": "a", "regulation": "hipaa"}"#, "/regulation"),
            (r#"{"subject": "a""#, ""),
        ] {
            let (status, headers, bytes) =
                send(app.clone(), post("/v1/privacy/export", &dpo, bad)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {}", text(&bytes));
            let problem = assert_problem(&headers, &bytes, "invalid-input");
            let pointers: Vec<&str> = problem["errors"]
                .as_array()
                .expect("errors")
                .iter()
                .filter_map(|e| e["pointer"].as_str())
                .collect();
            assert!(pointers.contains(&pointer), "{bad}: {problem}");
        }
        let (status, _, _) = send(
            app.clone(),
            post(
                "/v1/privacy/export",
                &dpo,
                r#"{"email": "nobody@example.com"}"#,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "an unknown e-mail");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_erased_subject_is_gone_from_the_api_and_the_sqlite_database() {
        let dir = TestDir::new("privacy-erase");
        let config = config(&dir);
        let state = state_for(&config, &|_| None).await;
        let app = crate::app::router(state.clone());
        let subject = subject_with_data(&state, &app, "acme").await;
        let dpo = key_as(
            &state,
            "acme",
            "dpo",
            "dpo",
            &["privacy:export", "privacy:erase"],
        )
        .await;
        let admin = key_as(
            &state,
            "acme",
            "admin",
            "admin",
            &["documents:read", "audit:read", "tenants:cross"],
        )
        .await;
        // An export first: its request record must not keep the subject.
        export(
            &app,
            &dpo,
            &serde_json::json!({ "subject": subject.id }).to_string(),
        )
        .await;
        let before = sqlite_dump(&config).await;
        assert!(
            occurs(&before, &subject.email),
            "the dump sees the accounts"
        );
        assert!(occurs(&before, &subject.key_name), "the dump sees the keys");

        let pseudonym = erase_and_check_api(&app, "acme", &dpo, &admin, &subject).await;
        assert_nothing_left(&sqlite_dump(&config).await, &subject);
        // The earlier export's record names the pseudonym now.
        let (_, _, bytes) = send(app.clone(), get("/v1/privacy/requests", &dpo)).await;
        let items = json(&bytes)["items"].clone();
        assert_eq!(items[0]["kind"], "export");
        assert_eq!(items[0]["subject"], pseudonym.as_str());
        assert_eq!(items[1]["kind"], "erase");

        // The trail verifies.
        let trail = state.audit.as_ref().expect("trail");
        docaiche_core::AuditSink::flush(&trail.buffer)
            .await
            .expect("flushed");
        let report = Verifier::new()
            .verify_path(&config.audit.file_path(&config))
            .expect("verify");
        assert!(report.is_ok(), "{:?}", report.tamper);
    }

    #[tokio::test]
    async fn the_pseudonym_key_comes_from_its_secret_or_the_checkpoint_key() {
        let dir = TestDir::new("privacy-key");
        let mut config = config(&dir);
        config.secrets.sources = vec!["env".into()];
        let own = "p".repeat(32);
        let checkpoint = "c".repeat(32);
        let env = |pairs: Vec<(&'static str, String)>| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
            }
        };
        let key_for = async |config: &Config, lookup: &dyn Fn(&str) -> Option<String>| {
            let secrets = Secrets::from_config(config, lookup).await.expect("secrets");
            pseudonym_key(config, &secrets).await
        };
        let both = env(vec![
            ("DOCAICHE_SECRET_PRIVACY_PSEUDONYM_KEY", own.clone()),
            ("DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY", checkpoint.clone()),
        ]);
        let key = key_for(&config, &both).await.expect("key");
        assert_eq!(key.expose_secret(), own.as_bytes());
        let only_checkpoint = env(vec![(
            "DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY",
            checkpoint.clone(),
        )]);
        let key = key_for(&config, &only_checkpoint).await.expect("derived");
        let expected = crate::audit::derived_key(
            &SecretBytes::from(checkpoint.into_bytes()),
            DERIVATION_LABEL,
        );
        assert_eq!(key.expose_secret(), expected.expose_secret());
        let short = env(vec![(
            "DOCAICHE_SECRET_PRIVACY_PSEUDONYM_KEY",
            "short".to_owned(),
        )]);
        assert!(key_for(&config, &short).await.is_err(), "a short key");
        config.environment = Environment::Production;
        let error = key_for(&config, &|_| None).await.expect_err("refused");
        let text = error.to_string();
        assert!(text.contains(PSEUDONYM_SECRET), "{text}");
        assert!(
            text.contains("DOCAICHE_SECRET_PRIVACY_PSEUDONYM_KEY"),
            "{text}"
        );
        assert!(!dir.path().join("keys").exists(), "nothing generated");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_legal_hold_refuses_the_erasure() {
        let dir = TestDir::new("privacy-hold");
        let config = config(&dir);
        let state = state_for(&config, &|_| None).await;
        let app = crate::app::router(state.clone());
        let acme = TenantId::new("acme").expect("tenant");
        let bob = PrincipalId::new("bob").expect("id");
        let meta = state
            .documents
            .put(
                &acme,
                docaiche_core::document::NewDocument::new(
                    bob.clone(),
                    "application/pdf",
                    "bob.pdf",
                    axum::body::Bytes::from_static(b"%PDF-1.7 held"),
                ),
            )
            .await
            .expect("document");
        state
            .compliance
            .holds
            .place(
                LegalHold::new(
                    acme.clone(),
                    "litigation",
                    PrincipalId::new("counsel").expect("id"),
                    time::OffsetDateTime::now_utc(),
                )
                .on_subject(bob.clone()),
            )
            .await
            .expect("hold");
        let dpo = key_as(&state, "acme", "dpo", "dpo", &["privacy:erase"]).await;
        let (status, headers, bytes) = send(
            app.clone(),
            post("/v1/privacy/erase", &dpo, r#"{"subject": "bob"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{}", text(&bytes));
        assert_problem(&headers, &bytes, "conflict");
        let (_, _, bytes) = send(app.clone(), get("/v1/privacy/requests", &dpo)).await;
        let request = &json(&bytes)["items"][0];
        assert_eq!(request["status"], "rejected", "{request}");
        assert_eq!(request["failure"], "legal_hold");
        assert!(
            state
                .documents
                .get(&acme, &meta.id)
                .await
                .expect("store")
                .is_some(),
            "the held document is kept"
        );
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_erased_subject_is_gone_from_the_api_and_the_postgres_database() {
        use docaiche_store::postgres::sqlx as pg;
        const SUITE: &str = "server-postgres";
        let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
            return;
        };
        let dir = TestDir::new("privacy-postgres");
        let mut config = config(&dir);
        let (schema, env) =
            crate::backends::tests::on_test_schema(&url, "privacy_test", &mut config).await;
        config.validate().expect("valid");
        let run = schema.name.trim_start_matches("privacy_test_").to_owned();
        let state = state_for(&config, &env).await;
        let app = crate::app::router(state.clone());
        let tenant = format!("t{}", run.replace('_', "-"));
        let subject = subject_with_data(&state, &app, &tenant).await;
        let dpo = key_as(
            &state,
            &tenant,
            "dpo",
            "dpo",
            &["privacy:export", "privacy:erase"],
        )
        .await;
        let admin_key = key_as(
            &state,
            &tenant,
            "admin",
            "admin",
            &["documents:read", "audit:read", "tenants:cross"],
        )
        .await;
        // Every row of every table of the test schema, as text.
        let dump = || async {
            let tables: Vec<String> = pg::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
            )
            .bind(&schema.name)
            .fetch_all(&schema.admin)
            .await
            .expect("tables");
            assert!(tables.iter().any(|t| t == "accounts"), "{tables:?}");
            let mut dump = Vec::new();
            for table in tables {
                let rows: Vec<String> = pg::query_scalar(&format!(
                    "SELECT t::text FROM \"{}\".\"{table}\" t",
                    schema.name
                ))
                .fetch_all(&schema.admin)
                .await
                .expect("rows");
                for row in rows {
                    dump.extend_from_slice(row.as_bytes());
                    dump.push(b'\n');
                }
            }
            dump
        };
        let before = dump().await;
        assert!(
            occurs(&before, &subject.email),
            "the dump sees the accounts"
        );
        assert!(occurs(&before, &subject.key_name), "the dump sees the keys");
        erase_and_check_api(&app, &tenant, &dpo, &admin_key, &subject).await;
        assert_nothing_left(&dump().await, &subject);
        let trail = state.audit.as_ref().expect("trail");
        docaiche_core::AuditSink::flush(&trail.buffer)
            .await
            .expect("flushed");
        let report = Verifier::new()
            .verify_path(&config.audit.file_path(&config))
            .expect("verify");
        assert!(report.is_ok(), "{:?}", report.tamper);
        crate::report::mark_ran(SUITE, &format!("privacy schema {}", schema.name));
    }
}
