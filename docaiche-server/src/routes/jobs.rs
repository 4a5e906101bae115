//! The job routes (`/v1/jobs/{id}`): an extraction job of the caller's
//! tenant, read or cancelled.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use docaiche_auth::layer::Authenticated;
use docaiche_core::job::JobRecord;
use docaiche_core::{Error, JobId, Permission};

use serde::Serialize;

use super::documents::{no_store, rfc3339};

use crate::openapi::{Payload, RouteDoc, schema_ref};
use crate::rejection::Path;
use crate::routes::Endpoint;
use crate::routes::RouteGroup;
use crate::state::AppState;

/// Add the job routes to `group` (the protected `documents` group, after
/// the document routes).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    let write = [Permission::DOCUMENTS_WRITE];
    group
        .route(GET_JOB, &[Permission::JOBS_READ], get_job)
        .route(CANCEL_JOB, &write, cancel_job)
}

/// `GET /v1/jobs/{id}`: the route of [`get_job`] and its documentation.
pub(crate) const GET_JOB: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/jobs/{id}",
    RouteDoc::ok(
        "An extraction job: state, progress, attempts, error",
        "the job",
        Payload::Json(schema_ref::<JobView<'static>>),
    ),
);

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
    Ok(no_store(&JobView::from(&job)))
}

/// `DELETE /v1/jobs/{id}`: the route of [`cancel_job`] and its documentation.
pub(crate) const CANCEL_JOB: Endpoint = Endpoint::new(
    Method::DELETE,
    "/v1/jobs/{id}",
    RouteDoc {
        description: Some(
            "A running job's worker stops it at its next heartbeat and \
             discards its result.",
        ),
        status: 204,
        errors: &[(409, "the job has already ended")],
        ..RouteDoc::ok(
            "Cancel a queued or running job",
            "cancelled",
            Payload::Empty,
        )
    },
);

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

/// An extraction job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Job)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobView<'a> {
    /// The job id.
    id: String,
    /// `extract`.
    kind: &'a str,
    /// `queued`, `running`, `succeeded`, `dead` or `cancelled`.
    state: &'static str,
    /// Percent done.
    progress: u8,
    /// Attempts so far.
    attempts: u32,
    /// Attempts before the job is dead-lettered.
    max_attempts: u32,
    /// Why the last attempt failed.
    last_error: Option<&'a str>,
    /// The document id.
    document: Option<&'a str>,
    /// The job's result.
    #[schema(value_type = Option<Object>)]
    result: Option<&'a serde_json::Value>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    updated_at: Option<String>,
    /// RFC 3339: not run before.
    #[schema(format = DateTime)]
    run_after: Option<String>,
    /// Where to poll it.
    url: String,
}

impl<'a> From<&'a JobRecord> for JobView<'a> {
    fn from(job: &'a JobRecord) -> Self {
        Self {
            id: job.id.to_string(),
            kind: &job.kind,
            state: job.state.as_str(),
            progress: job.progress,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            last_error: job.last_error.as_deref(),
            // The payload names the document.
            document: job
                .payload
                .get("document")
                .and_then(serde_json::Value::as_str),
            result: job.result.as_ref(),
            created_at: rfc3339(job.created_at),
            updated_at: rfc3339(job.updated_at),
            run_after: rfc3339(job.run_after),
            url: format!("/v1/jobs/{}", job.id),
        }
    }
}
