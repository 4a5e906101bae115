//! `[secrets]`: the provider chain named secrets are read through
//! (env, file, Vault KV), `[secrets.vault]`, and the [`SecretRef`] every
//! secret-bearing setting holds instead of a secret.

use std::path::{Path, PathBuf};

use docaiche_core::secret_provider::validate_secret_name;
use serde::Deserialize;

/// A reference to a secret held elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretRef {
    /// `env:NAME`: an environment variable.
    Env(String),
    /// `file:/path`: a file (e.g. a mounted Kubernetes or Docker secret).
    File(PathBuf),
    /// `vault:path`: a Vault / OpenBao path.
    Vault(String),
}

/// The reference prefixes, for messages and the literal-secret scan.
const REFERENCE_PREFIXES: [&str; 3] = ["env:", "file:", "vault:"];

impl SecretRef {
    /// Whether `value` is written as a reference (valid or not), as opposed
    /// to a literal.
    pub(crate) fn looks_like_reference(value: &str) -> bool {
        REFERENCE_PREFIXES.iter().any(|p| value.starts_with(p))
    }

    /// Parse a reference. The error says how to write it and never repeats
    /// the value, which may be a secret.
    pub(crate) fn parse(value: &str) -> Result<Self, &'static str> {
        if let Some(name) = value.strip_prefix("env:") {
            let ok =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            return if ok {
                Ok(Self::Env(name.to_owned()))
            } else {
                Err("`env:` needs a variable name of [A-Za-z0-9_], e.g. env:DOCAICHE_MASTER_KEY")
            };
        }
        if let Some(path) = value.strip_prefix("file:") {
            let path = Path::new(path);
            return if path.is_absolute() {
                Ok(Self::File(path.to_path_buf()))
            } else {
                Err("`file:` needs an absolute path, e.g. file:/run/secrets/docaiche-master-key")
            };
        }
        if let Some(path) = value.strip_prefix("vault:") {
            return match validate_secret_name(path) {
                Ok(()) => Ok(Self::Vault(path.to_owned())),
                Err(_) => Err(
                    "`vault:` needs a path of lowercase segments of [a-z0-9_.-], e.g. vault:transit/docaiche",
                ),
            };
        }
        Err(
            "holds a literal value, but secret-bearing settings take a reference \
             (env:NAME, file:/path or vault:path); move the secret out of the configuration \
             and rotate it",
        )
    }
}

/// `[secrets]`: the chain every named secret (API-key peppers, the JWT
/// signing key) is read through, in order; references in `*_source`
/// settings (`env:`, `file:`, `vault:`) use the same providers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SecretsSection {
    /// `env` (`DOCAICHE_SECRET_*`), `file:/absolute/dir`, `vault` (KV v2 of
    /// `[secrets.vault]`), tried in this order. Empty: `auth.provider`, or
    /// generated development secrets.
    pub(crate) sources: Vec<String>,
    /// `[secrets.vault]`.
    pub(crate) vault: VaultSection,
}

/// One entry of `secrets.sources`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretSource {
    /// `DOCAICHE_SECRET_<NAME>` variables.
    Env,
    /// Files under a directory.
    Dir(PathBuf),
    /// Vault KV v2.
    Vault,
}

impl SecretSource {
    /// Parse one entry; the error says how to write it.
    pub(crate) fn parse(value: &str) -> Result<Self, &'static str> {
        match value.trim() {
            "env" => Ok(Self::Env),
            "vault" => Ok(Self::Vault),
            other => match other.strip_prefix("file:").map(Path::new) {
                Some(dir) if dir.is_absolute() => Ok(Self::Dir(dir.to_path_buf())),
                _ => Err("entries must be `env`, `file:/absolute/dir` or `vault`"),
            },
        }
    }
}

impl SecretsSection {
    /// The chain, in order.
    ///
    /// # Errors
    /// How to write an entry; never its value.
    pub(crate) fn chain(&self) -> Result<Vec<SecretSource>, &'static str> {
        self.sources
            .iter()
            .map(|s| SecretSource::parse(s))
            .collect()
    }
}

/// `[secrets.vault]`: the Vault / OpenBao server. Credentials are
/// references (`env:` or `file:`), never values.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct VaultSection {
    /// `https://vault.internal:8200`.
    pub(crate) address: Option<String>,
    /// Enterprise / OpenBao namespace.
    pub(crate) namespace: Option<String>,
    /// The KV v2 mount.
    pub(crate) kv_mount: String,
    /// Prefix of every secret path under the mount.
    pub(crate) kv_prefix: String,
    /// The Transit mount.
    pub(crate) transit_mount: String,
    /// Token authentication: reference to the token.
    pub(crate) token_source: Option<String>,
    /// AppRole: reference to the role id.
    pub(crate) role_id_source: Option<String>,
    /// AppRole: reference to the secret id.
    pub(crate) secret_id_source: Option<String>,
    /// Where AppRole is mounted.
    pub(crate) approle_mount: String,
}

impl Default for VaultSection {
    fn default() -> Self {
        Self {
            address: None,
            namespace: None,
            kv_mount: "secret".to_owned(),
            kv_prefix: "docaiche".to_owned(),
            transit_mount: "transit".to_owned(),
            token_source: None,
            role_id_source: None,
            secret_id_source: None,
            approle_mount: "approle".to_owned(),
        }
    }
}
