//! The [`JobQueue`] suite.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use docaiche_core::job::{JobLease, JobQueue, JobState, LeaseStatus, NewJob};
use docaiche_core::page::PageRequest;
use docaiche_core::{ErrorCode, JobId, TenantId};
use serde_json::json;

use super::{Case, Harness, concurrently};

const SUITE: &str = "JobQueue";
const LEASE: Duration = Duration::from_secs(30);

/// Run the whole [`JobQueue`] contract against `queue`.
///
/// Every case enqueues jobs of its own fresh kind and claims only that kind,
/// so workers of other runs on the same queue are not disturbed (and do not
/// disturb it, unless they claim every kind).
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_job_queue(queue: Arc<dyn JobQueue>, harness: &Harness) {
    enqueue_then_get(&*queue, harness).await;
    claim_heartbeat_complete(&*queue, harness).await;
    claim_filters_by_kind_oldest_first(&*queue, harness).await;
    tenant_isolation(&*queue, harness).await;
    cancel_is_idempotent(&*queue, harness).await;
    cancelled_running_job(&*queue, harness).await;
    fail_retries_then_dead_letters(&*queue, harness).await;
    run_after_is_respected(&*queue, harness).await;
    concurrent_claims_are_exclusive(&queue, harness).await;
    expired_lease_is_reclaimed_and_voided(&*queue, harness).await;
    retry_delay_is_respected(&*queue, harness).await;
    list_pages_by_state_within_the_tenant(&*queue, harness).await;
    retry_requeues_only_dead_jobs(&*queue, harness).await;
}

async fn claim_one(case: Case, queue: &dyn JobQueue, kind: &str, lease: Duration) -> JobLease {
    let claimed = case.ok(queue.claim(&[kind], lease).await, "claim");
    claimed.unwrap_or_else(|| case.fail("claim found no runnable job"))
}

async fn state_of(case: Case, queue: &dyn JobQueue, lease: &JobLease) -> Option<JobState> {
    let got = case.ok(queue.get(&lease.job.tenant, &lease.job.id).await, "get");
    got.map(|j| j.state)
}

async fn enqueue_then_get(queue: &dyn JobQueue, h: &Harness) {
    let case = Case::new(SUITE, "enqueue_then_get");
    let tenant = h.tenant();
    for s in h.hostile_strings() {
        let kind = format!("{s}{}", h.unique(""));
        let payload = json!({ "text": s, "nested": [s, { s.clone(): null }], "n": -1.5 });
        let job = case.ok(
            queue
                .enqueue(
                    &tenant,
                    NewJob::new(kind.clone(), payload.clone()).with_max_attempts(5),
                )
                .await,
            "enqueue",
        );
        case.eq(&job.tenant, &tenant, "tenant");
        case.eq(&job.kind, &kind, "kind");
        case.eq(&job.payload, &payload, "payload");
        case.eq(&job.state, &JobState::Queued, "state");
        case.eq(&job.attempts, &0, "attempts");
        case.eq(&job.max_attempts, &5, "max_attempts");
        case.eq(&job.progress, &0, "progress");
        case.eq(&job.result, &None, "result");
        let got = case.ok(queue.get(&tenant, &job.id).await, "get");
        case.eq(&got, &Some(job), "get after enqueue");
    }
    case.err(
        queue.enqueue(&tenant, NewJob::new("", json!({}))).await,
        ErrorCode::InvalidInput,
        "enqueue with an empty kind",
    );
    case.eq(
        &case.ok(queue.get(&tenant, &JobId::new()).await, "get"),
        &None,
        "an unknown id",
    );
}

async fn claim_heartbeat_complete(queue: &dyn JobQueue, h: &Harness) {
    let case = Case::new(SUITE, "claim_heartbeat_complete");
    let tenant = h.tenant();
    let kind = h.unique("lifecycle");
    let job = case.ok(
        queue
            .enqueue(&tenant, NewJob::new(kind.clone(), json!({"n": 1})))
            .await,
        "enqueue",
    );
    let lease = claim_one(case, queue, &kind, LEASE).await;
    case.eq(&lease.job.id, &job.id, "claimed job");
    case.eq(&lease.job.state, &JobState::Running, "lease.job.state");
    case.eq(&lease.job.attempts, &1, "lease.job.attempts");
    case.check(
        lease.expires_at > h.now(),
        "the lease expires in the future",
    );
    case.check(
        case.ok(queue.claim(&[kind.as_str()], LEASE).await, "claim")
            .is_none(),
        "a running job is not claimed twice",
    );
    case.eq(
        &state_of(case, queue, &lease).await,
        &Some(JobState::Running),
        "state while running",
    );

    case.eq(
        &case.ok(queue.heartbeat(&lease, 40, LEASE).await, "heartbeat"),
        &LeaseStatus::Active,
        "heartbeat",
    );
    let got = case.ok(queue.get(&tenant, &job.id).await, "get");
    case.eq(
        &got.map(|j| j.progress),
        &Some(40),
        "progress after heartbeat",
    );

    let result = json!({ "pages": 3, "note": h.hostile_strings() });
    case.eq(
        &case.ok(queue.complete(&lease, result.clone()).await, "complete"),
        &true,
        "complete",
    );
    let got = case.ok(queue.get(&tenant, &job.id).await, "get");
    let got = got.unwrap_or_else(|| case.fail("job vanished"));
    case.eq(&got.state, &JobState::Succeeded, "state after complete");
    case.eq(&got.result, &Some(result), "result");
    case.eq(
        &case.ok(queue.complete(&lease, json!("again")).await, "complete"),
        &false,
        "complete twice",
    );
    case.eq(
        &case.ok(queue.fail(&lease, "late", None).await, "fail"),
        &None,
        "fail after complete",
    );
    case.eq(
        &case.ok(queue.heartbeat(&lease, 50, LEASE).await, "heartbeat"),
        &LeaseStatus::Lost,
        "heartbeat after complete",
    );
    case.check(
        case.ok(queue.claim(&[kind.as_str()], LEASE).await, "claim")
            .is_none(),
        "a finished job is not claimed",
    );
    case.eq(
        &case.ok(queue.cancel(&tenant, &job.id).await, "cancel"),
        &false,
        "cancel of a finished job",
    );
    case.eq(
        &state_of(case, queue, &lease).await,
        &Some(JobState::Succeeded),
        "cancel leaves a finished job alone",
    );
}

async fn claim_filters_by_kind_oldest_first(queue: &dyn JobQueue, h: &Harness) {
    let case = Case::new(SUITE, "claim_filters_by_kind_oldest_first");
    let tenant = h.tenant();
    let (a, b) = (h.unique("kind-a"), h.unique("kind-b"));
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            case.ok(
                queue
                    .enqueue(&tenant, NewJob::new(a.clone(), json!(i)))
                    .await,
                "enqueue",
            )
            .id,
        );
    }
    case.check(
        case.ok(queue.claim(&[b.as_str()], LEASE).await, "claim")
            .is_none(),
        "claim of another kind",
    );
    case.check(
        case.ok(queue.claim(&[], LEASE).await, "claim").is_none(),
        "claim of no kinds",
    );
    for id in ids {
        let lease = claim_one(case, queue, &a, LEASE).await;
        case.eq(&lease.job.id, &id, "jobs are claimed oldest first");
    }
    let id = case
        .ok(
            queue
                .enqueue(&tenant, NewJob::new(b.clone(), json!(null)))
                .await,
            "enqueue",
        )
        .id;
    let lease = case.ok(queue.claim(&[a.as_str(), b.as_str()], LEASE).await, "claim");
    case.eq(
        &lease.map(|l| l.job.id),
        &Some(id),
        "claim of several kinds",
    );
}

async fn tenant_isolation(queue: &dyn JobQueue, h: &Harness) {
    let case = Case::new(SUITE, "tenant_isolation");
    let (tenant, intruder) = (h.tenant(), h.tenant());
    let kind = h.unique("isolation");
    let job = case.ok(
        queue
            .enqueue(&tenant, NewJob::new(kind.clone(), json!({})))
            .await,
        "enqueue",
    );
    case.eq(
        &case.ok(queue.get(&intruder, &job.id).await, "get"),
        &None,
        "get from another tenant",
    );
    case.eq(
        &case.ok(queue.cancel(&intruder, &job.id).await, "cancel"),
        &false,
        "cancel from another tenant",
    );
    let got = case.ok(queue.get(&tenant, &job.id).await, "get");
    case.eq(
        &got.map(|j| j.state),
        &Some(JobState::Queued),
        "the job after another tenant's cancel",
    );
}

async fn cancel_is_idempotent(queue: &dyn JobQueue, h: &Harness) {
    let case = Case::new(SUITE, "cancel_is_idempotent");
    let tenant = h.tenant();
    let kind = h.unique("cancel");
    let job = case.ok(
        queue
            .enqueue(&tenant, NewJob::new(kind.clone(), json!({})))
            .await,
        "enqueue",
    );
    case.eq(
        &case.ok(queue.cancel(&tenant, &job.id).await, "cancel"),
        &true,
        "cancel of a queued job",
    );
    case.eq(
        &case.ok(queue.cancel(&tenant, &job.id).await, "cancel"),
        &false,
        "cancel twice (already terminal)",
    );
    let got = case.ok(queue.get(&tenant, &job.id).await, "get");
    case.eq(
        &got.map(|j| j.state),
        &Some(JobState::Cancelled),
        "state after cancel",
    );
    case.check(
        case.ok(queue.claim(&[kind.as_str()], LEASE).await, "claim")
            .is_none(),
        "a cancelled job is not claimed",
    );
    case.eq(
        &case.ok(queue.cancel(&tenant, &JobId::new()).await, "cancel"),
        &false,
        "cancel of an unknown id",
    );
}

async fn cancelled_running_job(queue: &dyn JobQueue, h: &Harness) {
    let case = Case::new(SUITE, "cancelled_running_job");
    let tenant = h.tenant();
    let kind = h.unique("cancel-running");
    let job = case.ok(
        queue
            .enqueue(&tenant, NewJob::new(kind.clone(), json!({})))
            .await,
        "enqueue",
    );
    let lease = claim_one(case, queue, &kind, LEASE).await;
    case.eq(
        &case.ok(queue.cancel(&tenant, &job.id).await, "cancel"),
        &true,
        "cancel of a running job",
    );
    case.eq(
        &case.ok(queue.heartbeat(&lease, 10, LEASE).await, "heartbeat"),
        &LeaseStatus::Cancelled,
        "heartbeat of a cancelled job",
    );
    case.eq(
        &case.ok(queue.complete(&lease, json!(1)).await, "complete"),
        &false,
        "complete of a cancelled job",
    );
    case.eq(
        &case.ok(queue.fail(&lease, "x", Some(Duration::ZERO)).await, "fail"),
        &None,
        "fail of a cancelled job",
    );
    case.eq(
        &state_of(case, queue, &lease).await,
        &Some(JobState::Cancelled),
        "state stays cancelled",
    );
}

async fn fail_retries_then_dead_letters(queue: &dyn JobQueue, h: &Harness) {
    let case = Case::new(SUITE, "fail_retries_then_dead_letters");
    let tenant = h.tenant();
    let kind = h.unique("retry");
    let job = case.ok(
        queue
            .enqueue(
                &tenant,
                NewJob::new(kind.clone(), json!({})).with_max_attempts(3),
            )
            .await,
        "enqueue",
    );
    let hostile = h.hostile_strings().join(" | ");
    for attempt in 1..=3_u32 {
        let lease = claim_one(case, queue, &kind, LEASE).await;
        case.eq(&lease.job.id, &job.id, "the retried job");
        case.eq(&lease.job.attempts, &attempt, "attempts");
        let state = case.ok(
            queue.fail(&lease, &hostile, Some(Duration::ZERO)).await,
            "fail",
        );
        let expected = if attempt < 3 {
            JobState::Queued
        } else {
            JobState::Dead
        };
        case.eq(
            &state,
            &Some(expected),
            &format!("state after failed attempt {attempt} of 3"),
        );
        case.eq(
            &case.ok(queue.complete(&lease, json!(1)).await, "complete"),
            &false,
            "complete with the failed lease",
        );
        case.eq(
            &case.ok(queue.fail(&lease, "again", None).await, "fail"),
            &None,
            "fail twice with one lease",
        );
    }
    let got = case.ok(queue.get(&tenant, &job.id).await, "get");
    let got = got.unwrap_or_else(|| case.fail("job vanished"));
    case.eq(&got.state, &JobState::Dead, "state");
    case.eq(
        &got.last_error,
        &Some(hostile),
        "last_error round-trips unchanged",
    );
    case.check(
        case.ok(queue.claim(&[kind.as_str()], LEASE).await, "claim")
            .is_none(),
        "a dead job is not claimed",
    );

    let once = case.ok(
        queue
            .enqueue(
                &tenant,
                NewJob::new(kind.clone(), json!({})).with_max_attempts(5),
            )
            .await,
        "enqueue",
    );
    let lease = claim_one(case, queue, &kind, LEASE).await;
    case.eq(&lease.job.id, &once.id, "claimed job");
    case.eq(
        &case.ok(queue.fail(&lease, "fatal", None).await, "fail"),
        &Some(JobState::Dead),
        "fail without retry_in dead-letters",
    );
}

async fn run_after_is_respected(queue: &dyn JobQueue, h: &Harness) {
    let case = Case::new(SUITE, "run_after_is_respected");
    let tenant = h.tenant();
    let kind = h.unique("later");
    let mut job = NewJob::new(kind.clone(), json!({}));
    job.run_after = Some(h.now() + Duration::from_secs(3600));
    let later = case.ok(queue.enqueue(&tenant, job).await, "enqueue");
    case.check(
        case.ok(queue.claim(&[kind.as_str()], LEASE).await, "claim")
            .is_none(),
        "a job is not claimed before run_after",
    );
    let now = case.ok(
        queue
            .enqueue(&tenant, NewJob::new(kind.clone(), json!({})))
            .await,
        "enqueue",
    );
    let lease = claim_one(case, queue, &kind, LEASE).await;
    case.eq(
        &lease.job.id,
        &now.id,
        "the runnable job, not the older deferred one",
    );
    case.eq(
        &case.ok(queue.cancel(&tenant, &later.id).await, "cancel"),
        &true,
        "cancel of a deferred job",
    );
}

async fn concurrent_claims_are_exclusive(queue: &Arc<dyn JobQueue>, h: &Harness) {
    let case = Case::new(SUITE, "concurrent_claims_are_exclusive");
    let tenant = h.tenant();
    let kind = h.unique("race");
    let mut enqueued = HashSet::new();
    for i in 0..10 {
        enqueued.insert(
            case.ok(
                queue
                    .enqueue(&tenant, NewJob::new(kind.clone(), json!(i)))
                    .await,
                "enqueue",
            )
            .id,
        );
    }
    let results = concurrently(case, 50, |_| {
        let (queue, kind) = (queue.clone(), kind.clone());
        async move { queue.claim(&[kind.as_str()], LEASE).await }
    })
    .await;
    let leases: Vec<JobLease> = results
        .into_iter()
        .filter_map(|r| case.ok(r, "concurrent claim"))
        .collect();
    let claimed: HashSet<JobId> = leases.iter().map(|l| l.job.id).collect();
    case.eq(
        &leases.len(),
        &10,
        "50 concurrent claims of 10 jobs: successful claims",
    );
    case.eq(&claimed, &enqueued, "each job claimed exactly once");
    for lease in &leases {
        case.eq(
            &case.ok(queue.complete(lease, json!("done")).await, "complete"),
            &true,
            "complete",
        );
    }
}

async fn expired_lease_is_reclaimed_and_voided(queue: &dyn JobQueue, h: &Harness) {
    let case = Case::new(SUITE, "expired_lease_is_reclaimed_and_voided");
    if !h.can_pass_time() {
        return;
    }
    let tenant = h.tenant();
    let kind = h.unique("lease");
    let job = case.ok(
        queue
            .enqueue(
                &tenant,
                NewJob::new(kind.clone(), json!({})).with_max_attempts(3),
            )
            .await,
        "enqueue",
    );
    let stale = claim_one(case, queue, &kind, Duration::from_secs(1)).await;
    h.pass(Duration::from_millis(1100)).await;
    let fresh = claim_one(case, queue, &kind, LEASE).await;
    case.eq(&fresh.job.id, &job.id, "the job whose lease expired");
    case.eq(&fresh.job.attempts, &2, "attempts after reclaim");
    case.check(
        fresh.token != stale.token,
        "a reclaimed job gets a new lease token",
    );
    case.eq(
        &case.ok(queue.complete(&stale, json!("stale")).await, "complete"),
        &false,
        "complete with the stale lease",
    );
    case.eq(
        &case.ok(queue.fail(&stale, "stale", None).await, "fail"),
        &None,
        "fail with the stale lease",
    );
    case.eq(
        &case.ok(queue.heartbeat(&stale, 99, LEASE).await, "heartbeat"),
        &LeaseStatus::Lost,
        "heartbeat with the stale lease",
    );
    case.eq(
        &case.ok(queue.complete(&fresh, json!("fresh")).await, "complete"),
        &true,
        "complete with the new lease",
    );
    let got = case.ok(queue.get(&tenant, &job.id).await, "get");
    case.eq(
        &got.and_then(|j| j.result),
        &Some(json!("fresh")),
        "the new worker's result stands",
    );
}

async fn retry_delay_is_respected(queue: &dyn JobQueue, h: &Harness) {
    let case = Case::new(SUITE, "retry_delay_is_respected");
    if !h.can_pass_time() {
        return;
    }
    let tenant = h.tenant();
    let kind = h.unique("delay");
    case.ok(
        queue
            .enqueue(&tenant, NewJob::new(kind.clone(), json!({})))
            .await,
        "enqueue",
    );
    let lease = claim_one(case, queue, &kind, LEASE).await;
    let state = case.ok(
        queue
            .fail(&lease, "transient", Some(Duration::from_secs(1)))
            .await,
        "fail",
    );
    case.eq(
        &state,
        &Some(JobState::Queued),
        "state after a retryable failure",
    );
    case.check(
        case.ok(queue.claim(&[kind.as_str()], LEASE).await, "claim")
            .is_none(),
        "not claimable before retry_in",
    );
    h.pass(Duration::from_millis(1100)).await;
    let again = claim_one(case, queue, &kind, LEASE).await;
    case.eq(&again.job.attempts, &2, "attempts on retry");
}

/// Every id `list` gives for `tenant` in `state`, walking its pages of `limit`.
async fn list_all(
    case: Case,
    queue: &dyn JobQueue,
    tenant: &TenantId,
    state: Option<JobState>,
    limit: u32,
) -> Vec<JobId> {
    let mut ids = Vec::new();
    let mut page = case.ok(PageRequest::new(None, limit), "page request");
    for _ in 0..1000 {
        let got = case.ok(queue.list(tenant, state, &page).await, "list");
        case.check(
            got.items.len() <= usize::try_from(limit).unwrap_or(usize::MAX),
            "a page holds at most `limit` jobs",
        );
        for job in &got.items {
            case.eq(&&job.tenant, &tenant, "a listed job's tenant");
            if let Some(state) = state {
                case.eq(&job.state, &state, "a listed job's state");
            }
        }
        ids.extend(got.items.iter().map(|j| j.id));
        match got.next {
            Some(next) => page = case.ok(PageRequest::new(Some(next), limit), "page request"),
            None => return ids,
        }
    }
    case.fail("the pages never end")
}

async fn list_pages_by_state_within_the_tenant(queue: &dyn JobQueue, h: &Harness) {
    let case = Case::new(SUITE, "list_pages_by_state_within_the_tenant");
    let (tenant, other) = (h.tenant(), h.tenant());
    let kind = h.unique("list");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let job = NewJob::new(kind.clone(), json!({})).with_max_attempts(1);
        ids.push(case.ok(queue.enqueue(&tenant, job).await, "enqueue").id);
    }
    let theirs = NewJob::new(kind.clone(), json!({}));
    case.ok(queue.enqueue(&other, theirs).await, "enqueue");
    // The oldest dies, the second is cancelled, the rest stay queued.
    let lease = claim_one(case, queue, &kind, LEASE).await;
    case.eq(&lease.job.id, &ids[0], "the oldest job is claimed first");
    case.eq(
        &case.ok(queue.fail(&lease, "fatal", None).await, "fail"),
        &Some(JobState::Dead),
        "fail on the last attempt",
    );
    case.eq(
        &case.ok(queue.cancel(&tenant, &ids[1]).await, "cancel"),
        &true,
        "cancel",
    );

    case.eq(
        &list_all(case, queue, &tenant, None, 2).await,
        &ids,
        "every job of the tenant, oldest first, none of another tenant's",
    );
    case.eq(
        &list_all(case, queue, &tenant, Some(JobState::Dead), 1).await,
        &vec![ids[0]],
        "the dead jobs",
    );
    case.eq(
        &list_all(case, queue, &tenant, Some(JobState::Cancelled), 3).await,
        &vec![ids[1]],
        "the cancelled jobs",
    );
    case.eq(
        &list_all(case, queue, &tenant, Some(JobState::Queued), 2).await,
        &ids[2..].to_vec(),
        "the queued jobs",
    );
    case.eq(
        &list_all(case, queue, &h.tenant(), None, 10).await,
        &Vec::new(),
        "a tenant without jobs",
    );
    let malformed = case.ok(
        PageRequest::new(Some("not a cursor".to_owned()), 10),
        "page request",
    );
    case.err(
        queue.list(&tenant, None, &malformed).await,
        ErrorCode::InvalidInput,
        "a malformed cursor",
    );
    // Drain the queued ones so that no later case claims them.
    for _ in 2..5 {
        let lease = claim_one(case, queue, &kind, LEASE).await;
        case.ok(queue.complete(&lease, json!(null)).await, "complete");
    }
}

async fn retry_requeues_only_dead_jobs(queue: &dyn JobQueue, h: &Harness) {
    let case = Case::new(SUITE, "retry_requeues_only_dead_jobs");
    let (tenant, intruder) = (h.tenant(), h.tenant());
    let kind = h.unique("requeue");
    let job = NewJob::new(kind.clone(), json!({})).with_max_attempts(1);
    let job = case.ok(queue.enqueue(&tenant, job).await, "enqueue");
    case.eq(
        &case.ok(queue.retry(&tenant, &job.id).await, "retry"),
        &false,
        "retry of a queued job",
    );
    let lease = claim_one(case, queue, &kind, LEASE).await;
    case.eq(
        &case.ok(queue.fail(&lease, "fatal", None).await, "fail"),
        &Some(JobState::Dead),
        "fail on the last attempt",
    );
    for (who, id, what) in [
        (&intruder, job.id, "retry from another tenant"),
        (&tenant, JobId::new(), "retry of an unknown id"),
    ] {
        case.eq(&case.ok(queue.retry(who, &id).await, "retry"), &false, what);
    }
    case.eq(
        &case.ok(queue.retry(&tenant, &job.id).await, "retry"),
        &true,
        "retry of a dead job",
    );
    case.eq(
        &case.ok(queue.retry(&tenant, &job.id).await, "retry"),
        &false,
        "retry twice",
    );
    let got = case.ok(queue.get(&tenant, &job.id).await, "get");
    let got = got.unwrap_or_else(|| case.fail("job vanished"));
    case.eq(&got.state, &JobState::Queued, "state after retry");
    case.eq(&got.attempts, &0, "attempts after retry");
    let lease = claim_one(case, queue, &kind, LEASE).await;
    case.eq(
        &lease.job.id,
        &job.id,
        "the retried job is claimable at once",
    );
    case.eq(&lease.job.attempts, &1, "its first attempt again");
    case.eq(
        &case.ok(queue.complete(&lease, json!(1)).await, "complete"),
        &true,
        "complete the retried job",
    );
    case.eq(
        &case.ok(queue.retry(&tenant, &job.id).await, "retry"),
        &false,
        "retry of a succeeded job",
    );
}
