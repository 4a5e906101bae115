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
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

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
    ///
    /// A key is a plain `details` key (`"email"`) or a dotted path into
    /// nested objects (`"subjects.account"` hashes only
    /// `details["subjects"]["account"]`); see [`DetailHasher::protect_path`].
    /// Keys naming nothing in the event are skipped.
    ///
    /// ```
    /// # use docaiche_compliance::audit::DetailHasher;
    /// # use docaiche_core::audit::{AuditEvent, AuditOutcome};
    /// # use docaiche_core::{RequestContext, SecretBytes};
    /// # let hasher = DetailHasher::from_bytes(&SecretBytes::from(vec![42u8; 32]))?;
    /// let event = AuditEvent::new("auth.failure", AuditOutcome::Failure,
    ///         time::OffsetDateTime::UNIX_EPOCH, &RequestContext::new())
    ///     .with_detail("subjects", serde_json::json!({
    ///         "account": "alice@example.com",
    ///         "client_addr": "192.0.2.7",
    ///     }));
    /// let event = hasher.protect(event, &["subjects.account"]);
    /// let subjects = &event.details["subjects"];
    /// assert_eq!(subjects["account"], hasher.hash_str("alice@example.com"));
    /// assert_eq!(subjects["client_addr"], "192.0.2.7");
    /// # Ok::<(), docaiche_core::Error>(())
    /// ```
    #[must_use]
    pub fn protect(&self, mut event: AuditEvent, keys: &[&str]) -> AuditEvent {
        for key in keys {
            self.protect_path(&mut event, key);
        }
        event
    }

    /// Replace the value `path` names in `event.details` with its keyed
    /// hash, in place.
    ///
    /// - A `details` key equal to the whole of `path` is hashed (a plain
    ///   key, or a key that itself contains dots).
    /// - A dotted `path` also walks nested objects: `"a.b.c"` names
    ///   `details["a"]["b"]["c"]`. An array met on the way applies the rest
    ///   of the path to each element (`"recipients.email"` hashes the
    ///   `email` of every object in `recipients`).
    /// - Strings hash their text, anything else its compact JSON (a path
    ///   ending on an object hashes the whole object); values already
    ///   hashed ([`HASHED_PREFIX`]) are left alone.
    pub fn protect_path(&self, event: &mut AuditEvent, path: &str) {
        if let Some(value) = event.details.get_mut(path) {
            self.replace(value);
        }
        let Some((first, rest)) = path.split_once('.') else {
            return;
        };
        let rest: Vec<&str> = rest.split('.').collect();
        if let Some(value) = event.details.get_mut(first) {
            self.protect_at(value, &rest);
        }
    }

    fn protect_at(&self, value: &mut serde_json::Value, path: &[&str]) {
        let Some((head, rest)) = path.split_first() else {
            self.replace(value);
            return;
        };
        match value {
            serde_json::Value::Object(map) => {
                if let Some(inner) = map.get_mut(*head) {
                    self.protect_at(inner, rest);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    self.protect_at(item, path);
                }
            }
            _ => {}
        }
    }

    fn replace(&self, value: &mut serde_json::Value) {
        let already = value.as_str().is_some_and(|s| s.starts_with(HASHED_PREFIX));
        if !already {
            *value = serde_json::Value::String(self.hash_value(value));
        }
    }
}

/// Derive a 32-byte key for one purpose from `base`:
/// `HMAC-SHA-256(key = base, message = label)`.
///
/// Distinct labels give independent keys, so one stored secret (the audit
/// checkpoint key) can stand in for several when the dedicated secrets are
/// not configured, without a key of one purpose revealing or forging the
/// other's values. Labels are versioned names such as
/// `"docaiche/audit-detail-hash/v1"`; changing a label changes every
/// hash made with the derived key.
///
/// ```
/// use docaiche_compliance::audit::{DetailHasher, derive_key};
/// use docaiche_core::SecretBytes;
///
/// let checkpoint_key = SecretBytes::from(vec![7u8; 32]);
/// let detail_key = derive_key(&checkpoint_key, "docaiche/audit-detail-hash/v1");
/// assert_eq!(detail_key.len(), 32);
/// assert!(detail_key.expose_secret() != checkpoint_key.expose_secret());
/// let hasher = DetailHasher::from_bytes(&detail_key)?;
/// # let _ = hasher; Ok::<(), docaiche_core::Error>(())
/// ```
#[must_use]
pub fn derive_key(base: &SecretBytes, label: &str) -> SecretBytes {
    // HMAC's own key schedule (RFC 2104 section 2): a key longer than the
    // 64-byte block is hashed first, a shorter one padded with zeros. Done
    // here so the construction is infallible, without `new_from_slice`'s
    // (never failing) `Result`.
    let key = base.expose_secret();
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <HmacSha256 as KeyInit>::new(&block.into());
    block.fill(0);
    mac.update(label.as_bytes());
    SecretBytes::from(mac.finalize().into_bytes().to_vec())
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

    fn event() -> AuditEvent {
        AuditEvent::new(
            "auth.failure",
            docaiche_core::audit::AuditOutcome::Failure,
            time::OffsetDateTime::UNIX_EPOCH,
            &docaiche_core::RequestContext::new(),
        )
    }

    #[test]
    fn dotted_paths_hash_only_the_nested_value() {
        let h = DetailHasher::from_bytes(&vec![1u8; 32].into()).unwrap();
        let e = event()
            .with_detail(
                "subjects",
                serde_json::json!({"account": "a@x.y", "client_addr": "192.0.2.1"}),
            )
            .with_detail(
                "deep",
                serde_json::json!({"a": {"b": {"c": 5}}, "b": "keep"}),
            )
            .with_detail(
                "recipients",
                serde_json::json!([{"email": "r1@x.y"}, {"email": "r2@x.y", "n": 1}, "loose"]),
            )
            .with_detail("email", "plain@x.y".into())
            .with_detail("dotted.key", "literal".into())
            .with_detail("count", 3.into());
        let p = h.protect(
            e,
            &[
                "subjects.account",
                "deep.a.b.c",
                "recipients.email",
                "email",
                "dotted.key",
                "missing.path",
                "count.nothing",
                "subjects.account.too_deep",
            ],
        );
        assert_eq!(p.details["subjects"]["account"], h.hash_str("a@x.y"));
        assert_eq!(p.details["subjects"]["client_addr"], "192.0.2.1");
        assert_eq!(p.details["deep"]["a"]["b"]["c"], h.hash_value(&5.into()));
        assert_eq!(p.details["deep"]["b"], "keep");
        assert_eq!(p.details["recipients"][0]["email"], h.hash_str("r1@x.y"));
        assert_eq!(p.details["recipients"][1]["email"], h.hash_str("r2@x.y"));
        assert_eq!(p.details["recipients"][1]["n"], 1);
        assert_eq!(p.details["recipients"][2], "loose");
        // Plain keys as before, a literal dotted key included.
        assert_eq!(p.details["email"], h.hash_str("plain@x.y"));
        assert_eq!(p.details["dotted.key"], h.hash_str("literal"));
        assert_eq!(p.details["count"], 3);
        assert!(!p.details.contains_key("missing"));
        // Protecting twice changes nothing; a whole object hashes as JSON.
        let again = h.protect(p.clone(), &["subjects.account", "email"]);
        assert_eq!(again, p);
        let whole = h.protect(p.clone(), &["subjects"]);
        assert_eq!(
            whole.details["subjects"],
            h.hash_value(&p.details["subjects"])
        );
    }

    #[test]
    fn derived_keys_are_hmac_of_the_label_and_separate_purposes() {
        let base = SecretBytes::from(vec![9u8; 32]);
        let a = derive_key(&base, "docaiche/audit-detail-hash/v1");
        let b = derive_key(&base, "docaiche/privacy-pseudonym/v1");
        assert_eq!(a.len(), 32);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.expose_secret(), base.expose_secret());
        // The same as HMAC-SHA-256 through `new_from_slice`, short and long keys.
        for key in [vec![9u8; 32], vec![1u8; 64], vec![2u8; 100], vec![]] {
            let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&key).unwrap();
            mac.update(b"label");
            let expected = mac.finalize().into_bytes().to_vec();
            assert_eq!(
                derive_key(&SecretBytes::from(key), "label").expose_secret(),
                &expected
            );
        }
    }
}
