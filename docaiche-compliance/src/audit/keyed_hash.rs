//! Keyed hashes of sensitive detail values.
//!
//! An audit record must let an auditor answer "did this e-mail address log
//! in from two countries?" without the trail holding the address. A plain
//! hash does not do that (e-mail addresses are few enough to guess and
//! hash), a keyed hash does: `HMAC-SHA-256(key, value)` matches across
//! records, and without the key it reveals nothing. The auditor who must
//! match a known value asks whoever holds the key to hash it.

use docaiche_core::audit::AuditEvent;
use docaiche_core::{Error, Result, SecretBytes, SecretProvider};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::record::MIN_KEY_LEN;

type HmacSha256 = Hmac<Sha256>;

/// What a hashed value is written as: `hmac-sha256:<64 hex>`.
pub const HASHED_PREFIX: &str = "hmac-sha256:";

const DOMAIN: &[u8] = b"docaiche-audit-detail-v1\n";

/// HMAC-SHA-256 over detail values, with a key from a [`SecretProvider`].
///
/// ```
/// use docaiche_compliance::audit::DetailHasher;
/// use docaiche_core::audit::{AuditEvent, AuditOutcome};
/// use docaiche_core::{RequestContext, SecretBytes};
///
/// let hasher = DetailHasher::from_bytes(&SecretBytes::from(vec![42u8; 32]))?;
/// let event = AuditEvent::new("auth.login", AuditOutcome::Denied,
///         time::OffsetDateTime::UNIX_EPOCH, &RequestContext::new())
///     .with_detail("email", serde_json::json!("alice@example.com"));
/// let event = hasher.protect(event, &["email"]);
/// let stored = event.details["email"].as_str().unwrap();
/// assert!(stored.starts_with("hmac-sha256:") && !stored.contains("alice"));
/// assert_eq!(stored, hasher.hash_str("alice@example.com"));
/// # Ok::<(), docaiche_core::Error>(())
/// ```
#[derive(Clone)]
pub struct DetailHasher {
    mac: HmacSha256,
}

impl std::fmt::Debug for DetailHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DetailHasher([REDACTED])")
    }
}

impl DetailHasher {
    /// The secret name loaded by default.
    pub const DEFAULT_SECRET: &'static str = "audit/detail-hash-key";

    /// A hasher over `key`.
    ///
    /// # Errors
    /// `InvalidInput` if the key is shorter than 32 bytes.
    pub fn from_bytes(key: &SecretBytes) -> Result<Self> {
        if key.len() < MIN_KEY_LEN {
            return Err(Error::invalid_input(
                "audit detail hash key must be at least 32 bytes",
            ));
        }
        let mac = HmacSha256::new_from_slice(key.expose_secret())
            .map_err(|_| Error::invalid_input("audit detail hash key is not usable"))?;
        Ok(Self { mac })
    }

    /// Load the key `name` from `provider`.
    ///
    /// # Errors
    /// `Misconfigured` when the secret is missing, `Unavailable` when the
    /// provider is down, `InvalidInput` when it is too short.
    pub async fn load(provider: &dyn SecretProvider, name: &str) -> Result<Self> {
        let value = provider
            .get(name)
            .await?
            .ok_or_else(|| Error::misconfigured(name.to_owned(), "secret is not set"))?;
        Self::from_bytes(&value.value)
    }

    /// The keyed hash of `value`'s bytes, as `hmac-sha256:<hex>`.
    #[must_use]
    pub fn hash_bytes(&self, value: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        mac.update(value);
        format!(
            "{HASHED_PREFIX}{}",
            hex::encode(mac.finalize().into_bytes())
        )
    }

    /// The keyed hash of a string.
    #[must_use]
    pub fn hash_str(&self, value: &str) -> String {
        self.hash_bytes(value.as_bytes())
    }

    /// The keyed hash of a JSON value: strings hash their text (so
    /// `hash_str` matches them), anything else its compact JSON.
    #[must_use]
    pub fn hash_value(&self, value: &serde_json::Value) -> String {
        match value {
            serde_json::Value::String(text) => self.hash_str(text),
            other => self.hash_bytes(other.to_string().as_bytes()),
        }
    }

    /// Replace the `details` entries named in `keys` with their keyed hashes
    /// (entries already hashed are left alone, so protecting twice is
    /// harmless).
    #[must_use]
    pub fn protect(&self, mut event: AuditEvent, keys: &[&str]) -> AuditEvent {
        for key in keys {
            if let Some(value) = event.details.get_mut(*key) {
                let already = value.as_str().is_some_and(|s| s.starts_with(HASHED_PREFIX));
                if !already {
                    *value = serde_json::Value::String(self.hash_value(value));
                }
            }
        }
        event
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_match_and_keys_separate() {
        let a = DetailHasher::from_bytes(&vec![1u8; 32].into()).unwrap();
        let b = DetailHasher::from_bytes(&vec![2u8; 32].into()).unwrap();
        assert_eq!(a.hash_str("x"), a.hash_str("x"));
        assert_ne!(a.hash_str("x"), a.hash_str("y"));
        assert_ne!(a.hash_str("x"), b.hash_str("x"));
        assert_eq!(a.hash_value(&serde_json::json!("x")), a.hash_str("x"));
        assert!(!format!("{a:?}").contains('1'));
    }
}
