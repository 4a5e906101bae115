//! Recovery codes: the way in when the authenticator is lost. Generated
//! with the enrolment, shown once, stored only as keyed hashes
//! ([`MfaKeys::recovery_code_hash`](super::MfaKeys::recovery_code_hash)),
//! each usable once.
//!
//! A code is 12 symbols of Crockford's base32 (60 bits from the OS random
//! generator), shown as `xxxx-xxxx-xxxx`. Input is forgiving the way
//! Crockford intended: case, hyphens and spaces do not matter, and `o`,
//! `i` and `l` read as `0`, `1` and `1`.
//!
//! ```
//! use docaiche_auth::mfa::RecoveryCode;
//!
//! let typed = RecoveryCode::parse("7QKM-0R2S 9VX1").expect("well formed");
//! assert_eq!(typed.expose_secret(), "7qkm0r2s9vx1");
//! assert_eq!(RecoveryCode::parse(" 7qkm-or2s-9vxl ").expect("forgiving").expose_secret(), "7qkm0r2s9vx1");
//! assert!(RecoveryCode::parse("7qkm-0r2s-9vxu").is_none(), "u is not a symbol");
//! assert!(RecoveryCode::parse("123456").is_none(), "a TOTP code is not a recovery code");
//! ```

use std::fmt;

use docaiche_core::{Error, Result, SecretString};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// How many symbols a recovery code has.
pub const RECOVERY_CODE_SYMBOLS: usize = 12;

/// Bits of entropy of a recovery code (5 per symbol).
pub const RECOVERY_CODE_BITS: usize = RECOVERY_CODE_SYMBOLS * 5;

/// How many recovery codes an enrolment gets by default.
pub const DEFAULT_RECOVERY_CODES: usize = 10;

/// The longest input [`RecoveryCode::parse`] looks at.
pub const MAX_RECOVERY_CODE_INPUT_LEN: usize = 64;

/// Crockford's base32, lowercase: digits and letters without i, l, o, u.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// One recovery code, in canonical form (12 lowercase symbols, no
/// hyphens). `Debug` and `Display` never show it; `==` compares in
/// constant time.
#[derive(Clone)]
pub struct RecoveryCode(SecretString);

impl PartialEq for RecoveryCode {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0.expose_secret(), other.0.expose_secret());
        bool::from(a.as_bytes().ct_eq(b.as_bytes()))
    }
}

impl Eq for RecoveryCode {}

impl RecoveryCode {
    /// A fresh code from the OS random generator.
    ///
    /// # Errors
    /// `Internal` if the OS generator fails.
    pub(crate) fn generate() -> Result<Self> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::internal(format!("os random number generator failed: {e}")))?;
        let mut bits = u64::from_le_bytes(bytes);
        bytes.zeroize();
        let mut code = String::with_capacity(RECOVERY_CODE_SYMBOLS);
        for _ in 0..RECOVERY_CODE_SYMBOLS {
            // 32 symbols: 5 bits each, uniform without rejection.
            let index = usize::try_from(bits & 0x1f).unwrap_or(0);
            code.push(char::from(ALPHABET[index]));
            bits >>= 5;
        }
        bits.zeroize();
        Ok(Self(SecretString::new(code)))
    }

    /// The code a person typed, normalised: ASCII case, hyphens and spaces
    /// ignored, `o` read as `0`, `i` and `l` as `1`. `None` unless that
    /// leaves exactly [`RECOVERY_CODE_SYMBOLS`] symbols of the alphabet, or
    /// for input longer than [`MAX_RECOVERY_CODE_INPUT_LEN`] bytes.
    #[must_use]
    pub fn parse(input: &str) -> Option<Self> {
        if input.len() > MAX_RECOVERY_CODE_INPUT_LEN {
            return None;
        }
        let mut code = String::with_capacity(RECOVERY_CODE_SYMBOLS);
        for b in input.bytes() {
            let symbol = match b.to_ascii_lowercase() {
                b'-' | b' ' => continue,
                b'o' => b'0',
                b'i' | b'l' => b'1',
                other if ALPHABET.contains(&other) => other,
                _ => {
                    code.zeroize();
                    return None;
                }
            };
            if code.len() == RECOVERY_CODE_SYMBOLS {
                code.zeroize();
                return None;
            }
            code.push(char::from(symbol));
        }
        if code.len() == RECOVERY_CODE_SYMBOLS {
            Some(Self(SecretString::new(code)))
        } else {
            code.zeroize();
            None
        }
    }

    /// The canonical form: what is hashed.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The form shown to the holder: `xxxx-xxxx-xxxx`.
    #[must_use]
    pub fn to_display_form(&self) -> SecretString {
        let code = self.0.expose_secret();
        let mut shown = String::with_capacity(RECOVERY_CODE_SYMBOLS + 2);
        for (i, c) in code.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                shown.push('-');
            }
            shown.push(c);
        }
        SecretString::new(shown)
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCode({:?})", self.0)
    }
}

impl fmt::Display for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The recovery codes of a new enrolment: to show the holder once (and
/// then drop). `Debug` shows how many, never the codes.
#[derive(Clone)]
pub struct RecoveryCodes(Vec<RecoveryCode>);

impl RecoveryCodes {
    /// `count` fresh, distinct codes.
    ///
    /// # Errors
    /// `Internal` if the OS generator fails.
    pub(crate) fn generate(count: usize) -> Result<Self> {
        let mut codes: Vec<RecoveryCode> = Vec::with_capacity(count);
        while codes.len() < count {
            // A repeat (one chance in 2^60 per pair) would be one code
            // stored once: draw again rather than hand out a dud.
            let code = RecoveryCode::generate()?;
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        Ok(Self(codes))
    }

    /// The codes, to show.
    pub fn iter(&self) -> impl Iterator<Item = &RecoveryCode> {
        self.0.iter()
    }

    /// How many there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes({} codes, [REDACTED])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn generated_codes_are_distinct_canonical_and_parse_back() {
        let codes = RecoveryCodes::generate(DEFAULT_RECOVERY_CODES).expect("rng");
        assert_eq!(codes.len(), DEFAULT_RECOVERY_CODES);
        let distinct: HashSet<&str> = codes.iter().map(RecoveryCode::expose_secret).collect();
        assert_eq!(distinct.len(), DEFAULT_RECOVERY_CODES);
        for code in codes.iter() {
            let canonical = code.expose_secret();
            assert_eq!(canonical.len(), RECOVERY_CODE_SYMBOLS);
            assert!(canonical.bytes().all(|b| ALPHABET.contains(&b)));
            let shown = code.to_display_form();
            assert_eq!(shown.expose_secret().len(), RECOVERY_CODE_SYMBOLS + 2);
            assert_eq!(
                RecoveryCode::parse(shown.expose_secret()).as_ref(),
                Some(code)
            );
            assert_eq!(
                RecoveryCode::parse(&shown.expose_secret().to_uppercase()).as_ref(),
                Some(code)
            );
        }
        const { assert!(RECOVERY_CODE_BITS >= 50) };
    }

    #[test]
    fn malformed_input_is_refused() {
        for bad in [
            "",
            "7qkm-0r2s-9vx",
            "7qkm-0r2s-9vx11",
            "7qkm-0r2s-9vxu",
            "7qkm_0r2s_9vx1",
            "7qkm-0r2s-9vx1\0",
            "7qkm-0r2s-9vxé",
            "１２３４５６７８９０１２",
            &"-".repeat(100),
        ] {
            assert!(RecoveryCode::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn codes_never_print() {
        let codes = RecoveryCodes::generate(3).expect("rng");
        let code = codes.iter().next().expect("one");
        for printed in [format!("{codes:?}"), format!("{code:?}"), format!("{code}")] {
            assert!(!printed.contains(code.expose_secret()), "{printed}");
        }
    }
}
