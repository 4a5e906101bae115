//! The API key wire format: generation, checksum and parsing.
//!
//! ```text
//! dcx_4kTq0ZbW8mNa_Xr3...30 random base62...Qa81Zk
//! └┬─┘└────┬─────┘ └──────────┬──────────┘└──┬─┘
//! type   lookup id        secret part      CRC32
//! ```
//!
//! - **type prefix** (`dcx_` by default): lets secret scanners (GitHub
//!   secret scanning, gitleaks, trufflehog) recognise a leaked key with one
//!   regular expression: `dcx_[0-9A-Za-z]{12}_[0-9A-Za-z]{36}`.
//! - **lookup id** (12 base62 characters, random): the public part that
//!   locates the record ([`ApiKeyLookup`]); it is also the "key prefix" the
//!   failed-authentication tracker counts failures by.
//! - **secret part** (30 base62 characters from the OS RNG): log2(62^30)
//!   ≈ 178.6 bits, the same entropy as GitHub's tokens.
//! - **checksum** (6 base62 characters, zero-padded): CRC32 of everything
//!   before it. A typo or a truncated copy is rejected by [`ApiKeyFormat::parse`] without
//!   touching the store. CRC32 is not a MAC: it stops accidents and cheap
//!   garbage, not forgeries; forgeries are stopped by the keyed hash.
//!
//! Base62 encoding here is hand-written (a dozen lines) rather than a
//! dependency: the alphabet and the fixed-width checksum are part of our
//! wire format, and the random part needs rejection sampling from raw OS
//! bytes, which no small base62 crate offers.

use docaiche_core::api_key::ApiKeyLookup;
use docaiche_core::secret::SecretString;
use docaiche_core::{AuthFailure, Error, Result};

/// The base62 alphabet, in ASCII order (digits, upper case, lower case).
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Length of the lookup id part.
pub const LOOKUP_LEN: usize = 12;
/// Length of the secret part: 30 base62 characters, ≈ 178.6 bits.
pub const SECRET_LEN: usize = 30;
/// Length of the checksum part: 62^6 > 2^32, so any CRC32 fits.
pub const CHECKSUM_LEN: usize = 6;
/// The longest input [`ApiKeyFormat::parse`] looks at; anything longer is rejected at once.
pub const MAX_KEY_LEN: usize = 128;
/// The default type prefix.
pub const DEFAULT_PREFIX: &str = "dcx_";

/// The key shape: which type prefix keys carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyFormat {
    prefix: String,
}

impl Default for ApiKeyFormat {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl ApiKeyFormat {
    /// A format whose keys start with `prefix`, which must be 2 to 12
    /// lowercase ASCII letters or digits followed by `_` (`dcx_`, `acme_live_`
    /// is too long-winded but `acmel_` is fine).
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for any other prefix.
    pub fn new(prefix: &str) -> Result<Self> {
        let body = prefix.strip_suffix('_').unwrap_or("");
        let ok = (2..=12).contains(&body.len())
            && body
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !ok {
            return Err(Error::misconfigured(
                "api_keys.prefix",
                "must be 2 to 12 lowercase letters or digits followed by `_`",
            ));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The type prefix, with its trailing `_`.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The exact length of every key of this format.
    #[must_use]
    pub fn key_len(&self) -> usize {
        self.prefix.len() + LOOKUP_LEN + 1 + SECRET_LEN + CHECKSUM_LEN
    }

    /// Generate a fresh key from the OS random number generator.
    ///
    /// # Errors
    /// [`Error::Internal`] if the OS RNG fails (then no key is produced: we
    /// never fall back to a weaker generator).
    pub fn generate(&self) -> Result<(ApiKeyLookup, SecretString)> {
        let mut key = String::with_capacity(self.key_len());
        key.push_str(&self.prefix);
        let lookup_start = key.len();
        push_random_base62(&mut key, LOOKUP_LEN)?;
        let lookup = ApiKeyLookup::new(&key[lookup_start..])?;
        key.push('_');
        push_random_base62(&mut key, SECRET_LEN)?;
        let crc = crc32fast::hash(key.as_bytes());
        push_checksum(&mut key, crc);
        Ok((lookup, SecretString::new(key)))
    }

    /// Check the shape and checksum of `raw` and return its lookup id. Does
    /// no I/O and no hashing beyond the CRC32.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] with [`AuthFailure::Malformed`] if the
    /// length, prefix, alphabet or checksum is wrong.
    pub fn parse<'a>(&self, raw: &'a str) -> Result<ParsedKey<'a>> {
        let malformed = || Error::unauthenticated(AuthFailure::Malformed);
        if raw.len() != self.key_len() || !raw.starts_with(&self.prefix) {
            return Err(malformed());
        }
        let bytes = raw.as_bytes();
        let lookup_end = self.prefix.len() + LOOKUP_LEN;
        let checked_end = raw.len() - CHECKSUM_LEN;
        if bytes[lookup_end] != b'_' {
            return Err(malformed());
        }
        let base62 = |range: &[u8]| range.iter().all(u8::is_ascii_alphanumeric);
        if !base62(&bytes[self.prefix.len()..lookup_end]) || !base62(&bytes[lookup_end + 1..]) {
            return Err(malformed());
        }
        let expected = decode_checksum(&bytes[checked_end..]).ok_or_else(malformed)?;
        if crc32fast::hash(&bytes[..checked_end]) != expected {
            return Err(malformed());
        }
        Ok(ParsedKey {
            raw,
            lookup: &raw[self.prefix.len()..lookup_end],
        })
    }
}

/// A key whose shape and checksum are valid (not yet verified against a
/// record).
#[derive(Clone, Copy)]
pub struct ParsedKey<'a> {
    raw: &'a str,
    lookup: &'a str,
}

impl<'a> ParsedKey<'a> {
    /// The whole key (secret: do not log).
    #[must_use]
    pub const fn expose_secret(&self) -> &'a str {
        self.raw
    }

    /// The lookup id part (public).
    #[must_use]
    pub const fn lookup(&self) -> &'a str {
        self.lookup
    }
}

impl std::fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedKey")
            .field("lookup", &self.lookup)
            .finish_non_exhaustive()
    }
}

/// The public part of a presented API key, for failure tracking and logs:
/// everything before the last `_` (the type prefix and lookup id), at most
/// 32 bytes, or `None` if `raw` has no such shape. Works on any input
/// without validating it.
#[must_use]
pub fn public_prefix(raw: &str) -> Option<&str> {
    let (public, _) = raw.rsplit_once('_')?;
    (!public.is_empty()
        && public.len() <= 32
        && public
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    .then_some(public)
}

fn push_random_base62(out: &mut String, count: usize) -> Result<()> {
    // Rejection sampling: 62 * 4 = 248, so bytes 248..=255 are discarded and
    // every character is uniform. Refill from the OS RNG as needed.
    let mut buf = [0u8; 64];
    let mut produced = 0;
    while produced < count {
        getrandom::fill(&mut buf)
            .map_err(|e| Error::internal(format!("os random number generator failed: {e}")))?;
        for &b in &buf {
            if produced == count {
                break;
            }
            if b < 248 {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
                produced += 1;
            }
        }
    }
    buf.fill(0);
    Ok(())
}

fn push_checksum(out: &mut String, crc: u32) {
    let mut digits = [b'0'; CHECKSUM_LEN];
    let mut n = crc;
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out.extend(digits.iter().map(|&b| char::from(b)));
}

fn decode_checksum(digits: &[u8]) -> Option<u32> {
    let mut n: u64 = 0;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'A'..=b'Z' => d - b'A' + 10,
            b'a'..=b'z' => d - b'a' + 36,
            _ => return None,
        };
        n = n * 62 + u64::from(v);
    }
    u32::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_have_the_documented_shape() {
        let format = ApiKeyFormat::default();
        let (lookup, key) = format.generate().expect("rng works");
        let raw = key.expose_secret();
        assert_eq!(raw.len(), format.key_len());
        assert!(raw.starts_with("dcx_"));
        let parsed = format.parse(raw).expect("valid");
        assert_eq!(parsed.lookup(), lookup.as_str());
        assert_eq!(public_prefix(raw), Some(&raw[..16]));
    }

    #[test]
    fn every_single_character_typo_is_rejected() {
        let format = ApiKeyFormat::default();
        let (_, key) = format.generate().expect("rng works");
        let raw = key.expose_secret().clone();
        for i in format.prefix().len()..raw.len() {
            if raw.as_bytes()[i] == b'_' {
                continue;
            }
            let mut typo = raw.clone().into_bytes();
            typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(typo).expect("ascii");
            assert!(format.parse(&typo).is_err(), "typo at {i} accepted");
        }
    }

    #[test]
    fn rejects_wrong_shapes() {
        let format = ApiKeyFormat::default();
        let (_, key) = format.generate().expect("rng works");
        let raw = key.expose_secret();
        let too_long = format!("{raw}0");
        let other_prefix = raw.replacen("dcx_", "ghp_", 1);
        let with_nul = raw.replacen('_', "\0", 2);
        let non_ascii = format!("{}é", &raw[..raw.len() - 2]);
        for bad in [
            "",
            "dcx_",
            &raw[..raw.len() - 1],
            &too_long,
            &other_prefix,
            &with_nul,
            &non_ascii,
        ] {
            assert!(
                matches!(
                    format.parse(bad),
                    Err(Error::Unauthenticated {
                        reason: AuthFailure::Malformed
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn checksum_is_fixed_width_base62() {
        for crc in [0, 1, 61, 62, u32::MAX] {
            let mut s = String::new();
            push_checksum(&mut s, crc);
            assert_eq!(s.len(), CHECKSUM_LEN);
            assert_eq!(decode_checksum(s.as_bytes()), Some(crc));
        }
        assert_eq!(decode_checksum(b"zzzzzz"), None, "above u32::MAX");
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_the_exact_shape(raw in "\\PC{0,80}") {
            let format = ApiKeyFormat::default();
            if let Ok(parsed) = format.parse(&raw) {
                proptest::prop_assert_eq!(raw.len(), format.key_len());
                proptest::prop_assert!(raw.starts_with("dcx_"));
                proptest::prop_assert_eq!(parsed.lookup().len(), LOOKUP_LEN);
            }
            let _ = public_prefix(&raw);
        }

        #[test]
        fn near_misses_of_real_keys_are_rejected(pos in 4usize..53, byte in 0u8..128) {
            let format = ApiKeyFormat::default();
            let (_, key) = format.generate().expect("rng works");
            let mut bytes = key.expose_secret().clone().into_bytes();
            proptest::prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            let mutated = String::from_utf8(bytes).expect("ascii");
            proptest::prop_assert!(format.parse(&mutated).is_err());
        }
    }

    #[test]
    fn prefixes_are_validated() {
        assert!(ApiKeyFormat::new("acme_").is_ok());
        for bad in [
            "",
            "_",
            "a_",
            "ACME_",
            "acme",
            "waytoolongprefix_",
            "ac-me_",
        ] {
            assert!(ApiKeyFormat::new(bad).is_err(), "{bad}");
        }
    }
}
