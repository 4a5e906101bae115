//! The document services behind the document routes (`/v1/documents`,
//! `/v1/jobs`; handlers in `crate::routes::documents` and
//! `crate::routes::jobs`) and the extraction worker.
//!
//! | route | permission | what |
//! |---|---|---|
//! | `POST /v1/documents?filename=NAME` | `documents:write` | upload one PDF (raw body) |
//! | `POST /v1/documents/batch` | `documents:write` | upload several (JSON, base64) |
//! | `GET /v1/documents?owner=&content_type=&risk=&created_after=&created_before=` | `documents:read` | the tenant's documents, paged and filtered (`crate::routes::documents::list`) |
//! | `GET /v1/documents/{id}` | `documents:read` | metadata, with the risk flags its extraction found |
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
//! **Risk flags.** Both extractions, inline and by job, store the
//! extraction's risk flags (`java_script`, `launch`, …) with the text
//! (`DocumentText::with_risks`), so a document's `risks` and the
//! `?risk=` filter of the listing mean the same whichever path it took.
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

use std::num::NonZeroUsize;
use std::sync::Arc;

use docaiche_core::document::DocumentText;
use docaiche_core::extract::{ExtractInput, ExtractOptions, Extractor};
use docaiche_core::job::{JobQueue, JobRecord};
use docaiche_core::{DocumentId, DocumentStore, Error, TenantId};
use docaiche_extract::worker::{
    JobContext, JobFailure, JobHandler, JobWaker, JobWorker, WorkerConfig, WorkerHandle,
};
use docaiche_extract::{CachedExtractor, Limits, PdfExtractor};
use docaiche_store::encryption::EncryptedDocumentStore;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::config::DocumentsSection;
use crate::state::AppState;

/// The job kind of a background extraction.
pub(crate) const EXTRACT_JOB: &str = "extract";

/// The media type stored for every accepted document (the sniffed type).
pub(crate) const PDF: &str = "application/pdf";

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
    pub(crate) fn publish(&self, tenant: &TenantId, kind: DocumentEventKind, id: String) {
        let _ = self.events.send(DocumentEvent {
            tenant: tenant.clone(),
            kind,
            id,
            state: None,
            progress: None,
        });
    }

    /// The effective upload limit under a server body limit of `body_limit`.
    pub(crate) fn upload_limit(&self, body_limit: usize) -> u64 {
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
                &DocumentText::new(extraction.pages.clone())
                    .with_risks(extraction.risks.iter().copied()),
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
