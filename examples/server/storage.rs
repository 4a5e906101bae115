//! The data directory: created on start-up, private to the server's user.

use std::io;
use std::path::Path;

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

/// `mkdir -p -m 0700 dir` (the mode applies to every directory created).
///
/// # Errors
/// The directory cannot be created.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
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
