//! [`VaultConfig`]: where Vault is, how to log in, and how long to wait and cache.

use std::time::Duration;

use docaiche_core::secret::SecretString;
use docaiche_core::{Error, Result};
use serde::Deserialize;

/// How the adapters authenticate to Vault.
///
/// `Debug` prints `[REDACTED]` for every credential (they are
/// [`SecretString`]s), and nothing here is `Serialize`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "method")]
#[non_exhaustive]
pub enum VaultAuth {
    /// A token issued out of band (`method = "token"`). If it has a TTL and
    /// is renewable, it is renewed with `auth/token/renew-self` once two
    /// thirds of its lease have passed; it cannot be replaced when it
    /// finally expires.
    #[serde(rename = "token")]
    Token {
        /// The Vault token.
        token: SecretString,
    },
    /// AppRole (`method = "approle"`): `role_id` + `secret_id` are exchanged
    /// for a client token at `auth/<mount>/login`; the token is renewed, and
    /// replaced by a fresh login when it can no longer be renewed or Vault
    /// refuses it.
    #[serde(rename = "approle")]
    AppRole {
        /// The role id (not strictly secret, but kept out of logs too).
        role_id: SecretString,
        /// The secret id.
        secret_id: SecretString,
        /// Where the AppRole auth method is mounted (default `approle`).
        #[serde(default = "default_approle_mount")]
        mount: String,
    },
}

impl VaultAuth {
    /// Token authentication.
    #[must_use]
    pub const fn token(token: SecretString) -> Self {
        Self::Token { token }
    }

    /// AppRole authentication against the default `approle` mount.
    #[must_use]
    pub fn approle(role_id: SecretString, secret_id: SecretString) -> Self {
        Self::AppRole {
            role_id,
            secret_id,
            mount: default_approle_mount(),
        }
    }

    /// The method's name, for logs and `Debug` of the client.
    #[must_use]
    pub const fn method(&self) -> &'static str {
        match self {
            Self::Token { .. } => "token",
            Self::AppRole { .. } => "approle",
        }
    }
}

/// Settings of the Vault adapters, as read from a file or the environment.
///
/// Durations are whole milliseconds (`request_timeout_ms = 5000`), as in the
/// rest of DocAIche. Mount paths may be nested (`team-a/kv`); Vault
/// Enterprise / OpenBao namespaces go in `namespace` and are sent as
/// `X-Vault-Namespace`.
///
/// ```
/// use docaiche_store::vault::VaultConfig;
///
/// let config: VaultConfig = serde_json::from_str(r#"{
///     "address": "https://vault.internal:8200",
///     "auth": { "method": "approle", "role_id": "r-1", "secret_id": "s3cr3t-id" },
///     "kv_mount": "team-a/kv",
///     "kv_prefix": "docaiche",
///     "cache_ttl_ms": 30000
/// }"#).unwrap();
/// config.validate().unwrap();
/// assert!(!format!("{config:?}").contains("s3cr3t-id"));
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VaultConfig {
    /// Base address, `https://vault.internal:8200`. Plain `http://` is
    /// accepted only for a loopback host (a dev server), so a token is never
    /// sent in clear over a network.
    pub address: String,
    /// Namespace sent as `X-Vault-Namespace` (Vault Enterprise, OpenBao).
    #[serde(default)]
    pub namespace: Option<String>,
    /// How to log in.
    pub auth: VaultAuth,
    /// Mount path of the KV v2 engine (default `secret`).
    #[serde(default = "default_kv_mount")]
    pub kv_mount: String,
    /// Path prefix inside the KV mount under which secret names live
    /// (default empty: `jwt/signing-key` is `<kv_mount>/data/jwt/signing-key`).
    #[serde(default)]
    pub kv_prefix: String,
    /// The field of a KV secret holding the value (default `value`).
    #[serde(default = "default_kv_field")]
    pub kv_field: String,
    /// Mount path of the Transit engine (default `transit`).
    #[serde(default = "default_transit_mount")]
    pub transit_mount: String,
    /// Deadline of each HTTP request, connection included (default 5000).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Deadline for establishing a connection (default 2000).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long a KV secret read is served from memory (default 60 000;
    /// `0` disables the cache).
    #[serde(default = "default_cache_ttl_ms")]
    pub cache_ttl_ms: u64,
    /// How long past its TTL a cached secret may still be served to callers
    /// that arrive while another caller refreshes it (default 30 000).
    #[serde(default = "default_cache_max_stale_ms")]
    pub cache_max_stale_ms: u64,
    /// How many secrets (name and version) the cache holds (default 1024).
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: usize,
    /// Responses larger than this are refused, unread (default 1 MiB).
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
}

fn default_approle_mount() -> String {
    "approle".to_owned()
}
fn default_kv_mount() -> String {
    "secret".to_owned()
}
fn default_kv_field() -> String {
    "value".to_owned()
}
fn default_transit_mount() -> String {
    "transit".to_owned()
}
const fn default_request_timeout_ms() -> u64 {
    5_000
}
const fn default_connect_timeout_ms() -> u64 {
    2_000
}
const fn default_cache_ttl_ms() -> u64 {
    60_000
}
const fn default_cache_max_stale_ms() -> u64 {
    30_000
}
const fn default_cache_capacity() -> usize {
    1024
}
const fn default_max_response_bytes() -> usize {
    1024 * 1024
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl VaultConfig {
    /// A configuration with every default but `address` and `auth`.
    pub fn new(address: impl Into<String>, auth: VaultAuth) -> Self {
        Self {
            address: address.into(),
            namespace: None,
            auth,
            kv_mount: default_kv_mount(),
            kv_prefix: String::new(),
            kv_field: default_kv_field(),
            transit_mount: default_transit_mount(),
            request_timeout_ms: default_request_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            cache_ttl_ms: default_cache_ttl_ms(),
            cache_max_stale_ms: default_cache_max_stale_ms(),
            cache_capacity: default_cache_capacity(),
            max_response_bytes: default_max_response_bytes(),
        }
    }

    /// Set the namespace.
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Set the KV v2 mount path.
    #[must_use]
    pub fn with_kv_mount(mut self, mount: impl Into<String>) -> Self {
        self.kv_mount = mount.into();
        self
    }

    /// Set the path prefix of secret names inside the KV mount.
    #[must_use]
    pub fn with_kv_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.kv_prefix = prefix.into();
        self
    }

    /// Set the KV field holding each secret's value.
    #[must_use]
    pub fn with_kv_field(mut self, field: impl Into<String>) -> Self {
        self.kv_field = field.into();
        self
    }

    /// Set the Transit mount path.
    #[must_use]
    pub fn with_transit_mount(mut self, mount: impl Into<String>) -> Self {
        self.transit_mount = mount.into();
        self
    }

    /// Set the per-request deadline.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout_ms = millis(timeout);
        self
    }

    /// Set the connect deadline.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout_ms = millis(timeout);
        self
    }

    /// Set the KV cache TTL (`Duration::ZERO` disables the cache).
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl_ms = millis(ttl);
        self
    }

    /// Set how long past its TTL a secret may be served during a refresh.
    #[must_use]
    pub fn with_cache_max_stale(mut self, max_stale: Duration) -> Self {
        self.cache_max_stale_ms = millis(max_stale);
        self
    }

    /// The per-request deadline.
    #[must_use]
    pub const fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The connect deadline.
    #[must_use]
    pub const fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The KV cache TTL.
    #[must_use]
    pub const fn cache_ttl(&self) -> Duration {
        Duration::from_millis(self.cache_ttl_ms)
    }

    /// How long past its TTL a secret may be served during a refresh.
    #[must_use]
    pub const fn cache_max_stale(&self) -> Duration {
        Duration::from_millis(self.cache_max_stale_ms)
    }

    /// Check every setting.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        self.base_url()?;
        if let Some(namespace) = &self.namespace {
            check_path("vault.namespace", namespace, false)?;
        }
        check_path("vault.kv_mount", &self.kv_mount, false)?;
        check_path("vault.kv_prefix", &self.kv_prefix, true)?;
        check_path("vault.transit_mount", &self.transit_mount, false)?;
        if self.kv_field.is_empty() || self.kv_field.len() > 128 {
            return Err(Error::misconfigured(
                "vault.kv_field",
                "must be 1 to 128 bytes",
            ));
        }
        if let VaultAuth::AppRole { mount, .. } = &self.auth {
            check_path("vault.auth.mount", mount, false)?;
        }
        if let VaultAuth::Token { token } = &self.auth {
            check_token("vault.auth.token", token)?;
        }
        if self.request_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(Error::misconfigured(
                "vault.request_timeout_ms",
                "request_timeout_ms and connect_timeout_ms must be above 0",
            ));
        }
        if self.cache_capacity == 0 {
            return Err(Error::misconfigured(
                "vault.cache_capacity",
                "must be above 0",
            ));
        }
        if self.max_response_bytes < 1024 {
            return Err(Error::misconfigured(
                "vault.max_response_bytes",
                "must be at least 1024",
            ));
        }
        Ok(())
    }

    /// `<address>/v1/`, checked.
    pub(crate) fn base_url(&self) -> Result<String> {
        let bad = |reason: &'static str| Error::misconfigured("vault.address", reason);
        let url = reqwest::Url::parse(&self.address)
            .map_err(|_| bad("not an absolute URL such as https://vault.internal:8200"))?;
        let host = url.host_str().ok_or_else(|| bad("has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(bad(
                    "plain http is only accepted for a loopback host; use https",
                ));
            }
            _ => return Err(bad("scheme must be https (or http on loopback)")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not hold credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not have a query or fragment"));
        }
        let base = url.as_str().trim_end_matches('/');
        Ok(format!("{base}/v1/"))
    }
}

/// A mount path or prefix: `/`-separated segments of `[A-Za-z0-9_.-]`, no
/// `.`/`..`, no empty segment, so it cannot step outside its place in a URL.
fn check_path(setting: &'static str, path: &str, may_be_empty: bool) -> Result<()> {
    if path.is_empty() {
        return if may_be_empty {
            Ok(())
        } else {
            Err(Error::misconfigured(setting, "must not be empty"))
        };
    }
    let ok = path.len() <= 256
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::misconfigured(
            setting,
            "must be `/`-separated segments of [A-Za-z0-9_.-], without `.` or `..` segments",
        ))
    }
}

/// A token must be a valid header value made of visible ASCII.
pub(crate) fn check_token(setting: &'static str, token: &SecretString) -> Result<()> {
    let token = token.expose_secret();
    if token.is_empty() || token.len() > 4096 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::misconfigured(
            setting,
            "must be 1 to 4096 visible ASCII characters",
        ));
    }
    Ok(())
}

/// A name of a Transit key or AppRole role: `[A-Za-z0-9_.-]`, 1 to 128 bytes.
pub(crate) fn check_name(setting: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::misconfigured(
            setting,
            "must be 1 to 128 bytes of [A-Za-z0-9_.-]",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(address: &str) -> VaultConfig {
        VaultConfig::new(address, VaultAuth::token("hvs.test-token".into()))
    }

    #[test]
    fn http_is_refused_off_loopback() {
        assert!(config("https://vault.example:8200").validate().is_ok());
        assert!(config("http://127.0.0.1:8200").validate().is_ok());
        assert!(config("http://[::1]:8200").validate().is_ok());
        assert!(config("http://localhost:8200").validate().is_ok());
        for bad in [
            "http://vault.example:8200",
            "http://10.0.0.1:8200",
            "ftp://127.0.0.1",
            "vault:8200",
            "https://user:pw@vault.example",
            "https://vault.example/?x=1",
            "",
        ] {
            let err = config(bad).validate().expect_err(bad);
            assert_eq!(err.code(), docaiche_core::ErrorCode::Misconfigured, "{bad}");
        }
    }

    #[test]
    fn mount_paths_cannot_traverse() {
        for bad in ["", "..", "a/../b", "a//b", "/a", "a/", "a b", "a?b", "a%2e"] {
            assert!(
                config("https://v.example")
                    .with_kv_mount(bad)
                    .validate()
                    .is_err(),
                "{bad:?}"
            );
        }
        assert!(
            config("https://v.example")
                .with_kv_mount("team-a/kv")
                .with_kv_prefix("apps/docaiche")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn base_url_ends_in_v1() {
        assert_eq!(
            config("https://vault.example:8200/").base_url().ok(),
            Some("https://vault.example:8200/v1/".to_owned())
        );
    }

    #[test]
    fn tokens_with_control_bytes_are_refused() {
        for bad in ["", "a\nb", "a b", "tök"] {
            let c = VaultConfig::new("https://v.example", VaultAuth::token(bad.into()));
            assert!(c.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_never_shows_credentials() {
        let c = VaultConfig::new(
            "https://v.example",
            VaultAuth::approle("role-id-1234".into(), "secret-id-5678".into()),
        );
        let printed = format!("{c:?} {c:#?}");
        assert!(!printed.contains("role-id-1234") && !printed.contains("secret-id-5678"));
        let c = VaultConfig::new("https://v.example", VaultAuth::token("hvs.abcdef".into()));
        assert!(!format!("{c:?}").contains("hvs.abcdef"));
    }
}
