//! [`MfaKeys`]: the keys that seal TOTP secrets (AES-256-GCM) and hash
//! recovery codes (HMAC-SHA-256), derived from the server pepper.
//!
//! ```
//! use docaiche_auth::api_key::Peppers;
//! use docaiche_auth::mfa::{Algorithm, Digits, MfaError, MfaKeys, Totp};
//! use docaiche_core::{PrincipalId, SecretBytes, TenantId};
//!
//! let peppers = Peppers::new(1, [(1, SecretBytes::new(vec![7; 32]))])?;
//! let keys = MfaKeys::from_peppers(&peppers);
//! let (acme, alice, bob) = (TenantId::new("acme")?, PrincipalId::new("alice")?, PrincipalId::new("bob")?);
//!
//! let totp = Totp::generate(Algorithm::Sha1, Digits::Six)?;
//! let sealed = keys.seal(&acme, &alice, &totp)?;
//! let opened = keys.open(&acme, &alice, &sealed)?;
//! assert_eq!(opened.to_base32().expose_secret(), totp.to_base32().expose_secret());
//! // Copied onto another account's row, it does not open.
//! assert!(matches!(keys.open(&acme, &bob, &sealed), Err(MfaError::Unsealable)));
//! # Ok::<(), docaiche_core::Error>(())
//! ```
//!
//! # Format of a sealed secret
//!
//! `0x01 ‖ key version (u16, big-endian) ‖ nonce (12 bytes) ‖
//! AES-256-GCM(algorithm ‖ digits ‖ secret)` with the tag appended. The
//! associated data is a domain label, the tenant and the account (each
//! followed by a NUL, which no id holds) and the three header bytes: the
//! ciphertext opens only for the account it was sealed for, and the
//! version cannot be swapped. The parameters ride inside, so changing the
//! service's defaults never breaks an existing enrolment.
//!
//! # Keys and pepper rotation
//!
//! Each pepper version `v` gives two keys, `HMAC-SHA-256(pepper_v, label)`
//! with a label per purpose, as the server derives its account-token key.
//! New secrets are sealed under the current version; a secret opens under
//! the version its header names, and its recovery codes are hashed under
//! the same one. Retiring a pepper version therefore voids the enrolments
//! sealed under it ([`MfaError::Unsealable`]): keep a version configured
//! until its enrolments have been reset and made again.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use docaiche_core::{Error, PrincipalId, Result, SecretBytes, TenantId};
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

use super::error::MfaError;
use super::hotp::{Algorithm, Digits};
use super::recovery::RecoveryCode;
use super::totp::{MIN_SECRET_LEN, Totp};
use crate::api_key::{MIN_PEPPER_LEN, Peppers};

type HmacSha256 = Hmac<Sha256>;

/// The label of the key that seals TOTP secrets.
pub const SEAL_KEY_LABEL: &str = "docaiche mfa secret key v1";

/// The label of the key that hashes recovery codes.
pub const RECOVERY_KEY_LABEL: &str = "docaiche mfa recovery code key v1";

/// The first byte of a sealed secret.
const FORMAT: u8 = 1;
const HEADER_LEN: usize = 3;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Algorithm and digits, before the secret.
const PARAMS_LEN: usize = 2;
/// The shortest sealed secret that can open.
const MIN_SEALED_LEN: usize = HEADER_LEN + NONCE_LEN + PARAMS_LEN + MIN_SECRET_LEN + TAG_LEN;

/// Domain labels of the associated data and of the recovery-code MAC, so
/// neither can stand for anything else made with the same key.
const SEAL_DOMAIN: &[u8] = b"docaiche mfa secret v1";
const RECOVERY_DOMAIN: &[u8] = b"docaiche mfa recovery code v1";

/// The keys of one version.
#[derive(Clone)]
struct VersionKeys {
    seal: Aes256Gcm,
    recovery: HmacSha256,
}

/// The keys that seal TOTP secrets and hash recovery codes, by version.
/// `Debug` shows the versions, never a key.
#[derive(Clone)]
pub struct MfaKeys {
    current: u16,
    versions: BTreeMap<u16, VersionKeys>,
}

impl fmt::Debug for MfaKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaKeys")
            .field("current", &self.current)
            .field("versions", &self.versions.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl MfaKeys {
    /// Keys derived from the API-key peppers, one pair per configured
    /// version, sealing under the current one. What a server holding
    /// [`Peppers`] uses: no secret of its own to provision.
    #[must_use]
    pub fn from_peppers(peppers: &Peppers) -> Self {
        let versions = peppers
            .versions()
            .filter_map(|version| {
                let seal = peppers.derive_key(version, SEAL_KEY_LABEL)?;
                let recovery = peppers.derive_key(version, RECOVERY_KEY_LABEL)?;
                Some((version, VersionKeys::new(&seal, &recovery).ok()?))
            })
            .collect();
        Self {
            current: peppers.current(),
            versions,
        }
    }

    /// Keys derived from base secrets by version (each at least
    /// [`MIN_PEPPER_LEN`] bytes, secret, the same on every instance),
    /// sealing under `current`. With the API-key peppers as bases this
    /// equals [`MfaKeys::from_peppers`].
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if a version is 0, a base is too short, or
    /// `current` is not among the versions.
    pub fn new(current: u16, bases: impl IntoIterator<Item = (u16, SecretBytes)>) -> Result<Self> {
        let mut versions = BTreeMap::new();
        for (version, base) in bases {
            if version == 0 {
                return Err(Error::misconfigured(
                    "mfa.keys",
                    "key version 0 is reserved",
                ));
            }
            if base.len() < MIN_PEPPER_LEN {
                return Err(Error::misconfigured(
                    "mfa.keys",
                    format!("key version {version} is shorter than {MIN_PEPPER_LEN} bytes"),
                ));
            }
            let seal = derive(&base, SEAL_KEY_LABEL)?;
            let recovery = derive(&base, RECOVERY_KEY_LABEL)?;
            versions.insert(version, VersionKeys::new(&seal, &recovery)?);
        }
        if !versions.contains_key(&current) {
            return Err(Error::misconfigured(
                "mfa.keys",
                format!("the current key version {current} is not configured"),
            ));
        }
        Ok(Self { current, versions })
    }

    /// The version new secrets are sealed under.
    #[must_use]
    pub const fn current(&self) -> u16 {
        self.current
    }

    /// Seal `totp` (its secret and parameters) for `account` of `tenant`,
    /// under the current key with a fresh random nonce.
    ///
    /// # Errors
    /// `Internal` if the OS random generator or the cipher fails.
    pub fn seal(&self, tenant: &TenantId, account: &PrincipalId, totp: &Totp) -> Result<Vec<u8>> {
        let keys = self
            .versions
            .get(&self.current)
            .ok_or_else(|| Error::internal("the current mfa key version is not configured"))?;
        let [high, low] = self.current.to_be_bytes();
        let header = [FORMAT, high, low];
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| Error::internal(format!("os random number generator failed: {e}")))?;
        let secret = totp.secret().expose_secret();
        let mut plaintext = SecretBytes::new(Vec::with_capacity(PARAMS_LEN + secret.len()));
        let digits = u8::try_from(totp.digits().count())
            .map_err(|_| Error::internal("digit count out of range"))?;
        plaintext
            .expose_secret_mut()
            .extend_from_slice(&[totp.algorithm().id(), digits]);
        plaintext.expose_secret_mut().extend_from_slice(secret);
        let aad = associated_data(tenant, account, &header);
        let ciphertext = keys
            .seal
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.expose_secret(),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::internal("sealing the mfa secret failed"))?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&header);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Open a secret sealed for `account` of `tenant`. `sealed` comes from
    /// the store: any bytes are handled without panicking.
    ///
    /// # Errors
    /// [`MfaError::Unsealable`] if it is not a sealed secret of this
    /// format, its key version is not configured, it was sealed for
    /// another tenant or account, or it was altered.
    pub fn open(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        sealed: &[u8],
    ) -> Result<Totp, MfaError> {
        if sealed.len() < MIN_SEALED_LEN {
            return Err(MfaError::Unsealable);
        }
        let (header, rest) = sealed.split_at(HEADER_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let keys = self.keys_for(header).ok_or(MfaError::Unsealable)?;
        let aad = associated_data(tenant, account, header);
        let mut plaintext = SecretBytes::new(
            keys.seal
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| MfaError::Unsealable)?,
        );
        let bytes = plaintext.expose_secret_mut();
        let (Some(&algorithm), Some(&digits)) = (bytes.first(), bytes.get(1)) else {
            return Err(MfaError::Unsealable);
        };
        let algorithm = Algorithm::from_id(algorithm).ok_or(MfaError::Unsealable)?;
        let digits = Digits::from_count(digits).ok_or(MfaError::Unsealable)?;
        bytes.drain(..PARAMS_LEN);
        let secret = SecretBytes::new(std::mem::take(bytes));
        Totp::new(secret, algorithm, digits).map_err(|_| MfaError::Unsealable)
    }

    /// The keyed hash a store keeps of recovery `code` of `account` in
    /// `tenant`, under the key version of the enrolment's `sealed` secret:
    /// `HMAC-SHA-256(recovery key, domain ‖ tenant ‖ account ‖ code)`, the
    /// three NUL-terminated. A database leak alone cannot check a guess
    /// against it, and a hash moved to another account matches nothing.
    ///
    /// # Errors
    /// [`MfaError::Unsealable`] if `sealed` has no header of this format or
    /// its key version is not configured.
    pub fn recovery_code_hash(
        &self,
        sealed: &[u8],
        tenant: &TenantId,
        account: &PrincipalId,
        code: &RecoveryCode,
    ) -> Result<Vec<u8>, MfaError> {
        let header = sealed.get(..HEADER_LEN).ok_or(MfaError::Unsealable)?;
        let keys = self.keys_for(header).ok_or(MfaError::Unsealable)?;
        let mut mac = keys.recovery.clone();
        for part in [
            RECOVERY_DOMAIN,
            tenant.as_str().as_bytes(),
            account.as_str().as_bytes(),
            code.expose_secret().as_bytes(),
        ] {
            mac.update(part);
            mac.update(&[0]);
        }
        Ok(mac.finalize().into_bytes().to_vec())
    }

    /// The keys a sealed secret's header names.
    fn keys_for(&self, header: &[u8]) -> Option<&VersionKeys> {
        match *header {
            [FORMAT, high, low] => self.versions.get(&u16::from_be_bytes([high, low])),
            _ => None,
        }
    }
}

impl VersionKeys {
    fn new(seal: &SecretBytes, recovery: &SecretBytes) -> Result<Self> {
        Ok(Self {
            seal: Aes256Gcm::new_from_slice(seal.expose_secret())
                .map_err(|_| Error::internal("an mfa seal key must be 32 bytes"))?,
            recovery: HmacSha256::new_from_slice(recovery.expose_secret())
                .map_err(|_| Error::internal("hmac-sha-256 rejected a key"))?,
        })
    }
}

/// `HMAC-SHA-256(base, label)`: [`Peppers::derive_key`]'s construction.
fn derive(base: &SecretBytes, label: &str) -> Result<SecretBytes> {
    let mut mac = HmacSha256::new_from_slice(base.expose_secret())
        .map_err(|_| Error::internal("hmac-sha-256 rejected a key"))?;
    mac.update(label.as_bytes());
    Ok(SecretBytes::new(mac.finalize().into_bytes().to_vec()))
}

/// What a sealed secret is bound to: the domain, the tenant, the account
/// (each NUL-terminated) and the header.
fn associated_data(tenant: &TenantId, account: &PrincipalId, header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(
        SEAL_DOMAIN.len() + tenant.as_str().len() + account.as_str().len() + 3 + header.len(),
    );
    for part in [
        SEAL_DOMAIN,
        tenant.as_str().as_bytes(),
        account.as_str().as_bytes(),
    ] {
        aad.extend_from_slice(part);
        aad.push(0);
    }
    aad.extend_from_slice(header);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (TenantId, PrincipalId) {
        (
            TenantId::new("acme").expect("tenant"),
            PrincipalId::new("alice").expect("account"),
        )
    }

    fn keys() -> MfaKeys {
        MfaKeys::new(1, [(1, SecretBytes::new(vec![7; 32]))]).expect("valid")
    }

    fn totp() -> Totp {
        Totp::new(
            SecretBytes::from(b"12345678901234567890".to_vec()),
            Algorithm::Sha256,
            Digits::Eight,
        )
        .expect("valid")
    }

    #[test]
    fn sealed_secrets_open_for_their_account_only() {
        let (acme, alice) = ids();
        let keys = keys();
        let sealed = keys.seal(&acme, &alice, &totp()).expect("sealed");
        assert_eq!(sealed.len(), MIN_SEALED_LEN + 4, "20-byte secret");
        let opened = keys.open(&acme, &alice, &sealed).expect("opens");
        assert_eq!(
            opened.secret().expose_secret(),
            totp().secret().expose_secret()
        );
        assert_eq!(opened.algorithm(), Algorithm::Sha256);
        assert_eq!(opened.digits(), Digits::Eight);
        // Another account, another tenant, even the same id elsewhere.
        let bob = PrincipalId::new("bob").expect("id");
        let globex = TenantId::new("globex").expect("id");
        assert!(matches!(
            keys.open(&acme, &bob, &sealed),
            Err(MfaError::Unsealable)
        ));
        assert!(matches!(
            keys.open(&globex, &alice, &sealed),
            Err(MfaError::Unsealable)
        ));
        // Ids that concatenate alike do not collide.
        let (ac, mealice) = (
            TenantId::new("ac").expect("id"),
            PrincipalId::new("mealice").expect("id"),
        );
        assert!(matches!(
            keys.open(&ac, &mealice, &sealed),
            Err(MfaError::Unsealable)
        ));
        // Fresh nonces: sealing twice gives different bytes.
        assert_ne!(keys.seal(&acme, &alice, &totp()).expect("sealed"), sealed);
    }

    #[test]
    fn tampering_and_foreign_keys_are_refused() {
        let (acme, alice) = ids();
        let keys = keys();
        let sealed = keys.seal(&acme, &alice, &totp()).expect("sealed");
        for i in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[i] ^= 0x01;
            assert!(
                matches!(
                    keys.open(&acme, &alice, &altered),
                    Err(MfaError::Unsealable)
                ),
                "byte {i}"
            );
        }
        for len in 0..sealed.len() {
            assert!(
                keys.open(&acme, &alice, &sealed[..len]).is_err(),
                "length {len}"
            );
        }
        let other = MfaKeys::new(1, [(1, SecretBytes::new(vec![8; 32]))]).expect("valid");
        assert!(matches!(
            other.open(&acme, &alice, &sealed),
            Err(MfaError::Unsealable)
        ));
    }

    #[test]
    fn rotation_opens_old_versions_until_they_are_retired() {
        let (acme, alice) = ids();
        let old = keys();
        let sealed = old.seal(&acme, &alice, &totp()).expect("sealed");
        let rotated = MfaKeys::new(
            2,
            [
                (1, SecretBytes::new(vec![7; 32])),
                (2, SecretBytes::new(vec![9; 32])),
            ],
        )
        .expect("valid");
        assert!(rotated.open(&acme, &alice, &sealed).is_ok());
        let resealed = rotated.seal(&acme, &alice, &totp()).expect("sealed");
        assert_eq!(resealed[1..3], [0, 2], "sealed under the current version");
        let retired = MfaKeys::new(2, [(2, SecretBytes::new(vec![9; 32]))]).expect("valid");
        assert!(matches!(
            retired.open(&acme, &alice, &sealed),
            Err(MfaError::Unsealable)
        ));
        assert!(retired.open(&acme, &alice, &resealed).is_ok());
    }

    #[test]
    fn peppers_and_bases_derive_the_same_keys() {
        let (acme, alice) = ids();
        let peppers = Peppers::new(1, [(1, SecretBytes::new(vec![7; 32]))]).expect("valid");
        let sealed = MfaKeys::from_peppers(&peppers)
            .seal(&acme, &alice, &totp())
            .expect("sealed");
        assert!(keys().open(&acme, &alice, &sealed).is_ok());
    }

    #[test]
    fn recovery_hashes_are_keyed_and_bound_to_the_account() {
        let (acme, alice) = ids();
        let keys = keys();
        let sealed = keys.seal(&acme, &alice, &totp()).expect("sealed");
        let code = RecoveryCode::parse("7qkm-0r2s-9vx1").expect("code");
        let hash = keys
            .recovery_code_hash(&sealed, &acme, &alice, &code)
            .expect("hash");
        assert_eq!(hash.len(), 32);
        let again = keys
            .recovery_code_hash(&sealed, &acme, &alice, &code)
            .expect("hash");
        assert_eq!(hash, again, "deterministic");
        let bob = PrincipalId::new("bob").expect("id");
        assert_ne!(
            keys.recovery_code_hash(&sealed, &acme, &bob, &code)
                .expect("hash"),
            hash
        );
        let other = MfaKeys::new(1, [(1, SecretBytes::new(vec![8; 32]))]).expect("valid");
        assert_ne!(
            other
                .recovery_code_hash(&sealed, &acme, &alice, &code)
                .expect("hash"),
            hash
        );
        assert!(keys.recovery_code_hash(&[], &acme, &alice, &code).is_err());
        assert!(
            keys.recovery_code_hash(&[1, 0, 9], &acme, &alice, &code)
                .is_err()
        );
    }

    #[test]
    fn bad_configuration_is_refused_and_debug_shows_no_key() {
        assert!(MfaKeys::new(1, [(1, SecretBytes::new(vec![7; 31]))]).is_err());
        assert!(MfaKeys::new(0, [(0, SecretBytes::new(vec![7; 32]))]).is_err());
        assert!(MfaKeys::new(2, [(1, SecretBytes::new(vec![7; 32]))]).is_err());
        let printed = format!("{:?}", keys());
        assert_eq!(printed, "MfaKeys { current: 1, versions: [1], .. }");
    }
}
