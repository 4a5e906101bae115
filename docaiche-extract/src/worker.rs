//! [`JobWorker`]: runs background jobs from any [`JobQueue`].
//!
//! A worker claims jobs of the kinds it serves, runs each in its own task
//! through a [`JobHandler`], heartbeats the lease while the handler runs
//! (carrying the handler's progress), and finishes the job:
//!
//! - a success is `complete`d with the handler's JSON result;
//! - a retryable failure (or a panicking handler) is `fail`ed with an
//!   exponential backoff with full jitter ([`RetryPolicy::backoff`] of the
//!   attempts made so far); once the job's own `max_attempts` are used the
//!   queue moves it to [`JobState::Dead`], the dead-letter state;
//! - a permanent failure goes dead at once;
//! - a cancelled job (the queue answers a heartbeat with
//!   [`LeaseStatus::Cancelled`]) has its handler task aborted and its
//!   result, if one arrives, discarded; a handler doing blocking work sees
//!   [`JobContext::is_cancelled`] and should stop early;
//! - a lost lease (expired and taken over) is abandoned the same way, so
//!   a slow worker never overwrites its successor's result.
//!
//! At most `concurrency` jobs run at once per worker. Several workers, in
//! one process or many sharing a database, may serve one queue: the
//! queue's `claim` hands each job to one of them (`FOR UPDATE SKIP LOCKED`
//! in PostgreSQL).
//!
//! [`WorkerHandle::shutdown`] stops claiming, lets running jobs finish for
//! a grace period, then aborts the rest and releases their leases (a
//! `fail` with no delay, so another instance picks them up at once rather
//! than after the lease lapses; like a lapsed lease, this counts as an
//! attempt).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use docaiche_core::job::{JobLease, JobQueue, JobRecord, JobState, LeaseStatus};
use docaiche_core::resilience::RetryPolicy;
use docaiche_core::{Error, JobId, TenantId};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How a [`JobHandler`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobFailure {
    /// Operator-facing message stored as the job's `last_error` (no
    /// secrets, no document content).
    pub message: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
}

impl JobFailure {
    /// A failure worth retrying (an outage, a timeout).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that will not go away (bad input): the job goes dead now.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

impl From<Error> for JobFailure {
    /// Retryable exactly when [`Error::is_retryable`] says so; the message
    /// is the error's public text (its display), never its source chain.
    fn from(error: Error) -> Self {
        Self {
            message: error.to_string(),
            retryable: error.is_retryable(),
        }
    }
}

impl fmt::Display for JobFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a handler sees while it runs: progress reporting and cancellation.
///
/// Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct JobContext {
    progress: Arc<watch::Sender<u8>>,
    cancelled: watch::Receiver<bool>,
}

impl JobContext {
    /// A context for a handler run outside a worker (tests, tools), and the
    /// switch that cancels it. Dropping the switch cancels too: nobody is
    /// left to let the work continue.
    #[must_use]
    pub fn detached() -> (Self, JobCancel) {
        let (progress, _) = watch::channel(0);
        let (cancel, cancelled) = watch::channel(false);
        (
            Self {
                progress: Arc::new(progress),
                cancelled,
            },
            JobCancel(Arc::new(cancel)),
        )
    }

    /// Report progress, in percent (values over 100 count as 100). The
    /// worker stores it with its next heartbeat.
    pub fn set_progress(&self, percent: u8) {
        self.progress.send_replace(percent.min(100));
    }

    /// The progress last reported.
    #[must_use]
    pub fn progress(&self) -> u8 {
        *self.progress.borrow()
    }

    /// Whether the job was cancelled (or its lease lost, or the worker is
    /// shutting down past its grace period): stop and return anything.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }

    /// Resolves once [`Self::is_cancelled`] holds.
    pub async fn cancelled(&self) {
        let mut rx = self.cancelled.clone();
        // A closed channel means the worker is gone: treat as cancelled.
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Run CPU-bound `work` on tokio's blocking pool, off the async
    /// runtime's worker threads, handing it this context (so it can report
    /// progress and check cancellation).
    ///
    /// # Errors
    /// A retryable [`JobFailure`] if `work` panicked.
    pub async fn run_blocking<T, F>(&self, work: F) -> Result<T, JobFailure>
    where
        T: Send + 'static,
        F: FnOnce(&Self) -> T + Send + 'static,
    {
        let ctx = self.clone();
        tokio::task::spawn_blocking(move || work(&ctx))
            .await
            .map_err(|e| {
                if e.is_panic() {
                    JobFailure::retryable("job handler panicked")
                } else {
                    JobFailure::retryable("job handler was aborted")
                }
            })
    }
}

/// Cancels a [`JobContext::detached`] context.
#[derive(Debug, Clone)]
pub struct JobCancel(Arc<watch::Sender<bool>>);

impl JobCancel {
    /// Cancel the context.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

/// Runs one kind of job.
///
/// Contract: the payload is input the worker's operator controls only
/// partly (a client may have shaped it), so a handler validates it and
/// answers a bad payload with [`JobFailure::permanent`], never a panic. A
/// handler may run more than once for one job (a lost lease, a crashed
/// worker), so its effects must be idempotent. CPU-heavy work belongs on
/// the blocking pool ([`JobContext::run_blocking`]).
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + fmt::Debug + 'static {
    /// Run `job` and return its result.
    ///
    /// # Errors
    /// A [`JobFailure`], retryable or not.
    async fn run(&self, job: JobRecord, ctx: JobContext) -> Result<serde_json::Value, JobFailure>;
}

/// A [`JobHandler`] from a blocking closure, run on tokio's blocking pool.
///
/// ```
/// use docaiche_extract::worker::{BlockingJobHandler, JobFailure};
///
/// let handler = BlockingJobHandler::new(|job, ctx| {
///     let n = job.payload["n"].as_u64().ok_or_else(|| JobFailure::permanent("no n"))?;
///     ctx.set_progress(50);
///     Ok(serde_json::json!({ "square": n * n }))
/// });
/// # let _ = handler;
/// ```
pub struct BlockingJobHandler<F> {
    work: Arc<F>,
}

impl<F> BlockingJobHandler<F>
where
    F: Fn(&JobRecord, &JobContext) -> Result<serde_json::Value, JobFailure> + Send + Sync + 'static,
{
    /// A handler running `work`.
    pub fn new(work: F) -> Self {
        Self {
            work: Arc::new(work),
        }
    }
}

impl<F> fmt::Debug for BlockingJobHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingJobHandler").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<F> JobHandler for BlockingJobHandler<F>
where
    F: Fn(&JobRecord, &JobContext) -> Result<serde_json::Value, JobFailure> + Send + Sync + 'static,
{
    async fn run(&self, job: JobRecord, ctx: JobContext) -> Result<serde_json::Value, JobFailure> {
        let work = Arc::clone(&self.work);
        ctx.run_blocking(move |ctx| work(&job, ctx)).await?
    }
}

/// A worker's settings. Build with [`WorkerConfig::new`] and the `with_*`
/// methods; [`JobWorker::new`] checks them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// The job kinds served.
    pub kinds: Vec<String>,
    /// Most jobs running at once. Default 2.
    pub concurrency: usize,
    /// Lease taken on claim and renewed by each heartbeat. Default 60 s.
    pub lease: Duration,
    /// Longest time between heartbeats (must be under `lease`). Default 20 s.
    pub heartbeat_every: Duration,
    /// How often progress is looked at; a change is stored at once rather
    /// than at the next heartbeat. Default 500 ms.
    pub progress_every: Duration,
    /// How long an idle worker waits before claiming again (a
    /// [`JobWaker::wake`] cuts it short). Default 1 s.
    pub poll_interval: Duration,
    /// Backoff between attempts (its `max_attempts` is not used: each job
    /// carries its own). Default: 1 s base, 5 min cap, doubling.
    pub retry: RetryPolicy,
}

impl WorkerConfig {
    /// Defaults, serving `kinds`.
    pub fn new<I, S>(kinds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            kinds: kinds.into_iter().map(Into::into).collect(),
            concurrency: 2,
            lease: Duration::from_secs(60),
            heartbeat_every: Duration::from_secs(20),
            progress_every: Duration::from_millis(500),
            poll_interval: Duration::from_secs(1),
            retry: RetryPolicy::builder()
                .base_delay(Duration::from_secs(1))
                .max_delay(Duration::from_secs(300))
                .build()
                .expect("invariant: a 1 s base under a 5 min cap, doubling, is valid"),
        }
    }

    /// Set the concurrency.
    #[must_use]
    pub const fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Set the lease and the heartbeat interval.
    #[must_use]
    pub const fn with_lease(mut self, lease: Duration, heartbeat_every: Duration) -> Self {
        self.lease = lease;
        self.heartbeat_every = heartbeat_every;
        self
    }

    /// Set how often progress is looked at.
    #[must_use]
    pub const fn with_progress_every(mut self, every: Duration) -> Self {
        self.progress_every = every;
        self
    }

    /// Set the idle poll interval.
    #[must_use]
    pub const fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Set the retry backoff.
    #[must_use]
    pub const fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn check(&self) -> docaiche_core::Result<()> {
        if self.kinds.is_empty() || self.kinds.iter().any(String::is_empty) {
            return Err(Error::misconfigured(
                "worker.kinds",
                "must name at least one job kind, none empty",
            ));
        }
        if self.concurrency == 0 {
            return Err(Error::misconfigured(
                "worker.concurrency",
                "must be at least 1",
            ));
        }
        if self.heartbeat_every.is_zero() || self.heartbeat_every >= self.lease {
            return Err(Error::misconfigured(
                "worker.heartbeat_every",
                "must be positive and shorter than the lease",
            ));
        }
        if self.progress_every.is_zero() || self.poll_interval.is_zero() {
            return Err(Error::misconfigured(
                "worker.poll_interval",
                "progress and poll intervals must be positive",
            ));
        }
        Ok(())
    }
}

/// A change in a job's life as seen by a worker, for live updates (a
/// WebSocket, metrics). Sent on a broadcast channel: a slow subscriber
/// misses events (it gets `Lagged`), it never slows the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobEvent {
    /// The job.
    pub id: JobId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its kind.
    pub kind: String,
    /// Its state after the change (`Queued` when it will be retried or
    /// was released on shutdown).
    pub state: JobState,
    /// Progress in percent.
    pub progress: u8,
    /// Attempts started so far.
    pub attempts: u32,
}

/// Counters of what a worker did, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Jobs claimed.
    pub claimed: u64,
    /// Jobs completed.
    pub succeeded: u64,
    /// Failures re-queued for another attempt.
    pub retried: u64,
    /// Jobs dead-lettered.
    pub dead: u64,
    /// Jobs found cancelled while running.
    pub cancelled: u64,
    /// Jobs whose lease was lost (result discarded).
    pub lost: u64,
    /// Jobs released unfinished at shutdown.
    pub released: u64,
}

#[derive(Debug, Default)]
struct Counters {
    claimed: AtomicU64,
    succeeded: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    cancelled: AtomicU64,
    lost: AtomicU64,
    released: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> WorkerStats {
        WorkerStats {
            claimed: self.claimed.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead: self.dead.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            released: self.released.load(Ordering::Relaxed),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Wakes an idle worker (after an `enqueue`), so a new job does not wait
/// for the poll interval. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct JobWaker(Arc<Notify>);

impl JobWaker {
    /// Wake the worker (a wake before it waits is not lost).
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Claims and runs jobs; see the [module docs](self).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use docaiche_core::job::{JobQueue, JobState, NewJob};
/// use docaiche_core::TenantId;
/// use docaiche_extract::worker::{BlockingJobHandler, JobWorker, WorkerConfig};
///
/// let queue = Arc::new(docaiche_store::memory::MemoryJobQueue::new());
/// let handler = BlockingJobHandler::new(|job, _ctx| Ok(job.payload.clone()));
/// let worker = JobWorker::new(queue.clone(), Arc::new(handler), WorkerConfig::new(["echo"]))?;
/// let tenant = TenantId::new("acme")?;
/// let job = queue.enqueue(&tenant, NewJob::new("echo", serde_json::json!({"x": 1}))).await?;
/// let handle = worker.spawn();
/// handle.wake();
/// loop {
///     let now = queue.get(&tenant, &job.id).await?.expect("job");
///     if now.state == JobState::Succeeded { break; }
///     tokio::time::sleep(Duration::from_millis(5)).await;
/// }
/// handle.shutdown(Duration::from_secs(1)).await;
/// # Ok::<(), docaiche_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct JobWorker {
    shared: Shared,
}

#[derive(Debug)]
struct Shared {
    queue: Arc<dyn JobQueue>,
    handler: Arc<dyn JobHandler>,
    config: WorkerConfig,
    events: broadcast::Sender<JobEvent>,
    waker: JobWaker,
    counters: Counters,
}

impl JobWorker {
    /// A worker running `handler` for jobs of `config.kinds` from `queue`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for no kinds, zero concurrency, or a
    /// heartbeat interval not shorter than the lease.
    pub fn new(
        queue: Arc<dyn JobQueue>,
        handler: Arc<dyn JobHandler>,
        config: WorkerConfig,
    ) -> docaiche_core::Result<Self> {
        config.check()?;
        let (events, _) = broadcast::channel(256);
        Ok(Self {
            shared: Shared {
                queue,
                handler,
                config,
                events,
                waker: JobWaker::default(),
                counters: Counters::default(),
            },
        })
    }

    /// Use `waker` (shared with the code that enqueues) to wake this worker.
    #[must_use]
    pub fn with_waker(mut self, waker: JobWaker) -> Self {
        self.shared.waker = waker;
        self
    }

    /// Receive this worker's [`JobEvent`]s from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.shared.events.subscribe()
    }

    /// A handle that wakes this worker when a job was enqueued.
    #[must_use]
    pub fn waker(&self) -> JobWaker {
        self.shared.waker.clone()
    }

    /// What the worker has done so far.
    #[must_use]
    pub fn stats(&self) -> WorkerStats {
        self.shared.counters.snapshot()
    }

    /// Start claiming on the current tokio runtime.
    #[must_use]
    pub fn spawn(self) -> WorkerHandle {
        let (stop, stop_rx) = watch::channel(false);
        let (abort, abort_rx) = watch::channel(false);
        let shared = Arc::new(self.shared);
        let task = tokio::spawn(run(Arc::clone(&shared), stop_rx, abort_rx));
        WorkerHandle {
            shared,
            stop,
            abort,
            task,
        }
    }
}

/// A running [`JobWorker`].
#[derive(Debug)]
pub struct WorkerHandle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    abort: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    /// Wake the worker to claim now.
    pub fn wake(&self) {
        self.shared.waker.wake();
    }

    /// A waker for this worker.
    #[must_use]
    pub fn waker(&self) -> JobWaker {
        self.shared.waker.clone()
    }

    /// Receive this worker's [`JobEvent`]s from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.shared.events.subscribe()
    }

    /// What the worker has done so far.
    #[must_use]
    pub fn stats(&self) -> WorkerStats {
        self.shared.counters.snapshot()
    }

    /// Stop claiming, give running jobs `grace` to finish, then abort the
    /// rest and release their leases. Returns the final counters.
    pub async fn shutdown(self, grace: Duration) -> WorkerStats {
        self.stop.send_replace(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            self.abort.send_replace(true);
            // Each job task answers the abort at once; bound it anyway.
            if tokio::time::timeout(Duration::from_secs(10), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        self.shared.counters.snapshot()
    }
}

/// The claim loop.
async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>, abort: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(shared.config.concurrency));
    let kinds: Vec<&str> = shared.config.kinds.iter().map(String::as_str).collect();
    let mut running = JoinSet::new();
    let mut errors: u32 = 0;
    loop {
        while running.try_join_next().is_some() {}
        let permit = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        if *stop.borrow() {
            break;
        }
        let idle = match shared.queue.claim(&kinds, shared.config.lease).await {
            Ok(Some(lease)) => {
                errors = 0;
                bump(&shared.counters.claimed);
                running.spawn(process(Arc::clone(&shared), lease, permit, abort.clone()));
                continue;
            }
            Ok(None) => {
                errors = 0;
                shared.config.poll_interval
            }
            Err(e) => {
                // An outage: back off (capped) rather than spin.
                errors = errors.saturating_add(1);
                tracing::warn!(error = %e, "job claim failed");
                shared
                    .config
                    .retry
                    .backoff_cap(errors)
                    .max(shared.config.poll_interval)
            }
        };
        drop(permit);
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            () = shared.waker.0.notified() => {}
            () = tokio::time::sleep(idle) => {}
        }
    }
    while running.join_next().await.is_some() {}
}

/// How a job's run ended, before the queue is told.
enum Outcome {
    Finished(Result<serde_json::Value, JobFailure>),
    Cancelled,
    Lost,
    Released,
}

/// Runs one claimed job to its end.
async fn process(
    shared: Arc<Shared>,
    lease: JobLease,
    _permit: OwnedSemaphorePermit,
    mut abort: watch::Receiver<bool>,
) {
    let config = &shared.config;
    let (progress_tx, mut progress_rx) = watch::channel(0u8);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let ctx = JobContext {
        progress: Arc::new(progress_tx),
        cancelled: cancel_rx,
    };
    let event = |state: JobState, progress: u8| {
        let _ = shared.events.send(JobEvent {
            id: lease.job.id,
            tenant: lease.job.tenant.clone(),
            kind: lease.job.kind.clone(),
            state,
            progress,
            attempts: lease.job.attempts,
        });
    };
    event(JobState::Running, 0);
    let handler = Arc::clone(&shared.handler);
    let mut task = tokio::spawn({
        let job = lease.job.clone();
        async move { handler.run(job, ctx).await }
    });
    let mut ticker = tokio::time::interval(config.progress_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut reported = 0u8;
    let mut last_beat = Instant::now();
    let outcome = loop {
        tokio::select! {
            joined = &mut task => break Outcome::Finished(match joined {
                Ok(result) => result,
                Err(e) if e.is_panic() => Err(JobFailure::retryable("job handler panicked")),
                Err(_) => Err(JobFailure::retryable("job handler was aborted")),
            }),
            _ = abort.wait_for(|a| *a) => break Outcome::Released,
            _ = ticker.tick() => {}
        }
        let progress = *progress_rx.borrow_and_update();
        if progress == reported && last_beat.elapsed() < config.heartbeat_every {
            continue;
        }
        match shared.queue.heartbeat(&lease, progress, config.lease).await {
            Ok(LeaseStatus::Active) => {
                last_beat = Instant::now();
                if progress != reported {
                    reported = progress;
                    event(JobState::Running, progress);
                }
            }
            Ok(LeaseStatus::Cancelled) => break Outcome::Cancelled,
            Ok(_) => break Outcome::Lost,
            // The lease may still be ours: try again at the next tick.
            Err(e) => tracing::warn!(job = %lease.job.id, error = %e, "job heartbeat failed"),
        }
    };
    if !matches!(outcome, Outcome::Finished(_)) {
        cancel_tx.send_replace(true);
        task.abort();
    }
    let id = &lease.job.id;
    match outcome {
        Outcome::Finished(Ok(result)) => match shared.queue.complete(&lease, result).await {
            Ok(true) => {
                bump(&shared.counters.succeeded);
                event(JobState::Succeeded, 100);
            }
            Ok(false) => {
                // Cancelled or taken over meanwhile: the result is dropped.
                bump(&shared.counters.lost);
                tracing::info!(job = %id, "job result discarded: the lease was no longer held");
            }
            Err(e) => tracing::warn!(job = %id, error = %e, "job completion failed"),
        },
        Outcome::Finished(Err(failure)) => {
            let retry_in = failure
                .retryable
                .then(|| config.retry.backoff(lease.job.attempts.saturating_sub(1)));
            match shared.queue.fail(&lease, &failure.message, retry_in).await {
                Ok(Some(JobState::Queued)) => {
                    bump(&shared.counters.retried);
                    tracing::info!(job = %id, attempt = lease.job.attempts, retry_in = ?retry_in, error = %failure, "job failed, will retry");
                    event(JobState::Queued, reported);
                }
                Ok(Some(state)) => {
                    bump(&shared.counters.dead);
                    tracing::warn!(job = %id, attempt = lease.job.attempts, error = %failure, "job dead-lettered");
                    event(state, reported);
                }
                Ok(None) => bump(&shared.counters.lost),
                Err(e) => tracing::warn!(job = %id, error = %e, "recording a job failure failed"),
            }
        }
        Outcome::Cancelled => {
            bump(&shared.counters.cancelled);
            tracing::info!(job = %id, "job cancelled while running");
            event(JobState::Cancelled, reported);
        }
        Outcome::Lost => {
            bump(&shared.counters.lost);
            tracing::warn!(job = %id, "job lease lost; result will be discarded");
        }
        Outcome::Released => {
            match shared
                .queue
                .fail(
                    &lease,
                    "worker shut down before the job finished",
                    Some(Duration::ZERO),
                )
                .await
            {
                Ok(Some(state)) => {
                    bump(&shared.counters.released);
                    event(state, reported);
                }
                Ok(None) => bump(&shared.counters.lost),
                Err(e) => tracing::warn!(job = %id, error = %e, "releasing a job failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests;
