//! National identity number formats: which ones a redactor looks for is
//! configuration, because which ones matter depends on where the users are.

use docaiche_core::{Error, Result};

use super::patterns::{self, Check};

/// One national identity number format.
///
/// ```
/// use docaiche_compliance::redact::{NationalIdFormat, Redactor};
///
/// # fn main() -> docaiche_core::Result<()> {
/// // Swedish personnummer, as a custom pattern (ASCII classes only).
/// let swedish = NationalIdFormat::custom("se_personnummer", r"\b[0-9]{6}[-+][0-9]{4}\b")?;
/// let redactor = Redactor::builder()
///     .national_ids([NationalIdFormat::us_ssn(), swedish])
///     .build()?;
/// assert_eq!(redactor.redact("pnr 811228-9874"), "pnr [REDACTED:national_id]");
/// assert_eq!(redactor.redact("ssn 123-45-6789"), "ssn [REDACTED:national_id]");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NationalIdFormat {
    name: String,
    pattern: String,
    check: Check,
}

impl NationalIdFormat {
    /// US Social Security number, `123-45-6789`, excluding the numbers
    /// never issued (area 000, 666, 900–999; group 00; serial 0000).
    #[must_use]
    pub fn us_ssn() -> Self {
        Self {
            name: "us_ssn".to_owned(),
            pattern: patterns::us_ssn(),
            check: Check::UsSsn,
        }
    }

    /// UK National Insurance number, `QQ 12 34 56 C` (spaces optional),
    /// excluding the prefixes never allocated.
    #[must_use]
    pub fn uk_nino() -> Self {
        Self {
            name: "uk_nino".to_owned(),
            pattern: patterns::uk_nino(),
            check: Check::UkNino,
        }
    }

    /// A format given as a regular expression (`regex` crate syntax). The
    /// crate is built without Unicode tables, so write ASCII classes
    /// (`[0-9]`, not `\d`); `\b` is accepted and made ASCII.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if the pattern does not compile, is longer
    /// than 1 KiB, or matches the empty string.
    pub fn custom(name: impl Into<String>, pattern: &str) -> Result<Self> {
        let name = name.into();
        if pattern.len() > 1024 {
            return Err(Error::misconfigured(
                "redaction.national_ids",
                "pattern is longer than 1024 bytes",
            ));
        }
        let pattern = pattern.replace(r"\b", r"(?-u:\b)");
        let regex = regex::Regex::new(&pattern).map_err(|e| {
            Error::misconfigured(
                "redaction.national_ids",
                format!("pattern `{name}` does not compile: {e}"),
            )
        })?;
        if regex.is_match("") {
            return Err(Error::misconfigured(
                "redaction.national_ids",
                format!("pattern `{name}` matches the empty string"),
            ));
        }
        Ok(Self {
            name,
            pattern,
            check: Check::Pattern,
        })
    }

    /// The format's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn pattern(&self) -> &str {
        &self.pattern
    }

    pub(super) const fn check(&self) -> Check {
        self.check
    }
}
