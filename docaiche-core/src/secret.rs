//! Secret values: zeroized on drop, never printed.
//!
//! [`Secret`] is our own small type rather than `secrecy::SecretBox` because we
//! also need `Display` to print `[REDACTED]` (format strings reach `Display`
//! far more often than `Debug`), and because it is the vocabulary of the core
//! traits, which must not expose a third-party type in their signatures.
//!
//! ```
//! use docaiche_core::secret::SecretString;
//!
//! let password = SecretString::from("hunter2".to_owned());
//! assert_eq!(format!("{password} {password:?}"), "[REDACTED] [REDACTED]");
//! assert_eq!(password.expose_secret(), "hunter2");
//! ```

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// What [`Secret`]'s `Debug` and `Display` print.
pub const REDACTED: &str = "[REDACTED]";

/// A secret value. Zeroized when dropped; `Debug` and `Display` print
/// `[REDACTED]`; no `Serialize`, so it cannot end up in a JSON response or
/// log record by accident. Read it with [`Secret::expose_secret`], which is
/// easy to grep for in review.
#[derive(Clone, Default)]
pub struct Secret<T: Zeroize>(T);

/// A secret string (passwords, tokens, API keys, connection strings).
pub type SecretString = Secret<String>;
/// Secret bytes (keys, peppers).
pub type SecretBytes = Secret<Vec<u8>>;

impl<T: Zeroize> Secret<T> {
    /// Wrap `value`.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// Borrow the secret value.
    pub const fn expose_secret(&self) -> &T {
        &self.0
    }

    /// Mutably borrow the secret value.
    pub const fn expose_secret_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize + PartialEq> Secret<T> {
    /// Compare with another secret. Not constant-time: compare MACs or hashes
    /// of secrets with a constant-time function instead.
    pub fn eq_secret(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Self)
    }
}

impl SecretBytes {
    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = SecretString::from("correct horse battery staple");
        let bytes = SecretBytes::from(b"pepper".to_vec());
        for printed in [
            format!("{s}"),
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{bytes:?}"),
            format!("{:?}", Some(&s)),
        ] {
            assert!(
                !printed.contains("horse") && !printed.contains("pepper"),
                "{printed}"
            );
            assert!(printed.contains(REDACTED));
        }
    }

    #[test]
    fn debug_of_a_containing_struct_is_redacted() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Config {
            url: String,
            password: SecretString,
        }
        let c = Config {
            url: "postgres://db".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn deserializes_from_plain_json() {
        let s: SecretString = serde_json::from_str(r#""s3cret""#).expect("valid");
        assert_eq!(s.expose_secret(), "s3cret");
    }
}
