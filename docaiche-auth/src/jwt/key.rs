//! Signing and verification keys: [`JwtKey`] and the rotating [`JwtKeySet`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use docaiche_core::secret_provider::SecretProvider;
use docaiche_core::{Error, Result, SecretBytes};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

/// Longest accepted key id, in bytes.
pub const MAX_KID_LEN: usize = 128;

/// Most keys a [`JwtKeySet`] holds: rotation needs two or three, a bound
/// keeps a misconfigured loop from growing the set without limit.
pub const MAX_KEYS: usize = 64;

/// Smallest RSA modulus accepted, in bits (RFC 7518 §3.3).
pub const MIN_RSA_BITS: usize = 2048;

/// Whether `kid` is an acceptable key id: 1 to [`MAX_KID_LEN`] bytes of
/// `A-Z a-z 0-9 . _ - ~ + / =` (base64 and base64url thumbprints fit), with
/// no `..` sequence.
///
/// A `kid` comes from the attacker-controlled token header. It is only ever
/// a map key here, but checking it before the lookup keeps traversal, SQL or
/// control bytes out of every log line and of any custom key store.
#[must_use]
pub fn is_valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~' | b'+' | b'/' | b'=')
        })
        && !kid.contains("..")
}

/// One key: its `kid`, the single algorithm it is used with, the verifying
/// half and, for keys this service signs with, the signing half.
///
/// RFC 8725 §3.1: the algorithm belongs to the key. A token naming this
/// `kid` verifies only with this algorithm, whatever its header says.
///
/// Secret material (HMAC secrets, private keys) is zeroized on drop by
/// `jsonwebtoken` and never printed: `Debug` shows the `kid` and algorithm.
#[derive(Clone)]
pub struct JwtKey {
    kid: String,
    algorithm: Algorithm,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    public_jwk: Option<Jwk>,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("can_sign", &self.encoding.is_some())
            .finish_non_exhaustive()
    }
}

fn invalid_key(reason: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::misconfigured("jwt.keys", reason)
}

fn check_kid(kid: &str) -> Result<()> {
    if is_valid_kid(kid) {
        Ok(())
    } else {
        Err(invalid_key(
            "key id must be 1 to 128 bytes of A-Z a-z 0-9 . _ - ~ + / = without `..`",
        ))
    }
}

fn min_hmac_len(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

/// Check an RSA public JWK's modulus size.
pub(crate) fn check_rsa_size(jwk: &Jwk) -> Result<()> {
    if let AlgorithmParameters::RSA(params) = &jwk.algorithm {
        let modulus = URL_SAFE_NO_PAD
            .decode(params.n.trim_end_matches('='))
            .map_err(|_| invalid_key("RSA modulus is not base64url"))?;
        let leading_zeros = modulus.iter().take_while(|b| **b == 0).count();
        if (modulus.len() - leading_zeros) * 8 < MIN_RSA_BITS {
            return Err(invalid_key("RSA keys must be at least 2048 bits"));
        }
    }
    Ok(())
}

/// The algorithm a public JWK's key type implies (RSA → `RS256`, the
/// curve for EC and OKP keys). Symmetric and unknown key types are refused.
fn inferred_algorithm(jwk: &Jwk) -> Result<Algorithm> {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Ok(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            jsonwebtoken::jwk::EllipticCurve::P256 => Ok(Algorithm::ES256),
            jsonwebtoken::jwk::EllipticCurve::P384 => Ok(Algorithm::ES384),
            _ => Err(invalid_key("unsupported elliptic curve")),
        },
        AlgorithmParameters::OctetKeyPair(params) => match params.curve {
            jsonwebtoken::jwk::EllipticCurve::Ed25519 => Ok(Algorithm::EdDSA),
            _ => Err(invalid_key("unsupported octet key pair curve")),
        },
        _ => Err(invalid_key(
            "symmetric or unknown JWK key types are refused",
        )),
    }
}

impl JwtKey {
    /// An HMAC key (`HS256`, `HS384` or `HS512`), for signing and verifying.
    ///
    /// HMAC keys are never published in the JWKS.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if `kid` is invalid, `algorithm` is not an
    /// HMAC algorithm, the secret is shorter than the hash output (RFC 7518
    /// §3.2: 32, 48 or 64 bytes), or the secret is a PEM document (a public
    /// key used as an HMAC secret is the classic algorithm-confusion attack).
    pub fn hmac(
        kid: impl Into<String>,
        algorithm: Algorithm,
        secret: &SecretBytes,
    ) -> Result<Self> {
        let kid = kid.into();
        check_kid(&kid)?;
        if algorithm.family() != AlgorithmFamily::Hmac {
            return Err(invalid_key("an HMAC key needs HS256, HS384 or HS512"));
        }
        let bytes = secret.expose_secret();
        if bytes.len() < min_hmac_len(algorithm) {
            return Err(invalid_key(
                "HMAC secret is shorter than the hash output (32, 48 or 64 bytes)",
            ));
        }
        if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            return Err(invalid_key(
                "HMAC secret is a PEM document: use a random secret, not a key file",
            ));
        }
        Ok(Self {
            kid,
            algorithm,
            encoding: Some(EncodingKey::from_secret(bytes)),
            decoding: DecodingKey::from_secret(bytes),
            public_jwk: None,
        })
    }

    /// A key from a PEM document: a private key (PKCS#8 `PRIVATE KEY`, or
    /// PKCS#1 `RSA PRIVATE KEY`) signs and verifies, a public key
    /// (`PUBLIC KEY`) only verifies.
    ///
    /// Supported: RSA (`RS*`, `PS*`, at least 2048 bits), ECDSA P-256/P-384
    /// (`ES256`, `ES384`) and Ed25519 (`EdDSA`).
    ///
    /// Prefer Ed25519 or P-256 for keys this service *signs* with: private-key
    /// operations of the pure-Rust `rsa` crate behind `jsonwebtoken`'s
    /// `rust_crypto` backend are not constant-time (RUSTSEC-2023-0071, the
    /// Marvin attack). Verifying RSA signatures is unaffected.
    ///
    /// The key material is copied into `jsonwebtoken`'s key types, which
    /// zeroize on drop.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if `kid` is invalid, `algorithm` is an HMAC
    /// algorithm, or the PEM is not a key of `algorithm`'s family.
    pub fn from_pem(kid: impl Into<String>, algorithm: Algorithm, pem: &[u8]) -> Result<Self> {
        let kid = kid.into();
        check_kid(&kid)?;
        let family = algorithm.family();
        if family == AlgorithmFamily::Hmac {
            return Err(invalid_key(
                "a PEM key cannot be used with an HMAC algorithm",
            ));
        }
        let is_private = pem
            .windows(b"PRIVATE KEY".len())
            .any(|w| w == b"PRIVATE KEY");
        let bad_pem = |_| invalid_key("PEM is not a key of the configured algorithm");
        let (encoding, decoding, jwk) = if is_private {
            let encoding = match family {
                AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem),
                AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem),
                _ => EncodingKey::from_ed_pem(pem),
            }
            .map_err(bad_pem)?;
            let jwk = Jwk::from_encoding_key(&encoding, algorithm).map_err(bad_pem)?;
            let decoding = DecodingKey::from_jwk(&jwk).map_err(bad_pem)?;
            (Some(encoding), decoding, jwk)
        } else {
            let decoding = match family {
                AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(pem),
                AlgorithmFamily::Ec => DecodingKey::from_ec_pem(pem),
                _ => DecodingKey::from_ed_pem(pem),
            }
            .map_err(bad_pem)?;
            let jwk = Jwk::from_decoding_key(&decoding, Some(algorithm)).map_err(bad_pem)?;
            (None, decoding, jwk)
        };
        check_rsa_size(&jwk)?;
        // RSA keys serve every RS*/PS* algorithm; a curve fits one algorithm.
        let inferred = inferred_algorithm(&jwk)?;
        let fits = if family == AlgorithmFamily::Rsa {
            inferred.family() == family
        } else {
            inferred == algorithm
        };
        if !fits {
            return Err(invalid_key("the key does not fit the configured algorithm"));
        }
        let mut jwk = jwk;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            kid,
            algorithm,
            encoding,
            decoding,
            public_jwk: Some(jwk),
        })
    }

    /// Load a key from a [`SecretProvider`]: the raw secret for an HMAC
    /// `algorithm`, a PEM document otherwise.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if the provider does not have `secret_name`
    /// or the value is not a usable key; the provider's own errors
    /// (`Unavailable` on outage, `InvalidInput` for a bad name) as they are.
    pub async fn load(
        provider: &dyn SecretProvider,
        secret_name: &str,
        kid: impl Into<String>,
        algorithm: Algorithm,
    ) -> Result<Self> {
        let value = provider.get(secret_name).await?.ok_or_else(|| {
            Error::misconfigured(
                "jwt.keys",
                format!(
                    "secret `{secret_name}` not found in {}",
                    provider.describe()
                ),
            )
        })?;
        if algorithm.family() == AlgorithmFamily::Hmac {
            Self::hmac(kid, algorithm, &value.value)
        } else {
            Self::from_pem(kid, algorithm, value.value.expose_secret())
        }
    }

    /// A verification-only key from a public JWK (an external issuer's key).
    ///
    /// The algorithm is the JWK's `alg`, or inferred from `kty`/`crv` when
    /// absent (`RSA` → `RS256`, `EC` P-256 → `ES256`, P-384 → `ES384`,
    /// `OKP` Ed25519 → `EdDSA`). Symmetric (`oct`) keys are refused: a
    /// remote issuer never shares an HMAC secret.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if the JWK has no valid `kid`, is not a
    /// signature key, is symmetric, names an algorithm of another family than
    /// its key type, or is an RSA key under 2048 bits.
    pub fn from_public_jwk(jwk: &Jwk) -> Result<Self> {
        let kid = jwk
            .common
            .key_id
            .clone()
            .ok_or_else(|| invalid_key("JWK has no `kid`"))?;
        check_kid(&kid)?;
        if matches!(
            jwk.common.public_key_use,
            Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
        ) {
            return Err(invalid_key("JWK is not a signature key"));
        }
        let inferred = inferred_algorithm(jwk)?;
        let algorithm = match jwk.common.key_algorithm {
            Some(alg) => Algorithm::try_from(alg)
                .map_err(|_| invalid_key("JWK names an unsupported algorithm"))?,
            None => inferred,
        };
        if algorithm.family() != inferred.family() {
            return Err(invalid_key("JWK algorithm does not match its key type"));
        }
        if algorithm.family() == AlgorithmFamily::Ec && algorithm != inferred {
            return Err(invalid_key("JWK algorithm does not match its curve"));
        }
        check_rsa_size(jwk)?;
        let decoding =
            DecodingKey::from_jwk(jwk).map_err(|_| invalid_key("JWK parameters are invalid"))?;
        Ok(Self {
            kid,
            algorithm,
            encoding: None,
            decoding,
            public_jwk: Some(jwk.clone()),
        })
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key is used with.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether this key can sign (holds an HMAC secret or a private key).
    #[must_use]
    pub const fn can_sign(&self) -> bool {
        self.encoding.is_some()
    }

    /// The public JWK, with `kid`, `alg` and `use: sig`; `None` for HMAC keys.
    #[must_use]
    pub const fn public_jwk(&self) -> Option<&Jwk> {
        self.public_jwk.as_ref()
    }

    pub(crate) const fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    pub(crate) const fn encoding_key(&self) -> Option<&EncodingKey> {
        self.encoding.as_ref()
    }
}

/// The keys in force at one moment: what a verification looks up.
#[derive(Debug, Default)]
pub(crate) struct KeyRing {
    keys: HashMap<String, Arc<JwtKey>>,
    signing: Option<Arc<JwtKey>>,
}

impl KeyRing {
    pub(crate) fn get(&self, kid: &str) -> Option<&Arc<JwtKey>> {
        self.keys.get(kid)
    }

    pub(crate) const fn signing(&self) -> Option<&Arc<JwtKey>> {
        self.signing.as_ref()
    }
}

/// The service's keys: any number of verification keys by `kid` (up to
/// [`MAX_KEYS`]) and one signing key. Shared by the issuer and the verifier
/// (`Arc<JwtKeySet>`); rotation takes effect for the next token.
///
/// Rotation, step by step:
/// 1. [`JwtKeySet::rotate_to`] the new key: it signs from now on, and the old
///    key stays in the set, so tokens it signed keep verifying.
/// 2. Once the old tokens have expired (the access-token lifetime),
///    [`JwtKeySet::remove`] the old key: tokens naming it are refused.
///
/// ```
/// use docaiche_auth::jwt::{Algorithm, JwtKey, JwtKeySet};
/// use docaiche_core::SecretBytes;
///
/// # fn main() -> docaiche_core::Result<()> {
/// let old = JwtKey::hmac("2026-01", Algorithm::HS256, &SecretBytes::from(vec![1; 32]))?;
/// let new = JwtKey::hmac("2026-02", Algorithm::HS256, &SecretBytes::from(vec![2; 32]))?;
/// let keys = JwtKeySet::new(old)?;
/// keys.rotate_to(new)?;
/// assert_eq!(keys.signing_kid().as_deref(), Some("2026-02"));
/// assert_eq!(keys.kids(), ["2026-01", "2026-02"]);
/// keys.remove("2026-01")?;
/// assert_eq!(keys.kids(), ["2026-02"]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct JwtKeySet {
    ring: RwLock<Arc<KeyRing>>,
}

impl JwtKeySet {
    /// A key set whose signing key is `signing`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if `signing` cannot sign (a public key).
    pub fn new(signing: JwtKey) -> Result<Self> {
        let set = Self::verify_only();
        set.rotate_to(signing)?;
        Ok(set)
    }

    /// A key set with no key: add verification keys with
    /// [`JwtKeySet::insert`]. It can verify but not issue tokens.
    #[must_use]
    pub fn verify_only() -> Self {
        Self {
            ring: RwLock::new(Arc::new(KeyRing::default())),
        }
    }

    /// Add a verification key.
    ///
    /// # Errors
    /// [`Error::Conflict`] if a key with the same `kid` is present (a `kid`
    /// names exactly one key); [`Error::Misconfigured`] if the set is full.
    pub fn insert(&self, key: JwtKey) -> Result<()> {
        self.update(|ring| {
            if ring.keys.contains_key(key.kid()) {
                return Err(Error::conflict("a key with this kid is already in the set"));
            }
            if ring.keys.len() >= MAX_KEYS {
                return Err(invalid_key("key set is full (64 keys)"));
            }
            ring.keys.insert(key.kid.clone(), Arc::new(key));
            Ok(())
        })
    }

    /// Make `key` the signing key, adding it to the verification keys. The
    /// previous signing key stays for verification until removed.
    ///
    /// An RSA signing key (`RS*`, `PS*`) is accepted with a warning in the
    /// log naming its `kid`: RSA private-key operations of the `rust_crypto`
    /// backend are not constant-time (RUSTSEC-2023-0071); sign with `EdDSA`
    /// or `ES256` and keep RSA for verifying external issuers.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if `key` cannot sign or the set is full;
    /// [`Error::Conflict`] if another key with the same `kid` is present.
    pub fn rotate_to(&self, key: JwtKey) -> Result<()> {
        if !key.can_sign() {
            return Err(invalid_key(
                "the signing key must hold a private key or secret",
            ));
        }
        let rsa = (key.algorithm.family() == AlgorithmFamily::Rsa)
            .then(|| (key.kid.clone(), key.algorithm));
        self.update(|ring| {
            if ring.keys.contains_key(key.kid()) {
                return Err(Error::conflict("a key with this kid is already in the set"));
            }
            if ring.keys.len() >= MAX_KEYS {
                return Err(invalid_key("key set is full (64 keys)"));
            }
            let key = Arc::new(key);
            ring.keys.insert(key.kid.clone(), Arc::clone(&key));
            ring.signing = Some(key);
            Ok(())
        })?;
        if let Some((kid, algorithm)) = rsa {
            warn_rsa_signing_key(&kid, algorithm);
        }
        Ok(())
    }

    /// Remove the key `kid`: tokens naming it no longer verify.
    ///
    /// # Errors
    /// [`Error::Conflict`] if `kid` is the signing key (rotate first);
    /// [`Error::NotFound`] if there is no such key.
    pub fn remove(&self, kid: &str) -> Result<()> {
        self.update(|ring| {
            if ring.signing.as_ref().is_some_and(|k| k.kid() == kid) {
                return Err(Error::conflict(
                    "cannot remove the signing key; rotate first",
                ));
            }
            ring.keys
                .remove(kid)
                .map(drop)
                .ok_or_else(|| Error::not_found("jwt key"))
        })
    }

    /// The signing key's id, if the set can sign.
    #[must_use]
    pub fn signing_kid(&self) -> Option<String> {
        self.snapshot().signing().map(|k| k.kid.clone())
    }

    /// Every key id, sorted.
    #[must_use]
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.snapshot().keys.keys().cloned().collect();
        kids.sort_unstable();
        kids
    }

    /// The public keys as a JWKS document (RFC 7517), for the server to
    /// publish at `/.well-known/jwks.json`. HMAC keys never appear.
    #[must_use]
    pub fn jwks(&self) -> JwkSet {
        let ring = self.snapshot();
        let mut keys: Vec<&Arc<JwtKey>> = ring.keys.values().collect();
        keys.sort_unstable_by(|a, b| a.kid.cmp(&b.kid));
        JwkSet {
            keys: keys
                .into_iter()
                .filter_map(|k| k.public_jwk.clone())
                .collect(),
        }
    }

    pub(crate) fn snapshot(&self) -> Arc<KeyRing> {
        // The ring is replaced whole under the lock, never left half-updated.
        Arc::clone(&self.ring.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn update(&self, change: impl FnOnce(&mut KeyRing) -> Result<()>) -> Result<()> {
        let mut guard = self.ring.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = KeyRing {
            keys: guard.keys.clone(),
            signing: guard.signing.clone(),
        };
        change(&mut next)?;
        *guard = Arc::new(next);
        Ok(())
    }
}

/// The start-up warning for an RSA key this service signs with (RSA stays
/// fine for verifying the tokens of external issuers).
fn warn_rsa_signing_key(kid: &str, algorithm: Algorithm) {
    tracing::warn!(
        kid,
        ?algorithm,
        "the JWT signing key is RSA: the rust_crypto RSA private-key operations \
         are not constant-time (RUSTSEC-2023-0071, the Marvin attack); sign with \
         EdDSA (Ed25519) or ES256 and keep RSA for verifying external issuers"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_rules_reject_injection_shapes() {
        for ok in ["2026-01", "key_1", "abc.def", "A+b/c=", "x"] {
            assert!(is_valid_kid(ok), "{ok}");
        }
        let long = "k".repeat(MAX_KID_LEN + 1);
        for bad in [
            "",
            "../../etc/passwd",
            "..",
            "1' OR '1'='1",
            "kid; DROP TABLE keys",
            "a b",
            "kid\0",
            "kid\n",
            "ключ",
            long.as_str(),
        ] {
            assert!(!is_valid_kid(bad), "{bad:?}");
        }
    }

    #[test]
    fn hmac_secrets_must_be_long_enough_and_not_pem() {
        let short = SecretBytes::from(vec![7; 31]);
        assert!(JwtKey::hmac("k", Algorithm::HS256, &short).is_err());
        let ok = SecretBytes::from(vec![7; 32]);
        assert!(JwtKey::hmac("k", Algorithm::HS256, &ok).is_ok());
        assert!(JwtKey::hmac("k", Algorithm::HS512, &ok).is_err());
        assert!(JwtKey::hmac("k", Algorithm::RS256, &ok).is_err());
        let pem = SecretBytes::from(
            b"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n".to_vec(),
        );
        assert!(JwtKey::hmac("k", Algorithm::HS256, &pem).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = JwtKey::hmac("k", Algorithm::HS256, &SecretBytes::from(vec![0x41; 32]))
            .expect("valid key");
        let printed = format!("{key:?}");
        assert!(
            !printed.contains("AAAA") && !printed.contains("65"),
            "{printed}"
        );
    }

    #[test]
    fn the_signing_key_cannot_be_removed_and_kids_are_unique() {
        let secret = SecretBytes::from(vec![1; 32]);
        let set = JwtKeySet::new(JwtKey::hmac("a", Algorithm::HS256, &secret).expect("key"))
            .expect("set");
        assert!(set.remove("a").is_err());
        assert!(
            set.insert(
                JwtKey::hmac("a", Algorithm::HS384, &SecretBytes::from(vec![2; 48])).expect("key")
            )
            .is_err()
        );
        assert!(matches!(set.remove("nope"), Err(Error::NotFound { .. })));
        assert!(set.jwks().keys.is_empty(), "HMAC keys are never published");
    }
}
