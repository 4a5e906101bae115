//! [`TransitKeyWrapper`]: data keys wrapped by a Vault Transit key.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use docaiche_core::key_wrapper::{DataKey, KeyWrapper, WrappedKey};
use docaiche_core::secret::{SecretBytes, SecretString};
use docaiche_core::{Error, Result};
use reqwest::Method;
use serde::Deserialize;

use super::client::{Reply, VaultClient, VaultStatus, parse, status_error};
use super::config::check_name;
use crate::trace::traced;

/// Prefixed to every caller context before it becomes Vault's derivation
/// context: Vault refuses an empty context for a derived key, and the
/// contract lets callers pass one. Prefixing *every* context keeps the
/// mapping one-to-one (an empty context and the label itself never collide).
const CONTEXT_LABEL: &[u8] = b"docaiche/v1:";

/// Data keys are 256-bit (AES-256-GCM).
const DATA_KEY_BYTES: usize = 32;

/// A [`KeyWrapper`] over a Vault Transit key.
///
/// - `generate_data_key` asks `datakey/plaintext/<key>` for a 256-bit key:
///   Vault generates it and returns it both in plaintext (decoded straight
///   into a zeroizing [`SecretBytes`]) and encrypted under the Transit key.
/// - `unwrap_key` is `decrypt/<key>`; `rewrap` is `rewrap/<key>`, which
///   re-encrypts under the latest key version inside Vault, so the plaintext
///   never leaves Vault for a rewrap.
/// - The caller's context is bound through Vault's key derivation: the
///   Transit key must be created with `derived=true`
///   ([`TransitKeyWrapper::ensure_key`] does), so unwrapping with another
///   context fails. Vault silently *ignores* a context sent to a key that is
///   not derived, so the wrapper checks the key (`GET keys/<key>`) before its
///   first operation and refuses to work with one that is not derived
///   (`Misconfigured`): fail closed rather than wrap keys that any tenant
///   could unwrap. [`TransitKeyWrapper::connect`] runs that check up front.
/// - [`WrappedKey::ciphertext`] is Vault's ciphertext string as UTF-8
///   (`vault:v1:…`), and `kek_version` its `vN`. Before a wrapped key is sent
///   to Vault it is checked here: this key's name, a canonical `vault:vN:`
///   prefix agreeing with `kek_version`, strict canonical base64. Anything
///   else, and anything Vault cannot decrypt, is `Internal` with no plaintext;
///   a version below the key's `min_decryption_version` says so in its message.
/// - Rotation is [`TransitKeyWrapper::rotate`] and retiring old versions
///   [`TransitKeyWrapper::set_min_decryption_version`] (they need a token
///   allowed to `keys/<key>/rotate` and `keys/<key>/config`; the wrapper
///   itself needs `update` on `datakey/plaintext/<key>`, `decrypt/<key>` and
///   `rewrap/<key>`, and `read` on `keys/<key>` for the check above).
#[derive(Clone)]
pub struct TransitKeyWrapper {
    client: VaultClient,
    mount: String,
    key: String,
    /// Set once the key was seen to be derived.
    checked: Arc<tokio::sync::OnceCell<()>>,
}

impl fmt::Debug for TransitKeyWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransitKeyWrapper")
            .field("client", &self.client)
            .field("mount", &self.mount)
            .field("key", &self.key)
            .field("checked", &self.checked.initialized())
            .finish()
    }
}

/// What Vault says about a Transit key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransitKeyInfo {
    /// The version new data keys are wrapped under.
    pub latest_version: u32,
    /// Wrapped keys below this version are refused.
    pub min_decryption_version: u32,
    /// Whether the key derives per-context keys (required).
    pub derived: bool,
    /// The key type, e.g. `aes256-gcm96`.
    pub key_type: String,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct KeyData {
    latest_version: u32,
    #[serde(default)]
    min_decryption_version: u32,
    #[serde(default)]
    derived: bool,
    #[serde(rename = "type", default)]
    key_type: String,
}

#[derive(Deserialize)]
struct Plaintext {
    plaintext: SecretString,
}

#[derive(Deserialize)]
struct Ciphertext {
    ciphertext: String,
}

#[derive(Deserialize)]
struct DataKeyData {
    plaintext: SecretString,
    ciphertext: String,
}

impl TransitKeyWrapper {
    /// A wrapper for the Transit key `key` on `client`'s Transit mount. Sends
    /// nothing; see [`TransitKeyWrapper::connect`].
    ///
    /// # Errors
    /// `Misconfigured` for a key name other than 1–128 bytes of `[A-Za-z0-9_.-]`.
    pub fn new(client: VaultClient, key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        check_name("vault.transit.key", &key)?;
        Ok(Self {
            mount: client.config().transit_mount.clone(),
            client,
            key,
            checked: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// [`TransitKeyWrapper::new`], then check that the key exists and is
    /// derived: fail at start-up rather than at the first document.
    ///
    /// # Errors
    /// `Misconfigured` if the key is missing or not derived; `Unavailable`
    /// on outage.
    pub async fn connect(client: VaultClient, key: impl Into<String>) -> Result<Self> {
        let wrapper = Self::new(client, key)?;
        wrapper.check_key().await?;
        Ok(wrapper)
    }

    /// The Transit key's name (the [`WrappedKey::kek_id`] of its keys).
    #[must_use]
    pub fn key_name(&self) -> &str {
        &self.key
    }

    /// The client (for its stats and health check).
    #[must_use]
    pub fn client(&self) -> &VaultClient {
        &self.client
    }

    /// Create the key (`aes256-gcm96`, `derived=true`) if it does not exist,
    /// and check it.
    ///
    /// # Errors
    /// `Misconfigured` if a key of that name exists but is not derived, or
    /// the token may not create keys; `Unavailable` on outage.
    pub async fn ensure_key(&self) -> Result<TransitKeyInfo> {
        let path = format!("{}/keys/{}", self.mount, self.key);
        let body = br#"{"type":"aes256-gcm96","derived":true}"#;
        let reply = self
            .client
            .call("transit key creation", Method::POST, &path, Some(body))
            .await?;
        if !matches!(reply.status, 200 | 204) {
            return Err(status_error("transit key creation", &reply));
        }
        self.key_info().await
    }

    /// Read the key's versions and settings.
    ///
    /// # Errors
    /// `Misconfigured` if the key does not exist or is not derived;
    /// `Unavailable` on outage.
    pub async fn key_info(&self) -> Result<TransitKeyInfo> {
        let path = format!("{}/keys/{}", self.mount, self.key);
        let reply = self
            .client
            .call("transit key read", Method::GET, &path, None)
            .await?;
        match reply.status {
            200 => {}
            404 => return Err(self.missing_key()),
            _ => return Err(status_error("transit key read", &reply)),
        }
        let data = parse::<Envelope<KeyData>>("transit key read", &reply.body)?.data;
        if !data.derived {
            return Err(Error::misconfigured(
                "vault.transit.key",
                format!(
                    "transit key `{}` was not created with derived=true, so it cannot bind the \
                     caller's context; create a derived key",
                    self.key
                ),
            ));
        }
        Ok(TransitKeyInfo {
            latest_version: data.latest_version,
            min_decryption_version: data.min_decryption_version,
            derived: data.derived,
            key_type: data.key_type,
        })
    }

    /// Add a key version; new data keys are wrapped under it. Returns it.
    ///
    /// # Errors
    /// `Misconfigured` without permission; `Unavailable` on outage.
    pub async fn rotate(&self) -> Result<u32> {
        let path = format!("{}/keys/{}/rotate", self.mount, self.key);
        let reply = self
            .client
            .call("transit rotate", Method::POST, &path, Some(b"{}"))
            .await?;
        if !matches!(reply.status, 200 | 204) {
            return Err(status_error("transit rotate", &reply));
        }
        Ok(self.key_info().await?.latest_version)
    }

    /// Refuse to unwrap (or rewrap) keys wrapped under versions below
    /// `version`: retire old versions after rewrapping everything.
    ///
    /// # Errors
    /// `Internal` if Vault refuses the version (above the latest);
    /// `Misconfigured` without permission; `Unavailable` on outage.
    pub async fn set_min_decryption_version(&self, version: u32) -> Result<()> {
        let path = format!("{}/keys/{}/config", self.mount, self.key);
        let body = format!(r#"{{"min_decryption_version":{version}}}"#);
        let reply = self
            .client
            .call(
                "transit key config",
                Method::POST,
                &path,
                Some(body.as_bytes()),
            )
            .await?;
        if !matches!(reply.status, 200 | 204) {
            return Err(status_error("transit key config", &reply));
        }
        Ok(())
    }

    /// Check once that the key exists and is derived.
    async fn check_key(&self) -> Result<()> {
        self.checked
            .get_or_try_init(|| async { self.key_info().await.map(|_| ()) })
            .await?;
        Ok(())
    }

    fn missing_key(&self) -> Error {
        Error::misconfigured(
            "vault.transit.key",
            format!(
                "transit key `{}` does not exist on mount `{}`; create it with derived=true",
                self.key, self.mount
            ),
        )
    }

    /// The request body for `ciphertext` (optional) under `context`.
    fn body(context: &[u8], ciphertext: Option<&str>) -> Result<Vec<u8>> {
        let mut derivation = Vec::with_capacity(CONTEXT_LABEL.len() + context.len());
        derivation.extend_from_slice(CONTEXT_LABEL);
        derivation.extend_from_slice(context);
        let mut body = serde_json::json!({ "context": STANDARD.encode(derivation) });
        match ciphertext {
            Some(ciphertext) => body["ciphertext"] = ciphertext.into(),
            None => body["bits"] = 256.into(),
        }
        serde_json::to_vec(&body)
            .map_err(|e| Error::internal_with("vault transit: cannot encode the body", e))
    }

    /// Check a wrapped key before it goes to Vault; its ciphertext string.
    fn ciphertext<'a>(&self, wrapped: &'a WrappedKey) -> Result<&'a str> {
        if wrapped.kek_id != self.key {
            return Err(Error::internal(
                "wrapped key belongs to another key-encryption key",
            ));
        }
        let malformed = || Error::internal("wrapped key is not a well-formed transit ciphertext");
        let text = std::str::from_utf8(&wrapped.ciphertext).map_err(|_| malformed())?;
        let (version, encoded) = split_ciphertext(text).ok_or_else(malformed)?;
        if version != wrapped.kek_version {
            return Err(malformed());
        }
        // Strict, canonical base64 (padding required, no stray trailing
        // bits), so that no two strings decode to the same ciphertext and
        // every change to the string is a change Vault's AEAD sees.
        let raw = STANDARD.decode(encoded).map_err(|_| malformed())?;
        // nonce (12) + tag (16) at least.
        if raw.len() < 28 {
            return Err(malformed());
        }
        Ok(text)
    }

    /// Map a refused decrypt or rewrap: a version below the minimum, a
    /// missing key, or (the usual case) a key that fails to authenticate.
    fn refused(&self, op: &'static str, wrapped: &WrappedKey, reply: &Reply) -> Error {
        if reply.status != 400 {
            return status_error(op, reply);
        }
        let status = VaultStatus::new(op, reply);
        if status.says("disallowed by policy") {
            Error::internal_with(
                format!(
                    "wrapped key version {} is below the transit key's minimum decryption \
                     version; it was retired",
                    wrapped.kek_version
                ),
                status,
            )
        } else if status.says("encryption key not found") {
            self.missing_key()
        } else {
            Error::internal_with(
                "wrapped key failed to decrypt: tampered, foreign, or under another context",
                status,
            )
        }
    }

    async fn decrypt(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<SecretBytes> {
        let ciphertext = self.ciphertext(wrapped)?;
        self.check_key().await?;
        let path = format!("{}/decrypt/{}", self.mount, self.key);
        let body = Self::body(context, Some(ciphertext))?;
        let reply = self
            .client
            .call("transit decrypt", Method::POST, &path, Some(&body))
            .await?;
        if reply.status != 200 {
            return Err(self.refused("transit decrypt", wrapped, &reply));
        }
        let data = parse::<Envelope<Plaintext>>("transit decrypt", &reply.body)?.data;
        decode_key(&data.plaintext)
    }
}

/// `vault:v<N>:<base64>` → (N, base64). N is canonical decimal, at least 1.
fn split_ciphertext(text: &str) -> Option<(u32, &str)> {
    let rest = text.strip_prefix("vault:v")?;
    let (digits, encoded) = rest.split_once(':')?;
    if digits.is_empty()
        || digits.len() > 9
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let version = digits.parse().ok()?;
    Some((version, encoded))
}

/// Decode a base64 data key straight into a zeroizing buffer; it must be
/// 256 bits.
fn decode_key(encoded: &SecretString) -> Result<SecretBytes> {
    let input = encoded.expose_secret().as_bytes();
    let mut key = SecretBytes::new(vec![0; base64::decoded_len_estimate(input.len())]);
    let len = STANDARD
        .decode_slice(input, key.expose_secret_mut())
        .map_err(|_| Error::internal("vault transit returned a data key that is not base64"))?;
    key.expose_secret_mut().truncate(len);
    if key.len() != DATA_KEY_BYTES {
        return Err(Error::internal(
            "vault transit returned a data key that is not 256 bits",
        ));
    }
    Ok(key)
}

#[async_trait::async_trait]
impl KeyWrapper for TransitKeyWrapper {
    async fn generate_data_key(&self, context: &[u8]) -> Result<DataKey> {
        traced!("vault", "transit", "generate_data_key", async move {
            self.check_key().await?;
            let path = format!("{}/datakey/plaintext/{}", self.mount, self.key);
            let body = Self::body(context, None)?;
            let reply = self
                .client
                .call("transit datakey", Method::POST, &path, Some(&body))
                .await?;
            if reply.status != 200 {
                let status = VaultStatus::new("transit datakey", &reply);
                if reply.status == 400 && status.says("key not found") {
                    return Err(self.missing_key());
                }
                if reply.status == 400 && status.says("derived") {
                    return Err(Error::misconfigured(
                        "vault.transit.key",
                        format!(
                            "transit key `{}` is not derived; create it with derived=true",
                            self.key
                        ),
                    ));
                }
                return Err(status_error("transit datakey", &reply));
            }
            let data = parse::<Envelope<DataKeyData>>("transit datakey", &reply.body)?.data;
            let plaintext = decode_key(&data.plaintext)?;
            let (version, _) = split_ciphertext(&data.ciphertext).ok_or_else(|| {
                Error::internal("vault transit returned a ciphertext without a vault:vN: prefix")
            })?;
            Ok(DataKey::new(
                plaintext,
                WrappedKey::new(self.key.clone(), version, data.ciphertext.into_bytes()),
            ))
        })
        .await
    }

    async fn unwrap_key(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<SecretBytes> {
        traced!("vault", "transit", "unwrap_key", async move {
            self.decrypt(wrapped, context).await
        })
        .await
    }

    async fn rewrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<WrappedKey> {
        traced!("vault", "transit", "rewrap", async move {
            let ciphertext = self.ciphertext(wrapped)?;
            self.check_key().await?;
            let path = format!("{}/rewrap/{}", self.mount, self.key);
            let body = Self::body(context, Some(ciphertext))?;
            let reply = self
                .client
                .call("transit rewrap", Method::POST, &path, Some(&body))
                .await?;
            if reply.status != 200 {
                return Err(self.refused("transit rewrap", wrapped, &reply));
            }
            let data = parse::<Envelope<Ciphertext>>("transit rewrap", &reply.body)?.data;
            let (version, _) = split_ciphertext(&data.ciphertext).ok_or_else(|| {
                Error::internal("vault transit returned a ciphertext without a vault:vN: prefix")
            })?;
            Ok(WrappedKey::new(
                self.key.clone(),
                version,
                data.ciphertext.into_bytes(),
            ))
        })
        .await
    }
}

/// Rotation for the conformance suite's rotation cases.
#[cfg(feature = "conformance")]
#[async_trait::async_trait]
impl crate::conformance::KeyRotation for TransitKeyWrapper {
    async fn rotate(&self) -> Result<()> {
        Self::rotate(self).await.map(|_| ())
    }

    async fn set_min_decryption_version(&self, version: u32) -> Result<()> {
        Self::set_min_decryption_version(self, version).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciphertext_prefixes_are_canonical() {
        assert_eq!(split_ciphertext("vault:v1:abcd"), Some((1, "abcd")));
        assert_eq!(split_ciphertext("vault:v12:ab:cd"), Some((12, "ab:cd")));
        for bad in [
            "vault:v0:abcd",
            "vault:v01:abcd",
            "vault:v:abcd",
            "vault:v1abcd",
            "wault:v1:abcd",
            "vault:v+1:abcd",
            "vault:v1234567890:abcd",
            "",
        ] {
            assert_eq!(split_ciphertext(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn contexts_are_labelled_and_never_empty() {
        let body = TransitKeyWrapper::body(b"", None).expect("encodes");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let context = STANDARD
            .decode(json["context"].as_str().expect("string"))
            .expect("base64");
        assert_eq!(context, CONTEXT_LABEL);
        assert_eq!(json["bits"], 256);
    }

    #[test]
    fn data_keys_must_be_256_bits() {
        assert!(decode_key(&STANDARD.encode([7u8; 32]).into()).is_ok());
        assert!(decode_key(&STANDARD.encode([7u8; 16]).into()).is_err());
        assert!(decode_key(&"not base64!".into()).is_err());
    }
}
