//! [`BufferedSink`]: a bounded queue in front of a sink, and [`Auditor`]:
//! the fail-closed decision for administrative actions.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditReceipt, AuditSink};
use docaiche_core::{Error, RequestContext, Result};
use tokio::sync::{mpsc, oneshot};

use super::record::stream_of;

const DEPENDENCY: &str = "audit buffer";

/// The action name of the alert event a buffer records after dropping events.
pub const DROPPED_ACTION: &str = "audit.events_dropped";

/// Configuration of a [`BufferedSink`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct BufferConfig {
    /// Most events waiting.
    pub capacity: NonZeroUsize,
    /// How long [`AuditSink::record`] waits, for room in the buffer and
    /// then for the inner sink's receipt, before answering `Unavailable`.
    /// (An event that timed out waiting for its receipt may still be
    /// recorded later: the refusal errs on the side of the trail.)
    pub timeout: Duration,
    /// Most events handed to the inner sink at once.
    pub max_in_flight: NonZeroUsize,
    /// Hand one tenant's events to the inner sink one at a time (needed for
    /// a sink that does not admit concurrent calls in call order, such as
    /// the PostgreSQL trail). Off: a tenant's queued events are handed over
    /// concurrently, started in queue order, which keeps their order on the
    /// file sink (whose own queue is FIFO) and lets its group commit batch them.
    pub strict_order: bool,
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self {
            capacity: NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN),
            timeout: Duration::from_secs(2),
            max_in_flight: NonZeroUsize::new(256).unwrap_or(NonZeroUsize::MIN),
            strict_order: false,
        }
    }
}

impl BufferConfig {
    /// Set the capacity.
    #[must_use]
    pub const fn with_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Set the timeout of `record`.
    #[must_use]
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Set strict per-tenant ordering.
    #[must_use]
    pub const fn with_strict_order(mut self, strict: bool) -> Self {
        self.strict_order = strict;
        self
    }
}

struct Job {
    event: AuditEvent,
    reply: Option<oneshot::Sender<Result<AuditReceipt>>>,
}

#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
    alerted: AtomicU64,
    failed: AtomicU64,
}

/// A bounded asynchronous buffer in front of a sink.
///
/// - [`AuditSink::record`] queues the event, waiting for room
///   (back-pressure), then waits for the inner sink's receipt: an `Ok` is
///   as durable as the inner sink promises. When neither comes within
///   `timeout`, the caller gets `Unavailable`: nothing is lost
///   without the caller knowing, and a stuck sink cannot hang callers.
/// - [`BufferedSink::submit`] queues without waiting, for routine events a
///   request should not wait for. When the buffer is full the event is
///   dropped, *counted* ([`BufferedSink::dropped`]), logged, and reported by
///   an alert event ([`DROPPED_ACTION`], outcome `failure`, with the count
///   in `details`) that the worker records as soon as there is room.
///
/// The worker runs on the tokio runtime that created the buffer.
#[derive(Debug, Clone)]
pub struct BufferedSink {
    tx: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    timeout: Duration,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("action", &self.event.action)
            .finish()
    }
}

impl BufferedSink {
    /// A buffer in front of `inner`; spawns its worker on the current tokio
    /// runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    #[must_use]
    pub fn new(inner: Arc<dyn AuditSink>, config: BufferConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.capacity.get());
        let counters = Arc::new(Counters::default());
        tokio::spawn(work(inner, rx, counters.clone(), config));
        Self {
            tx,
            counters,
            timeout: config.timeout,
        }
    }

    /// Queue `event` without waiting. When the buffer is full, the event is
    /// dropped and counted, and an alert event follows.
    ///
    /// # Errors
    /// `Unavailable` when the event was dropped (the caller may log it; the
    /// drop is already counted and will be alerted).
    pub fn submit(&self, event: AuditEvent) -> Result<()> {
        match self.tx.try_send(Job { event, reply: None }) {
            Ok(()) => Ok(()),
            Err(e) => {
                let total = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let reason = match e {
                    mpsc::error::TrySendError::Full(_) => "buffer full",
                    mpsc::error::TrySendError::Closed(_) => "buffer closed",
                };
                tracing::error!(dropped_total = total, reason, "audit event dropped");
                Err(unavailable(reason))
            }
        }
    }

    /// Events waiting in the buffer now (for a queue-depth gauge).
    #[must_use]
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Events dropped by [`submit`](Self::submit) so far.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Submitted events the inner sink failed to record so far (each logged).
    #[must_use]
    pub fn failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }
}

fn unavailable(why: &'static str) -> Error {
    Error::unavailable(DEPENDENCY, std::io::Error::other(why))
}

#[async_trait::async_trait]
impl AuditSink for BufferedSink {
    async fn record(&self, event: &AuditEvent) -> Result<AuditReceipt> {
        let (reply, receipt) = oneshot::channel();
        let job = Job {
            event: event.clone(),
            reply: Some(reply),
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        match tokio::time::timeout_at(deadline, self.tx.send(job)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(unavailable("buffer closed")),
            Err(_) => return Err(unavailable("buffer full")),
        }
        match tokio::time::timeout_at(deadline, receipt).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(unavailable("buffer worker stopped")),
            Err(_) => Err(unavailable("audit sink too slow")),
        }
    }

    async fn flush(&self) -> Result<()> {
        // An empty marker job: once it is answered, every job queued
        // before it has been handed over; then flush the inner sink.
        let (reply, receipt) = oneshot::channel();
        let marker = AuditEvent::new(
            FLUSH_MARKER,
            AuditOutcome::Success,
            time::OffsetDateTime::UNIX_EPOCH,
            &RequestContext::new(),
        );
        self.tx
            .send(Job {
                event: marker,
                reply: Some(reply),
            })
            .await
            .map_err(|_| unavailable("buffer closed"))?;
        receipt
            .await
            .map_err(|_| unavailable("buffer worker stopped"))?
            .map(|_| ())
    }
}

/// Not a real action: the worker answers it by flushing the inner sink.
const FLUSH_MARKER: &str = "\0flush";

async fn work(
    inner: Arc<dyn AuditSink>,
    mut rx: mpsc::Receiver<Job>,
    counters: Arc<Counters>,
    config: BufferConfig,
) {
    let max = config.max_in_flight.get();
    let mut batch = Vec::with_capacity(max);
    while rx.recv_many(&mut batch, max).await > 0 {
        // Split at flush markers: everything before a marker is handed over
        // before the inner sink is flushed.
        let mut run = Vec::new();
        for job in batch.drain(..) {
            if job.event.action == FLUSH_MARKER && job.event.tenant.is_none() {
                hand_over(
                    &inner,
                    std::mem::take(&mut run),
                    &counters,
                    config.strict_order,
                )
                .await;
                let result = inner.flush().await.map(|()| AuditReceipt::new(None));
                if let Some(reply) = job.reply {
                    let _ = reply.send(result);
                }
            } else {
                run.push(job);
            }
        }
        hand_over(&inner, run, &counters, config.strict_order).await;
        raise_drop_alert(&inner, &counters).await;
    }
}

async fn hand_over(inner: &Arc<dyn AuditSink>, jobs: Vec<Job>, counters: &Counters, strict: bool) {
    if jobs.is_empty() {
        return;
    }
    let record = |job: Job| async move {
        let result = inner.record(&job.event).await;
        match job.reply {
            Some(reply) => {
                let _ = reply.send(result);
            }
            None => {
                if let Err(e) = result {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(action = %job.event.action, error = %e.log_chain(), "submitted audit event not recorded");
                }
            }
        }
    };
    if strict {
        let mut by_stream: BTreeMap<String, Vec<Job>> = BTreeMap::new();
        for job in jobs {
            by_stream
                .entry(stream_of(&job.event).to_owned())
                .or_default()
                .push(job);
        }
        futures_util::future::join_all(by_stream.into_values().map(|jobs| async move {
            for job in jobs {
                record(job).await;
            }
        }))
        .await;
    } else {
        futures_util::future::join_all(jobs.into_iter().map(record)).await;
    }
}

async fn raise_drop_alert(inner: &Arc<dyn AuditSink>, counters: &Counters) {
    let dropped = counters.dropped.load(Ordering::Relaxed);
    let alerted = counters.alerted.load(Ordering::Relaxed);
    if dropped <= alerted {
        return;
    }
    let alert = AuditEvent::new(
        DROPPED_ACTION,
        AuditOutcome::Failure,
        time::OffsetDateTime::now_utc(),
        &RequestContext::new(),
    )
    .because("buffer_full")
    .with_detail("dropped", serde_json::json!(dropped - alerted))
    .with_detail("dropped_total", serde_json::json!(dropped));
    match inner.record(&alert).await {
        Ok(_) => counters.alerted.store(dropped, Ordering::Relaxed),
        Err(e) => tracing::error!(error = %e.log_chain(), dropped, "audit drop alert not recorded"),
    }
}

/// How much an action's audit record matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Criticality {
    /// Administrative actions (key management, role changes, erasure): in
    /// fail-closed mode, refused when their event cannot be recorded.
    Administrative,
    /// Everything else: queued without waiting; drops are counted and alerted.
    Routine,
}

/// The audit front door of a server: a [`BufferedSink`] and the fail-closed
/// decision.
///
/// Record an administrative action's event *before* acting (with the
/// outcome you are about to produce, or an `attempt` event), and act only
/// on `Ok`:
///
/// ```no_run
/// # async fn demo(auditor: &docaiche_compliance::audit::Auditor, event: docaiche_core::audit::AuditEvent) -> docaiche_core::Result<()> {
/// use docaiche_compliance::audit::Criticality;
/// auditor.audit(event, Criticality::Administrative).await?; // refused if unrecordable
/// // ... now revoke the key ...
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Auditor {
    buffer: BufferedSink,
    fail_closed: bool,
}

impl Auditor {
    /// An auditor over `buffer`; `fail_closed` refuses administrative
    /// actions whose event cannot be recorded.
    #[must_use]
    pub const fn new(buffer: BufferedSink, fail_closed: bool) -> Self {
        Self {
            buffer,
            fail_closed,
        }
    }

    /// The buffer (for its counters).
    #[must_use]
    pub const fn buffer(&self) -> &BufferedSink {
        &self.buffer
    }

    /// Audit `event`. Administrative events wait for their receipt; routine
    /// events are queued.
    ///
    /// # Errors
    /// `Unavailable` for an administrative event that could not be recorded
    /// in fail-closed mode: refuse the action. Otherwise failures are logged
    /// and counted, and `Ok(None)` is returned.
    pub async fn audit(
        &self,
        event: AuditEvent,
        criticality: Criticality,
    ) -> Result<Option<AuditReceipt>> {
        match criticality {
            Criticality::Administrative => match self.buffer.record(&event).await {
                Ok(receipt) => Ok(Some(receipt)),
                Err(e) if self.fail_closed => {
                    tracing::error!(action = %event.action, error = %e.log_chain(), "audit unavailable: refusing administrative action");
                    Err(e)
                }
                Err(e) => {
                    tracing::error!(action = %event.action, error = %e.log_chain(), "audit unavailable: administrative action proceeds (fail open)");
                    Ok(None)
                }
            },
            Criticality::Routine => {
                // A drop is counted, logged and alerted by the buffer.
                let _ = self.buffer.submit(event);
                Ok(None)
            }
        }
    }
}
