//! [`AuditInbox`]: how a process that does not own a file trail hands its
//! events to the one that does.
//!
//! A trail has exactly one writer (see [`TrailLocked`](super::TrailLocked)).
//! A short-lived process that finds the trail locked (the example server's
//! `bootstrap-key` beside the running server) does not append: it
//! *deposits* each event in the trail's inbox, the directory
//! `<trail>.inbox` beside it, through an [`InboxSink`]. The owner
//! *ingests* the inbox ([`AuditInbox::ingest`]) when it opens the trail,
//! periodically, and before it closes: it appends every waiting event to
//! its own chain, in the order of their ids (UUIDv7: time order), makes the
//! appends durable, and only then deletes the files.
//!
//! - A deposit is one file per event, `<event id>.json` holding the event's
//!   JSON, written to a hidden temporary name, fsynced, then renamed into
//!   place (atomic), and the directory fsynced: the owner never sees half
//!   an event, and an acknowledged deposit survives a crash. Files are
//!   0600 and the directory 0700, like the trail.
//! - Delivery is at least once: an owner that crashes between the append
//!   and the delete appends the event again at its next start, under the
//!   same event id (a duplicate the id makes visible, never a loss).
//! - A file that is not an audit event (or is larger than a record may
//!   be) is never appended and never deleted: it is renamed
//!   `<name>.rejected` and logged, and stays as evidence. A temporary file
//!   an hour old was left by a depositor that died before its rename (the
//!   event was never acknowledged): it is removed.
//! - A depositor that finds the trail locked by another short-lived
//!   process (two commands at once, no server) deposits all the same; its
//!   events reach the trail when the next owner opens it.
//! - The events keep the time they happened; the record's place in the
//!   chain is the owner's, so the chain stays one line per stream.
//!
//! A hand-written spool rather than a queue crate: the whole protocol is a
//! rename and a readdir, and it must work between two processes that share
//! nothing but a directory.

use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};
use docaiche_core::{Error, Result};

use super::file::JsonlFileSink;
use super::private_fs;
use super::record::{MAX_LINE_LEN, event_json};

const DEPENDENCY: &str = "audit inbox";

/// Most events one [`AuditInbox::ingest`] call appends; the rest wait for
/// the next call, so one call stays bounded in time and memory.
pub const MAX_INGEST: usize = 1000;

/// The inbox of one file trail: the directory `<trail>.inbox`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditInbox {
    dir: PathBuf,
}

impl AuditInbox {
    /// The inbox of the trail whose active file is `trail`.
    #[must_use]
    pub fn for_trail(trail: &Path) -> Self {
        let mut dir = trail.as_os_str().to_owned();
        dir.push(".inbox");
        Self {
            dir: PathBuf::from(dir),
        }
    }

    /// The inbox directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Deposit `event` for the trail's owner (blocking I/O: call it off the
    /// async runtime, as [`InboxSink`] does). Returns the file written.
    ///
    /// # Errors
    /// `InvalidInput` if the event does not serialise or exceeds a record's
    /// size; `Unavailable` if the file cannot be written, synced or renamed.
    pub fn deposit(&self, event: &AuditEvent) -> Result<PathBuf> {
        let json = event_json(event)?;
        if json.len() > MAX_LINE_LEN {
            return Err(Error::invalid_input("audit event exceeds the line limit"));
        }
        let io_err = |e: io::Error| Error::unavailable(DEPENDENCY, e);
        private_fs::create_dir(&self.dir).map_err(io_err)?;
        let name = format!("{}.json", event.id);
        let temp = self
            .dir
            .join(format!(".tmp-{}-{name}", uuid::Uuid::new_v4()));
        let written = private_fs::create_new(&temp).and_then(|mut file| {
            file.write_all(&json)?;
            file.sync_all()
        });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(io_err(e));
        }
        let path = self.dir.join(name);
        std::fs::rename(&temp, &path).map_err(io_err)?;
        sync_dir(&self.dir).map_err(io_err)?;
        Ok(path)
    }

    /// Append every waiting event (at most [`MAX_INGEST`], oldest id
    /// first) to `sink`, the trail's owner, make the appends durable
    /// (`flush`), then delete their files. Returns how many were appended.
    /// Call it only on the sink that owns this inbox's trail.
    ///
    /// # Errors
    /// `Unavailable` if the inbox cannot be read or the sink refuses an
    /// event; the files not yet appended stay for the next call.
    pub async fn ingest(&self, sink: &JsonlFileSink) -> Result<usize> {
        let dir = self.dir.clone();
        let waiting = tokio::task::spawn_blocking(move || read_waiting(&dir))
            .await
            .map_err(|e| Error::internal_with("audit inbox task failed", e))??;
        if waiting.is_empty() {
            return Ok(0);
        }
        let mut appended = Vec::with_capacity(waiting.len());
        let mut failure = None;
        for (path, event) in waiting {
            match sink.record(&event).await {
                Ok(_) => appended.push(path),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // Durable before any file goes, whatever the sink's fsync policy.
        sink.flush().await?;
        let count = appended.len();
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            for path in &appended {
                std::fs::remove_file(path)?;
            }
            sync_dir(&dir)
        })
        .await
        .map_err(|e| Error::internal_with("audit inbox task failed", e))?
        .map_err(|e| Error::unavailable(DEPENDENCY, e))?;
        if count > 0 {
            tracing::info!(events = count, inbox = %self.dir.display(), "audit inbox ingested");
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(count),
        }
    }
}

/// The inbox's events in id order (at most [`MAX_INGEST`]); unreadable or
/// invalid files are set aside as `.rejected`.
fn read_waiting(dir: &Path) -> Result<Vec<(PathBuf, AuditEvent)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::unavailable(DEPENDENCY, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::unavailable(DEPENDENCY, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.starts_with(".tmp-") {
            remove_if_abandoned(&entry.path());
        } else if !name.starts_with('.') && name.ends_with(".json") {
            names.push(name.to_owned());
        }
    }
    names.sort();
    names.truncate(MAX_INGEST);
    let mut waiting = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        match read_event(&path) {
            Ok(event) => waiting.push((path, event)),
            Err(reason) => {
                let mut rejected = path.clone().into_os_string();
                rejected.push(".rejected");
                tracing::error!(
                    file = %path.display(),
                    reason,
                    "audit inbox: not an audit event; set aside, not appended"
                );
                std::fs::rename(&path, &rejected).map_err(|e| Error::unavailable(DEPENDENCY, e))?;
            }
        }
    }
    Ok(waiting)
}

/// A temporary file older than this was left by a writer that died
/// before its rename: its event was never acknowledged.
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// Delete the temporary file at `path` if it is [`ABANDONED_AFTER`] old.
fn remove_if_abandoned(path: &Path) {
    let abandoned = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age >= ABANDONED_AFTER);
    if abandoned && std::fs::remove_file(path).is_ok() {
        tracing::warn!(file = %path.display(), "audit inbox: abandoned deposit removed");
    }
}

/// One deposited event, or why the file is not one.
fn read_event(path: &Path) -> std::result::Result<AuditEvent, &'static str> {
    let file = std::fs::File::open(path).map_err(|_| "unreadable")?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_LINE_LEN).unwrap_or(u64::MAX) + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|_| "unreadable")?;
    if bytes.len() > MAX_LINE_LEN {
        return Err("larger than an audit record may be");
    }
    serde_json::from_slice(&bytes).map_err(|_| "not an audit event")
}

/// Make a rename or delete in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// An [`AuditSink`] that deposits every event in an [`AuditInbox`] for the
/// trail's owner to append: what a process uses when
/// [`JsonlFileSink::open`] says the trail is
/// [locked](super::TrailLocked). A receipt means "deposited durably", not
/// yet chained, so it carries no sequence number.
#[derive(Debug, Clone)]
pub struct InboxSink {
    inbox: Arc<AuditInbox>,
}

impl InboxSink {
    /// A sink depositing into `inbox`.
    #[must_use]
    pub fn new(inbox: AuditInbox) -> Self {
        Self {
            inbox: Arc::new(inbox),
        }
    }

    /// The inbox it deposits into.
    #[must_use]
    pub fn inbox(&self) -> &AuditInbox {
        &self.inbox
    }
}

#[async_trait::async_trait]
impl AuditSink for InboxSink {
    async fn record(&self, event: &AuditEvent) -> Result<AuditReceipt> {
        let inbox = Arc::clone(&self.inbox);
        let event = event.clone();
        tokio::task::spawn_blocking(move || inbox.deposit(&event))
            .await
            .map_err(|e| Error::internal_with("audit inbox task failed", e))??;
        Ok(AuditReceipt::new(None))
    }

    async fn flush(&self) -> Result<()> {
        // Every deposit is durable before its receipt.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use docaiche_core::audit::AuditOutcome;
    use docaiche_core::{RequestContext, TenantId};

    use super::*;
    use crate::audit::{FileSinkConfig, TrailLocked, Verifier};

    fn event(i: u32) -> AuditEvent {
        AuditEvent::new(
            format!("test.{i}"),
            AuditOutcome::Success,
            time::OffsetDateTime::now_utc(),
            &RequestContext::new(),
        )
        .by(TenantId::new("acme").expect("tenant"), None)
    }

    #[tokio::test]
    async fn a_second_writer_deposits_and_the_owner_appends_to_one_chain() {
        let dir = std::env::temp_dir().join(format!("inbox-{}", uuid::Uuid::new_v4()));
        let trail = dir.join("audit/audit.jsonl");
        let owner = JsonlFileSink::open(FileSinkConfig::new(&trail)).expect("owner");
        owner.record(&event(0)).await.expect("first");

        // A second writer is refused with the trail and the holder's pid…
        let error = JsonlFileSink::open(FileSinkConfig::new(&trail)).expect_err("locked");
        let locked = TrailLocked::find(&error).expect("typed");
        assert_eq!(locked.path, trail);
        assert_eq!(locked.pid, Some(std::process::id()));

        // …so it deposits instead, and the owner appends in its own chain.
        let inbox = AuditInbox::for_trail(&trail);
        let guest = InboxSink::new(inbox.clone());
        for i in 1..=3 {
            assert_eq!(
                guest.record(&event(i)).await.expect("deposit").sequence,
                None
            );
        }
        std::fs::write(inbox.path().join("zz-garbage.json"), b"{not json").expect("write");
        // A depositor that died before its rename, long ago, and one that
        // is writing now.
        let abandoned = inbox.path().join(".tmp-abandoned");
        let writing = inbox.path().join(".tmp-writing");
        std::fs::write(&writing, b"{").expect("write");
        std::fs::File::create(&abandoned)
            .and_then(|f| {
                f.set_modified(std::time::SystemTime::now() - ABANDONED_AFTER - ABANDONED_AFTER)
            })
            .expect("an old temporary file");
        owner.record(&event(4)).await.expect("owner again");
        assert_eq!(inbox.ingest(&owner).await.expect("ingest"), 3);
        assert_eq!(inbox.ingest(&owner).await.expect("nothing left"), 0);
        assert!(inbox.path().join("zz-garbage.json.rejected").exists());
        assert!(!abandoned.exists() && writing.exists());
        drop(owner);

        let report = Verifier::new().verify_path(&trail).expect("verify");
        assert!(report.is_ok(), "{:?}", report.tamper);
        assert_eq!(report.records, 5);
        assert_eq!(report.heads["acme"].seq, 5);

        // Dropping the owner released the lock: the trail opens again.
        drop(JsonlFileSink::open(FileSinkConfig::new(&trail)).expect("reopened"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&trail), 0o600);
            assert_eq!(mode(trail.parent().expect("dir")), 0o700);
            assert_eq!(mode(&crate::audit::lock::lock_path(&trail)), 0o600);
            assert_eq!(mode(inbox.path()), 0o700);
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
