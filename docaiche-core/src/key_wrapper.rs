//! The [`KeyWrapper`] contract: envelope encryption's key-encryption keys.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::secret::SecretBytes;

/// A data key encrypted under a key-encryption key (KEK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WrappedKey {
    /// Which KEK (e.g. a Transit key name, a local key file id).
    pub kek_id: String,
    /// The KEK version that wrapped it.
    pub kek_version: u32,
    /// The wrapped bytes (opaque; format is the wrapper's).
    pub ciphertext: Vec<u8>,
}

impl WrappedKey {
    /// A wrapped key from its parts.
    pub fn new(kek_id: impl Into<String>, kek_version: u32, ciphertext: Vec<u8>) -> Self {
        Self {
            kek_id: kek_id.into(),
            kek_version,
            ciphertext,
        }
    }
}

/// A fresh data key: the plaintext for immediate use (zeroized on drop) and
/// its wrapped form to store beside the data.
#[derive(Debug)]
#[non_exhaustive]
pub struct DataKey {
    /// 32 bytes for AES-256-GCM.
    pub plaintext: SecretBytes,
    /// The same key, wrapped.
    pub wrapped: WrappedKey,
}

impl DataKey {
    /// A data key from its parts.
    #[must_use]
    pub const fn new(plaintext: SecretBytes, wrapped: WrappedKey) -> Self {
        Self { plaintext, wrapped }
    }
}

/// Wraps and unwraps data keys under a KEK that never leaves the wrapper
/// (a local key file, Vault Transit).
///
/// Contract:
/// - `context` is bound to the wrapped key (AEAD associated data, or Vault's
///   derivation context): unwrapping with another context fails. Callers pass
///   the tenant and purpose, so a wrapped key copied to another tenant is useless.
/// - A tampered, foreign or too-old (below the minimum decryption version)
///   wrapped key is `Err(Internal)` with no plaintext.
/// - `rewrap` re-encrypts under the latest KEK version without exposing the
///   plaintext outside the wrapper where the backend supports it.
/// - An outage is `Err(Unavailable)`.
#[async_trait::async_trait]
pub trait KeyWrapper: Send + Sync + fmt::Debug + 'static {
    /// Generate a 256-bit data key, returned in plaintext and wrapped.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn generate_data_key(&self, context: &[u8]) -> Result<DataKey>;

    /// Recover the plaintext of a wrapped data key.
    ///
    /// # Errors
    /// `Internal` if it fails authentication; `Unavailable` on outage.
    async fn unwrap_key(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<SecretBytes>;

    /// Re-wrap under the latest KEK version.
    ///
    /// # Errors
    /// `Internal` if it fails authentication; `Unavailable` on outage.
    async fn rewrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<WrappedKey>;
}
