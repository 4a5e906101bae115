//! The wiring that turns a configuration into backends: the secret provider
//! chain (`[secrets]`: env → file → Vault KV v2), the store (`[store]`:
//! SQLite or PostgreSQL), the JWT revocation store (`[revocation]`: the
//! store or Redis) and the key wrapper of encryption at rest
//! (`[encryption]`: the local key of `[keys]` or Vault Transit), assembled
//! into an
//! [`EncryptedDocumentStore`](docaiche_store::encryption::EncryptedDocumentStore)
//! over the store's documents. One module each: `secrets`, `stores`,
//! `encryption`; the state built on them is `crate::state::AppState`.
//!
//! Backends a build lacks (`postgres`, `redis`, `vault` features) are
//! refused by `Config::validate` first; the refusals here repeat them for
//! callers that skip validation.
//!
//! Secrets are resolved once, at start-up. A missing required secret is an
//! [`Error::Misconfigured`](docaiche_core::Error::Misconfigured) naming the setting and the secret (never its
//! value), which stops start-up.

mod encryption;
mod secrets;
mod stores;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests;

pub(crate) use self::encryption::{encrypted_documents, key_wrapper};
pub(crate) use self::secrets::{Secrets, required_secret_names};
pub(crate) use self::stores::{StorePool, Stores};
