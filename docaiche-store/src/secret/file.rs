//! [`FileSecretProvider`].

use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use docaiche_core::secret_provider::{SecretProvider, SecretValue, validate_secret_name};
use docaiche_core::{Error, Result, SecretBytes};

/// Largest secret file read, in bytes.
const MAX_SECRET_FILE: u64 = 1024 * 1024;

/// Secrets from files in one directory (`/run/secrets`, a Kubernetes secret
/// volume): the name `jwt/signing-key` is the file `<dir>/jwt/signing-key`,
/// read byte for byte (a trailing newline is part of the value).
///
/// Names are validated (no `..`, no absolute paths), and the resolved path is
/// canonicalized and must stay inside the canonical directory, so a symlink
/// pointing outside it is refused (`Misconfigured`, an error rather than a
/// miss). Symlinks that stay inside, like Kubernetes' `..data` indirection,
/// work. A missing file is `Ok(None)`; any other I/O failure is
/// `Unavailable`. Files above 1 MiB are refused.
///
/// Reads use blocking file I/O: secrets are small and read rarely (at
/// start-up and on rotation).
#[derive(Debug, Clone)]
pub struct FileSecretProvider {
    root: PathBuf,
}

impl FileSecretProvider {
    /// Serve secrets from `dir`.
    ///
    /// # Errors
    /// `Misconfigured` if `dir` does not exist or is not a directory.
    pub fn new(dir: impl AsRef<Path>) -> Result<Self> {
        let root = std::fs::canonicalize(dir.as_ref()).map_err(|_| {
            Error::misconfigured("secrets.dir", "the secret directory does not exist")
        })?;
        if !root.is_dir() {
            return Err(Error::misconfigured(
                "secrets.dir",
                "the secret path is not a directory",
            ));
        }
        Ok(Self { root })
    }

    /// The canonical directory secrets are read from.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.root
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = match std::fs::canonicalize(self.root.join(name)) {
            Ok(path) => path,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                return Ok(None);
            }
            Err(e) => return Err(Error::unavailable("secret directory", e)),
        };
        if !path.starts_with(&self.root) {
            return Err(Error::misconfigured(
                "secrets.dir",
                "a secret resolves outside the secret directory",
            ));
        }
        let file =
            std::fs::File::open(&path).map_err(|e| Error::unavailable("secret directory", e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::unavailable("secret directory", e))?;
        if !meta.is_file() {
            return Err(Error::misconfigured(
                "secrets.dir",
                "a secret name resolves to a non-file",
            ));
        }
        if meta.len() > MAX_SECRET_FILE {
            return Err(Error::misconfigured(
                "secrets.dir",
                "a secret file is larger than 1 MiB",
            ));
        }
        // Sized up front so the secret is never copied by a reallocation
        // (a freed, unzeroized copy).
        let mut value =
            Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).saturating_add(1));
        file.take(MAX_SECRET_FILE + 1)
            .read_to_end(&mut value)
            .map_err(|e| Error::unavailable("secret directory", e))?;
        Ok(Some(value))
    }
}

#[async_trait::async_trait]
impl SecretProvider for FileSecretProvider {
    fn describe(&self) -> String {
        format!("file:{}", self.root.display())
    }

    async fn get(&self, name: &str) -> Result<Option<SecretValue>> {
        validate_secret_name(name)?;
        Ok(self
            .read(name)?
            .map(|v| SecretValue::new(SecretBytes::new(v))))
    }
}
