//! The [`SecretProvider`] contract: where every secret the system needs
//! (signing keys, peppers, passwords) comes from. Never from code or a
//! committed file.

use std::fmt;

use crate::error::{Error, Result};
use crate::secret::SecretBytes;

/// A secret and its version (if the backend versions secrets, like Vault KV v2).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SecretValue {
    /// The value.
    pub value: SecretBytes,
    /// Backend version, if any.
    pub version: Option<u64>,
}

impl SecretValue {
    /// An unversioned secret.
    #[must_use]
    pub const fn new(value: SecretBytes) -> Self {
        Self {
            value,
            version: None,
        }
    }

    /// Set the version.
    #[must_use]
    pub const fn with_version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }
}

/// Check a secret name: 1–128 bytes of `[a-z0-9_./-]`, no `..` segment.
///
/// # Errors
/// [`Error::InvalidInput`] otherwise.
pub fn validate_secret_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'/' | b'-')
        })
        && !name
            .split('/')
            .any(|seg| seg == ".." || seg == "." || seg.is_empty());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "secret name must be lowercase path segments of [a-z0-9_.-]",
        ))
    }
}

/// A source of secrets, addressed by name (`jwt/signing-key`, `api-key/pepper`).
///
/// Contract:
/// - `get` returns `Ok(None)` when this provider does not have the secret, so
///   providers chain (environment → file → Vault): the first `Some` wins.
/// - Names are validated with [`validate_secret_name`] (no traversal).
/// - Secret values never appear in errors, logs or `Debug` output.
/// - An outage is `Err(Unavailable)`; a chain does not skip a provider that
///   is down (that would silently fall back to a stale or weaker secret).
#[async_trait::async_trait]
pub trait SecretProvider: Send + Sync + fmt::Debug + 'static {
    /// A short description for logs (`env`, `file:/run/secrets`, `vault:kv`).
    fn describe(&self) -> String;

    /// The current value of `name`, if this provider has it.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid name; `Unavailable` on outage.
    async fn get(&self, name: &str) -> Result<Option<SecretValue>>;
}
