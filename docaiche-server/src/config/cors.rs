//! `[cors]`: which browser origins may call the API (checked in
//! `validate.rs`; the layer itself is `crate::cors`).

use serde::Deserialize;

/// `[cors]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CorsConfig {
    /// Exact origins (`https://app.example.com`), `*` for any (development
    /// default), or empty to refuse cross-origin requests.
    pub(crate) allowed_origins: Vec<String>,
    /// Let browsers send cookies and client certificates cross-origin
    /// (`Access-Control-Allow-Credentials`); refused with `*`.
    pub(crate) allow_credentials: bool,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: vec!["*".to_owned()],
            allow_credentials: false,
        }
    }
}
