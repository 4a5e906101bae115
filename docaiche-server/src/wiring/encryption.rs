//! `[encryption]` into a key wrapper (the local key of `[keys]` or Vault
//! Transit) and the [`EncryptedDocumentStore`] over the store's documents.

use std::sync::Arc;

use docaiche_core::{DocumentStore, Error, KeyWrapper, SecretBytes};
use docaiche_store::encryption::{DataKeyStore, EncryptedDocumentStore};
use docaiche_store::key_wrapper::LocalKeyWrapper;

use crate::config::{Config, EnvLookup, KeySource, KeyWrapperKind, SecretRef};
use crate::wiring::Secrets;

/// Length of a local key-encryption key.
const KEY_LEN: usize = docaiche_store::key_wrapper::KEY_LEN;

/// The key wrapper `[encryption]` asks for: the local key of `[keys]`
/// (32 raw bytes, or 64 hex digits, in a file, a variable or a KV secret),
/// or Vault Transit.
///
/// # Errors
/// [`Error::Misconfigured`] naming the setting whose key is missing or
/// malformed, or the Transit key that is missing or not derived.
pub(crate) async fn key_wrapper(
    config: &Config,
    secrets: &Secrets,
    env: EnvLookup<'_>,
) -> Result<Arc<dyn KeyWrapper>, Error> {
    match config.encryption.key_wrapper {
        KeyWrapperKind::Local => {
            let (setting, bytes) = match config.key_source() {
                // Development: the generated key file (created if missing).
                KeySource::Generated(path) => {
                    let (key, _) = crate::keys::generated_secret(&path, || {
                        crate::keys::random_key().map(|k| k.to_vec())
                    })
                    .map_err(|e| {
                        Error::internal_with(
                            format!("cannot create the development key file {}", path.display()),
                            e,
                        )
                    })?;
                    ("keys.source", key.expose_secret().clone())
                }
                KeySource::LocalFile(path) => (
                    "keys.local_key_file",
                    read_key_file("keys.local_key_file", &path)?,
                ),
                KeySource::Reference(SecretRef::File(path)) => {
                    ("keys.source", read_key_file("keys.source", &path)?)
                }
                KeySource::Reference(_) => {
                    let source = config.keys.source.as_deref().unwrap_or_default();
                    let text = secrets.resolve("keys.source", source, env).await?;
                    ("keys.source", text.expose_secret().as_bytes().to_vec())
                }
            };
            let key = decode_key(setting, bytes)?;
            let wrapper = LocalKeyWrapper::from_key_bytes(1, key)
                .map_err(|e| Error::misconfigured(setting, e.to_string()))?;
            Ok(Arc::new(wrapper))
        }
        #[cfg(feature = "vault")]
        KeyWrapperKind::Vault => {
            let client = secrets.vault().cloned().ok_or_else(|| {
                Error::misconfigured("secrets.vault.address", "Vault is not configured")
            })?;
            let wrapper = docaiche_store::vault::TransitKeyWrapper::connect(
                client,
                config.encryption.transit_key.clone(),
            )
            .await
            .map_err(|e| match e {
                Error::Misconfigured { reason, .. } => Error::Misconfigured {
                    setting: "encryption.transit_key".into(),
                    reason,
                },
                other => other,
            })?;
            Ok(Arc::new(wrapper))
        }
        #[cfg(not(feature = "vault"))]
        KeyWrapperKind::Vault => Err(Error::misconfigured(
            "encryption.key_wrapper",
            crate::config::missing_feature("vault"),
        )),
    }
}

/// Read a key file.
fn read_key_file(setting: &'static str, path: &std::path::Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::misconfigured(setting, format!("cannot read {}: {e}", path.display())))
}

/// 32 raw bytes, or 64 hex digits (surrounding whitespace ignored).
pub(super) fn decode_key(setting: &'static str, bytes: Vec<u8>) -> Result<SecretBytes, Error> {
    let bytes = SecretBytes::new(bytes);
    let raw = bytes.expose_secret();
    if raw.len() == KEY_LEN {
        return Ok(bytes);
    }
    let text = raw.trim_ascii();
    let mut key = SecretBytes::new(vec![0_u8; KEY_LEN]);
    if hex::decode_to_slice(text, key.expose_secret_mut()).is_ok() {
        return Ok(key);
    }
    Err(Error::misconfigured(
        setting,
        "the key is neither 32 raw bytes nor 64 hex digits",
    ))
}

/// The documents store the routes use: `inner` encrypted at rest with
/// data keys kept (wrapped by `wrapper`) in `data_keys`, beside the
/// documents (SQLite or PostgreSQL), with the library's default cache of
/// unwrapped keys.
pub(crate) fn encrypted_documents(
    inner: Arc<dyn DocumentStore>,
    data_keys: Arc<dyn DataKeyStore>,
    wrapper: Arc<dyn KeyWrapper>,
) -> EncryptedDocumentStore {
    EncryptedDocumentStore::new(inner, data_keys, wrapper)
}
