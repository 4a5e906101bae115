//! Key material at start-up: check that the configured source is there, or
//! (development only) generate a local key file; and the generated
//! development secrets of `[auth]` (an API-key pepper, an Ed25519 JWT
//! signing key), kept under the data directory so that keys and tokens
//! survive a restart.
//!
//! The key itself is read and handed to `docaiche-store`'s
//! `LocalKeyWrapper` by `wiring::key_wrapper` (or, with
//! `encryption.key_wrapper = "vault"`, Vault Transit wraps the data keys and
//! this module is not used for them).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::io::{self, Read as _, Write as _};
use std::path::Path;

use docaiche_core::{Error, SecretBytes};

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
    ensure_generated_file(path, || random_key().map(|k| k.to_vec()))
}

/// A development secret kept in the file at `path`: read if it exists,
/// otherwise made by `make` and written (mode 0600, in a 0700 directory).
/// Returns the contents and whether the file was created.
///
/// # Errors
/// The file cannot be read or written.
pub(crate) fn generated_secret(
    path: &Path,
    make: impl FnOnce() -> io::Result<Vec<u8>>,
) -> io::Result<(SecretBytes, bool)> {
    let created = ensure_generated_file(path, make)?;
    Ok((SecretBytes::new(std::fs::read(path)?), created))
}

/// A fresh Ed25519 private key as a PKCS#8 PEM document (RFC 8410): the
/// fixed 16-byte DER header for an Ed25519 `OneAsymmetricKey` followed by a
/// 32-byte seed from the OS CSPRNG.
///
/// The PEM framing is written here (base64 from the `base64` crate) because
/// none of the example's dependencies generates Ed25519 keys; the result is
/// parsed and checked by `JwtKey::from_pem` before use.
///
/// # Errors
/// No random source.
pub(crate) fn ed25519_pem() -> io::Result<Vec<u8>> {
    const PKCS8_ED25519_HEADER: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = PKCS8_ED25519_HEADER.to_vec();
    der.extend_from_slice(&random_key()?);
    let mut pem = b"-----BEGIN PRIVATE KEY-----\n".to_vec();
    pem.extend_from_slice(STANDARD.encode(&der).as_bytes());
    pem.extend_from_slice(b"\n-----END PRIVATE KEY-----\n");
    Ok(pem)
}

/// Create the file at `path` with the bytes `make` returns unless it
/// exists. Returns whether it was created.
fn ensure_generated_file(
    path: &Path,
    make: impl FnOnce() -> io::Result<Vec<u8>>,
) -> io::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    let key = make()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // Exactly 0600, whatever the umask.
    crate::storage::set_private(&file)?;
    file.write_all(&key)?;
    file.sync_all()?;
    Ok(true)
}

/// Most files [`exposed_secret_files`] looks at under one directory.
const MAX_SECRET_FILES: usize = 1000;

/// Every secret file `config` names that the group or others may read, as
/// `(setting, reason)`: the files of `file:` references (`keys.source`,
/// `store.url_source`, `store.replica_url_source`, `revocation.url_source`,
/// `rate_limit.redis_url`, `metrics.token_source`, the `[secrets.vault]`
/// credentials), `keys.local_key_file`, `http.tls_key_file`, and the files
/// under the `[secrets]` directory sources, `auth.provider = "file:…"`
/// and `<data_dir>/keys` (at most
/// [`MAX_SECRET_FILES`] each, four levels deep). `Config::validate` makes
/// each a warning in development and a refusal in production: a secret
/// that others can read is a secret shared with them. Missing files are
/// left to the code that reads them. Unix only (elsewhere: none).
pub(crate) fn exposed_secret_files(config: &crate::config::Config) -> Vec<(String, String)> {
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    let mut reference = |setting: &str, value: Option<&String>| {
        if let Some(value) = value
            && SecretRef::looks_like_reference(value)
            && let Ok(SecretRef::File(path)) = SecretRef::parse(value)
        {
            files.push((setting.to_owned(), path));
        }
    };
    reference("keys.source", config.keys.source.as_ref());
    reference("store.url_source", config.store.url_source.as_ref());
    reference(
        "store.replica_url_source",
        config.store.replica_url_source.as_ref(),
    );
    reference(
        "revocation.url_source",
        config.revocation.url_source.as_ref(),
    );
    reference("rate_limit.redis_url", config.rate_limit.redis_url.as_ref());
    reference("metrics.token_source", config.metrics.token_source.as_ref());
    let vault = &config.secrets.vault;
    reference("secrets.vault.token_source", vault.token_source.as_ref());
    reference(
        "secrets.vault.role_id_source",
        vault.role_id_source.as_ref(),
    );
    reference(
        "secrets.vault.secret_id_source",
        vault.secret_id_source.as_ref(),
    );
    if let Some(path) = &config.keys.local_key_file {
        files.push(("keys.local_key_file".to_owned(), path.clone()));
    }
    if let Some(path) = &config.http.tls_key_file {
        files.push(("http.tls_key_file".to_owned(), path.clone()));
    }
    let mut dirs = vec![(
        "storage.data_dir".to_owned(),
        config.storage.data_dir.join("keys"),
    )];
    if let Ok(crate::config::AuthProvider::Dir(dir)) = config.auth.provider() {
        dirs.push(("auth.provider".to_owned(), dir));
    }
    for source in config.secrets.chain().unwrap_or_default() {
        if let crate::config::SecretSource::Dir(dir) = source {
            dirs.push(("secrets.sources".to_owned(), dir));
        }
    }
    for (setting, dir) in dirs {
        let mut found = Vec::new();
        files_under(&dir, 4, &mut found);
        files.extend(found.into_iter().map(|path| (setting.clone(), path)));
    }
    files
        .into_iter()
        .filter_map(|(setting, path)| {
            let mode = group_or_other_mode(&path)?;
            Some((
                setting,
                format!(
                    "the secret file {} has mode {mode:04o}: its group or other users can read \
                     it; chmod 600 it (owned by the server's user)",
                    path.display()
                ),
            ))
        })
        .collect()
}

/// Regular files under `dir` (symbolic links followed, `..`-prefixed
/// entries such as Kubernetes' `..data` skipped: their files are reached
/// through the links), down to `depth` levels, at most
/// [`MAX_SECRET_FILES`] in all.
fn files_under(dir: &Path, depth: usize, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if out.len() >= MAX_SECRET_FILES {
            return;
        }
        if entry.file_name().to_string_lossy().starts_with("..") {
            continue;
        }
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => out.push(path),
            Ok(meta) if meta.is_dir() && depth > 1 => files_under(&path, depth - 1, out),
            _ => {}
        }
    }
}

/// The permission bits of the file at `path` if its group or others may
/// read or write it (`None`: private, missing, or not Unix).
fn group_or_other_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o066 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// 32 bytes from the operating system's CSPRNG.
pub(crate) fn random_key() -> io::Result<[u8; KEY_LEN]> {
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

    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_can_read_is_a_warning_in_development_and_refused_in_production() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = TestDir::new("secret-mode");
        let key = dir.path().join("local.key");
        std::fs::write(&key, [7u8; 32]).expect("write");
        let chmod = |mode| {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        chmod(0o644);
        let mut config = crate::config::Config::default();
        config.storage.data_dir = dir.path().join("data");
        config.keys.local_key_file = Some(key.clone());
        let named = format!("the secret file {} has mode 0644", key.display());

        let warnings = config.validate().expect("development starts");
        assert!(
            warnings
                .iter()
                .any(|w| w.setting == "keys.local_key_file" && w.message.contains(&named)),
            "{warnings:?}"
        );

        config.environment = crate::config::Environment::Production;
        let refused = config
            .validate()
            .expect_err("production refuses")
            .to_string();
        assert!(
            refused.contains("keys.local_key_file") && refused.contains(&named),
            "{refused}"
        );

        // Group-readable is as bad; private is fine.
        chmod(0o640);
        assert_eq!(exposed_secret_files(&config).len(), 1);
        chmod(0o600);
        assert!(exposed_secret_files(&config).is_empty());
        config.environment = crate::config::Environment::Development;
        let warnings = config.validate().expect("development starts");
        assert!(!warnings.iter().any(|w| w.setting == "keys.local_key_file"));
    }

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
    fn a_generated_ed25519_key_is_a_usable_signing_key_kept_across_starts() {
        use docaiche_auth::jwt::{Algorithm, JwtKey};
        let dir = TestDir::new("keys-ed25519");
        let path = dir.path().join("keys/jwt.pem");
        let (first, created) = generated_secret(&path, ed25519_pem).expect("generated");
        assert!(created);
        let key = JwtKey::from_pem("k", Algorithm::EdDSA, first.expose_secret()).expect("valid");
        assert!(key.can_sign());
        assert!(key.public_jwk().is_some());
        let (second, created) = generated_secret(&path, ed25519_pem).expect("reused");
        assert!(!created);
        assert_eq!(first.expose_secret(), second.expose_secret());
        // Two generations differ.
        assert_ne!(ed25519_pem().expect("pem"), ed25519_pem().expect("pem"));
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
