//! The job listing and retry through the router.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use docaiche_core::TenantId;
use docaiche_core::job::{JobState, NewJob};
use serde_json::Value;

use crate::config::Config;
use crate::routes::router;
use crate::routes::tests::send;
use crate::state::AppState;
use crate::state::tests::local_state;
use crate::test_support::{TestDir, key_with};

/// A kind no worker of the server claims.
const KIND: &str = "test-only";

/// `method uri` with `key`: the status and the answer as JSON.
async fn call(state: &AppState, method: &str, uri: &str, key: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-api-key", key)
        .body(Body::empty())
        .expect("request");
    let (status, _, bytes) = send(router(state.clone()), request).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A job of `tenant` that failed its only attempt: its id.
async fn dead_job(state: &AppState, tenant: &str) -> String {
    let jobs = &state.intake.jobs;
    let tenant = TenantId::new(tenant).expect("tenant");
    let job = NewJob::new(KIND, serde_json::json!({})).with_max_attempts(1);
    let job = jobs.enqueue(&tenant, job).await.expect("enqueue");
    let lease = jobs
        .claim(&[KIND], Duration::from_secs(30))
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(lease.job.id, job.id);
    let state = jobs.fail(&lease, "boom", None).await.expect("fail");
    assert_eq!(state, Some(JobState::Dead));
    job.id.to_string()
}

/// The ids of a page.
fn ids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|j| j["id"].as_str().expect("id"))
        .collect()
}

#[tokio::test]
async fn dead_jobs_are_listed_and_retried_within_the_tenant() {
    let dir = TestDir::new("jobs-list-retry");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let state = local_state(&config);
    let dead = dead_job(&state, "acme").await;
    let theirs = dead_job(&state, "globex").await;
    let queued = state
        .intake
        .jobs
        .enqueue(
            &TenantId::new("acme").expect("tenant"),
            NewJob::new(KIND, serde_json::json!({})),
        )
        .await
        .expect("enqueue")
        .id
        .to_string();
    let reader = key_with(&state, "acme", &["jobs:read"]).await;
    let writer = key_with(&state, "acme", &["jobs:read", "documents:write"]).await;

    let (status, page) = call(&state, "GET", "/v1/jobs", &reader).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    crate::openapi::tests::conforms("jobs", "JobPage", page.to_string().as_bytes());
    assert_eq!(ids(&page), [dead.as_str(), queued.as_str()]);
    let (_, page) = call(&state, "GET", "/v1/jobs?state=dead", &reader).await;
    assert_eq!(ids(&page), [dead.as_str()]);
    assert_eq!(page["items"][0]["last_error"], "boom");
    let (_, page) = call(&state, "GET", "/v1/jobs?limit=1", &reader).await;
    assert_eq!(ids(&page), [dead.as_str()]);
    let next = page["next"].as_str().expect("a second page");
    let (_, page) = call(
        &state,
        "GET",
        &format!("/v1/jobs?limit=1&after={next}"),
        &reader,
    )
    .await;
    assert_eq!(ids(&page), [queued.as_str()]);
    assert!(page["next"].is_null());
    for bad in [
        "/v1/jobs?state=zombie",
        "/v1/jobs?after=x",
        "/v1/jobs?limit=0",
    ] {
        let (status, body) = call(&state, "GET", bad, &reader).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // Retry: the reader may not; the writer queues the dead job again,
    // once; a queued job is a conflict; another tenant's is not found.
    let retry = |id: &str| format!("/v1/jobs/{id}/retry");
    let (status, _) = call(&state, "POST", &retry(&dead), &reader).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, job) = call(&state, "POST", &retry(&dead), &writer).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    crate::openapi::tests::conforms("retried", "Job", job.to_string().as_bytes());
    assert_eq!(job["state"], "queued");
    assert_eq!(job["attempts"], 0);
    let (status, problem) = call(&state, "POST", &retry(&dead), &writer).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, _) = call(&state, "POST", &retry(&queued), &writer).await;
    assert_eq!(status, StatusCode::CONFLICT);
    for missing in [
        theirs.as_str(),
        "0190f1c2-0000-7000-8000-000000000000",
        "nope",
    ] {
        let (status, _) = call(&state, "POST", &retry(missing), &writer).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }
    let (_, page) = call(&state, "GET", "/v1/jobs?state=dead", &reader).await;
    assert_eq!(ids(&page), Vec::<&str>::new());
}
