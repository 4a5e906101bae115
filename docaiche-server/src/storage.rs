//! The data directory: created on start-up, private to the server's user,
//! and locked by the one server that uses it.
//!
//! - **Modes.** Every directory the server creates (the data directory,
//!   `keys/`, `audit/`) is 0700 and every file (the SQLite database, the
//!   generated keys, the audit trail and its lock, anchor and inbox files)
//!   0600. The mode is set explicitly on what was just created, so the
//!   umask cannot widen it; what already exists keeps its mode (a data
//!   directory open to others gets a warning).
//! - **One server per data directory.** [`lock_data_dir`] takes an
//!   exclusive OS lock (`flock`, through `fs4`) on `<data_dir>/server.lock`
//!   before the server opens anything or binds its port, and holds it
//!   until the process exits; the file holds the holder's pid. A second
//!   server on the same directory exits with status 2 and the message
//!   `storage.data_dir: <dir> is in use by another server (pid N)`. The
//!   `bootstrap-key` and `bootstrap-admin` commands do not take this lock:
//!   they run beside the server, and the audit trail has a lock and an
//!   inbox of its own for them (see `audit/`).

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use docaiche_core::Error;

/// The lock file in the data directory.
pub(crate) const LOCK_FILE: &str = "server.lock";

/// The data directory's lock, held for as long as this value lives (the
/// server keeps it until it exits).
#[derive(Debug)]
pub(crate) struct DataDirLock {
    /// Closing it releases the lock.
    _file: File,
}

/// Lock `dir` (an existing data directory) for this server, or refuse.
///
/// # Errors
/// [`Error::Misconfigured`] (`storage.data_dir`) if another process holds
/// the lock, naming its pid when the lock file says it, or if the lock file
/// cannot be opened.
pub(crate) fn lock_data_dir(dir: &Path) -> Result<DataDirLock, Error> {
    let path = dir.join(LOCK_FILE);
    let cannot = |e: io::Error| {
        Error::misconfigured(
            "storage.data_dir",
            format!("cannot lock {}: {e}", path.display()),
        )
    };
    let mut file = open_private_file(&path, false).map_err(cannot)?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let holder = (&file)
                .take(16)
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse::<u32>().ok())
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            return Err(Error::misconfigured(
                "storage.data_dir",
                format!(
                    "{} is in use by another server{holder}: stop it, or give this server a \
                     data directory of its own",
                    dir.display()
                ),
            ));
        }
        Err(fs4::TryLockError::Error(e)) => return Err(cannot(e)),
    }
    let pid = std::process::id().to_string();
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(pid.as_bytes()))
        .map_err(cannot)?;
    Ok(DataDirLock { _file: file })
}

/// Open `path` for reading and writing, creating it with mode 0600 (set
/// explicitly) if it is missing; `truncate` empties an existing file.
///
/// # Errors
/// The file cannot be opened or created, or its mode cannot be set.
pub(crate) fn open_private_file(path: &Path, truncate: bool) -> io::Result<File> {
    let mut create = std::fs::OpenOptions::new();
    create.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        create.mode(0o600);
    }
    match create.open(path) {
        Ok(file) => {
            set_private(&file)?;
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .truncate(truncate)
            .open(path),
        Err(e) => Err(e),
    }
}

/// Create the file `path` with mode 0600 unless it exists (the SQLite
/// database before SQLite creates it with the umask's mode; its `-wal` and
/// `-shm` files then take the database file's mode).
///
/// # Errors
/// The file cannot be created, or its mode cannot be set.
pub(crate) fn ensure_private_file(path: &Path) -> io::Result<()> {
    open_private_file(path, false).map(drop)
}

/// Mode 0600 on an open file (nothing off Unix).
pub(crate) fn set_private(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Create `dir` (and its parents) with mode 0700 if missing. An existing
/// directory is kept as it is, with a warning if others may read it.
///
/// # Errors
/// The path exists but is not a directory, or it cannot be created.
pub(crate) fn prepare_data_dir(dir: &Path) -> io::Result<()> {
    create_private_dir(dir)?;
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", dir.display()),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %dir.display(),
                mode = format!("{mode:o}"),
                "data directory is accessible to other users; chmod 700 it"
            );
        }
    }
    Ok(())
}

/// `mkdir -p -m 0700 dir`: the mode is set explicitly on every directory
/// created, whatever the umask; existing ones keep theirs.
///
/// # Errors
/// The directory cannot be created, or its mode cannot be set.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    #[cfg(unix)]
    for created in missing {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(created, std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    let _ = missing;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestDir;

    #[test]
    fn a_missing_data_dir_is_created_private() {
        let root = TestDir::new("storage");
        let dir = root.path().join("a/b");
        prepare_data_dir(&dir).expect("created");
        assert!(dir.is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        // Idempotent.
        prepare_data_dir(&dir).expect("already there");
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let root = TestDir::new("storage-file");
        let file = root.path().join("data");
        std::fs::write(&file, b"x").expect("write");
        assert!(prepare_data_dir(&file).is_err());
    }
}
