//! [`JsonlFileSink`]: the chained trail as JSON lines in a file, with group
//! commit, rotation and crash recovery.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};
use docaiche_core::clock::{Clock, SystemClock};
use docaiche_core::{Error, Result};
use tokio::sync::{mpsc, oneshot};

use super::anchor::Anchor;
use super::chain::{Chain, CheckpointPolicy};
use super::lock::{HeldLock, lock_trail};
use super::private_fs;
use super::record::{Head, MAX_LINE_LEN, ParsedLine, event_json, parse_line, stream_of};
use super::tree_head::TreeHeadPolicy;
use super::verify::{read_lines, trail_segments};

const DEPENDENCY: &str = "audit file sink";

/// When the file sink makes written records durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// `fdatasync` after every batch, before any caller of the batch gets
    /// its receipt (group commit). A receipt means "on disk". The default.
    EveryBatch,
    /// `fdatasync` with the first batch written once this much time has
    /// passed since the last one (and on `flush` and close); a receipt
    /// means "written to the operating system", which survives a crash of
    /// the process but not of the machine. With no further events, the
    /// last batch waits for the next `flush`: call it on a timer if that
    /// matters.
    Interval(Duration),
    /// Never `fdatasync` (the operating system decides). For tests and
    /// benchmarks.
    Never,
}

/// Configuration of a [`JsonlFileSink`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FileSinkConfig {
    /// The active file; rotated segments sit beside it as `<path>.000001`, ….
    pub path: PathBuf,
    /// Durability of receipts.
    pub fsync: FsyncPolicy,
    /// Rotate once the active file reaches this many bytes (`None`: never).
    pub rotate_bytes: Option<NonZeroU64>,
    /// Most events written per batch (per `fdatasync`).
    pub max_batch: NonZeroUsize,
    /// Most events waiting for the writer; `record` waits (back-pressure)
    /// when it is full.
    pub queue: NonZeroUsize,
    /// Signed checkpoints, if any.
    pub checkpoints: Option<CheckpointPolicy>,
    /// Signed Merkle tree heads, if any.
    pub tree_heads: Option<TreeHeadPolicy>,
}

impl FileSinkConfig {
    /// Defaults: fsync every batch, rotation at 64 MiB, batches of up to
    /// 512, a queue of 4096, no checkpoints.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            fsync: FsyncPolicy::EveryBatch,
            rotate_bytes: NonZeroU64::new(64 << 20),
            max_batch: NonZeroUsize::new(512).unwrap_or(NonZeroUsize::MIN),
            queue: NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
            checkpoints: None,
            tree_heads: None,
        }
    }

    /// Set the fsync policy.
    #[must_use]
    pub const fn with_fsync(mut self, fsync: FsyncPolicy) -> Self {
        self.fsync = fsync;
        self
    }

    /// Set (or turn off) rotation.
    #[must_use]
    pub const fn with_rotation(mut self, rotate_bytes: Option<NonZeroU64>) -> Self {
        self.rotate_bytes = rotate_bytes;
        self
    }

    /// Sign checkpoints.
    #[must_use]
    pub fn with_checkpoints(mut self, checkpoints: CheckpointPolicy) -> Self {
        self.checkpoints = Some(checkpoints);
        self
    }

    /// Keep a Merkle tree per stream and sign its heads under `policy`: at
    /// least one head a stream per [`TreeHeadPolicy::every`] while it
    /// grows, and one per [`TreeHeadPolicy::idle`] while it does not. The
    /// idle heads come from a small timer thread of the sink's own,
    /// sleeping on the sink's [`Clock`].
    #[must_use]
    pub fn with_tree_heads(mut self, policy: TreeHeadPolicy) -> Self {
        self.tree_heads = Some(policy);
        self
    }

    /// Set the batch size.
    #[must_use]
    pub const fn with_max_batch(mut self, max_batch: NonZeroUsize) -> Self {
        self.max_batch = max_batch;
        self
    }
}

enum Request {
    Record {
        stream: String,
        event: Vec<u8>,
        reply: oneshot::Sender<Result<AuditReceipt>>,
    },
    Flush {
        reply: oneshot::Sender<Result<AuditReceipt>>,
    },
    /// Sign the tree heads that are due (from the timer thread).
    Tick,
}

/// The tamper-evident trail as JSON lines in a file: one record per line,
/// chained per tenant (see [`record`](super::record) for the layout).
///
/// One writer thread owns the file. Callers queue their event and await a
/// receipt; the thread takes whatever is queued (up to `max_batch`), appends
/// it in one `write`, then `fdatasync`s once for the whole batch under
/// [`FsyncPolicy::EveryBatch`] before answering every caller of the batch:
/// group commit, so the cost of a sync is shared by all concurrent callers.
/// A receipt's `sequence` is the event's number in its tenant's stream.
///
/// Exactly one process writes a trail: `open` takes an exclusive lock on
/// `<path>.lock` first and holds it until the writer thread ends (see
/// [`TrailLocked`](super::TrailLocked)); a second `open` of the same trail,
/// from this process or another, fails with `Unavailable` caused by
/// `TrailLocked`, naming the trail and the holder's pid. A process that
/// only has events to add hands them to the owner through the trail's
/// [`AuditInbox`](super::AuditInbox). Dropping the last clone of the sink
/// waits for its writer to finish the queued events and releases the lock.
/// Files are created 0600 and directories 0700 (see the `audit` module
/// docs).
///
/// On open, the sink reads the existing segments to recover each stream's
/// head (time proportional to the trail's size; rotate to keep it short),
/// and cuts a last line left without its newline by a crash: that write was
/// never acknowledged. If a write or sync fails, the batch's callers get
/// `Unavailable`, the file is cut back to where the batch began, and the
/// heads are restored; if even that fails, the sink refuses every later
/// event (fail closed) rather than extend a trail it cannot vouch for.
#[derive(Debug, Clone)]
pub struct JsonlFileSink {
    handle: Arc<WriterHandle>,
    path: Arc<PathBuf>,
}

/// The writer thread's queue and the thread itself. Dropping the last
/// handle closes the queue and waits for the thread to write what is
/// queued, sync and close the file, and release the trail's lock, so a
/// dropped sink's trail can be opened again at once.
#[derive(Debug)]
struct WriterHandle {
    /// `None` only while dropping.
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("audit file sink: the writer thread panicked");
        }
    }
}

impl JsonlFileSink {
    /// Open (or create) the trail at `config.path` and start its writer
    /// thread.
    ///
    /// # Errors
    /// `Unavailable` if the file cannot be opened, read or repaired, or,
    /// with a [`TrailLocked`](super::TrailLocked) source, if another open
    /// sink holds the trail's lock.
    pub fn open(config: FileSinkConfig) -> Result<Self> {
        Self::open_with_clock(config, Arc::new(SystemClock::new()))
    }

    /// [`open`](Self::open) with checkpoint times read from `clock`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with_clock(config: FileSinkConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let io_err = |e: io::Error| Error::unavailable(DEPENDENCY, e);
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_fs::create_dir(dir).map_err(io_err)?;
        }
        // Before anything is read or repaired: one writer per trail.
        let lock = lock_trail(&config.path, DEPENDENCY)?;
        repair_torn_tail(&config.path).map_err(io_err)?;
        let mut chain =
            Chain::new(config.checkpoints.clone()).with_tree_heads(config.tree_heads.clone());
        let mut segments = trail_segments(&config.path)?;
        let mut next_segment = 1;
        // Streams retention cut start after their anchor; the segments it
        // removed are never reused (the verifier skips those names).
        match Anchor::load(&config.path) {
            Ok(Some(anchor)) => {
                for (stream, head) in &anchor.streams {
                    chain.set_pruned_start(stream, *head);
                }
                for name in &anchor.segments {
                    next_segment =
                        next_segment.max(segment_number(Path::new(name)).saturating_add(1));
                }
                segments.retain(|segment| {
                    !segment
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| anchor.segments.iter().any(|s| s == n))
                });
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(error = %error.log_chain(), "audit file sink: unreadable anchor ignored");
            }
        }
        for segment in &segments {
            if segment != &config.path {
                next_segment = next_segment.max(segment_number(segment).saturating_add(1));
            }
            for line in read_lines(segment)? {
                match parse_line(&line?.bytes) {
                    Ok(ParsedLine::Record(r)) => {
                        chain.recover_record(&r.stream, Head::new(r.seq, r.hash));
                    }
                    Ok(ParsedLine::TreeHead(head)) => chain.recover_tree_head(&head),
                    _ => {}
                }
            }
        }
        chain.recovered(clock.monotonic());
        let file = open_append(&config.path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let (tx, rx) = mpsc::channel(config.queue.get());
        if let Some(policy) = &config.tree_heads {
            spawn_ticker(&tx, clock.clone(), policy.tick()).map_err(io_err)?;
        }
        let path = Arc::new(config.path.clone());
        let writer = Writer {
            config,
            file: Some(file),
            len,
            chain,
            next_segment,
            last_sync: Instant::now(),
            clock,
            _lock: lock,
        };
        let thread = std::thread::Builder::new()
            .name("docaiche-audit-file".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(io_err)?;
        Ok(Self {
            handle: Arc::new(WriterHandle {
                tx: Some(tx),
                thread: Some(thread),
            }),
            path,
        })
    }

    /// The active file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn send(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<AuditReceipt>>) -> Request,
    ) -> Result<AuditReceipt> {
        let (reply, receipt) = oneshot::channel();
        let tx = self.handle.tx.as_ref().ok_or_else(stopped)?;
        tx.send(make(reply)).await.map_err(|_| stopped())?;
        receipt.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::unavailable(
        DEPENDENCY,
        io::Error::new(io::ErrorKind::BrokenPipe, "audit writer thread stopped"),
    )
}

#[async_trait::async_trait]
impl AuditSink for JsonlFileSink {
    async fn record(&self, event: &AuditEvent) -> Result<AuditReceipt> {
        let stream = stream_of(event).to_owned();
        let event = event_json(event)?;
        if event.len() > MAX_LINE_LEN {
            return Err(Error::invalid_input("audit event exceeds the line limit"));
        }
        self.send(|reply| Request::Record {
            stream,
            event,
            reply,
        })
        .await
    }

    async fn flush(&self) -> Result<()> {
        self.send(|reply| Request::Flush { reply })
            .await
            .map(|_| ())
    }
}

/// The timer of idle tree heads: a thread of its own (so the sink needs no
/// runtime of the caller's, nor one with timers enabled) that sends a
/// [`Request::Tick`] every `period` of `clock` time. It holds the queue
/// only weakly and never waits on it (a full queue means batches are
/// flowing, and batches sign what is due), so it never keeps the writer
/// alive: once the sink is dropped, its next tick ends it.
fn spawn_ticker(
    tx: &mpsc::Sender<Request>,
    clock: Arc<dyn Clock>,
    period: Duration,
) -> io::Result<()> {
    let weak = tx.downgrade();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("docaiche-audit-tick".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                loop {
                    clock.sleep(period).await;
                    let Some(tx) = weak.upgrade() else { break };
                    if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Request::Tick) {
                        break;
                    }
                }
            });
        })?;
    Ok(())
}

pub(crate) fn segment_number(path: &Path) -> u64 {
    path.extension()
        .and_then(|e| e.to_str())
        .and_then(|e| e.parse().ok())
        .unwrap_or(0)
}

/// The active file, created 0600 if missing.
fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).read(true);
    private_fs::open_or_create(&options, path)
}

/// Cut the file back to its last newline, if it does not end with one.
fn repair_torn_tail(path: &Path) -> io::Result<()> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk_len = usize::try_from(end - start).unwrap_or(buf.len());
        let chunk = &mut buf[..chunk_len];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if end == len && chunk.last() == Some(&b'\n') {
            return Ok(());
        }
        if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
            file.set_len(start + at as u64 + 1)?;
            return file.sync_all();
        }
        if start == 0 {
            file.set_len(0)?;
            return file.sync_all();
        }
        end = start;
    }
}

struct Writer {
    config: FileSinkConfig,
    /// `None` once poisoned: every later event is refused.
    file: Option<File>,
    len: u64,
    chain: Chain,
    next_segment: u64,
    last_sync: Instant,
    clock: Arc<dyn Clock>,
    /// The trail's lock, released when the writer thread ends (last, after
    /// the file is closed).
    _lock: HeldLock,
}

type Reply = (oneshot::Sender<Result<AuditReceipt>>, Result<AuditReceipt>);

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let max_batch = self.config.max_batch.get();
        let mut batch = Vec::with_capacity(max_batch);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            for (reply, result) in self.process(&mut batch) {
                // A caller that gave up waiting is not an error here.
                let _ = reply.send(result);
            }
        }
        if let Some(file) = &self.file
            && let Err(e) = file.sync_data()
        {
            tracing::error!(error = %e, "audit file sink: final sync failed");
        }
    }

    fn process(&mut self, batch: &mut Vec<Request>) -> Vec<Reply> {
        let now = self.clock.now();
        let mut buf = Vec::new();
        let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
        let mut undo: Vec<(String, Head)> = Vec::new();
        let mut force_sync = false;
        for request in batch.drain(..) {
            match request {
                Request::Record {
                    stream,
                    event,
                    reply,
                } => {
                    if self.file.is_none() {
                        replies.push((reply, Err(poisoned())));
                        continue;
                    }
                    match self.chain.append(&stream, &event, now) {
                        Ok(appended) => {
                            buf.extend_from_slice(&appended.record.line);
                            buf.push(b'\n');
                            if let Some(checkpoint) = appended.checkpoint {
                                buf.extend_from_slice(&checkpoint);
                                buf.push(b'\n');
                            }
                            undo.push((stream, appended.previous));
                            replies.push((reply, Ok(AuditReceipt::new(Some(appended.record.seq)))));
                        }
                        Err(e) => replies.push((reply, Err(e))),
                    }
                }
                Request::Flush { reply } => {
                    force_sync = true;
                    replies.push((reply, Ok(AuditReceipt::new(None))));
                }
                Request::Tick => {}
            }
        }
        if self.file.is_some() {
            match self.chain.due_tree_heads(now, self.clock.monotonic()) {
                Ok(lines) => {
                    for line in lines {
                        buf.extend_from_slice(&line);
                        buf.push(b'\n');
                    }
                }
                // Signing fails only for a policy `TreeHeadPolicy::new`
                // refuses; the records go out, the heads wait.
                Err(e) => {
                    tracing::error!(error = %e.log_chain(), "audit file sink: tree head not signed")
                }
            }
        }
        if let Err(e) = self.write_batch(&buf, force_sync) {
            tracing::error!(error = %e, "audit file sink: batch write failed");
            for (stream, head) in undo.into_iter().rev() {
                self.chain.restore(&stream, head);
            }
            self.chain.rollback();
            let failure = Error::unavailable(DEPENDENCY, e);
            for (_, result) in &mut replies {
                if result.is_ok() {
                    *result = Err(failure.clone());
                }
            }
            return replies;
        }
        self.chain.commit();
        if let Err(e) = self.maybe_rotate() {
            tracing::error!(error = %e, "audit file sink: rotation failed");
        }
        replies
    }

    fn write_batch(&mut self, buf: &[u8], force_sync: bool) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("audit file sink is poisoned"));
        };
        let start = self.len;
        let written = file.write_all(buf).and_then(|()| {
            let sync = match self.config.fsync {
                FsyncPolicy::EveryBatch => !buf.is_empty() || force_sync,
                FsyncPolicy::Interval(every) => force_sync || self.last_sync.elapsed() >= every,
                FsyncPolicy::Never => force_sync,
            };
            if sync {
                file.sync_data()?;
                self.last_sync = Instant::now();
            }
            Ok(())
        });
        match written {
            Ok(()) => {
                self.len = start + buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Take back whatever part of the batch reached the file, so
                // the next batch does not follow a torn line.
                if file.set_len(start).and_then(|()| file.sync_data()).is_err() {
                    tracing::error!(
                        "audit file sink: cannot cut back a failed batch; refusing further events"
                    );
                    self.file = None;
                }
                Err(e)
            }
        }
    }

    fn maybe_rotate(&mut self) -> io::Result<()> {
        let Some(limit) = self.config.rotate_bytes else {
            return Ok(());
        };
        if self.len < limit.get() || self.file.is_none() {
            return Ok(());
        }
        if let Some(file) = &self.file {
            file.sync_data()?;
        }
        let mut rotated = self.config.path.clone().into_os_string();
        rotated.push(format!(".{:06}", self.next_segment));
        std::fs::rename(&self.config.path, &rotated)?;
        self.next_segment += 1;
        match open_append(&self.config.path) {
            Ok(file) => {
                self.file = Some(file);
                self.len = 0;
                if let Some(dir) = self
                    .config
                    .path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    File::open(dir)?.sync_all()?;
                }
                Ok(())
            }
            Err(e) => {
                self.file = None;
                Err(e)
            }
        }
    }
}

fn poisoned() -> Error {
    Error::unavailable(
        DEPENDENCY,
        io::Error::other("an earlier write failed and could not be undone"),
    )
}
