//! Secret providers: environment variables, a directory of files, memory,
//! and a [`SecretChain`] that tries them in order.
//!
//! Every provider validates names with
//! [`validate_secret_name`](docaiche_core::secret_provider::validate_secret_name)
//! before touching its backend, never puts a secret value in an error or in
//! `Debug` output, and answers `Ok(None)` only when it positively does not
//! have the secret. Anything else (an unreadable file, a value that is not
//! UTF-8, a symlink leaving the directory) is an error, which stops a chain:
//! falling through to the next provider would silently pick a stale or
//! weaker secret.
//!
//! ```
//! # futures_block_on(async {
//! use std::sync::Arc;
//! use docaiche_core::{SecretProvider, SecretBytes};
//! use docaiche_store::secret::{EnvSecretProvider, MemorySecretProvider, SecretChain};
//!
//! let defaults = MemorySecretProvider::new()
//!     .with_secret("jwt/signing-key", SecretBytes::from(b"dev only".to_vec()))?;
//! // DOCAICHE_SECRET_JWT_SIGNING_KEY, when set, wins over the default.
//! let chain = SecretChain::new(vec![Arc::new(EnvSecretProvider::new()), Arc::new(defaults)]);
//! let key = chain.get("jwt/signing-key").await?.expect("a default exists");
//! assert!(!key.value.is_empty());
//! # Ok::<(), docaiche_core::Error>(()) }).unwrap();
//! # fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod chain;
mod env;
mod file;
mod memory;

pub use chain::SecretChain;
pub use env::EnvSecretProvider;
pub use file::FileSecretProvider;
pub use memory::MemorySecretProvider;

#[cfg(test)]
mod tests;
