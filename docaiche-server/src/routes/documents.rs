//! The document routes (`/v1/documents`): upload (raw or a JSON batch),
//! metadata, extracted text and deletion, with the problems they answer;
//! the services and the extraction worker are `crate::documents`.

use std::error::Error as _;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use docaiche_auth::layer::Authenticated;
use docaiche_core::document::{DocumentMeta, DocumentText, NewDocument};
use docaiche_core::extract::{ExtractInput, ExtractOptions, Extraction};
use docaiche_core::job::{JobRecord, NewJob};
use docaiche_core::problem::{PROBLEM_JSON, Problem};
use docaiche_core::{DocumentId, DocumentStore, Error, Permission, Principal};
use docaiche_extract::ExtractError;
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::jobs::JobView;
use crate::documents::{DocumentEventKind, EXTRACT_JOB, PDF};
use crate::openapi::{Param, Payload, RequestBody, RouteDoc, schema_ref};
use crate::rejection::Path;
use crate::routes::Endpoint;
use crate::routes::RouteGroup;
use crate::state::AppState;

pub(crate) mod list;

/// Add the document and job routes to `group` (the protected `documents`
/// group).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    let read = [Permission::DOCUMENTS_READ];
    let write = [Permission::DOCUMENTS_WRITE];
    super::jobs::routes(
        group
            .route(UPLOAD, &write, upload)
            .route(BATCH, &write, batch)
            .route(list::LIST_DOCUMENTS, &read, list::list_documents)
            .route(GET_DOCUMENT, &read, get_document)
            .route(GET_TEXT, &read, get_text)
            .route(
                DELETE_DOCUMENT,
                &[Permission::DOCUMENTS_DELETE],
                delete_document,
            ),
    )
}

/// The query of `POST /v1/documents`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// The original filename (sanitised before it is stored).
    filename: Option<String>,
}

/// One document as received.
#[derive(Debug)]
struct Upload {
    content: Bytes,
    declared_type: Option<String>,
    filename: Option<String>,
}

/// What intake did with one document.
#[derive(Debug)]
struct Accepted {
    meta: DocumentMeta,
    extraction: Option<Extraction>,
    job: Option<JobRecord>,
}

/// A refusal: the core error, and the extractor's reason code when the
/// document itself was refused.
#[derive(Debug)]
struct Refusal {
    error: Error,
    reason: Option<&'static str>,
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        let reason = match &error {
            Error::DocumentRejected { reason, .. } => Some(*reason),
            _ => None,
        };
        Self { error, reason }
    }
}

impl From<ExtractError> for Refusal {
    fn from(error: ExtractError) -> Self {
        let reason = error.reason();
        Self {
            error: error.into(),
            reason: Some(reason),
        }
    }
}

impl Refusal {
    /// The problem document, with `reason` when there is one.
    fn problem_json(&self) -> serde_json::Value {
        let mut body = serde_json::to_value(Problem::from_error(&self.error))
            .unwrap_or_else(|_| serde_json::json!({}));
        if let (Some(reason), Some(object)) = (self.reason, body.as_object_mut()) {
            object.insert("reason".into(), reason.into());
        }
        body
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        if self.reason.is_none() {
            return self.error.into_response();
        }
        let status = self.error.status();
        let mut response = (status, Json(self.problem_json())).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// Validate, store and extract (inline or through a job) one document for
/// `caller`.
async fn intake(state: &AppState, caller: &Principal, upload: Upload) -> Result<Accepted, Refusal> {
    let intake = &state.intake;
    let tenant = &caller.tenant;
    // The tenant's storage quotas, before any work is spent on the file.
    let size = u64::try_from(upload.content.len()).unwrap_or(u64::MAX);
    crate::tenants::check_quotas(&state.auth.tenants, state.documents.as_ref(), tenant, size)
        .await?;
    // Validation scans the whole file (nesting pre-scan): off the runtime.
    let limits = intake.limits.clone();
    let validated = {
        let content = upload.content.clone();
        let declared = upload.declared_type.clone();
        let filename = upload.filename.clone();
        tokio::task::spawn_blocking(move || {
            docaiche_extract::validate(&content, declared.as_deref(), filename.as_deref(), &limits)
        })
        .await
        .map_err(|e| Error::internal_with("validation task failed", e))??
    };
    let mut new = NewDocument::new(
        caller.id.clone(),
        PDF,
        validated.sha256.clone(),
        upload.content.clone(),
    );
    if let Some(filename) = &validated.filename {
        new = new.with_filename(filename.clone());
    }
    if size <= intake.settings.inline_max_bytes {
        let mut input = ExtractInput::new(upload.content);
        input.declared_content_type = upload.declared_type;
        input.filename = validated.filename;
        let extraction = intake
            .extractor
            .extract(input, &ExtractOptions::default())
            .await?;
        let mut meta = state.documents.put(tenant, new).await?;
        let text = DocumentText::new(extraction.pages.clone())
            .with_risks(extraction.risks.iter().copied());
        state.documents.put_text(tenant, &meta.id, &text).await?;
        meta.has_text = true;
        meta.risks = text.risks;
        intake.publish(tenant, DocumentEventKind::Stored, meta.id.to_string());
        intake.publish(tenant, DocumentEventKind::Extracted, meta.id.to_string());
        return Ok(Accepted {
            meta,
            extraction: Some(extraction),
            job: None,
        });
    }
    let meta = state.documents.put(tenant, new).await?;
    let job = NewJob::new(
        EXTRACT_JOB,
        serde_json::json!({ "document": meta.id.to_string() }),
    )
    .with_max_attempts(intake.settings.job_attempts);
    let job = match intake.jobs.enqueue(tenant, job).await {
        Ok(job) => job,
        Err(e) => {
            // No job, no text ever: do not keep a document nobody extracts.
            let _ = state.documents.delete(tenant, &meta.id).await;
            return Err(e.into());
        }
    };
    intake.waker.wake();
    intake.publish(tenant, DocumentEventKind::Stored, meta.id.to_string());
    Ok(Accepted {
        meta,
        extraction: None,
        job: Some(job),
    })
}

/// `POST /v1/documents`: the route of [`upload`] and its documentation.
pub(crate) const UPLOAD: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/documents",
    RouteDoc {
        description: Some(
            "The raw PDF is the body. Up to `documents.inline_max_bytes` it \
             is extracted in the request (`extraction`); a larger one by a \
             background job (`job`, poll `/v1/jobs/{id}`).",
        ),
        query: &[(
            "filename",
            Param::Text,
            "the original filename (sanitised before it is stored)",
        )],
        body: RequestBody::Raw("application/pdf"),
        status: 201,
        errors: &[
            (400, "an invalid query"),
            (
                403,
                "a storage quota of the tenant would be exceeded \
                 (`tenant-quota-exceeded`, `quota` names which)",
            ),
            (
                422,
                "a PDF refused by validation or extraction (`reason` names why)",
            ),
        ],
        ..RouteDoc::ok(
            "Upload one PDF",
            "stored (`Location: /v1/documents/{id}`)",
            Payload::Json(schema_ref::<AcceptedDocument<'static>>),
        )
    },
);

/// `POST /v1/documents`: upload one PDF as the raw body; 201.
async fn upload(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let query = crate::rejection::query(query)?;
    let limit = state.intake.upload_limit(state.http.body_limit);
    let content = read_limited(&headers, body, limit).await?;
    let declared_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let accepted = intake(
        &state,
        &caller,
        Upload {
            content,
            declared_type,
            filename: query.filename,
        },
    )
    .await?;
    let mut response = (
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(AcceptedDocument::from(&accepted)),
    )
        .into_response();
    let id = accepted.meta.id.to_string();
    crate::audit::document(&state, &caller, "document.create", &id, &headers);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/documents/{}", accepted.meta.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The body of `POST /v1/documents/batch`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRequest {
    /// The documents, at most `documents.max_batch`.
    #[schema(min_items = 1)]
    documents: Vec<BatchItem>,
}

/// One document of a batch.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchItem {
    /// The original filename (sanitised before it is stored).
    filename: Option<String>,
    /// The declared media type.
    content_type: Option<String>,
    /// The content, standard base64.
    #[schema(content_encoding = "base64", content_media_type = "application/pdf")]
    content_base64: String,
}

/// `POST /v1/documents/batch`: the route of [`batch`] and its documentation.
pub(crate) const BATCH: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/documents/batch",
    RouteDoc {
        description: Some("One result per document, in order: one bad file never fails the batch."),
        body: RequestBody::Json {
            schema: schema_ref::<crate::routes::documents::BatchRequest>,
            required: true,
        },
        ..RouteDoc::ok(
            "Upload several documents (base64 in JSON)",
            "one result per document",
            Payload::Json(schema_ref::<BatchResponse<'static>>),
        )
    },
);

/// `POST /v1/documents/batch`: several documents; 200 with one result per
/// document, in order.
async fn batch(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    // JSON like every JSON route (415 otherwise), under the upload limit:
    // the documents ride in it, base64-encoded.
    crate::json::require_json(&headers)?;
    let limit = u64::try_from(state.http.body_limit).unwrap_or(u64::MAX);
    let body = read_limited(&headers, body, limit).await?;
    let request: BatchRequest = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid_input(format!("invalid JSON body: {e}")))?;
    drop(body);
    if request.documents.is_empty() || request.documents.len() > state.intake.settings.max_batch {
        return Err(Error::invalid_input(format!(
            "documents must hold 1 to {} items",
            state.intake.settings.max_batch
        ))
        .into());
    }
    let upload_limit = state.intake.upload_limit(state.http.body_limit);
    let mut outcomes = Vec::with_capacity(request.documents.len());
    for item in request.documents {
        let mut outcome =
            match base64::engine::general_purpose::STANDARD.decode(&item.content_base64) {
                Err(_) => Err(Refusal::from(Error::invalid_input(
                    "content_base64 is not valid base64",
                ))),
                Ok(content) if u64::try_from(content.len()).unwrap_or(u64::MAX) > upload_limit => {
                    Err(Refusal::from(Error::PayloadTooLarge {
                        limit: upload_limit,
                    }))
                }
                Ok(content) => {
                    intake(
                        &state,
                        &caller,
                        Upload {
                            content: Bytes::from(content),
                            declared_type: item.content_type,
                            filename: item.filename,
                        },
                    )
                    .await
                }
            };
        // The answer needs none of the sanitized bytes: the batch does not
        // hold them until it ends.
        if let Ok(Accepted {
            extraction: Some(extraction),
            ..
        }) = &mut outcome
        {
            extraction.sanitized = None;
        }
        outcomes.push(outcome);
    }
    let results = outcomes
        .iter()
        .enumerate()
        .map(|(index, outcome)| match outcome {
            Ok(accepted) => BatchResult {
                index,
                status: 201,
                document: Some(AcceptedDocument::from(accepted)),
                problem: None,
            },
            Err(refusal) => BatchResult {
                index,
                status: refusal.error.status().as_u16(),
                document: None,
                problem: Some(refusal.problem_json()),
            },
        })
        .collect();
    Ok(no_store(&BatchResponse { results }))
}

/// `GET /v1/documents/{id}`: the route of [`get_document`] and its documentation.
pub(crate) const GET_DOCUMENT: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/documents/{id}",
    RouteDoc::ok(
        "A document's metadata",
        "the metadata",
        Payload::Json(schema_ref::<DocumentView<'static>>),
    ),
);

/// `GET /v1/documents/{id}`: metadata.
async fn get_document(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let id = document_id(&id)?;
    let meta = state
        .documents
        .head(&caller.tenant, &id)
        .await?
        .ok_or(Error::not_found("document"))?;
    crate::audit::document(&state, &caller, "document.read", &id.to_string(), &headers);
    Ok(no_store(&DocumentView::from(&meta)))
}

/// `GET /v1/documents/{id}/text`: the route of [`get_text`] and its documentation.
pub(crate) const GET_TEXT: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/documents/{id}/text",
    RouteDoc {
        description: Some("404 also while a background extraction has not finished."),
        ..RouteDoc::ok(
            "A document's extracted text",
            "one string per page",
            Payload::Json(schema_ref::<DocumentTextView<'static>>),
        )
    },
);

/// `GET /v1/documents/{id}/text`: the extracted text, one string per page;
/// 404 also while a background extraction has not finished.
async fn get_text(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let id = document_id(&id)?;
    let text = state
        .documents
        .get_text(&caller.tenant, &id)
        .await?
        .ok_or(Error::not_found("document text"))?;
    Ok(no_store(&DocumentTextView {
        id: id.to_string(),
        pages: &text.pages,
    }))
}

/// `DELETE /v1/documents/{id}`: the route of [`delete_document`] and its documentation.
pub(crate) const DELETE_DOCUMENT: Endpoint = Endpoint::new(
    Method::DELETE,
    "/v1/documents/{id}",
    RouteDoc {
        status: 204,
        ..RouteDoc::ok(
            "Delete a document: content, text and metadata",
            "deleted",
            Payload::Empty,
        )
    },
);

/// `DELETE /v1/documents/{id}`: content, text and metadata; 204.
async fn delete_document(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Error> {
    let id = document_id(&id)?;
    if !state.documents.delete(&caller.tenant, &id).await? {
        return Err(Error::not_found("document"));
    }
    crate::audit::document(
        &state,
        &caller,
        "document.delete",
        &id.to_string(),
        &headers,
    );
    state
        .intake
        .publish(&caller.tenant, DocumentEventKind::Deleted, id.to_string());
    Ok(StatusCode::NO_CONTENT)
}

/// A document id from the path; an unparsable one is as missing as any other.
fn document_id(raw: &str) -> Result<DocumentId, Error> {
    raw.parse().map_err(|_| Error::not_found("document"))
}

/// Read `body` up to `limit` bytes, refusing a larger one as soon as it
/// shows: by its declared `Content-Length`, or while reading.
async fn read_limited(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, Error> {
    let too_large = || Error::PayloadTooLarge { limit };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let capacity = declared.unwrap_or(0).min(limit).min(1 << 20);
    let mut buffer = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            // The server-wide limit layer (tower-http) may trip first.
            let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
            while let Some(s) = source {
                if s.is::<http_body_util::LengthLimitError>() {
                    return too_large();
                }
                source = s.source();
            }
            Error::invalid_input("the request body could not be read")
        })?;
        if let Ok(data) = frame.into_data() {
            let total = buffer.len().saturating_add(data.len());
            if u64::try_from(total).unwrap_or(u64::MAX) > limit {
                return Err(too_large());
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buffer))
}

/// RFC 3339; none for a time outside its range.
pub(super) fn rfc3339(t: OffsetDateTime) -> Option<String> {
    t.format(&Rfc3339).ok()
}

/// A document's metadata.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Document)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocumentView<'a> {
    /// The document id.
    id: String,
    /// The principal that uploaded it.
    owner: &'a str,
    /// The sanitised filename.
    filename: Option<&'a str>,
    /// `application/pdf`.
    content_type: &'a str,
    /// Size in bytes.
    size: u64,
    /// SHA-256 of the content, hex.
    sha256: &'a str,
    /// Whether the extracted text is available.
    has_text: bool,
    /// The active content its extraction found (`java_script`, `launch`,
    /// …), sorted, each once; empty for a clean document and until the
    /// text is extracted (`has_text`). `GET /v1/documents?risk=` filters
    /// on it.
    #[schema(value_type = Vec<crate::openapi::RiskFlagName>)]
    risks: &'a [docaiche_core::extract::RiskFlag],
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: Option<String>,
    /// Where the text is.
    text_url: String,
}

impl<'a> From<&'a DocumentMeta> for DocumentView<'a> {
    fn from(meta: &'a DocumentMeta) -> Self {
        Self {
            id: meta.id.to_string(),
            owner: meta.owner.as_str(),
            filename: meta.filename.as_deref(),
            content_type: &meta.content_type,
            size: meta.size,
            sha256: &meta.sha256,
            has_text: meta.has_text,
            risks: &meta.risks,
            created_at: rfc3339(meta.created_at),
            text_url: format!("/v1/documents/{}/text", meta.id),
        }
    }
}

/// An inline extraction's summary.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Extraction)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExtractionView<'a> {
    /// Number of pages.
    pages: usize,
    /// Title, author, producer, dates, page count, format version.
    #[schema(value_type = Object)]
    info: &'a docaiche_core::extract::DocumentInfo,
    /// Active content found (`java_script`, `launch`, …).
    #[schema(value_type = Vec<crate::openapi::RiskFlagName>)]
    risks: &'a [docaiche_core::extract::RiskFlag],
}

/// An accepted document: its metadata, and the inline extraction or the
/// background job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AcceptedDocument<'a> {
    /// The metadata.
    #[serde(flatten)]
    meta: DocumentView<'a>,
    /// The inline extraction.
    #[serde(skip_serializing_if = "Option::is_none")]
    extraction: Option<ExtractionView<'a>>,
    /// The background job.
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<JobView<'a>>,
}

impl<'a> From<&'a Accepted> for AcceptedDocument<'a> {
    fn from(accepted: &'a Accepted) -> Self {
        Self {
            meta: DocumentView::from(&accepted.meta),
            extraction: accepted.extraction.as_ref().map(|e| ExtractionView {
                pages: e.pages.len(),
                info: &e.info,
                risks: &e.risks,
            }),
            job: accepted.job.as_ref().map(JobView::from),
        }
    }
}

/// One document's outcome in a batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchResult<'a> {
    /// The document's position in the request.
    index: usize,
    /// 201, or the status its problem would have had alone.
    status: u16,
    /// The accepted document (201).
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<AcceptedDocument<'a>>,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::openapi::ProblemDoc>)]
    problem: Option<serde_json::Value>,
}

/// `POST /v1/documents/batch`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchResponse<'a> {
    /// One per document, in order.
    results: Vec<BatchResult<'a>>,
}

/// A document's text.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DocumentText)]
#[serde(deny_unknown_fields)]
pub(crate) struct DocumentTextView<'a> {
    /// The document id.
    id: String,
    /// One string per page.
    pages: &'a [String],
}

/// A JSON response that no cache may keep.
pub(super) fn no_store(body: &impl Serialize) -> Response {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response()
}
