//! [`LocalKeyWrapper`]: envelope-encryption KEKs held in process memory.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::RwLock;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use docaiche_core::key_wrapper::{DataKey, KeyWrapper, WrappedKey};
use docaiche_core::{Error, Result, SecretBytes};

use crate::trace::traced;

/// Bytes in an AES-256 key (KEK and data key alike).
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Wraps data keys with AES-256-GCM under versioned key-encryption keys
/// (KEKs) held in memory.
///
/// - `WrappedKey.ciphertext` is `nonce (12 bytes) || ciphertext || tag (16 bytes)`,
///   with a random 96-bit nonce per wrap; the caller's `context` is the AEAD
///   associated data, so a wrapped key only opens under the same context.
/// - [`LocalKeyWrapper::rotate`] adds a new version that wraps from then on;
///   older versions still unwrap until
///   [`LocalKeyWrapper::set_min_decryption_version`] retires them.
///   [`KeyWrapper::rewrap`] moves a wrapped key to the latest version.
/// - A tampered, foreign (other `kek_id`), unknown-version or retired
///   wrapped key is `Error::Internal` with a fixed message that says nothing
///   about the key.
/// - KEKs are [`SecretBytes`]: zeroized when the wrapper is dropped, and the
///   wrapper's `Debug` shows versions only.
///
/// Random 96-bit nonces are safe for about 2³² wraps per KEK version;
/// rotate well before that.
///
/// ```
/// # futures_block_on(async {
/// use docaiche_core::KeyWrapper;
/// use docaiche_store::LocalKeyWrapper;
///
/// let wrapper = LocalKeyWrapper::generate();
/// let key = wrapper.generate_data_key(b"tenant=acme;purpose=documents").await?;
/// let again = wrapper.unwrap_key(&key.wrapped, b"tenant=acme;purpose=documents").await?;
/// assert_eq!(again.expose_secret(), key.plaintext.expose_secret());
/// assert!(wrapper.unwrap_key(&key.wrapped, b"tenant=globex;purpose=documents").await.is_err());
/// # Ok::<(), docaiche_core::Error>(()) }).unwrap();
/// # fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct LocalKeyWrapper {
    kek_id: String,
    keys: RwLock<Keys>,
}

struct Keys {
    versions: BTreeMap<u32, SecretBytes>,
    min_decryption_version: u32,
}

impl Keys {
    fn latest(&self) -> Result<(u32, &SecretBytes)> {
        self.versions
            .last_key_value()
            .map(|(v, k)| (*v, k))
            .ok_or_else(|| Error::internal("local key wrapper has no key"))
    }
}

/// The one answer to every unwrap failure: says nothing about why.
fn unwrap_failed() -> Error {
    Error::internal("wrapped key failed authentication")
}

fn random_key() -> SecretBytes {
    let mut key = SecretBytes::new(vec![0; KEY_LEN]);
    OsRng.fill_bytes(key.expose_secret_mut());
    key
}

fn seal(kek: &SecretBytes, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>> {
    let cipher = Aes256Gcm::new_from_slice(kek.expose_secret())
        .map_err(|_| Error::internal("key encryption key has the wrong length"))?;
    let mut nonce = [0_u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: context,
            },
        )
        .map_err(|_| Error::internal("data key encryption failed"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

impl LocalKeyWrapper {
    /// The default `kek_id` written into wrapped keys.
    pub const DEFAULT_KEK_ID: &'static str = "local";

    /// A wrapper with one fresh random KEK, version 1.
    #[must_use]
    pub fn generate() -> Self {
        Self::with_version(1, random_key())
    }

    /// A wrapper holding `key` (32 bytes) as KEK `version` (≥ 1), e.g. read
    /// from a [`SecretProvider`](docaiche_core::SecretProvider).
    ///
    /// # Errors
    /// `Misconfigured` if the key is not 32 bytes or the version is 0.
    pub fn from_key_bytes(version: u32, key: SecretBytes) -> Result<Self> {
        check_key(version, &key)?;
        Ok(Self::with_version(version, key))
    }

    /// Add an older or newer KEK version (to load several from storage).
    ///
    /// # Errors
    /// `Misconfigured` if the key is not 32 bytes, the version is 0 or
    /// already present.
    pub fn with_key_bytes(self, version: u32, key: SecretBytes) -> Result<Self> {
        check_key(version, &key)?;
        {
            let mut keys = self.write();
            if keys.versions.contains_key(&version) {
                return Err(Error::misconfigured(
                    "kek.version",
                    "this key version is already loaded",
                ));
            }
            keys.versions.insert(version, key);
        }
        Ok(self)
    }

    /// Write `kek_id` into wrapped keys instead of [`Self::DEFAULT_KEK_ID`];
    /// wrapped keys naming another id are refused.
    #[must_use]
    pub fn with_kek_id(mut self, kek_id: impl Into<String>) -> Self {
        self.kek_id = kek_id.into();
        self
    }

    fn with_version(version: u32, key: SecretBytes) -> Self {
        Self {
            kek_id: Self::DEFAULT_KEK_ID.to_owned(),
            keys: RwLock::new(Keys {
                versions: BTreeMap::from([(version, key)]),
                min_decryption_version: 1,
            }),
        }
    }

    /// The KEK id written into wrapped keys.
    #[must_use]
    pub fn kek_id(&self) -> &str {
        &self.kek_id
    }

    /// The version new keys are wrapped under.
    #[must_use]
    pub fn latest_version(&self) -> u32 {
        self.read().versions.last_key_value().map_or(0, |(v, _)| *v)
    }

    /// The oldest version that still unwraps.
    #[must_use]
    pub fn min_decryption_version(&self) -> u32 {
        self.read().min_decryption_version
    }

    /// Add a fresh random KEK as the next version and wrap under it from now
    /// on. Returns the new version.
    ///
    /// # Errors
    /// `Internal` if the version counter is exhausted.
    pub fn rotate(&self) -> Result<u32> {
        let mut keys = self.write();
        let next = keys
            .versions
            .last_key_value()
            .map_or(Some(1), |(v, _)| v.checked_add(1))
            .ok_or_else(|| Error::internal("key version counter exhausted"))?;
        keys.versions.insert(next, random_key());
        Ok(next)
    }

    /// Refuse to unwrap keys wrapped under versions below `version` (after
    /// every stored key has been rewrapped). Lowering it again re-enables
    /// the old versions, which are kept.
    ///
    /// # Errors
    /// `InvalidInput` if `version` is 0 or above the latest version.
    pub fn set_min_decryption_version(&self, version: u32) -> Result<()> {
        let mut keys = self.write();
        let latest = keys.latest()?.0;
        if version == 0 || version > latest {
            return Err(Error::invalid_input(
                "minimum decryption version must be between 1 and the latest version",
            ));
        }
        keys.min_decryption_version = version;
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wrap(&self, plaintext: &SecretBytes, context: &[u8]) -> Result<WrappedKey> {
        let keys = self.read();
        let (version, kek) = keys.latest()?;
        let ciphertext = seal(kek, plaintext.expose_secret(), context)?;
        Ok(WrappedKey::new(self.kek_id.clone(), version, ciphertext))
    }

    fn open(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<SecretBytes> {
        if wrapped.kek_id != self.kek_id
            || wrapped.ciphertext.len() != NONCE_LEN + KEY_LEN + TAG_LEN
        {
            return Err(unwrap_failed());
        }
        let keys = self.read();
        if wrapped.kek_version < keys.min_decryption_version {
            return Err(unwrap_failed());
        }
        let kek = keys
            .versions
            .get(&wrapped.kek_version)
            .ok_or_else(unwrap_failed)?;
        let cipher = Aes256Gcm::new_from_slice(kek.expose_secret()).map_err(|_| unwrap_failed())?;
        let (nonce, sealed) = wrapped.ciphertext.split_at(NONCE_LEN);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context,
                },
            )
            .map(SecretBytes::new)
            .map_err(|_| unwrap_failed())
    }
}

fn check_key(version: u32, key: &SecretBytes) -> Result<()> {
    if version == 0 {
        return Err(Error::misconfigured(
            "kek.version",
            "key versions start at 1",
        ));
    }
    if key.len() != KEY_LEN {
        return Err(Error::misconfigured(
            "kek.key",
            "a key encryption key must be 32 bytes",
        ));
    }
    Ok(())
}

impl fmt::Debug for LocalKeyWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.read();
        f.debug_struct("LocalKeyWrapper")
            .field("kek_id", &self.kek_id)
            .field("versions", &keys.versions.keys().collect::<Vec<_>>())
            .field("min_decryption_version", &keys.min_decryption_version)
            .finish()
    }
}

#[async_trait::async_trait]
impl KeyWrapper for LocalKeyWrapper {
    async fn generate_data_key(&self, context: &[u8]) -> Result<DataKey> {
        traced!("local", "transit", "generate_data_key", async move {
            let plaintext = random_key();
            let wrapped = self.wrap(&plaintext, context)?;
            Ok(DataKey::new(plaintext, wrapped))
        })
        .await
    }

    async fn unwrap_key(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<SecretBytes> {
        traced!("local", "transit", "unwrap_key", async move {
            self.open(wrapped, context)
        })
        .await
    }

    async fn rewrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<WrappedKey> {
        traced!("local", "transit", "rewrap", async move {
            let plaintext = self.open(wrapped, context)?;
            self.wrap(&plaintext, context)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretBytes {
        SecretBytes::new(vec![byte; KEY_LEN])
    }

    #[tokio::test]
    async fn wrapped_keys_are_nonce_then_ciphertext_and_tag() {
        let wrapper = LocalKeyWrapper::from_key_bytes(3, key(7)).expect("valid key");
        let a = wrapper.generate_data_key(b"ctx").await.expect("wraps");
        let b = wrapper.generate_data_key(b"ctx").await.expect("wraps");
        assert_eq!(a.wrapped.kek_id, "local");
        assert_eq!(a.wrapped.kek_version, 3);
        assert_eq!(a.wrapped.ciphertext.len(), NONCE_LEN + KEY_LEN + TAG_LEN);
        assert_ne!(
            a.wrapped.ciphertext[..NONCE_LEN],
            b.wrapped.ciphertext[..NONCE_LEN],
            "random nonces"
        );
    }

    #[tokio::test]
    async fn the_same_kek_unwraps_across_instances_and_another_does_not() {
        let first = LocalKeyWrapper::from_key_bytes(1, key(7)).expect("valid key");
        let data = first.generate_data_key(b"ctx").await.expect("wraps");
        let restarted = LocalKeyWrapper::from_key_bytes(1, key(7)).expect("valid key");
        let back = restarted
            .unwrap_key(&data.wrapped, b"ctx")
            .await
            .expect("same KEK");
        assert_eq!(back.expose_secret(), data.plaintext.expose_secret());
        let other = LocalKeyWrapper::from_key_bytes(1, key(8)).expect("valid key");
        let err = other
            .unwrap_key(&data.wrapped, b"ctx")
            .await
            .expect_err("another KEK");
        assert_eq!(err.code(), docaiche_core::ErrorCode::Internal);
        assert_eq!(
            err.to_string(),
            "internal error: wrapped key failed authentication"
        );
    }

    #[tokio::test]
    async fn older_versions_load_beside_the_latest() {
        let old = LocalKeyWrapper::from_key_bytes(1, key(1)).expect("valid key");
        let data = old.generate_data_key(b"ctx").await.expect("wraps");
        let both = LocalKeyWrapper::from_key_bytes(2, key(2))
            .and_then(|w| w.with_key_bytes(1, key(1)))
            .expect("valid keys");
        assert_eq!(both.latest_version(), 2);
        let moved = both.rewrap(&data.wrapped, b"ctx").await.expect("rewraps");
        assert_eq!(moved.kek_version, 2);
        assert!(
            both.with_key_bytes(2, key(3)).is_err(),
            "a version loads once"
        );
    }

    #[test]
    fn bad_keys_and_versions_are_refused() {
        assert!(LocalKeyWrapper::from_key_bytes(1, SecretBytes::new(vec![0; 16])).is_err());
        assert!(LocalKeyWrapper::from_key_bytes(0, key(1)).is_err());
        let wrapper = LocalKeyWrapper::generate();
        assert!(wrapper.set_min_decryption_version(0).is_err());
        assert!(
            wrapper.set_min_decryption_version(2).is_err(),
            "above the latest version"
        );
        assert_eq!(wrapper.rotate().expect("rotates"), 2);
        wrapper.set_min_decryption_version(2).expect("now valid");
        assert_eq!(wrapper.min_decryption_version(), 2);
    }

    #[test]
    fn debug_shows_versions_not_keys() {
        let wrapper = LocalKeyWrapper::from_key_bytes(1, key(0xAB)).expect("valid key");
        let printed = format!("{wrapper:?}");
        assert!(printed.contains("versions: [1]"), "{printed}");
        assert!(
            !printed.contains("171") && !printed.to_lowercase().contains("abab"),
            "{printed}"
        );
    }
}
