//! Key material at start-up: check that the configured source is there, or
//! (development only) generate a local key file.
//!
//! This is a stopgap until `docaiche-store`'s local and Vault Transit
//! `KeyWrapper`s land: then this module hands the [`KeySource`] to them and
//! keeps no key logic of its own.

use std::io::{self, Read as _, Write as _};
use std::path::Path;

use docaiche_core::Error;

use crate::config::{KeySource, SecretRef};
use crate::storage::create_private_dir;

/// Length of a generated key: 256 bits, for AES-256-GCM key wrapping.
const KEY_LEN: usize = 32;

/// Make sure the key material named by `source` is available.
///
/// A generated development key is created once (mode 0600) and reused on
/// later starts, with a warning each time. `env:` and `file:` references and
/// local key files are checked for presence; `vault:` is checked when the
/// Vault adapter connects.
///
/// # Errors
/// [`Error::Misconfigured`] naming the setting whose key material is missing,
/// or [`Error::Internal`] if a development key cannot be written.
pub(crate) fn prepare(source: &KeySource) -> Result<(), Error> {
    match source {
        KeySource::Generated(path) => {
            let created = ensure_generated_key(path).map_err(|e| {
                Error::internal_with(
                    format!("cannot create the development key file {}", path.display()),
                    e,
                )
            })?;
            tracing::warn!(
                path = %path.display(),
                created,
                "using a generated development key; set keys.source or keys.local_key_file \
                 before storing real data"
            );
            Ok(())
        }
        KeySource::LocalFile(path) => require_file("keys.local_key_file", path),
        KeySource::Reference(SecretRef::File(path)) => require_file("keys.source", path),
        KeySource::Reference(SecretRef::Env(name)) => {
            if std::env::var_os(name).is_some_and(|v| !v.is_empty()) {
                Ok(())
            } else {
                Err(Error::misconfigured(
                    "keys.source",
                    format!("environment variable {name} is not set"),
                ))
            }
        }
        KeySource::Reference(SecretRef::Vault(path)) => {
            tracing::info!(
                path,
                "key source is Vault; checked when the Vault adapter connects"
            );
            Ok(())
        }
    }
}

/// Fail unless `path` is a readable regular file.
fn require_file(setting: &'static str, path: &Path) -> Result<(), Error> {
    match std::fs::File::open(path).and_then(|f| f.metadata()) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(Error::misconfigured(
            setting,
            format!("{} is not a regular file", path.display()),
        )),
        Err(e) => Err(Error::misconfigured(
            setting,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Create the key file at `path` with fresh random bytes unless it exists.
/// Returns whether it was created.
fn ensure_generated_key(path: &Path) -> io::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    let key = random_key()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(&key)?;
    file.sync_all()?;
    Ok(true)
}

/// 32 bytes from the operating system's CSPRNG.
fn random_key() -> io::Result<[u8; KEY_LEN]> {
    let mut key = [0u8; KEY_LEN];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("no /dev/urandom to generate a key ({e}); set keys.local_key_file"),
            )
        })?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestDir;

    #[test]
    fn a_development_key_is_generated_once_and_kept() {
        let dir = TestDir::new("keys");
        let path = dir.path().join("keys/development.key");
        prepare(&KeySource::Generated(path.clone())).expect("generated");
        let first = std::fs::read(&path).expect("key file");
        assert_eq!(first.len(), KEY_LEN);
        assert_ne!(first, [0u8; KEY_LEN]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        prepare(&KeySource::Generated(path.clone())).expect("reused");
        assert_eq!(std::fs::read(&path).expect("key file"), first);
    }

    #[test]
    fn a_missing_key_file_names_the_setting() {
        let dir = TestDir::new("keys-missing");
        let err = prepare(&KeySource::LocalFile(dir.path().join("nope"))).expect_err("missing");
        assert!(
            matches!(err, Error::Misconfigured { ref setting, .. } if setting == "keys.local_key_file")
        );
        let err = prepare(&KeySource::Reference(SecretRef::Env(
            "DOCAICHE_TEST_SURELY_UNSET_VARIABLE".into(),
        )))
        .expect_err("unset");
        assert!(
            matches!(err, Error::Misconfigured { ref setting, .. } if setting == "keys.source")
        );
    }
}
