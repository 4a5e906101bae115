//! RFC 6238 TOTP: HOTP over the number of 30-second steps since the Unix
//! epoch, verified within one step either side of now, never twice.
//!
//! ```
//! use docaiche_auth::mfa::{Algorithm, Digits, MfaError, Totp};
//! use docaiche_core::SecretBytes;
//! use time::macros::datetime;
//!
//! let totp = Totp::new(SecretBytes::from(b"12345678901234567890".to_vec()), Algorithm::Sha1, Digits::Eight)?;
//! let at = datetime!(2005-03-18 01:58:29 UTC); // RFC 6238 Appendix B, T = 1111111109
//! assert_eq!(totp.code_at(at).expose_secret(), "07081804");
//!
//! // Accepted once: the matched step comes back, to be stored as the last one.
//! let step = totp.verify("07081804", at, None)?;
//! assert_eq!(step, 37_037_036);
//! assert!(matches!(totp.verify("07081804", at, Some(step)), Err(MfaError::Replayed { .. })));
//! # Ok::<(), docaiche_auth::mfa::MfaError>(())
//! ```

use std::fmt;

use data_encoding::BASE32_NOPAD;
use docaiche_core::{Error, SecretBytes, SecretString};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use zeroize::Zeroize;

use super::error::MfaError;
use super::hotp::{Algorithm, Digits, hotp};

/// The length of a time step, in seconds (RFC 6238's default, and what
/// authenticator apps assume).
pub const STEP_SECONDS: u64 = 30;

/// How many steps either side of the current one a code may belong to
/// (RFC 6238 section 5.2 recommends at most one): a code typed a few
/// seconds after it changed, or a phone clock up to 30 s off, still works.
pub const WINDOW: u64 = 1;

/// The shortest accepted secret, in bytes (RFC 4226 R6: at least 128
/// bits).
pub const MIN_SECRET_LEN: usize = 16;

/// The length of a generated secret, in bytes (160 bits, RFC 4226 R6's
/// recommendation and the size of an HMAC-SHA1 output).
pub const GENERATED_SECRET_LEN: usize = 20;

/// The longest accepted secret, in bytes.
pub const MAX_SECRET_LEN: usize = 64;

/// The longest base32 text [`Totp::from_base32`] looks at.
pub const MAX_BASE32_LEN: usize = 256;

/// A TOTP generator and verifier: a secret and its parameters.
///
/// `Debug` shows the parameters, never the secret.
#[derive(Clone)]
pub struct Totp {
    secret: SecretBytes,
    algorithm: Algorithm,
    digits: Digits,
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Totp")
            .field("secret", &self.secret)
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .finish()
    }
}

impl Totp {
    /// A TOTP over `secret`.
    ///
    /// # Errors
    /// [`MfaError::Failed`] with `InvalidInput` for a secret shorter than
    /// [`MIN_SECRET_LEN`] or longer than [`MAX_SECRET_LEN`] bytes.
    pub fn new(
        secret: SecretBytes,
        algorithm: Algorithm,
        digits: Digits,
    ) -> Result<Self, MfaError> {
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()) {
            return Err(Error::invalid_input(format!(
                "a TOTP secret is {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes"
            ))
            .into());
        }
        Ok(Self {
            secret,
            algorithm,
            digits,
        })
    }

    /// A fresh [`GENERATED_SECRET_LEN`]-byte secret from the OS random
    /// generator.
    ///
    /// # Errors
    /// [`MfaError::Failed`] with `Internal` if the OS generator fails.
    pub fn generate(algorithm: Algorithm, digits: Digits) -> Result<Self, MfaError> {
        let mut secret = vec![0u8; GENERATED_SECRET_LEN];
        getrandom::fill(&mut secret)
            .map_err(|e| Error::internal(format!("os random number generator failed: {e}")))?;
        Self::new(SecretBytes::new(secret), algorithm, digits)
    }

    /// A TOTP over a secret written in base32 (RFC 4648, the `secret` of
    /// an `otpauth://` URI and what authenticator apps accept typed in):
    /// case-insensitive, spaces and `=` padding ignored.
    ///
    /// # Errors
    /// [`MfaError::Malformed`] for text that is not base32 or longer than
    /// [`MAX_BASE32_LEN`]; [`MfaError::Failed`] as [`Totp::new`]. The
    /// errors never quote the input.
    pub fn from_base32(text: &str, algorithm: Algorithm, digits: Digits) -> Result<Self, MfaError> {
        if text.len() > MAX_BASE32_LEN {
            return Err(MfaError::Malformed);
        }
        let mut normalised: Vec<u8> = text
            .bytes()
            .filter(|b| !matches!(b, b' ' | b'='))
            .map(|b| b.to_ascii_uppercase())
            .collect();
        let decoded = BASE32_NOPAD.decode(&normalised);
        normalised.zeroize();
        let secret = decoded.map_err(|_| MfaError::Malformed)?;
        Self::new(SecretBytes::new(secret), algorithm, digits)
    }

    /// The secret in base32 without padding, for manual entry in an app.
    #[must_use]
    pub fn to_base32(&self) -> SecretString {
        SecretString::new(BASE32_NOPAD.encode(self.secret.expose_secret()))
    }

    /// The hash algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// How many digits a code has.
    #[must_use]
    pub const fn digits(&self) -> Digits {
        self.digits
    }

    /// The secret.
    pub(crate) const fn secret(&self) -> &SecretBytes {
        &self.secret
    }

    /// The time step `at` falls in: whole [`STEP_SECONDS`] since the Unix
    /// epoch. `None` before the epoch (no code is valid then).
    #[must_use]
    pub fn step_at(at: OffsetDateTime) -> Option<u64> {
        u64::try_from(at.unix_timestamp())
            .ok()
            .map(|seconds| seconds / STEP_SECONDS)
    }

    /// The code of time step `step`, zero-padded.
    #[must_use]
    pub fn code_at_step(&self, step: u64) -> SecretString {
        let value = hotp(
            self.algorithm,
            self.secret.expose_secret(),
            step,
            self.digits,
        );
        SecretString::new(format!("{value:0width$}", width = self.digits.count()))
    }

    /// The code valid at `at` (what the holder's app shows then). Before
    /// the epoch, the code of step 0.
    #[must_use]
    pub fn code_at(&self, at: OffsetDateTime) -> SecretString {
        self.code_at_step(Self::step_at(at).unwrap_or(0))
    }

    /// Verify `code` at time `at`, given the last step accepted before
    /// (`None` if none was): returns the step it belongs to, to be stored
    /// as the new last step (see [`MfaStore::accept_step`]).
    ///
    /// The code may belong to the current step or [`WINDOW`] steps either
    /// side. Spaces are ignored ("123 456"). Every candidate step is
    /// computed and compared in constant time; if the code matches several,
    /// the earliest one after `last_step` is taken, so a later code stays
    /// usable.
    ///
    /// # Errors
    /// [`MfaError::Malformed`] unless the code is exactly
    /// [`Digits::count`] ASCII digits; [`MfaError::WrongCode`] if it
    /// matches no step of the window; [`MfaError::Replayed`] if it matches
    /// only steps at or before `last_step`.
    ///
    /// [`MfaStore::accept_step`]: docaiche_core::MfaStore::accept_step
    pub fn verify(
        &self,
        code: &str,
        at: OffsetDateTime,
        last_step: Option<u64>,
    ) -> Result<u64, MfaError> {
        let presented = parse_code(code, self.digits).ok_or(MfaError::Malformed)?;
        let now = Self::step_at(at).ok_or(MfaError::WrongCode)?;
        let mut accepted: Option<u64> = None;
        let mut replayed: Option<u64> = None;
        for step in now.saturating_sub(WINDOW)..=now.saturating_add(WINDOW) {
            let expected = hotp(
                self.algorithm,
                self.secret.expose_secret(),
                step,
                self.digits,
            );
            // Compare without a data-dependent branch; which step matched
            // is then public (the answer reveals it anyway).
            if bool::from(presented.ct_eq(&expected)) {
                if last_step.is_some_and(|last| step <= last) {
                    replayed.get_or_insert(step);
                } else {
                    accepted.get_or_insert(step);
                }
            }
        }
        match (accepted, replayed) {
            (Some(step), _) => Ok(step),
            (None, Some(step)) => Err(MfaError::Replayed { step }),
            (None, None) => Err(MfaError::WrongCode),
        }
    }
}

/// `code` as a number, if it is exactly `digits` ASCII digits once spaces
/// are removed. Inputs longer than 32 bytes are refused unread.
#[must_use]
pub fn parse_code(code: &str, digits: Digits) -> Option<u32> {
    if code.len() > 32 {
        return None;
    }
    let mut value: u32 = 0;
    let mut count = 0;
    for b in code.bytes().filter(|&b| b != b' ') {
        if !b.is_ascii_digit() {
            return None;
        }
        count += 1;
        if count > digits.count() {
            return None;
        }
        value = value * 10 + u32::from(b - b'0');
    }
    (count == digits.count()).then_some(value)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn totp(secret: &[u8], algorithm: Algorithm, digits: Digits) -> Totp {
        Totp::new(SecretBytes::from(secret.to_vec()), algorithm, digits).expect("valid")
    }

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).expect("in range")
    }

    /// RFC 6238 Appendix B: eight-digit codes for the three algorithms, the
    /// seeds being "1234567890" repeated to 20, 32 and 64 bytes.
    #[test]
    fn rfc6238_appendix_b_vectors() {
        let sha1 = totp(b"12345678901234567890", Algorithm::Sha1, Digits::Eight);
        let sha256 = totp(
            b"12345678901234567890123456789012",
            Algorithm::Sha256,
            Digits::Eight,
        );
        let sha512 = totp(
            b"1234567890123456789012345678901234567890123456789012345678901234",
            Algorithm::Sha512,
            Digits::Eight,
        );
        let vectors: [(i64, u64, [&str; 3]); 6] = [
            (59, 0x1, ["94287082", "46119246", "90693936"]),
            (
                1_111_111_109,
                0x23523EC,
                ["07081804", "68084774", "25091201"],
            ),
            (
                1_111_111_111,
                0x23523ED,
                ["14050471", "67062674", "99943326"],
            ),
            (
                1_234_567_890,
                0x273EF07,
                ["89005924", "91819424", "93441116"],
            ),
            (
                2_000_000_000,
                0x3F940AA,
                ["69279037", "90698825", "38618901"],
            ),
            (
                20_000_000_000,
                0x27BC86AA,
                ["65353130", "77737706", "47863826"],
            ),
        ];
        for (unix, step, codes) in vectors {
            assert_eq!(Totp::step_at(at(unix)), Some(step), "T at {unix}");
            for (generator, code) in [&sha1, &sha256, &sha512].into_iter().zip(codes) {
                assert_eq!(
                    generator.code_at(at(unix)).expose_secret(),
                    code,
                    "{:?} at {unix}",
                    generator.algorithm()
                );
                assert_eq!(generator.verify(code, at(unix), None).expect("valid"), step);
            }
        }
    }

    #[test]
    fn one_step_either_side_is_accepted_two_are_not() {
        let t = totp(b"12345678901234567890", Algorithm::Sha1, Digits::Six);
        let now = datetime!(2026-01-01 12:00:15 UTC);
        let step = Totp::step_at(now).expect("after the epoch");
        for offset in [-1i64, 0, 1] {
            let s = step.checked_add_signed(offset).expect("in range");
            let code = t.code_at_step(s);
            assert_eq!(
                t.verify(code.expose_secret(), now, None).expect("window"),
                s
            );
        }
        for offset in [-2i64, 2, -3, 3] {
            let s = step.checked_add_signed(offset).expect("in range");
            let code = t.code_at_step(s);
            assert!(
                matches!(
                    t.verify(code.expose_secret(), now, None),
                    Err(MfaError::WrongCode)
                ),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn a_code_at_or_before_the_last_step_is_a_replay() {
        let t = totp(b"12345678901234567890", Algorithm::Sha1, Digits::Six);
        let now = datetime!(2026-01-01 12:00:15 UTC);
        let step = Totp::step_at(now).expect("after the epoch");
        let code = t.code_at(now);
        let accepted = t
            .verify(code.expose_secret(), now, None)
            .expect("first use");
        assert_eq!(accepted, step);
        assert!(matches!(
            t.verify(code.expose_secret(), now, Some(accepted)),
            Err(MfaError::Replayed { step: s }) if s == step
        ));
        // The previous step's code, after this one was used: refused too.
        let earlier = t.code_at_step(step - 1);
        assert!(matches!(
            t.verify(earlier.expose_secret(), now, Some(accepted)),
            Err(MfaError::Replayed { .. })
        ));
        // The next step's code is still good.
        let next = t.code_at_step(step + 1);
        assert_eq!(
            t.verify(next.expose_secret(), now, Some(accepted))
                .expect("later"),
            step + 1
        );
    }

    #[test]
    fn codes_are_exactly_the_digits() {
        assert_eq!(parse_code("012345", Digits::Six), Some(12_345));
        assert_eq!(parse_code("012 345", Digits::Six), Some(12_345));
        assert_eq!(parse_code(" 01234567 ", Digits::Eight), Some(1_234_567));
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "-12345",
            "+12345",
            "１２３４５６",
            "12345\0",
            "123,456",
            "12-345",
            "0x1234",
        ] {
            assert_eq!(parse_code(bad, Digits::Six), None, "{bad:?}");
        }
        assert_eq!(parse_code(&"1".repeat(100), Digits::Six), None);
        let t = totp(b"12345678901234567890", Algorithm::Sha1, Digits::Six);
        assert!(matches!(
            t.verify("abcdef", datetime!(2026-01-01 0:00 UTC), None),
            Err(MfaError::Malformed)
        ));
    }

    #[test]
    fn secrets_round_trip_through_base32_and_never_print() {
        let t = Totp::generate(Algorithm::Sha256, Digits::Eight).expect("rng");
        assert_eq!(t.secret().len(), GENERATED_SECRET_LEN);
        let text = t.to_base32();
        assert_eq!(text.expose_secret().len(), 32, "160 bits in base32");
        assert!(!text.expose_secret().contains('='));
        let lower = text.expose_secret().to_lowercase();
        let back = Totp::from_base32(&lower, Algorithm::Sha256, Digits::Eight).expect("base32");
        assert_eq!(back.secret().expose_secret(), t.secret().expose_secret());
        let printed = format!("{t:?}");
        assert!(printed.contains("[REDACTED]"), "{printed}");
        assert!(!printed.contains(text.expose_secret()));
        assert!(matches!(
            Totp::from_base32("not base32!", Algorithm::Sha1, Digits::Six),
            Err(MfaError::Malformed)
        ));
        assert!(
            Totp::from_base32("AAAA", Algorithm::Sha1, Digits::Six).is_err(),
            "too short"
        );
        assert!(Totp::generate(Algorithm::Sha1, Digits::Six).is_ok());
    }

    #[test]
    fn no_code_is_valid_before_the_epoch() {
        let t = totp(b"12345678901234567890", Algorithm::Sha1, Digits::Six);
        let code = t.code_at_step(0);
        assert!(matches!(
            t.verify(code.expose_secret(), at(-1), None),
            Err(MfaError::WrongCode)
        ));
        assert_eq!(
            t.verify(code.expose_secret(), at(0), None).expect("step 0"),
            0
        );
    }
}
