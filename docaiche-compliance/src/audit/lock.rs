//! One writer per trail: an exclusive OS lock on `<trail>.lock`.
//!
//! Two processes appending to one file trail each keep their own stream
//! heads, so their records fork the chain, and the verifier then reports
//! tampering where there was none (a false alarm that hides real ones).
//! [`JsonlFileSink::open`](super::JsonlFileSink::open) therefore takes an
//! exclusive advisory lock (`flock` on Unix, `LockFileEx` on Windows,
//! through the `fs4` crate) on a lock file beside the trail before it
//! reads or repairs anything, and holds it until its writer thread ends.
//! The lock lives on its own file, not on the active segment, because
//! rotation renames the active file away. The holder writes its process id
//! into the lock file, so a refused opener can name it ([`TrailLocked`]).
//! The operating system releases the lock when the holder exits, however it
//! exits: a crashed writer never leaves a stale lock, and the file itself is
//! never deleted (deleting a lock file races with the next opener).
//!
//! The lock is advisory: it keeps out every process that asks for it (every
//! DocAIche writer does), not one that writes the file regardless.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use docaiche_core::Error;

use super::private_fs;

/// Another process holds the lock of the audit trail at `path`: this
/// process must not write to it. Not a bug and not an outage: a second
/// writer was started (a CLI beside the server, or a second server on the
/// same trail). Rides as the source of an [`Error::Unavailable`]; find it
/// with [`TrailLocked::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrailLocked {
    /// The trail's active file.
    pub path: PathBuf,
    /// The holder's process id, when its lock file names one.
    pub pid: Option<u32>,
}

impl TrailLocked {
    /// The `TrailLocked` behind `error`, if that is why it failed.
    #[must_use]
    pub fn find(error: &Error) -> Option<&Self> {
        // The shared source itself, not `Error::source`: that sees the
        // `Arc` around it, which no downcast sees through.
        let Error::Unavailable {
            source: Some(source),
            ..
        } = error
        else {
            return None;
        };
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
        while let Some(cause) = next {
            if let Some(locked) = cause.downcast_ref::<Self>() {
                return Some(locked);
            }
            next = cause.source();
        }
        None
    }
}

impl fmt::Display for TrailLocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "audit trail {} is locked by another process",
            self.path.display()
        )?;
        if let Some(pid) = self.pid {
            write!(f, " (pid {pid})")?;
        }
        Ok(())
    }
}

impl std::error::Error for TrailLocked {}

/// The lock file of the trail whose active file is `trail`.
#[must_use]
pub(crate) fn lock_path(trail: &Path) -> PathBuf {
    let mut name = trail.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// An exclusive lock held on a lock file for as long as this value lives.
#[derive(Debug)]
pub(crate) struct HeldLock {
    /// Closing it releases the lock.
    _file: File,
}

/// Why [`HeldLock::acquire`] failed.
#[derive(Debug)]
pub(crate) enum AcquireError {
    /// Another open file description holds it; the pid its file names.
    Held(Option<u32>),
    /// The lock file could not be opened, read or written.
    Io(io::Error),
}

impl HeldLock {
    /// Take the exclusive lock on `path` (created 0600 if missing) without
    /// waiting, and write this process's id into it.
    pub(crate) fn acquire(path: &Path) -> Result<Self, AcquireError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        // Never truncate on open: the holder's pid is in there.
        let mut file = private_fs::open_or_create(&options, path).map_err(AcquireError::Io)?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => return Err(AcquireError::Held(holder(&file))),
            Err(fs4::TryLockError::Error(e)) => return Err(AcquireError::Io(e)),
        }
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(AcquireError::Io)?;
        Ok(Self { _file: file })
    }
}

/// The pid a holder wrote into its lock file (at most a few bytes read).
fn holder(file: &File) -> Option<u32> {
    let mut text = String::new();
    let mut reader = file.take(16);
    reader.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Lock the trail at `trail` for this process, or say who holds it.
pub(crate) fn lock_trail(
    trail: &Path,
    dependency: &'static str,
) -> docaiche_core::Result<HeldLock> {
    HeldLock::acquire(&lock_path(trail)).map_err(|e| match e {
        AcquireError::Held(pid) => Error::unavailable(
            dependency,
            TrailLocked {
                path: trail.to_path_buf(),
                pid,
            },
        ),
        AcquireError::Io(e) => Error::unavailable(dependency, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_with_the_holders_pid() {
        let dir = std::env::temp_dir().join(format!("trail-lock-{}", uuid::Uuid::new_v4()));
        private_fs::create_dir(&dir).expect("dir");
        let trail = dir.join("audit.jsonl");
        let held = lock_trail(&trail, "test").expect("first");
        // flock conflicts between two open file descriptions, even in one
        // process: the second open stands for another process.
        let error = lock_trail(&trail, "test").expect_err("second");
        let locked = TrailLocked::find(&error).expect("typed");
        assert_eq!(locked.path, trail);
        assert_eq!(locked.pid, Some(std::process::id()));
        assert!(
            error.log_chain().contains(&trail.display().to_string()),
            "{}",
            error.log_chain()
        );
        drop(held);
        drop(lock_trail(&trail, "test").expect("free again once the holder let go"));
        std::fs::remove_dir_all(dir).ok();
    }
}
