//! `[keys]`: where the key-encryption key comes from, and the [`KeySource`]
//! the configuration resolves it to.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::SecretRef;

/// `[keys]`: where the key-encryption key comes from. Neither set means a
/// generated development key file under the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct KeysConfig {
    /// A reference: `env:NAME`, `file:/absolute/path` or `vault:path`.
    pub(crate) source: Option<String>,
    /// A key file the operator manages (32 random bytes).
    pub(crate) local_key_file: Option<PathBuf>,
}

/// Where key material comes from, once the configuration is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// No source configured: a development key file generated at this path.
    Generated(PathBuf),
    /// `keys.local_key_file`.
    LocalFile(PathBuf),
    /// `keys.source`.
    Reference(SecretRef),
}
