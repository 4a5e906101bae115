//! The `[http]` section: security headers, HTTPS, TLS, idle timeout,
//! compression and connection caps, checked by [`findings`] and turned
//! into the typed policies of [`docaiche_http`] by [`HttpHardening`].
//!
//! The layers themselves are `docaiche-http`'s, assembled in
//! [`crate::routes::router`] by `docaiche_http::secure_stack`: security
//! headers (HSTS only when the deployment is HTTPS: TLS here, or
//! `http.https` redirecting or refusing plain HTTP), HTTPS enforcement
//! (`X-Forwarded-Proto` believed only from `http.trusted_proxies`, else
//! `rate_limit.trusted_proxies`; plain `GET`/`HEAD` redirected to
//! `http.public_origin`, never to the request's `Host`; health probes
//! exempt; requests the accept loop marked with a [`HostHeaderFault`]
//! refused) and negotiated compression (`http.compression`,
//! `http.compression_min_bytes`).
//!
//! The rest of the HTTP hardening lives beside it: CORS from the
//! `[cors]` allowlist in [`crate::cors`], TLS and the connection idle timeout
//! in [`crate::tls`], JSON body validation in [`crate::json`].

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use docaiche_core::Error;
use docaiche_http::headers::SecurityHeadersPolicy;
use docaiche_http::https::{HttpsPolicy, public_origin};
use docaiche_ratelimit::policy::IpNet;
use serde::Deserialize;

pub(crate) use docaiche_http::headers::DEFAULT_CSP;
pub(crate) use docaiche_http::https::{HostHeaderFault, HttpsMode};

use crate::config::{Config, Severity};

/// One year, the `max-age` HSTS preload lists ask for.
const DEFAULT_HSTS_MAX_AGE_SECS: u64 = docaiche_http::headers::DEFAULT_HSTS_MAX_AGE.as_secs();

/// `[http]`: security headers, HTTPS, TLS, idle timeout, compression.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpConfig {
    /// What happens to a request that did not arrive over HTTPS when TLS is
    /// terminated by a proxy: `off` (development default; refused in
    /// production unless TLS is configured here), `redirect` or `refuse`.
    pub(crate) https: HttpsMode,
    /// PEM certificate chain; with [`Self::tls_key_file`], the server speaks
    /// TLS itself (rustls, TLS 1.2 and 1.3).
    pub(crate) tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate.
    pub(crate) tls_key_file: Option<PathBuf>,
    /// CIDR blocks of the proxies whose `X-Forwarded-Proto` is believed;
    /// empty means `rate_limit.trusted_proxies`.
    pub(crate) trusted_proxies: Vec<String>,
    /// `Strict-Transport-Security` max-age in seconds (HTTPS deployments
    /// only); 0 sends none.
    pub(crate) hsts_max_age_secs: u64,
    /// Add `includeSubDomains` to HSTS: every subdomain must be HTTPS too.
    pub(crate) hsts_include_subdomains: bool,
    /// The `Content-Security-Policy` of every response.
    pub(crate) content_security_policy: String,
    /// The `Referrer-Policy` of every response.
    pub(crate) referrer_policy: String,
    /// A connection with no bytes in either direction for this long is
    /// closed (keep-alive, slow clients, stalled uploads); must exceed
    /// `server.request_timeout_secs`.
    pub(crate) idle_timeout_secs: u64,
    /// Compress responses (gzip, brotli) the client accepts.
    pub(crate) compression: bool,
    /// Smallest body compressed, in bytes.
    pub(crate) compression_min_bytes: u64,
    /// The `https://host[:port]` origin clients reach the API at; plain
    /// HTTP is redirected there (`http.https = "redirect"`), never to the
    /// request's `Host`. Required in production when redirecting.
    pub(crate) public_origin: Option<String>,
    /// A client must send each request head (request line and headers)
    /// within this many seconds, or the connection is closed.
    pub(crate) header_read_timeout_secs: u64,
    /// Most connections open at once, server-wide; more are answered 503
    /// and closed. Keep it under the process's open-file limit.
    pub(crate) max_connections: usize,
    /// Most connections open at once from one client address (an IPv6
    /// client by its /64); trusted proxies are exempt.
    pub(crate) max_connections_per_address: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            https: HttpsMode::Off,
            tls_cert_file: None,
            tls_key_file: None,
            trusted_proxies: Vec::new(),
            hsts_max_age_secs: DEFAULT_HSTS_MAX_AGE_SECS,
            hsts_include_subdomains: false,
            content_security_policy: DEFAULT_CSP.to_owned(),
            referrer_policy: "no-referrer".to_owned(),
            idle_timeout_secs: 75,
            compression: true,
            compression_min_bytes: 1024,
            public_origin: None,
            header_read_timeout_secs: crate::shutdown::DEFAULT_HEADER_READ_TIMEOUT.as_secs(),
            max_connections: 10_000,
            max_connections_per_address: 64,
        }
    }
}

impl HttpConfig {
    /// Whether the server terminates TLS itself.
    pub(crate) const fn has_tls(&self) -> bool {
        self.tls_cert_file.is_some() && self.tls_key_file.is_some()
    }

    /// [`Self::idle_timeout_secs`] as a duration.
    pub(crate) const fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// [`Self::header_read_timeout_secs`] as a duration.
    pub(crate) const fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }
}

/// The proxies trusted for `X-Forwarded-Proto`: `http.trusted_proxies`, or
/// `rate_limit.trusted_proxies` when that is empty.
fn trusted_proxy_settings(config: &Config) -> (&'static str, &[String]) {
    if config.http.trusted_proxies.is_empty() {
        (
            "rate_limit.trusted_proxies",
            &config.rate_limit.limits.trusted_proxies,
        )
    } else {
        ("http.trusted_proxies", &config.http.trusted_proxies)
    }
}

/// What `[http]` (and the CORS credentials flag) deserve to be told, each
/// with the fix; called by [`Config::validate`].
pub(crate) fn findings(config: &Config, add: &mut dyn FnMut(Severity, &str, Cow<'static, str>)) {
    let http = &config.http;
    match (&http.tls_cert_file, &http.tls_key_file) {
        (Some(_), None) | (None, Some(_)) => add(
            Severity::Invalid,
            "http.tls_cert_file",
            "http.tls_cert_file and http.tls_key_file go together; set both or neither".into(),
        ),
        _ => {}
    }
    let (proxies_setting, proxies) = trusted_proxy_settings(config);
    for (i, block) in http.trusted_proxies.iter().enumerate() {
        if let Err(reason) = block.parse::<IpNet>() {
            add(
                Severity::Invalid,
                &format!("http.trusted_proxies[{i}]"),
                reason.into(),
            );
        } else if matches!(block.trim(), "0.0.0.0/0" | "::/0") {
            add(
                Severity::Unsafe,
                "http.trusted_proxies",
                "trusts every address as a proxy, so any client can claim HTTPS with \
                 X-Forwarded-Proto; list only your TLS proxies' addresses"
                    .into(),
            );
        }
    }
    if !http.has_tls() {
        match http.https {
            HttpsMode::Off => add(
                Severity::DevelopmentDefault,
                "http.https",
                "requests are served over plain HTTP; set http.tls_cert_file and \
                 http.tls_key_file, or, behind a TLS-terminating proxy, set http.https = \
                 \"redirect\" or \"refuse\" and list the proxy in http.trusted_proxies"
                    .into(),
            ),
            HttpsMode::Redirect | HttpsMode::Refuse if proxies.is_empty() => add(
                Severity::Invalid,
                "http.https",
                format!(
                    "`{}` needs the TLS proxy's address in {proxies_setting}: without a \
                     trusted X-Forwarded-Proto every request counts as plain HTTP",
                    http.https.as_str()
                )
                .into(),
            ),
            HttpsMode::Redirect | HttpsMode::Refuse => {}
        }
    }
    let https_deployment = http.has_tls() || http.https != HttpsMode::Off;
    if https_deployment && http.hsts_max_age_secs == 0 {
        add(
            Severity::Unsafe,
            "http.hsts_max_age_secs",
            "0 sends no Strict-Transport-Security, so browsers may still try plain HTTP \
             first; use 31536000 (one year)"
                .into(),
        );
    }
    if http.content_security_policy.trim().is_empty() {
        add(
            Severity::Unsafe,
            "http.content_security_policy",
            format!("is empty; the API serves no active content, use `{DEFAULT_CSP}`").into(),
        );
    }
    for (setting, value) in [
        (
            "http.content_security_policy",
            &http.content_security_policy,
        ),
        ("http.referrer_policy", &http.referrer_policy),
    ] {
        if HeaderValue::from_str(value).is_err() {
            add(
                Severity::Invalid,
                setting,
                "is not a valid header value (printable ASCII only)".into(),
            );
        }
    }
    if http.idle_timeout_secs == 0 {
        add(
            Severity::Invalid,
            "http.idle_timeout_secs",
            "must be at least 1 second".into(),
        );
    } else if http.idle_timeout_secs <= config.server.request_timeout_secs {
        add(
            Severity::Invalid,
            "http.idle_timeout_secs",
            format!(
                "must exceed server.request_timeout_secs ({}): a connection is idle while \
                 its handler works, and would be closed before the request times out",
                config.server.request_timeout_secs
            )
            .into(),
        );
    }
    match &http.public_origin {
        Some(origin) if public_origin(origin).is_none() => add(
            Severity::Invalid,
            "http.public_origin",
            format!(
                "`{origin}` is not an https origin; write https://host[:port] with no path, \
                 e.g. https://api.example.com"
            )
            .into(),
        ),
        None if http.https == HttpsMode::Redirect && !http.has_tls() => add(
            Severity::DevelopmentDefault,
            "http.public_origin",
            "is not set, so plain-HTTP requests are refused instead of redirected (a \
             redirect to the request's Host header would be an open redirect); set it to \
             the https:// origin clients use, e.g. https://api.example.com"
                .into(),
        ),
        _ => {}
    }
    if http.header_read_timeout_secs == 0 {
        add(
            Severity::Invalid,
            "http.header_read_timeout_secs",
            "must be at least 1 second".into(),
        );
    }
    if http.max_connections == 0 {
        add(
            Severity::Invalid,
            "http.max_connections",
            "must be at least 1".into(),
        );
    }
    if http.max_connections_per_address == 0 {
        add(
            Severity::Invalid,
            "http.max_connections_per_address",
            "must be at least 1".into(),
        );
    } else if http.max_connections_per_address > http.max_connections {
        add(
            Severity::Notice,
            "http.max_connections_per_address",
            "exceeds http.max_connections, so one address can hold every connection".into(),
        );
    }
    if config.cors.allow_credentials && config.cors.allowed_origins.iter().any(|o| o == "*") {
        add(
            Severity::Invalid,
            "cors.allow_credentials",
            "credentials cannot be allowed for `*`: any web site could act with its \
             visitors' cookies; list the exact origins in cors.allowed_origins"
                .into(),
        );
    }
}

/// What the hardening layers need, from a validated [`Config`].
#[derive(Debug, Clone)]
pub(crate) struct HttpHardening {
    /// The security headers (HSTS only for an HTTPS deployment).
    pub(crate) headers: SecurityHeadersPolicy,
    /// HTTPS enforcement.
    pub(crate) https: HttpsPolicy,
    /// Smallest body compressed; `None` disables compression.
    pub(crate) compression_min_bytes: Option<u64>,
    /// CORS answers allow credentials (never with `*`).
    pub(crate) cors_credentials: bool,
    /// The listener's connection caps.
    pub(crate) connection_limits: crate::tls::ConnectionLimits,
}

impl HttpHardening {
    /// The settings of `config`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for a header value or CIDR block that
    /// [`Config::validate`] would have refused.
    pub(crate) fn from_config(config: &Config) -> Result<Self, Error> {
        let http = &config.http;
        let header = |setting: &'static str, value: &str| {
            if value.trim().is_empty() {
                return Ok(None);
            }
            HeaderValue::from_str(value.trim())
                .map(Some)
                .map_err(|_| Error::misconfigured(setting, "is not a valid header value"))
        };
        let https_deployment = http.has_tls() || http.https != HttpsMode::Off;
        let mut headers = SecurityHeadersPolicy::default()
            .with_content_security_policy(header(
                "http.content_security_policy",
                &http.content_security_policy,
            )?)
            .with_referrer_policy(header("http.referrer_policy", &http.referrer_policy)?);
        if https_deployment {
            headers = headers.with_hsts(
                Duration::from_secs(http.hsts_max_age_secs),
                http.hsts_include_subdomains,
            );
        }
        let (setting, proxies) = trusted_proxy_settings(config);
        let mut trusted = Vec::with_capacity(proxies.len());
        for (i, block) in proxies.iter().enumerate() {
            trusted.push(
                block
                    .parse::<IpNet>()
                    .map_err(|reason| Error::misconfigured(format!("{setting}[{i}]"), reason))?,
            );
        }
        let trusted: Arc<[IpNet]> = trusted.into();
        let mut https = HttpsPolicy::new(http.https)
            .with_tls(http.has_tls())
            .with_trusted_proxies(trusted.iter().map(IpNet::as_ipnet))
            // Orchestrators probe pods over plain HTTP; the probes carry no
            // credentials.
            .with_exempt_path_prefix("/health/");
        if let Some(origin) = &http.public_origin {
            https = https.with_public_origin(origin).map_err(|_| {
                Error::misconfigured("http.public_origin", "is not an https origin")
            })?;
        }
        Ok(Self {
            headers,
            https,
            compression_min_bytes: http.compression.then_some(http.compression_min_bytes),
            cors_credentials: config.cors.allow_credentials,
            connection_limits: crate::tls::ConnectionLimits {
                max_connections: http.max_connections,
                max_per_address: http.max_connections_per_address,
                exempt: trusted,
            },
        })
    }

    /// The whole HTTP security stack's policy: these settings, the body
    /// limit and deadline of `settings`, CORS from its origins.
    pub(crate) fn security_policy(
        &self,
        settings: &crate::state::HttpSettings,
    ) -> docaiche_http::SecurityPolicy {
        docaiche_http::SecurityPolicy::new()
            .with_headers(self.headers.clone())
            .with_https(self.https.clone())
            .with_compression(self.compression_min_bytes)
            .with_cors(crate::cors::policy(
                &settings.allowed_origins,
                self.cors_credentials,
            ))
            .with_body_limit(settings.body_limit)
            .with_request_timeout(settings.request_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(edit: impl FnOnce(&mut Config)) -> Config {
        let mut config = Config::default();
        edit(&mut config);
        config
    }

    fn settings_named(config: &Config) -> Vec<String> {
        let mut out = Vec::new();
        findings(config, &mut |_, setting, _| out.push(setting.to_owned()));
        out
    }

    #[test]
    fn the_defaults_build_and_only_name_plain_http() {
        let config = Config::default();
        assert_eq!(settings_named(&config), ["http.https"]);
        let hardening = HttpHardening::from_config(&config).expect("defaults");
        assert!(
            hardening.headers.hsts().is_none(),
            "no HSTS over plain HTTP"
        );
        assert_eq!(hardening.https.mode(), HttpsMode::Off);
        assert_eq!(hardening.compression_min_bytes, Some(1024));
    }

    #[test]
    fn https_behind_a_proxy_needs_a_trusted_proxy() {
        let refused = config(|c| c.http.https = HttpsMode::Redirect);
        assert_eq!(
            settings_named(&refused),
            ["http.https", "http.public_origin"]
        );
        let trusted = config(|c| {
            c.http.https = HttpsMode::Refuse;
            c.rate_limit.limits.trusted_proxies = vec!["10.0.0.0/8".into()];
        });
        assert!(settings_named(&trusted).is_empty());
        let hardening = HttpHardening::from_config(&trusted).expect("valid");
        assert_eq!(
            hardening.headers.hsts().map(HeaderValue::as_bytes),
            Some(&b"max-age=31536000"[..])
        );
    }

    #[test]
    fn every_bad_http_setting_is_named() {
        let bad = config(|c| {
            c.http.tls_cert_file = Some("/cert.pem".into());
            c.http.trusted_proxies = vec!["10.0.0.1/8".into(), "0.0.0.0/0".into()];
            c.http.hsts_max_age_secs = 0;
            c.http.content_security_policy = "bad\nvalue".into();
            c.http.idle_timeout_secs = 30;
            c.http.public_origin = Some("http://api.example/x".into());
            c.http.header_read_timeout_secs = 0;
            c.http.max_connections = 0;
            c.http.max_connections_per_address = 0;
            c.cors.allow_credentials = true;
        });
        let named = settings_named(&bad);
        for setting in [
            "http.tls_cert_file",
            "http.trusted_proxies[0]",
            "http.trusted_proxies",
            "http.content_security_policy",
            "http.idle_timeout_secs",
            "http.public_origin",
            "http.header_read_timeout_secs",
            "http.max_connections",
            "http.max_connections_per_address",
            "cors.allow_credentials",
        ] {
            assert!(named.iter().any(|n| n == setting), "{setting}: {named:?}");
        }
    }

    #[test]
    fn production_refuses_plain_http_and_accepts_tls_or_an_enforcing_proxy() {
        let production = |edit: &dyn Fn(&mut Config)| {
            let mut config = config(|c| {
                c.environment = crate::config::Environment::Production;
            });
            edit(&mut config);
            let mut refused: Vec<String> = match config.validate() {
                Ok(_) => Vec::new(),
                Err(problems) => problems
                    .0
                    .iter()
                    .filter_map(|e| match e {
                        Error::Misconfigured { setting, .. } => Some(setting.to_string()),
                        _ => None,
                    })
                    .collect(),
            };
            refused.retain(|s| s.starts_with("http.") || s.starts_with("cors."));
            refused
        };
        assert!(production(&|_| {}).contains(&"http.https".to_owned()));
        let with_tls = production(&|c| {
            c.cors.allowed_origins = vec!["https://app.example".into()];
            c.http.tls_cert_file = Some("/etc/tls/cert.pem".into());
            c.http.tls_key_file = Some("/etc/tls/key.pem".into());
        });
        assert!(with_tls.is_empty(), "{with_tls:?}");
        let behind_proxy = production(&|c| {
            c.cors.allowed_origins = vec!["https://app.example".into()];
            c.http.https = HttpsMode::Redirect;
            c.http.trusted_proxies = vec!["10.0.0.0/24".into()];
            c.http.public_origin = Some("https://api.example".into());
        });
        assert!(behind_proxy.is_empty(), "{behind_proxy:?}");
        // Redirecting needs the origin to redirect to: never the Host header.
        let no_origin = production(&|c| {
            c.cors.allowed_origins = vec!["https://app.example".into()];
            c.http.https = HttpsMode::Redirect;
            c.http.trusted_proxies = vec!["10.0.0.0/24".into()];
        });
        assert_eq!(no_origin, ["http.public_origin"]);
        // The wildcard origin stays refused in production.
        let wildcard = production(&|c| {
            c.http.https = HttpsMode::Refuse;
            c.http.trusted_proxies = vec!["10.0.0.0/24".into()];
        });
        assert_eq!(wildcard, ["cors.allowed_origins"]);
    }
}
