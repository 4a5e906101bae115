//! [`MemorySecretProvider`].

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use docaiche_core::secret_provider::{SecretProvider, SecretValue, validate_secret_name};
use docaiche_core::{Result, SecretBytes};

/// Secrets held in memory: for tests, and for defaults at the end of a chain.
///
/// Each [`MemorySecretProvider::insert`] of a name bumps its version
/// (1, 2, …), like a versioned secret store.
#[derive(Default)]
pub struct MemorySecretProvider {
    secrets: RwLock<HashMap<String, SecretValue>>,
}

impl MemorySecretProvider {
    /// An empty provider.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a secret (builder form of [`MemorySecretProvider::insert`]).
    ///
    /// # Errors
    /// `InvalidInput` for an invalid name.
    pub fn with_secret(self, name: &str, value: SecretBytes) -> Result<Self> {
        self.insert(name, value)?;
        Ok(self)
    }

    /// Set `name` to `value`, returning its new version.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid name.
    pub fn insert(&self, name: &str, value: SecretBytes) -> Result<u64> {
        validate_secret_name(name)?;
        let mut secrets = self
            .secrets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let version = secrets
            .get(name)
            .and_then(|s| s.version)
            .map_or(1, |v| v.saturating_add(1));
        secrets.insert(
            name.to_owned(),
            SecretValue::new(value).with_version(version),
        );
        Ok(version)
    }

    /// Remove `name`. Returns whether it was present.
    pub fn remove(&self, name: &str) -> bool {
        self.secrets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name)
            .is_some()
    }
}

impl fmt::Debug for MemorySecretProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self
            .secrets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        f.debug_struct("MemorySecretProvider")
            .field("secrets", &count)
            .finish()
    }
}

#[async_trait::async_trait]
impl SecretProvider for MemorySecretProvider {
    fn describe(&self) -> String {
        "memory".to_owned()
    }

    async fn get(&self, name: &str) -> Result<Option<SecretValue>> {
        validate_secret_name(name)?;
        Ok(self
            .secrets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned())
    }
}
