//! [`SecretChain`].

use std::sync::Arc;

use docaiche_core::Result;
use docaiche_core::secret_provider::{SecretProvider, SecretValue, validate_secret_name};

/// Providers tried in order: the first `Some` wins.
///
/// An `Err` from any provider stops the chain and is returned as is: a
/// provider that is down is never skipped, because the next one might hold
/// an older or weaker secret (a development default, a pre-rotation key).
#[derive(Debug, Clone, Default)]
pub struct SecretChain {
    providers: Vec<Arc<dyn SecretProvider>>,
}

impl SecretChain {
    /// A chain trying `providers` in order.
    #[must_use]
    pub fn new(providers: Vec<Arc<dyn SecretProvider>>) -> Self {
        Self { providers }
    }

    /// Append a provider, tried after the current ones.
    #[must_use]
    pub fn then(mut self, provider: Arc<dyn SecretProvider>) -> Self {
        self.providers.push(provider);
        self
    }
}

#[async_trait::async_trait]
impl SecretProvider for SecretChain {
    fn describe(&self) -> String {
        let parts: Vec<String> = self.providers.iter().map(|p| p.describe()).collect();
        format!("chain({})", parts.join(", "))
    }

    async fn get(&self, name: &str) -> Result<Option<SecretValue>> {
        validate_secret_name(name)?;
        for provider in &self.providers {
            if let Some(value) = provider.get(name).await? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }
}
