//! Versioned server-side peppers: the HMAC keys API key hashes are made with.

use std::collections::BTreeMap;
use std::fmt;

use docaiche_core::secret::SecretBytes;
use docaiche_core::{Error, Result, SecretProvider};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// HMAC-SHA-256.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The shortest accepted pepper, in bytes (256 bits, the HMAC-SHA-256 block
/// strength).
pub const MIN_PEPPER_LEN: usize = 32;

/// The peppers (HMAC keys) API key hashes are computed with, by version.
///
/// New keys are hashed with the [`current`](Self::current) version; a key is
/// always verified with the version recorded next to its hash, so several
/// peppers can be active at once. To rotate: add version `n + 1` and make it
/// current; keys hashed under version `n` keep verifying as long as `n` is
/// configured; retire `n` once its keys have been rotated or have expired.
///
/// Each version holds a keyed HMAC state computed once (the inner and outer
/// pads), so hashing a key costs two SHA-256 compressions plus the key's own
/// blocks, not a key schedule per request.
#[derive(Clone)]
pub struct Peppers {
    current: u16,
    current_mac: HmacSha256,
    keyed: BTreeMap<u16, HmacSha256>,
}

impl Peppers {
    /// Peppers from values already in hand, with `current` used for new
    /// keys.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if a version is 0 (reserved for "no hash"),
    /// a pepper is shorter than [`MIN_PEPPER_LEN`] bytes, or `current` is
    /// not among the versions.
    pub fn new(
        current: u16,
        peppers: impl IntoIterator<Item = (u16, SecretBytes)>,
    ) -> Result<Self> {
        let mut keyed = BTreeMap::new();
        for (version, pepper) in peppers {
            if version == 0 {
                return Err(Error::misconfigured(
                    "api_keys.peppers",
                    "pepper version 0 is reserved",
                ));
            }
            if pepper.len() < MIN_PEPPER_LEN {
                return Err(Error::misconfigured(
                    "api_keys.peppers",
                    format!("pepper version {version} is shorter than {MIN_PEPPER_LEN} bytes"),
                ));
            }
            let mac = HmacSha256::new_from_slice(pepper.expose_secret())
                .map_err(|_| Error::internal("hmac-sha-256 rejected a key"))?;
            keyed.insert(version, mac);
        }
        let current_mac = keyed.get(&current).cloned().ok_or_else(|| {
            Error::misconfigured(
                "api_keys.peppers",
                format!("the current pepper version {current} is not configured"),
            )
        })?;
        Ok(Self {
            current,
            current_mac,
            keyed,
        })
    }

    /// Load `versions` from `provider` (each a `(version, secret name)`
    /// pair, e.g. `(1, "api-key/pepper-v1")`), with `current` used for new
    /// keys.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if a named secret is missing or invalid (see
    /// [`Peppers::new`]); the provider's error if it fails.
    pub async fn load(
        provider: &dyn SecretProvider,
        current: u16,
        versions: &[(u16, &str)],
    ) -> Result<Self> {
        let mut peppers = Vec::with_capacity(versions.len());
        for &(version, name) in versions {
            let value = provider.get(name).await?.ok_or_else(|| {
                Error::misconfigured(
                    "api_keys.peppers",
                    format!("secret `{name}` (pepper version {version}) is missing"),
                )
            })?;
            peppers.push((version, value.value));
        }
        Self::new(current, peppers)
    }

    /// The version new keys are hashed with.
    #[must_use]
    pub const fn current(&self) -> u16 {
        self.current
    }

    /// Whether `version` is configured.
    #[must_use]
    pub fn has_version(&self, version: u16) -> bool {
        self.keyed.contains_key(&version)
    }

    /// The keyed hash of `key` under the current pepper.
    #[must_use]
    pub fn hash_current(&self, key: &str) -> (u16, Vec<u8>) {
        let mut mac = self.current_mac.clone();
        mac.update(key.as_bytes());
        (self.current, mac.finalize().into_bytes().to_vec())
    }

    /// The configured versions, ascending.
    pub fn versions(&self) -> impl Iterator<Item = u16> + '_ {
        self.keyed.keys().copied()
    }

    /// A key for one purpose derived from pepper `version`: HMAC-SHA-256
    /// of `label` under it, what [`Peppers::hash_current`] computes under
    /// the current version (and how the server derives its device-cookie
    /// and account-token keys). Distinct labels give independent keys.
    /// `None` for a version that is not configured.
    #[must_use]
    pub fn derive_key(&self, version: u16, label: &str) -> Option<SecretBytes> {
        self.mac(version, label)
            .map(|mac| SecretBytes::new(mac.finalize().into_bytes().to_vec()))
    }

    /// Whether `key` hashes to `expected` under pepper `version`, compared in
    /// constant time. `false` for an unknown version.
    #[must_use]
    pub fn verify(&self, version: u16, key: &str, expected: &[u8]) -> bool {
        self.mac(version, key)
            .is_some_and(|mac| mac.verify_slice(expected).is_ok())
    }

    fn mac(&self, version: u16, key: &str) -> Option<HmacSha256> {
        let mut mac = self.keyed.get(&version)?.clone();
        mac.update(key.as_bytes());
        Some(mac)
    }
}

impl fmt::Debug for Peppers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peppers")
            .field("current", &self.current)
            .field("versions", &self.keyed.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper(byte: u8) -> SecretBytes {
        SecretBytes::new(vec![byte; 32])
    }

    #[test]
    fn verifies_with_the_recorded_version_after_rotation() {
        let old = Peppers::new(1, [(1, pepper(1))]).expect("valid");
        let (version, hash) = old.hash_current("dcx_key");
        let rotated = Peppers::new(2, [(1, pepper(1)), (2, pepper(2))]).expect("valid");
        assert!(rotated.verify(version, "dcx_key", &hash));
        assert!(!rotated.verify(2, "dcx_key", &hash), "other pepper");
        assert!(!rotated.verify(version, "dcx_kez", &hash));
        let retired = Peppers::new(2, [(2, pepper(2))]).expect("valid");
        assert!(!retired.verify(version, "dcx_key", &hash));
    }

    #[test]
    fn derived_keys_match_hash_current_and_differ_by_version_and_label() {
        let peppers = Peppers::new(2, [(1, pepper(1)), (2, pepper(2))]).expect("valid");
        let (_, current) = peppers.hash_current("label");
        let derived = peppers.derive_key(2, "label").expect("configured");
        assert_eq!(derived.expose_secret(), &current);
        let old = peppers.derive_key(1, "label").expect("configured");
        assert_ne!(old.expose_secret(), derived.expose_secret());
        let other = peppers.derive_key(2, "other").expect("configured");
        assert_ne!(other.expose_secret(), derived.expose_secret());
        assert!(peppers.derive_key(3, "label").is_none());
        assert_eq!(peppers.versions().collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn rejects_weak_or_inconsistent_configuration() {
        assert!(Peppers::new(1, [(1, SecretBytes::new(vec![1; 31]))]).is_err());
        assert!(Peppers::new(0, [(0, pepper(1))]).is_err());
        assert!(Peppers::new(2, [(1, pepper(1))]).is_err());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let p = Peppers::new(1, [(1, pepper(0x41))]).expect("valid");
        assert!(!format!("{p:?}").contains("AAAA"));
    }
}
