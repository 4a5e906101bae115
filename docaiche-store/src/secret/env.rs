//! [`EnvSecretProvider`].

use std::collections::HashMap;
use std::env::VarError;
use std::fmt;

use docaiche_core::secret_provider::{SecretProvider, SecretValue, validate_secret_name};
use docaiche_core::{Error, Result, SecretBytes, SecretString};

/// Secrets from environment variables.
///
/// The name `jwt/signing-key` maps to `DOCAICHE_SECRET_JWT_SIGNING_KEY`: the
/// prefix, then the name upper-cased with `/`, `-` and `.` turned into `_`.
/// Distinct names can therefore share a variable (`a/b` and `a-b`); name
/// secrets so that they do not.
///
/// A variable that is set but empty, or not UTF-8, is an error
/// (`Misconfigured`, naming the variable, never the value) rather than a
/// miss, so a chain does not quietly fall through to a default.
#[derive(Clone)]
pub struct EnvSecretProvider {
    prefix: String,
    source: Source,
}

#[derive(Clone)]
enum Source {
    Process,
    Snapshot(HashMap<String, SecretString>),
}

impl EnvSecretProvider {
    /// The default variable prefix.
    pub const DEFAULT_PREFIX: &'static str = "DOCAICHE_SECRET_";

    /// Read the process environment with [`Self::DEFAULT_PREFIX`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            source: Source::Process,
        }
    }

    /// Read variables from `vars` instead of the process environment: an
    /// environment captured once at start-up, or a test's (setting process
    /// variables is `unsafe` in Rust 2024).
    #[must_use]
    pub fn from_vars(vars: impl IntoIterator<Item = (String, SecretString)>) -> Self {
        Self {
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            source: Source::Snapshot(vars.into_iter().collect()),
        }
    }

    /// Use `prefix` instead of [`Self::DEFAULT_PREFIX`] (may be empty).
    ///
    /// # Errors
    /// `Misconfigured` unless `prefix` is ASCII upper-case letters, digits and `_`.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self> {
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Error::misconfigured(
                "secrets.env_prefix",
                "must be upper-case ASCII letters, digits and _",
            ));
        }
        prefix.clone_into(&mut self.prefix);
        Ok(self)
    }

    /// The variable that holds secret `name`.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid name.
    pub fn variable_name(&self, name: &str) -> Result<String> {
        validate_secret_name(name)?;
        let mut var = self.prefix.clone();
        var.extend(name.chars().map(|c| match c {
            '/' | '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        }));
        Ok(var)
    }
}

impl Default for EnvSecretProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EnvSecretProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Process => "process",
            Source::Snapshot(_) => "snapshot",
        };
        f.debug_struct("EnvSecretProvider")
            .field("prefix", &self.prefix)
            .field("source", &source)
            .finish()
    }
}

fn misconfigured(var: String, reason: &'static str) -> Error {
    Error::misconfigured(var, reason)
}

#[async_trait::async_trait]
impl SecretProvider for EnvSecretProvider {
    fn describe(&self) -> String {
        format!("env:{}*", self.prefix)
    }

    async fn get(&self, name: &str) -> Result<Option<SecretValue>> {
        let var = self.variable_name(name)?;
        let value = match &self.source {
            Source::Process => match std::env::var(&var) {
                Ok(value) => value.into_bytes(),
                Err(VarError::NotPresent) => return Ok(None),
                Err(VarError::NotUnicode(_)) => {
                    return Err(misconfigured(var, "the variable is not valid UTF-8"));
                }
            },
            Source::Snapshot(vars) => match vars.get(&var) {
                Some(value) => value.expose_secret().as_bytes().to_vec(),
                None => return Ok(None),
            },
        };
        let value = SecretBytes::new(value);
        if value.is_empty() {
            return Err(misconfigured(var, "the variable is set but empty"));
        }
        Ok(Some(SecretValue::new(value)))
    }
}
