//! RFC 4226 HOTP: an HMAC of a counter, dynamically truncated to a few
//! decimal digits. TOTP ([`super::Totp`]) is HOTP over a time counter.
//!
//! ```
//! use docaiche_auth::mfa::{Algorithm, Digits, hotp};
//!
//! // RFC 4226 Appendix D, counter 1.
//! assert_eq!(hotp(Algorithm::Sha1, b"12345678901234567890", 1, Digits::Six), 287_082);
//! ```

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};

/// The HMAC hash of a one-time password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA1: RFC 4226's, and the one every authenticator app
    /// supports. (SHA-1's collision weakness does not touch HMAC.)
    #[default]
    Sha1,
    /// HMAC-SHA-256 (RFC 6238); fewer apps support it.
    Sha256,
    /// HMAC-SHA-512 (RFC 6238); fewer apps support it.
    Sha512,
}

impl Algorithm {
    /// `SHA1`, `SHA256` or `SHA512`: the `algorithm` parameter of an
    /// `otpauth://` URI.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// The byte that names the algorithm in a sealed secret.
    pub(crate) const fn id(self) -> u8 {
        match self {
            Self::Sha1 => 1,
            Self::Sha256 => 2,
            Self::Sha512 => 3,
        }
    }

    /// The algorithm a sealed secret's byte names.
    pub(crate) const fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Sha1),
            2 => Some(Self::Sha256),
            3 => Some(Self::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many decimal digits a code has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Digits {
    /// Six: what authenticator apps show by default.
    #[default]
    Six,
    /// Eight: RFC 6238's test vectors; a hundred times harder to guess.
    Eight,
}

impl Digits {
    /// 6 or 8.
    #[must_use]
    pub const fn count(self) -> usize {
        match self {
            Self::Six => 6,
            Self::Eight => 8,
        }
    }

    /// 10^digits: codes are below it.
    pub(crate) const fn modulus(self) -> u32 {
        match self {
            Self::Six => 1_000_000,
            Self::Eight => 100_000_000,
        }
    }

    /// The digits a sealed secret's byte names.
    pub(crate) const fn from_count(count: u8) -> Option<Self> {
        match count {
            6 => Some(Self::Six),
            8 => Some(Self::Eight),
            _ => None,
        }
    }
}

/// The longest HMAC output (SHA-512).
const MAX_MAC_LEN: usize = 64;

/// `HMAC-<algorithm>(key, message)` into `out`; returns its length.
fn mac_into<M: Mac + KeyInit>(key: &[u8], message: &[u8], out: &mut [u8; MAX_MAC_LEN]) -> usize {
    // HMAC takes a key of any length (longer ones are hashed first), so
    // this never fails; an empty output would fail the truncation below
    // as "no code" rather than panic.
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return 0;
    };
    mac.update(message);
    let tag = mac.finalize().into_bytes();
    let len = tag.len().min(MAX_MAC_LEN);
    out[..len].copy_from_slice(&tag[..len]);
    len
}

/// The RFC 4226 HOTP value of `counter` under `key`: `HMAC(key,
/// counter as 8 big-endian bytes)`, dynamically truncated (section 5.3) to
/// 31 bits, modulo 10^digits. Format it zero-padded to `digits` places.
#[must_use]
pub fn hotp(algorithm: Algorithm, key: &[u8], counter: u64, digits: Digits) -> u32 {
    let mut tag = [0u8; MAX_MAC_LEN];
    let message = counter.to_be_bytes();
    let len = match algorithm {
        Algorithm::Sha1 => mac_into::<Hmac<sha1::Sha1>>(key, &message, &mut tag),
        Algorithm::Sha256 => mac_into::<Hmac<sha2::Sha256>>(key, &message, &mut tag),
        Algorithm::Sha512 => mac_into::<Hmac<sha2::Sha512>>(key, &message, &mut tag),
    };
    // The low 4 bits of the last byte pick 4 bytes at offset 0..=15; every
    // output (20, 32 or 64 bytes) is long enough.
    let offset = usize::from(tag[len.saturating_sub(1)] & 0x0f);
    let word = [
        tag[offset],
        tag[offset + 1],
        tag[offset + 2],
        tag[offset + 3],
    ];
    let truncated = u32::from_be_bytes(word) & 0x7fff_ffff;
    tag.fill(0);
    truncated % digits.modulus()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4226 Appendix D: the secret "12345678901234567890" (ASCII),
    /// HOTP values for counters 0 to 9.
    #[test]
    fn rfc4226_appendix_d_vectors() {
        const EXPECTED: [u32; 10] = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, expected) in (0u64..).zip(EXPECTED) {
            assert_eq!(
                hotp(
                    Algorithm::Sha1,
                    b"12345678901234567890",
                    counter,
                    Digits::Six
                ),
                expected,
                "counter {counter}"
            );
        }
    }

    /// RFC 4226 Appendix D also lists the truncated 31-bit values; the
    /// eight-digit code is their last eight digits.
    #[test]
    fn rfc4226_truncated_values_modulo_ten_to_the_eight() {
        const TRUNCATED: [u32; 10] = [
            1_284_755_224,
            1_094_287_082,
            137_359_152,
            1_726_969_429,
            1_640_338_314,
            868_254_676,
            1_918_287_922,
            82_162_583,
            673_399_871,
            645_520_489,
        ];
        for (counter, truncated) in (0u64..).zip(TRUNCATED) {
            assert_eq!(
                hotp(
                    Algorithm::Sha1,
                    b"12345678901234567890",
                    counter,
                    Digits::Eight
                ),
                truncated % 100_000_000,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn ids_round_trip() {
        for algorithm in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            assert_eq!(Algorithm::from_id(algorithm.id()), Some(algorithm));
        }
        assert_eq!(Algorithm::from_id(0), None);
        for digits in [Digits::Six, Digits::Eight] {
            let count = u8::try_from(digits.count()).expect("small");
            assert_eq!(Digits::from_count(count), Some(digits));
        }
        assert_eq!(Digits::from_count(7), None);
    }
}
