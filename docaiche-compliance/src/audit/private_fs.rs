//! Files and directories of the trail, private to the user that writes it.
//!
//! The trail says who did what, with hashed personal data; nobody but its
//! writer (and root) should read it. Files are created 0600 and
//! directories 0700, and the mode is then set explicitly on what was just
//! created, so a permissive (or odd) umask cannot widen or narrow it. An
//! existing file or directory keeps the mode its operator gave it.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::path::Path;

/// Mode of every file the trail creates.
#[cfg(unix)]
pub(crate) const FILE_MODE: u32 = 0o600;
/// Mode of every directory the trail creates.
#[cfg(unix)]
pub(crate) const DIR_MODE: u32 = 0o700;

/// `mkdir -p` with mode 0700 for every directory it creates (set
/// explicitly, whatever the umask).
///
/// # Errors
/// The directory cannot be created, or its mode cannot be set.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    // Collect the missing ancestors first: only those get the mode.
    let mut missing = Vec::new();
    let mut next = Some(dir);
    while let Some(d) = next.filter(|d| !d.as_os_str().is_empty()) {
        if d.exists() {
            break;
        }
        missing.push(d);
        next = d.parent();
    }
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(DIR_MODE);
    }
    builder.create(dir)?;
    #[cfg(unix)]
    for created in missing {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(created, std::fs::Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Open `path` with `options`, creating it with mode 0600 if it is
/// missing (`options` should not ask for `create` itself).
///
/// # Errors
/// As [`OpenOptions::open`], or the mode cannot be set.
pub(crate) fn open_or_create(options: &OpenOptions, path: &Path) -> io::Result<File> {
    let mut create = options.clone();
    create.create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        create.mode(FILE_MODE);
    }
    match create.open(path) {
        Ok(file) => {
            set_private(&file)?;
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => options.open(path),
        Err(e) => Err(e),
    }
}

/// Create `path` (which must not exist) for writing, with mode 0600.
///
/// # Errors
/// As [`OpenOptions::open`], or the mode cannot be set.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(FILE_MODE);
    }
    let file = options.open(path)?;
    set_private(&file)?;
    Ok(file)
}

/// Set mode 0600 on an open file (a no-op off Unix).
fn set_private(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn created_files_and_directories_are_private_and_existing_ones_are_kept() {
        let root = std::env::temp_dir().join(format!("private-fs-{}", uuid::Uuid::new_v4()));
        let dir = root.join("a/b");
        create_dir(&dir).expect("create");
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let path = dir.join("f");
        let mut options = OpenOptions::new();
        options.append(true);
        drop(open_or_create(&options, &path).expect("create"));
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        drop(open_or_create(&options, &path).expect("reopen"));
        assert_eq!(mode(&path), 0o640, "an operator's mode is kept");
        assert!(
            create_new(&path).is_err(),
            "create_new refuses an existing file"
        );
        std::fs::remove_dir_all(root).ok();
    }
}
