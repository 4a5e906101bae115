//! What a new password must be: long enough, not absurdly long, and not
//! one of the most common passwords of breach corpora.
//!
//! ```
//! use docaiche_auth::password::{PasswordPolicy, PasswordRejection};
//! use docaiche_core::SecretString;
//!
//! let policy = PasswordPolicy::default();
//! assert_eq!(
//!     policy.check(&SecretString::from("short")),
//!     Err(PasswordRejection::TooShort { min_chars: 12 })
//! );
//! // Long enough, but near the top of every cracking dictionary.
//! assert_eq!(
//!     policy.check(&SecretString::from("Password 1234")),
//!     Err(PasswordRejection::Common)
//! );
//! assert!(policy.check(&SecretString::from("correct horse battery staple")).is_ok());
//! ```
//!
//! # The list
//!
//! The 49,233 passwords of the `passwords` frequency list of zxcvbn-ts
//! (`@zxcvbn-ts/language-common` 4.1.3, MIT): the passwords of Mark Burnett's
//! ten-million-password corpus (Xato) seen more than ten times, lowercased,
//! ASCII only, most frequent first. It is bundled in the crate
//! (`data/common-passwords.txt`, 380 KiB, see `data/README.md`): no network
//! call, nothing to configure. Parsed once, on first use, into a hash set of
//! slices of the embedded text.
//!
//! # Matching
//!
//! A password is compared after removing every whitespace character and
//! lowercasing ASCII letters, so `Password 1234`, ` PASSWORD1234 ` and
//! `pass word 1234` all count as `password1234`. Nothing else is folded:
//! leetspeak (`p@ssw0rd`), appended digits beyond those the list holds and
//! non-ASCII letters are compared as they are. The check allocates nothing:
//! a password longer than the longest entry, or with a non-ASCII letter,
//! cannot be on the list and is not looked up.
//!
//! # Limits
//!
//! The list catches what an online guesser tries first; it is no measure of
//! strength. Most entries are shorter than the 12-character minimum and
//! matter only once whitespace is removed (`password 123`), or when the
//! minimum is configured lower. A breach corpus also misses what is common
//! in one language, company or site.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use docaiche_core::secret::SecretString;
use docaiche_core::{Error, Result};
use zeroize::Zeroize as _;

/// The bundled list: one lowercase ASCII password a line, no whitespace.
const COMMON_PASSWORDS_TEXT: &str = include_str!("../../data/common-passwords.txt");

/// No entry is longer than this, in bytes (the longest has 20; a unit test
/// checks the bound): the size of the buffer a password is normalised into.
const LONGEST_COMMON_PASSWORD: usize = 32;

/// The list as a set, built on first use. Keyed by randomly seeded foldhash:
/// the set never grows, but its lookups take attacker-chosen strings.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str, foldhash::fast::RandomState>> =
    LazyLock::new(|| {
        COMMON_PASSWORDS_TEXT
            .lines()
            .filter(|line| !line.is_empty())
            .collect()
    });

/// Whether `password`, with whitespace removed and ASCII letters lowercased,
/// is on the bundled list of the most common breached passwords (see the
/// [module docs](self)). Never allocates.
#[must_use]
pub fn is_common_password(password: &str) -> bool {
    let mut buffer = [0_u8; LONGEST_COMMON_PASSWORD];
    let mut len = 0;
    let mut listable = true;
    for c in password.chars().filter(|c| !c.is_whitespace()) {
        // Every entry is ASCII and at most `LONGEST_COMMON_PASSWORD` bytes.
        match u8::try_from(c) {
            Ok(byte) if byte.is_ascii() && len < LONGEST_COMMON_PASSWORD => {
                buffer[len] = byte.to_ascii_lowercase();
                len += 1;
            }
            _ => {
                listable = false;
                break;
            }
        }
    }
    let found = listable
        && std::str::from_utf8(&buffer[..len]).is_ok_and(|key| COMMON_PASSWORDS.contains(key));
    buffer.zeroize();
    found
}

/// How many passwords the bundled list holds (49,233). Builds the set on
/// first use, which takes a few milliseconds: call it at start-up to take
/// that cost there rather than in the first request that sets a password.
#[must_use]
pub fn common_password_count() -> usize {
    COMMON_PASSWORDS.len()
}

/// Why [`PasswordPolicy::check`] refused a password. The text never holds
/// the password: it is safe to send to the client that chose it, and to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordRejection {
    /// Fewer characters (Unicode scalar values) than the policy's minimum.
    TooShort {
        /// The minimum, in characters.
        min_chars: usize,
    },
    /// More bytes than the policy's maximum (refused before any hashing, so
    /// a megabyte password cannot make the server hash a megabyte).
    TooLong {
        /// The maximum, in bytes.
        max_bytes: usize,
    },
    /// On the bundled list of the most common breached passwords, once
    /// whitespace is removed and ASCII letters lowercased.
    Common,
}

impl fmt::Display for PasswordRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { min_chars } => {
                write!(f, "password must be at least {min_chars} characters")
            }
            Self::TooLong { max_bytes } => write!(f, "password must be at most {max_bytes} bytes"),
            Self::Common => f.write_str("password is among the most common breached passwords"),
        }
    }
}

impl std::error::Error for PasswordRejection {}

impl From<PasswordRejection> for Error {
    fn from(rejection: PasswordRejection) -> Self {
        Self::invalid_input(rejection.to_string())
    }
}

/// The rules a new password must meet: at least `min_chars` characters
/// (default 12), at most `max_bytes` bytes (default 1024), and not on the
/// bundled list of the most common breached passwords (on by default).
///
/// [`PasswordService::hash`](super::PasswordService::hash) applies the
/// policy of its [`PasswordConfig`](super::PasswordConfig) to every password
/// it hashes, so each path that sets a password (account creation included)
/// goes through it; call [`check`](Self::check) directly to refuse a
/// password before any other work. `Debug` shows the settings, never the list.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_chars: usize,
    max_bytes: usize,
    reject_common: bool,
}

impl PasswordPolicy {
    /// The default minimum length, in characters (NIST SP 800-63B asks for
    /// at least 8; we ask for 12).
    pub const DEFAULT_MIN_CHARS: usize = 12;
    /// The default maximum length, in bytes.
    pub const DEFAULT_MAX_BYTES: usize = 1024;
    /// The largest maximum length a policy accepts, in bytes.
    pub const MAX_BYTES_LIMIT: usize = 4096;

    /// A policy with these lengths, refusing the common passwords.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] unless 1 ≤ `min_chars` ≤ `max_bytes` ≤
    /// [`MAX_BYTES_LIMIT`](Self::MAX_BYTES_LIMIT).
    pub fn new(min_chars: usize, max_bytes: usize) -> Result<Self> {
        if min_chars == 0 || max_bytes < min_chars || max_bytes > Self::MAX_BYTES_LIMIT {
            return Err(Error::misconfigured(
                "password.max_bytes",
                "need 1 <= min_chars <= max_bytes <= 4096",
            ));
        }
        Ok(Self {
            min_chars,
            max_bytes,
            reject_common: true,
        })
    }

    /// The same policy, accepting passwords on the common-password list.
    /// This weakens it: meant for tests and for deployments that check
    /// passwords against a larger list of their own before they get here.
    #[must_use]
    pub const fn allowing_common_passwords(mut self) -> Self {
        self.reject_common = false;
        self
    }

    /// The minimum length, in characters.
    #[must_use]
    pub const fn min_chars(&self) -> usize {
        self.min_chars
    }

    /// The maximum length, in bytes.
    #[must_use]
    pub const fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Whether passwords on the common-password list are refused.
    #[must_use]
    pub const fn rejects_common_passwords(&self) -> bool {
        self.reject_common
    }

    /// Check a new password: its length in bytes first (so an oversized one
    /// costs nothing more), then in characters, then the common-password
    /// list. The password is never copied to the heap, logged or echoed.
    ///
    /// # Errors
    /// The first rule the password breaks, as a [`PasswordRejection`]
    /// (which converts into [`Error::InvalidInput`]).
    pub fn check(&self, password: &SecretString) -> Result<(), PasswordRejection> {
        self.check_max(password)?;
        let password = password.expose_secret();
        if password.chars().count() < self.min_chars {
            return Err(PasswordRejection::TooShort {
                min_chars: self.min_chars,
            });
        }
        if self.reject_common && is_common_password(password) {
            return Err(PasswordRejection::Common);
        }
        Ok(())
    }

    /// Only the maximum length: what a login checks before verifying.
    pub(super) fn check_max(&self, password: &SecretString) -> Result<(), PasswordRejection> {
        if password.expose_secret().len() > self.max_bytes {
            return Err(PasswordRejection::TooLong {
                max_bytes: self.max_bytes,
            });
        }
        Ok(())
    }
}

impl Default for PasswordPolicy {
    /// At least 12 characters, at most 1024 bytes, common passwords refused.
    fn default() -> Self {
        Self {
            min_chars: Self::DEFAULT_MIN_CHARS,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            reject_common: true,
        }
    }
}

impl fmt::Debug for PasswordPolicy {
    // By hand so that no future field can print the list.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordPolicy")
            .field("min_chars", &self.min_chars)
            .field("max_bytes", &self.max_bytes)
            .field("reject_common", &self.reject_common)
            .finish()
    }
}

#[cfg(test)]
mod tests;
