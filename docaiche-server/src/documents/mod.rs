//! The document routes (`/v1/documents`, `/v1/jobs`) and the extraction
//! worker behind them.
//!
//! | route | permission | what |
//! |---|---|---|
//! | `POST /v1/documents?filename=NAME` | `documents:write` | upload one PDF (raw body) |
//! | `POST /v1/documents/batch` | `documents:write` | upload several (JSON, base64) |
//! | `GET /v1/documents/{id}` | `documents:read` | metadata |
//! | `GET /v1/documents/{id}/text` | `documents:read` | extracted text, per page |
//! | `DELETE /v1/documents/{id}` | `documents:delete` | delete content, text, metadata |
//! | `GET /v1/jobs/{id}` | `jobs:read` | an extraction job: state, progress, attempts, error |
//! | `DELETE /v1/jobs/{id}` | `documents:write` | cancel a queued or running job |
//!
//! Everything is scoped to the caller's tenant: another tenant's document
//! or job is answered 404, exactly like a missing one.
//!
//! **Upload.** The body is read a frame at a time and refused with a 413
//! problem as soon as it passes the upload limit (`documents.max_upload_bytes`,
//! and never more than `server.body_limit_bytes`); a declared
//! `Content-Length` over the limit is refused before anything is read. The
//! bytes are then validated by `docaiche-extract` (magic bytes, declared
//! type, truncation, nesting, filename sanitised: no path, no control or
//! bidi characters, at most 255 bytes): a non-PDF is a 415 problem, a
//! refused PDF a 422 problem, both carrying a `reason` code. A document up
//! to `documents.inline_max_bytes` is extracted in the request (201 with
//! the extraction summary); a larger one is stored and extracted by a
//! background job (201 with the job, and `Location`-style link
//! `/v1/jobs/{id}` to poll). Documents are stored through the encrypted
//! document store; the sanitised filename is the stored `filename`.
//!
//! **Batch.** `{"documents": [{"filename", "content_type", "content_base64"}]}`
//! (at most `documents.max_batch` items, the whole body within
//! `server.body_limit_bytes`); the answer has one result per item, in order,
//! each either `{"status": 201, "document": …}` or `{"status": 4xx,
//! "problem": …}`: one bad file never fails the batch.
//!
//! **Jobs.** Extraction jobs (kind `extract`) go through the [`JobQueue`]
//! of `[store]` (SQLite, or PostgreSQL where several server instances share
//! the queue), run by a [`JobWorker`] started with the server and stopped
//! on shutdown (running jobs get the shutdown grace period, then their
//! leases are released for another instance). Failures are retried with
//! exponential backoff and jitter up to `documents.job_attempts`, then the
//! job is dead-lettered (`state: "dead"`, `last_error` with the reason).
//!
//! **Events.** [`DocumentServices::events`] is a broadcast channel of
//! [`DocumentEvent`]s (stored, extracted, deleted, job progress and state)
//! for live updates, e.g. a WebSocket: subscribe with
//! `state.intake.events.subscribe()` and forward only the events whose
//! `tenant` is the connection's own.
//!
//! **Cache.** Extraction results are cached in process by content hash
//! (`CachedExtractor` over a bounded memory cache, `documents.cache_entries`,
//! 0 disables), so the same document uploaded twice is parsed once.

use std::error::Error as _;
use std::num::NonZeroUsize;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use docaiche_auth::layer::Authenticated;
use docaiche_core::document::{DocumentMeta, DocumentText, NewDocument};
use docaiche_core::extract::{ExtractInput, ExtractOptions, Extraction, Extractor};
use docaiche_core::job::{JobQueue, JobRecord, NewJob};
use docaiche_core::problem::{PROBLEM_JSON, Problem};
use docaiche_core::{DocumentId, DocumentStore, Error, JobId, Permission, Principal, TenantId};
use docaiche_extract::worker::{
    JobContext, JobFailure, JobHandler, JobWaker, JobWorker, WorkerConfig, WorkerHandle,
};
use docaiche_extract::{CachedExtractor, ExtractError, Limits, PdfExtractor};
use docaiche_store::encryption::EncryptedDocumentStore;
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::broadcast;

use crate::app::{AppState, RouteGroup};
use crate::rejection::Path;

/// The job kind of a background extraction.
pub(crate) const EXTRACT_JOB: &str = "extract";

/// The media type stored for every accepted document (the sniffed type).
const PDF: &str = "application/pdf";

/// `[documents]`: upload limits, the inline/background threshold, the
/// worker and the result cache.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DocumentsSection {
    /// Largest accepted document, in bytes (also capped by
    /// `server.body_limit_bytes`). Default 16 MiB.
    pub(crate) max_upload_bytes: u64,
    /// Documents up to this size are extracted in the request; larger ones
    /// by a background job. Default 1 MiB.
    pub(crate) inline_max_bytes: u64,
    /// Most documents in one batch. Default 16.
    pub(crate) max_batch: usize,
    /// Extraction jobs run at once by this instance's worker. Default 2.
    pub(crate) workers: usize,
    /// Attempts of an extraction job before it is dead-lettered. Default 3.
    pub(crate) job_attempts: u32,
    /// Extraction results kept in the in-process cache; 0 disables it.
    /// Default 256.
    pub(crate) cache_entries: usize,
}

impl Default for DocumentsSection {
    fn default() -> Self {
        Self {
            max_upload_bytes: 16 * 1024 * 1024,
            inline_max_bytes: 1024 * 1024,
            max_batch: 16,
            workers: 2,
            job_attempts: 3,
            cache_entries: 256,
        }
    }
}

impl DocumentsSection {
    /// What is wrong with these settings: `(setting, reason)` pairs.
    pub(crate) fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.max_upload_bytes == 0 {
            out.push(("documents.max_upload_bytes", "must be at least 1 byte"));
        }
        if self.max_batch == 0 || self.max_batch > 1000 {
            out.push(("documents.max_batch", "must be between 1 and 1000"));
        }
        if self.workers == 0 || self.workers > 256 {
            out.push(("documents.workers", "must be between 1 and 256"));
        }
        if self.job_attempts == 0 || self.job_attempts > 100 {
            out.push(("documents.job_attempts", "must be between 1 and 100"));
        }
        out
    }
}

/// What happened to a document or its extraction job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DocumentEventKind {
    /// A document was stored (`id` is the document's).
    Stored,
    /// Its text was extracted and stored (`id` is the document's).
    Extracted,
    /// It was deleted (`id` is the document's).
    Deleted,
    /// An extraction job changed (`id` is the job's; see `state`).
    Job,
}

/// A change to a document or a job, for live updates. Subscribers see
/// every tenant's events and must filter on `tenant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct DocumentEvent {
    /// The tenant it belongs to.
    pub(crate) tenant: TenantId,
    /// What happened.
    pub(crate) kind: DocumentEventKind,
    /// The document's id, or the job's for [`DocumentEventKind::Job`].
    pub(crate) id: String,
    /// A job's state (`queued`, `running`, `succeeded`, `dead`, `cancelled`).
    pub(crate) state: Option<&'static str>,
    /// A job's progress in percent.
    pub(crate) progress: Option<u8>,
}

/// The document intake services of [`AppState`]: the job queue, the
/// (cached) extractor, the settings and the event channel.
#[derive(Debug)]
pub(crate) struct DocumentServices {
    /// `[documents]`.
    pub(crate) settings: DocumentsSection,
    /// Extraction jobs (the `[store]` database's queue).
    pub(crate) jobs: Arc<dyn JobQueue>,
    /// The PDF extractor, behind the result cache when enabled.
    pub(crate) extractor: Arc<dyn Extractor>,
    /// Limits of validation and extraction.
    pub(crate) limits: Limits,
    /// Live updates; see the module docs.
    pub(crate) events: broadcast::Sender<DocumentEvent>,
    /// Wakes the worker after an enqueue.
    pub(crate) waker: JobWaker,
}

impl DocumentServices {
    /// Services for `settings` over `jobs`.
    pub(crate) fn new(settings: &DocumentsSection, jobs: Arc<dyn JobQueue>) -> Self {
        let mut limits = Limits::default();
        limits.max_input_bytes = settings.max_upload_bytes;
        let pdf: Arc<dyn Extractor> = Arc::new(PdfExtractor::new(limits.clone()));
        let extractor: Arc<dyn Extractor> = match NonZeroUsize::new(settings.cache_entries) {
            Some(entries) => Arc::new(CachedExtractor::new(
                pdf,
                Arc::new(docaiche_store::memory::MemoryCacheStore::new().with_max_entries(entries)),
            )),
            None => pdf,
        };
        let (events, _) = broadcast::channel(1024);
        Self {
            settings: settings.clone(),
            jobs,
            extractor,
            limits,
            events,
            waker: JobWaker::default(),
        }
    }

    /// Publish `event` (nobody listening is fine).
    fn publish(&self, tenant: &TenantId, kind: DocumentEventKind, id: String) {
        let _ = self.events.send(DocumentEvent {
            tenant: tenant.clone(),
            kind,
            id,
            state: None,
            progress: None,
        });
    }

    /// The effective upload limit under a server body limit of `body_limit`.
    fn upload_limit(&self, body_limit: usize) -> u64 {
        self.settings
            .max_upload_bytes
            .min(u64::try_from(body_limit).unwrap_or(u64::MAX))
    }
}

/// Start the extraction worker of `state` on the current runtime, and the
/// task forwarding its job events to [`DocumentServices::events`]. Stop it
/// with [`WorkerHandle::shutdown`].
///
/// # Errors
/// [`Error::Misconfigured`] for invalid worker settings.
pub(crate) fn start_worker(state: &AppState) -> Result<WorkerHandle, Error> {
    let intake = &state.intake;
    let handler = ExtractJob {
        documents: Arc::clone(&state.documents),
        extractor: Arc::clone(&intake.extractor),
        events: intake.events.clone(),
    };
    let config = WorkerConfig::new([EXTRACT_JOB]).with_concurrency(intake.settings.workers);
    let worker = JobWorker::new(Arc::clone(&intake.jobs), Arc::new(handler), config)?
        .with_waker(intake.waker.clone());
    let mut jobs = worker.subscribe();
    let events = intake.events.clone();
    tokio::spawn(async move {
        loop {
            match jobs.recv().await {
                Ok(job) => {
                    let _ = events.send(DocumentEvent {
                        tenant: job.tenant,
                        kind: DocumentEventKind::Job,
                        id: job.id.to_string(),
                        state: Some(job.state.as_str()),
                        progress: Some(job.progress),
                    });
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    tracing::info!(
        concurrency = intake.settings.workers,
        "extraction worker started"
    );
    Ok(worker.spawn())
}

/// Add the document routes to `group` (the protected `documents` group).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    let read = [Permission::DOCUMENTS_READ];
    let write = [Permission::DOCUMENTS_WRITE];
    group
        .route(Method::POST, "/v1/documents", &write, upload)
        .route(Method::POST, "/v1/documents/batch", &write, batch)
        .route(Method::GET, "/v1/documents/{id}", &read, get_document)
        .route(Method::GET, "/v1/documents/{id}/text", &read, get_text)
        .route(
            Method::DELETE,
            "/v1/documents/{id}",
            &[Permission::DOCUMENTS_DELETE],
            delete_document,
        )
        .route(
            Method::GET,
            "/v1/jobs/{id}",
            &[Permission::JOBS_READ],
            get_job,
        )
        .route(Method::DELETE, "/v1/jobs/{id}", &write, cancel_job)
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
    let size = u64::try_from(upload.content.len()).unwrap_or(u64::MAX);
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
        state
            .documents
            .put_text(
                tenant,
                &meta.id,
                &DocumentText::new(extraction.pages.clone()),
            )
            .await?;
        meta.has_text = true;
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

/// `POST /v1/documents`: upload one PDF as the raw body; 201.
async fn upload(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let Query(query) =
        query.map_err(|e| Error::invalid_input(format!("invalid query: {}", e.body_text())))?;
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
        Json(accepted_json(&accepted)),
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
    let mut results = Vec::with_capacity(request.documents.len());
    for (index, item) in request.documents.into_iter().enumerate() {
        let outcome = match base64::engine::general_purpose::STANDARD.decode(&item.content_base64) {
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
        results.push(match outcome {
            Ok(accepted) => serde_json::json!({
                "index": index,
                "status": 201,
                "document": accepted_json(&accepted),
            }),
            Err(refusal) => serde_json::json!({
                "index": index,
                "status": refusal.error.status().as_u16(),
                "problem": refusal.problem_json(),
            }),
        });
    }
    Ok((
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "results": results })),
    )
        .into_response())
}

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
    Ok(no_store(&meta_json(&meta)))
}

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
    Ok(no_store(&serde_json::json!({
        "id": id.to_string(),
        "pages": text.pages,
    })))
}

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

/// `GET /v1/jobs/{id}`: a job of the caller's tenant.
async fn get_job(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let id: JobId = id.parse().map_err(|_| Error::not_found("job"))?;
    let job = state
        .intake
        .jobs
        .get(&caller.tenant, &id)
        .await?
        .ok_or(Error::not_found("job"))?;
    Ok(no_store(&job_json(&job)))
}

/// `DELETE /v1/jobs/{id}`: cancel a queued or running job of the caller's
/// tenant; 204. A running job's worker stops it at its next heartbeat and
/// discards its result. 409 once the job has ended.
async fn cancel_job(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let id: JobId = id.parse().map_err(|_| Error::not_found("job"))?;
    let jobs = &state.intake.jobs;
    if jobs.cancel(&caller.tenant, &id).await? {
        return Ok(StatusCode::NO_CONTENT);
    }
    match jobs.get(&caller.tenant, &id).await? {
        None => Err(Error::not_found("job")),
        Some(job) => Err(Error::conflict(format!(
            "the job has already ended ({})",
            job.state.as_str()
        ))),
    }
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

/// RFC 3339, or null.
fn rfc3339(t: OffsetDateTime) -> serde_json::Value {
    t.format(&Rfc3339)
        .map_or(serde_json::Value::Null, serde_json::Value::String)
}

/// A document's metadata as JSON.
fn meta_json(meta: &DocumentMeta) -> serde_json::Value {
    serde_json::json!({
        "id": meta.id.to_string(),
        "owner": meta.owner.as_str(),
        "filename": meta.filename,
        "content_type": meta.content_type,
        "size": meta.size,
        "sha256": meta.sha256,
        "has_text": meta.has_text,
        "created_at": rfc3339(meta.created_at),
        "text_url": format!("/v1/documents/{}/text", meta.id),
    })
}

/// A job as JSON (its payload names the document).
fn job_json(job: &JobRecord) -> serde_json::Value {
    serde_json::json!({
        "id": job.id.to_string(),
        "kind": job.kind,
        "state": job.state.as_str(),
        "progress": job.progress,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "document": job.payload.get("document"),
        "result": job.result,
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
        "run_after": rfc3339(job.run_after),
        "url": format!("/v1/jobs/{}", job.id),
    })
}

/// The answer to an accepted document.
fn accepted_json(accepted: &Accepted) -> serde_json::Value {
    let mut body = meta_json(&accepted.meta);
    if let Some(extraction) = &accepted.extraction {
        body["extraction"] = serde_json::json!({
            "pages": extraction.pages.len(),
            "info": extraction.info,
            "risks": extraction.risks,
        });
    }
    if let Some(job) = &accepted.job {
        body["job"] = job_json(job);
    }
    body
}

/// A JSON response that no cache may keep.
fn no_store(body: &serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body.clone()),
    )
        .into_response()
}

/// The extraction job: fetch the stored document (decrypted), extract it
/// through the cached extractor, store its text.
#[derive(Debug)]
struct ExtractJob {
    documents: Arc<EncryptedDocumentStore>,
    extractor: Arc<dyn Extractor>,
    events: broadcast::Sender<DocumentEvent>,
}

#[async_trait::async_trait]
impl JobHandler for ExtractJob {
    async fn run(&self, job: JobRecord, ctx: JobContext) -> Result<serde_json::Value, JobFailure> {
        let id: DocumentId = job
            .payload
            .get("document")
            .and_then(serde_json::Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| JobFailure::permanent("the job names no document"))?;
        let document = self
            .documents
            .get(&job.tenant, &id)
            .await?
            .ok_or_else(|| JobFailure::permanent("the document was deleted"))?;
        ctx.set_progress(10);
        let mut input = ExtractInput::new(document.content);
        input.declared_content_type = Some(document.meta.content_type);
        input.filename = document.meta.filename;
        let options = ExtractOptions::default();
        let extraction = tokio::select! {
            result = self.extractor.extract(input, &options) => result,
            () = ctx.cancelled() => return Err(JobFailure::retryable("cancelled")),
        }
        .map_err(|e| match &e {
            Error::DocumentRejected { reason, .. } => {
                JobFailure::permanent(format!("document rejected: {reason}"))
            }
            _ => JobFailure::from(e),
        })?;
        ctx.set_progress(90);
        self.documents
            .put_text(
                &job.tenant,
                &id,
                &DocumentText::new(extraction.pages.clone()),
            )
            .await?;
        let _ = self.events.send(DocumentEvent {
            tenant: job.tenant.clone(),
            kind: DocumentEventKind::Extracted,
            id: id.to_string(),
            state: None,
            progress: None,
        });
        Ok(serde_json::json!({
            "document": id.to_string(),
            "pages": extraction.pages.len(),
            "info": extraction.info,
            "risks": extraction.risks,
        }))
    }
}

#[cfg(test)]
mod tests;
