#![allow(clippy::unwrap_used, clippy::expect_used)]
// Blocking handlers sleep to stand for CPU work on the blocking pool, which
// is what they must keep off the async runtime.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use docaiche_core::job::NewJob;
use docaiche_store::memory::MemoryJobQueue;
use serde_json::json;

use super::*;

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

/// Fast settings: short lease, quick heartbeats, millisecond backoff.
fn fast(kinds: &[&str]) -> WorkerConfig {
    WorkerConfig::new(kinds.iter().copied())
        .with_lease(Duration::from_secs(2), Duration::from_millis(40))
        .with_progress_every(Duration::from_millis(10))
        .with_poll_interval(Duration::from_millis(10))
        .with_retry(
            RetryPolicy::builder()
                .base_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(5))
                .build()
                .unwrap(),
        )
}

async fn wait_for_state(
    queue: &MemoryJobQueue,
    id: &JobId,
    wanted: impl Fn(JobState) -> bool,
) -> JobRecord {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let job = queue.get(&tenant(), id).await.unwrap().unwrap();
        if wanted(job.state) {
            return job;
        }
        assert!(Instant::now() < deadline, "job stuck in {:?}", job.state);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct FnHandler<F>(F);

impl<F> fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnHandler")
    }
}

#[async_trait::async_trait]
impl<F, Fut> JobHandler for FnHandler<F>
where
    F: Fn(JobRecord, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<serde_json::Value, JobFailure>> + Send + 'static,
{
    async fn run(&self, job: JobRecord, ctx: JobContext) -> Result<serde_json::Value, JobFailure> {
        (self.0)(job, ctx).await
    }
}

use std::future::Future;

#[test]
fn bad_settings_are_refused() {
    let queue: Arc<dyn JobQueue> = Arc::new(MemoryJobQueue::new());
    let handler: Arc<dyn JobHandler> = Arc::new(BlockingJobHandler::new(|_, _| Ok(json!(null))));
    for config in [
        WorkerConfig::new(Vec::<String>::new()),
        WorkerConfig::new([""]),
        WorkerConfig::new(["x"]).with_concurrency(0),
        WorkerConfig::new(["x"]).with_lease(Duration::from_secs(1), Duration::from_secs(1)),
    ] {
        let err = JobWorker::new(Arc::clone(&queue), Arc::clone(&handler), config).unwrap_err();
        assert_eq!(err.code(), docaiche_core::ErrorCode::Misconfigured);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_off_the_runtime_reports_progress_and_completes() {
    let queue = Arc::new(MemoryJobQueue::new());
    let handler = BlockingJobHandler::new(|job, ctx| {
        ctx.set_progress(40);
        std::thread::sleep(Duration::from_millis(60));
        ctx.set_progress(80);
        std::thread::sleep(Duration::from_millis(60));
        Ok(json!({ "echo": job.payload["n"] }))
    });
    let worker = JobWorker::new(queue.clone(), Arc::new(handler), fast(&["echo"])).unwrap();
    let mut events = worker.subscribe();
    let job = queue
        .enqueue(&tenant(), NewJob::new("echo", json!({ "n": 7 })))
        .await
        .unwrap();
    let handle = worker.spawn();
    handle.wake();
    let done = wait_for_state(&queue, &job.id, |s| s == JobState::Succeeded).await;
    assert_eq!(done.result, Some(json!({ "echo": 7 })));
    assert_eq!(done.attempts, 1);
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        assert_eq!(e.id, job.id);
        assert_eq!(e.tenant, tenant());
        seen.push((e.state, e.progress));
    }
    assert_eq!(seen.first(), Some(&(JobState::Running, 0)));
    assert!(seen.contains(&(JobState::Running, 40)), "{seen:?}");
    assert!(seen.contains(&(JobState::Running, 80)), "{seen:?}");
    assert_eq!(seen.last(), Some(&(JobState::Succeeded, 100)));
    let stats = handle.shutdown(Duration::from_secs(1)).await;
    assert_eq!(stats.succeeded, 1);
    assert_eq!(stats.claimed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_stored_while_the_job_runs() {
    let queue = Arc::new(MemoryJobQueue::new());
    let (release_tx, release_rx) = watch::channel(false);
    let handler = FnHandler(move |_job: JobRecord, ctx: JobContext| {
        let mut release = release_rx.clone();
        async move {
            ctx.set_progress(55);
            let _ = release.wait_for(|r| *r).await;
            Ok(json!("done"))
        }
    });
    let handle = JobWorker::new(queue.clone(), Arc::new(handler), fast(&["slow"]))
        .unwrap()
        .spawn();
    let job = queue
        .enqueue(&tenant(), NewJob::new("slow", json!({})))
        .await
        .unwrap();
    handle.wake();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = queue.get(&tenant(), &job.id).await.unwrap().unwrap();
        if now.state == JobState::Running && now.progress == 55 {
            break;
        }
        assert!(Instant::now() < deadline, "{now:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    release_tx.send_replace(true);
    wait_for_state(&queue, &job.id, |s| s == JobState::Succeeded).await;
    handle.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_is_retried_with_backoff_then_dead_lettered() {
    let queue = Arc::new(MemoryJobQueue::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let handler = BlockingJobHandler::new(move |_, _| {
        counted.fetch_add(1, Ordering::SeqCst);
        Err(JobFailure::retryable("backend unavailable"))
    });
    let handle = JobWorker::new(queue.clone(), Arc::new(handler), fast(&["flaky"]))
        .unwrap()
        .spawn();
    let job = queue
        .enqueue(
            &tenant(),
            NewJob::new("flaky", json!({})).with_max_attempts(3),
        )
        .await
        .unwrap();
    handle.wake();
    let dead = wait_for_state(&queue, &job.id, |s| s == JobState::Dead).await;
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_error.as_deref(), Some("backend unavailable"));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    let stats = handle.shutdown(Duration::from_secs(1)).await;
    assert_eq!((stats.retried, stats.dead), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_goes_dead_on_the_first_attempt() {
    let queue = Arc::new(MemoryJobQueue::new());
    let handler = BlockingJobHandler::new(|_, _| Err(JobFailure::permanent("not a pdf")));
    let handle = JobWorker::new(queue.clone(), Arc::new(handler), fast(&["x"]))
        .unwrap()
        .spawn();
    let job = queue
        .enqueue(&tenant(), NewJob::new("x", json!({})).with_max_attempts(5))
        .await
        .unwrap();
    handle.wake();
    let dead = wait_for_state(&queue, &job.id, |s| s == JobState::Dead).await;
    assert_eq!(dead.attempts, 1);
    assert_eq!(dead.last_error.as_deref(), Some("not a pdf"));
    handle.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_retryable_failure() {
    let queue = Arc::new(MemoryJobQueue::new());
    let first = Arc::new(AtomicBool::new(true));
    let handler = BlockingJobHandler::new(move |_, _| {
        assert!(!first.swap(false, Ordering::SeqCst), "first attempt panics");
        Ok(json!("second time lucky"))
    });
    let handle = JobWorker::new(queue.clone(), Arc::new(handler), fast(&["x"]))
        .unwrap()
        .spawn();
    let job = queue
        .enqueue(&tenant(), NewJob::new("x", json!({})))
        .await
        .unwrap();
    handle.wake();
    let done = wait_for_state(&queue, &job.id, |s| s == JobState::Succeeded).await;
    assert_eq!(done.attempts, 2);
    assert_eq!(done.result, Some(json!("second time lucky")));
    handle.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_is_stopped_and_its_result_discarded() {
    let queue = Arc::new(MemoryJobQueue::new());
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&saw_cancel);
    let (started_tx, mut started_rx) = watch::channel(false);
    let handler = BlockingJobHandler::new(move |_, ctx| {
        started_tx.send_replace(true);
        // Cooperative: blocking work checks the flag.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !ctx.is_cancelled() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        flag.store(ctx.is_cancelled(), Ordering::SeqCst);
        Ok(json!("must be discarded"))
    });
    let handle = JobWorker::new(queue.clone(), Arc::new(handler), fast(&["long"]))
        .unwrap()
        .spawn();
    let job = queue
        .enqueue(&tenant(), NewJob::new("long", json!({})))
        .await
        .unwrap();
    handle.wake();
    started_rx.wait_for(|s| *s).await.unwrap();
    assert!(queue.cancel(&tenant(), &job.id).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !saw_cancel.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the handler never saw the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stats = handle.shutdown(Duration::from_secs(1)).await;
    assert_eq!(stats.cancelled, 1);
    assert_eq!(stats.succeeded, 0);
    let job = queue.get(&tenant(), &job.id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    assert_eq!(job.result, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded() {
    let queue = Arc::new(MemoryJobQueue::new());
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n, p) = (Arc::clone(&now), Arc::clone(&peak));
    let handler = BlockingJobHandler::new(move |_, _| {
        let current = n.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(current, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        n.fetch_sub(1, Ordering::SeqCst);
        Ok(json!(null))
    });
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(
            queue
                .enqueue(&tenant(), NewJob::new("x", json!({})))
                .await
                .unwrap()
                .id,
        );
    }
    let handle = JobWorker::new(
        queue.clone(),
        Arc::new(handler),
        fast(&["x"]).with_concurrency(3),
    )
    .unwrap()
    .spawn();
    for id in &ids {
        wait_for_state(&queue, id, |s| s == JobState::Succeeded).await;
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!((1..=3).contains(&peak), "peak {peak}");
    assert_eq!(handle.shutdown(Duration::from_secs(1)).await.succeeded, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_served_kinds_are_claimed() {
    let queue = Arc::new(MemoryJobQueue::new());
    let handle = JobWorker::new(
        queue.clone(),
        Arc::new(BlockingJobHandler::new(|_, _| Ok(json!(1)))),
        fast(&["mine"]),
    )
    .unwrap()
    .spawn();
    let other = queue
        .enqueue(&tenant(), NewJob::new("theirs", json!({})))
        .await
        .unwrap();
    let mine = queue
        .enqueue(&tenant(), NewJob::new("mine", json!({})))
        .await
        .unwrap();
    handle.wake();
    wait_for_state(&queue, &mine.id, |s| s == JobState::Succeeded).await;
    handle.shutdown(Duration::from_secs(1)).await;
    let other = queue.get(&tenant(), &other.id).await.unwrap().unwrap();
    assert_eq!((other.state, other.attempts), (JobState::Queued, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_short_jobs_and_releases_long_ones() {
    let queue = Arc::new(MemoryJobQueue::new());
    let handler = FnHandler(|job: JobRecord, ctx: JobContext| async move {
        if job.payload["long"] == json!(true) {
            ctx.cancelled().await;
            return Err(JobFailure::retryable("stopped"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(json!("short"))
    });
    let long = queue
        .enqueue(&tenant(), NewJob::new("x", json!({ "long": true })))
        .await
        .unwrap();
    let short = queue
        .enqueue(&tenant(), NewJob::new("x", json!({ "long": false })))
        .await
        .unwrap();
    let handle = JobWorker::new(queue.clone(), Arc::new(handler), fast(&["x"]))
        .unwrap()
        .spawn();
    handle.wake();
    wait_for_state(&queue, &long.id, |s| s == JobState::Running).await;
    wait_for_state(&queue, &short.id, |s| s == JobState::Running).await;
    let stats = handle.shutdown(Duration::from_millis(300)).await;
    assert_eq!((stats.succeeded, stats.released), (1, 1), "{stats:?}");
    let short = queue.get(&tenant(), &short.id).await.unwrap().unwrap();
    assert_eq!(short.state, JobState::Succeeded);
    // Released: runnable again at once, for another instance.
    let long = queue.get(&tenant(), &long.id).await.unwrap().unwrap();
    assert_eq!((long.state, long.attempts), (JobState::Queued, 1));
    let again = queue
        .claim(&["x"], Duration::from_secs(1))
        .await
        .unwrap()
        .expect("claimable");
    assert_eq!(again.job.id, long.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_sharing_a_queue_run_each_job_once() {
    let queue = Arc::new(MemoryJobQueue::new());
    let runs: Arc<Mutex<HashMap<JobId, usize>>> = Arc::default();
    let handler = |runs: Arc<Mutex<HashMap<JobId, usize>>>| {
        BlockingJobHandler::new(move |job, _| {
            *runs.lock().unwrap().entry(job.id).or_default() += 1;
            std::thread::sleep(Duration::from_millis(1));
            Ok(json!(null))
        })
    };
    let a = JobWorker::new(
        queue.clone(),
        Arc::new(handler(Arc::clone(&runs))),
        fast(&["x"]).with_concurrency(3),
    )
    .unwrap()
    .spawn();
    let b = JobWorker::new(
        queue.clone(),
        Arc::new(handler(Arc::clone(&runs))),
        fast(&["x"]).with_concurrency(3),
    )
    .unwrap()
    .spawn();
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(
            queue
                .enqueue(&tenant(), NewJob::new("x", json!({})))
                .await
                .unwrap()
                .id,
        );
        a.wake();
        b.wake();
    }
    for id in &ids {
        wait_for_state(&queue, id, |s| s == JobState::Succeeded).await;
    }
    let (a, b) = (
        a.shutdown(Duration::from_secs(1)).await,
        b.shutdown(Duration::from_secs(1)).await,
    );
    assert_eq!(a.succeeded + b.succeeded, 60);
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 60);
    assert!(runs.values().all(|&n| n == 1), "a job ran twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_stops_the_handler_and_discards_its_result() {
    let clock = docaiche_core::ManualClock::new();
    let queue = Arc::new(MemoryJobQueue::new().with_clock(Arc::new(clock.clone())));
    let (started_tx, mut started_rx) = watch::channel(false);
    let handler = FnHandler(move |_job: JobRecord, _ctx: JobContext| {
        let started = started_tx.clone();
        async move {
            started.send_replace(true);
            std::future::pending::<()>().await;
            Ok(json!("never"))
        }
    });
    let handle = JobWorker::new(queue.clone(), Arc::new(handler), fast(&["x"]))
        .unwrap()
        .spawn();
    let job = queue
        // One attempt: the lapsed lease dead-letters it rather than
        // handing it to this worker again.
        .enqueue(&tenant(), NewJob::new("x", json!({})).with_max_attempts(1))
        .await
        .unwrap();
    handle.wake();
    started_rx.wait_for(|s| *s).await.unwrap();
    // The worker stalls (as far as the queue can tell) past its lease.
    clock.advance(Duration::from_secs(3600));
    let deadline = Instant::now() + Duration::from_secs(5);
    while handle.stats().lost == 0 {
        assert!(Instant::now() < deadline, "the lost lease went unnoticed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The handler task was aborted: shutdown has nothing left to wait for.
    let started = Instant::now();
    let stats = handle.shutdown(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        (stats.lost, stats.succeeded, stats.released),
        (1, 0, 0),
        "{stats:?}"
    );
    let job = queue.get(&tenant(), &job.id).await.unwrap().unwrap();
    assert_eq!(job.result, None);
    assert_ne!(job.state, JobState::Succeeded);
}
