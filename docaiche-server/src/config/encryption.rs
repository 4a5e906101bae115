//! `[encryption]`: the key wrapper of encryption at rest (the local key or
//! Vault Transit).

use std::str::FromStr;

use serde::Deserialize;

/// `[encryption] key_wrapper`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KeyWrapperKind {
    /// The local key of `[keys]` (default).
    #[default]
    Local,
    /// Vault Transit (feature `vault`).
    Vault,
}

impl KeyWrapperKind {
    /// The name as written in the configuration.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Vault => "vault",
        }
    }
}

impl FromStr for KeyWrapperKind {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(Self::Local),
            "vault" => Ok(Self::Vault),
            _ => Err("expected `local` or `vault`"),
        }
    }
}

/// `[encryption]`: how document data keys are wrapped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct EncryptionSection {
    /// `local` (the `[keys]` key) or `vault` (Transit).
    pub(crate) key_wrapper: KeyWrapperKind,
    /// The Transit key (derived, `aes256-gcm96`) with `key_wrapper = "vault"`.
    pub(crate) transit_key: String,
}

impl Default for EncryptionSection {
    fn default() -> Self {
        Self {
            key_wrapper: KeyWrapperKind::Local,
            transit_key: "docaiche-documents".to_owned(),
        }
    }
}
