//! The job routes: the caller's tenant's extraction jobs, listed by state,
//! read, cancelled, and retried once dead.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use docaiche_auth::layer::Authenticated;
use docaiche_core::job::{JobRecord, JobState};
use docaiche_core::page::PageRequest;
use docaiche_core::{Error, JobId, Permission};
use serde::{Deserialize, Serialize};

use super::documents::{no_store, rfc3339};

use crate::openapi::{Param, Payload, RouteDoc, schema_ref};
use crate::rejection::Path;
use crate::routes::Endpoint;
use crate::routes::RouteGroup;
use crate::state::AppState;

/// Add the job routes to `group` (the protected `documents` group, after
/// the document routes).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    let write = [Permission::DOCUMENTS_WRITE];
    let read = [Permission::JOBS_READ];
    group
        .route(LIST_JOBS, &read, list_jobs)
        .route(GET_JOB, &read, get_job)
        .route(CANCEL_JOB, &write, cancel_job)
        .route(RETRY_JOB, &write, retry_job)
}

/// The names of every [`JobState`], as `?state=` takes them.
const STATE_NAMES: [&str; JobState::ALL.len()] = {
    let mut names = [""; JobState::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = JobState::ALL[i].as_str();
        i += 1;
    }
    names
};

/// Default page size of job listings.
const DEFAULT_PAGE: u32 = 50;

/// `GET /v1/jobs`: the route of [`list_jobs`] and its documentation.
pub(crate) const LIST_JOBS: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/jobs",
    RouteDoc {
        query: &[
            (
                "state",
                Param::OneOf(&STATE_NAMES),
                "only jobs in this state (`dead`: failed every attempt)",
            ),
            crate::openapi::PAGE_AFTER,
            crate::openapi::PAGE_LIMIT_50,
        ],
        errors: &[(400, "an invalid `state`, `after` cursor or `limit`")],
        ..RouteDoc::ok(
            "The tenant's jobs, oldest first, a page at a time",
            "a page of jobs",
            Payload::Json(schema_ref::<JobPage<'static>>),
        )
    },
);

/// The query of `GET /v1/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only jobs in this state.
    state: Option<String>,
    /// The cursor of the previous page's `next`.
    after: Option<String>,
    /// Page size.
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    limit: Option<u32>,
}

/// A page of jobs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobPage<'a> {
    /// The jobs, oldest first.
    items: Vec<JobView<'a>>,
    /// The cursor of the next page (`?after=`); none on the last page.
    next: Option<String>,
}

/// `GET /v1/jobs`: a page of the caller's tenant's jobs (`?state=dead`:
/// the ones to look at).
async fn list_jobs(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let query = crate::rejection::query(query)?;
    let wanted = query
        .state
        .as_deref()
        .map(|name| {
            JobState::from_name(name).ok_or_else(|| {
                Error::invalid_input("state must be queued, running, succeeded, dead or cancelled")
            })
        })
        .transpose()?;
    let page = PageRequest::new(query.after, query.limit.unwrap_or(DEFAULT_PAGE))?;
    let page = (state.intake.jobs)
        .list(&caller.tenant, wanted, &page)
        .await?;
    let items = page.items.iter().map(JobView::from).collect();
    Ok(no_store(&JobPage {
        items,
        next: page.next,
    }))
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

/// `POST /v1/jobs/{id}/retry`: the route of [`retry_job`] and its
/// documentation.
pub(crate) const RETRY_JOB: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/jobs/{id}/retry",
    RouteDoc {
        description: Some(
            "Queues a dead job again, runnable at once, with its attempts reset \
             (`last_error` stays until the next attempt ends).",
        ),
        errors: &[(409, "the job is not dead")],
        ..RouteDoc::ok(
            "Retry a dead job",
            "the job, queued again",
            Payload::Json(schema_ref::<JobView<'static>>),
        )
    },
);

/// `POST /v1/jobs/{id}/retry`: queue a dead job of the caller's tenant
/// again; the job. 409 for a job in any other state.
async fn retry_job(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let id: JobId = id.parse().map_err(|_| Error::not_found("job"))?;
    let jobs = &state.intake.jobs;
    let retried = jobs.retry(&caller.tenant, &id).await?;
    let job = jobs
        .get(&caller.tenant, &id)
        .await?
        .ok_or(Error::not_found("job"))?;
    if !retried {
        return Err(Error::conflict(format!(
            "the job is not dead ({})",
            job.state.as_str()
        )));
    }
    state.intake.waker.wake();
    Ok(no_store(&JobView::from(&job)))
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

#[cfg(test)]
mod tests;
