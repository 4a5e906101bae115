//! HTTP hardening: security headers, HTTPS enforcement and response
//! compression, configured by the `[http]` section.
//!
//! [`HardeningLayer`] wraps the router just inside the request-id and trace
//! layers (see [`crate::app::router`]), so every answer — a handler's, a
//! problem, a CORS preflight, a panic's 500 and the HTTPS layer's own
//! redirect or refusal — carries the security headers and a request id.
//! Outermost first:
//!
//! 1. Security headers, each set only when the handler did not set its own
//!    (one [`SecurityHeaders`] service for all): `Strict-Transport-Security`
//!    (when the deployment is HTTPS: TLS here, or `http.https` redirecting or
//!    refusing plain HTTP), `Content-Security-Policy` (default: nothing may
//!    load, no framing), `X-Content-Type-Options: nosniff`,
//!    `X-Frame-Options: DENY` (for browsers without `frame-ancestors`) and
//!    `Referrer-Policy`.
//! 2. [`RequireHttps`]: with `http.https = "redirect"` or `"refuse"` and TLS
//!    terminated by a proxy, a request is secure only if it comes from a
//!    trusted proxy (`http.trusted_proxies`, else `rate_limit.trusted_proxies`)
//!    that says `X-Forwarded-Proto: https`; a client talking to the server
//!    directly cannot claim HTTPS by sending the header itself. An insecure
//!    `GET`/`HEAD` is redirected (308) to the same path and query on the
//!    configured `http.public_origin` when redirecting: never to the
//!    request's `Host`, which the client writes (`Host: evil.example` would
//!    make the server an open redirector). Without a public origin (allowed
//!    in development only) nothing is redirected; anything not redirected
//!    is refused with a 400 problem, since its body and credentials have
//!    already crossed the network in clear. Health probes (`/health/*`) are
//!    exempt: orchestrators probe pods over plain HTTP, and the probes carry
//!    no credentials.
//!
//!    The same service refuses, with a 400 problem, a request the accept
//!    loop marked with a [`HostHeaderFault`]: an HTTP/1.1 request without a
//!    `Host` header, or any request with more than one or with an invalid
//!    value (RFC 9112 §3.2). The mark is set on the wire
//!    ([`crate::shutdown::serve_with`]), so in-process callers of the
//!    router (tests, embedders) are not held to it.
//! 3. Compression (tower-http `CompressionLayer`, gzip and brotli, chosen by
//!    `Accept-Encoding`), skipped for bodies under
//!    `http.compression_min_bytes`, for responses already encoded, and for
//!    media types that are compressed already (images, audio, video, PDF,
//!    archives) or streamed (`text/event-stream`, gRPC).
//!
//! The rest of the HTTP hardening lives beside it: CORS from the
//! `[cors]` allowlist in [`crate::cors`], TLS and the connection idle timeout
//! in [`crate::tls`], JSON body validation in [`crate::json`].

use std::borrow::Cow;
use std::future::Ready;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header,
};
use axum::response::IntoResponse as _;
use docaiche_core::Error;
use docaiche_ratelimit::policy::IpNet;
use futures_util::TryFutureExt as _;
use futures_util::future::{Either, MapOk};
use serde::Deserialize;
use tower::Layer;
use tower::Service;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionLayer};

use crate::config::{Config, EnvLookup, Severity};

/// The default `Content-Security-Policy`: an API serves no active content,
/// so nothing may load and no page may frame it.
pub(crate) const DEFAULT_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// One year, the `max-age` HSTS preload lists ask for.
const DEFAULT_HSTS_MAX_AGE_SECS: u64 = 31_536_000;

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

/// `http.https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HttpsMode {
    /// Plain HTTP is served (development).
    #[default]
    Off,
    /// Plain `GET`/`HEAD` is redirected to `https://`; anything else refused.
    Redirect,
    /// Plain HTTP is refused.
    Refuse,
}

impl HttpsMode {
    /// The name as written in the configuration.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Redirect => "redirect",
            Self::Refuse => "refuse",
        }
    }
}

impl FromStr for HttpsMode {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Self::Off),
            "redirect" => Ok(Self::Redirect),
            "refuse" => Ok(Self::Refuse),
            _ => Err("expected `off`, `redirect` or `refuse`"),
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

    /// Apply the `DOCAICHE_*` overrides of `[http]`, adding a problem for
    /// each unparsable one.
    pub(crate) fn apply_env(&mut self, env: EnvLookup<'_>, problems: &mut Vec<Error>) {
        if let Some(v) = env("DOCAICHE_PUBLIC_ORIGIN") {
            self.public_origin = Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        }
        for (name, field) in [(
            "DOCAICHE_HEADER_READ_TIMEOUT_SECS",
            &mut self.header_read_timeout_secs,
        )] {
            if let Some(v) = env(name) {
                match v.trim().parse() {
                    Ok(secs) => *field = secs,
                    Err(e) => problems.push(Error::misconfigured(
                        name,
                        format!("`{v}` is not a number of seconds ({e})"),
                    )),
                }
            }
        }
        for (name, field) in [
            ("DOCAICHE_MAX_CONNECTIONS", &mut self.max_connections),
            (
                "DOCAICHE_MAX_CONNECTIONS_PER_ADDRESS",
                &mut self.max_connections_per_address,
            ),
        ] {
            if let Some(v) = env(name) {
                match v.trim().parse() {
                    Ok(count) => *field = count,
                    Err(e) => problems.push(Error::misconfigured(
                        name,
                        format!("`{v}` is not a number of connections ({e})"),
                    )),
                }
            }
        }
        if let Some(v) = env("DOCAICHE_HTTPS") {
            match v.parse() {
                Ok(mode) => self.https = mode,
                Err(reason) => problems.push(Error::misconfigured("DOCAICHE_HTTPS", reason)),
            }
        }
        if let Some(v) = env("DOCAICHE_TLS_CERT_FILE") {
            self.tls_cert_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env("DOCAICHE_TLS_KEY_FILE") {
            self.tls_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env("DOCAICHE_HTTPS_TRUSTED_PROXIES") {
            self.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = env("DOCAICHE_IDLE_TIMEOUT_SECS") {
            match v.trim().parse() {
                Ok(secs) => self.idle_timeout_secs = secs,
                Err(e) => problems.push(Error::misconfigured(
                    "DOCAICHE_IDLE_TIMEOUT_SECS",
                    format!("`{v}` is not a number of seconds ({e})"),
                )),
            }
        }
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
    /// `Strict-Transport-Security`, if sent.
    pub(crate) hsts: Option<HeaderValue>,
    /// `Content-Security-Policy`, if sent.
    pub(crate) content_security_policy: Option<HeaderValue>,
    /// `Referrer-Policy`, if sent.
    pub(crate) referrer_policy: Option<HeaderValue>,
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
        let hsts = (https_deployment && http.hsts_max_age_secs > 0).then(|| {
            let mut value = format!("max-age={}", http.hsts_max_age_secs);
            if http.hsts_include_subdomains {
                value.push_str("; includeSubDomains");
            }
            // Digits and ASCII only.
            HeaderValue::try_from(value).ok()
        });
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
        let origin = match &http.public_origin {
            Some(origin) => Some(public_origin(origin).ok_or_else(|| {
                Error::misconfigured("http.public_origin", "is not an https origin")
            })?),
            None => None,
        };
        Ok(Self {
            hsts: hsts.flatten(),
            content_security_policy: header(
                "http.content_security_policy",
                &http.content_security_policy,
            )?,
            referrer_policy: header("http.referrer_policy", &http.referrer_policy)?,
            https: HttpsPolicy {
                mode: http.https,
                tls: http.has_tls(),
                trusted: Arc::clone(&trusted),
                public_origin: origin,
            },
            compression_min_bytes: http.compression.then_some(http.compression_min_bytes),
            cors_credentials: config.cors.allow_credentials,
            connection_limits: crate::tls::ConnectionLimits {
                max_connections: http.max_connections,
                max_per_address: http.max_connections_per_address,
                exempt: trusted,
            },
        })
    }

    /// The layer applying these settings.
    pub(crate) fn layer(&self) -> HardeningLayer {
        HardeningLayer {
            settings: Arc::new(self.clone()),
        }
    }
}

/// Whether a request arrived over HTTPS, and what to do when it did not.
#[derive(Debug, Clone)]
pub(crate) struct HttpsPolicy {
    /// What to do with plain HTTP.
    pub(crate) mode: HttpsMode,
    /// The listener terminates TLS itself: every request is secure.
    pub(crate) tls: bool,
    /// Peers whose `X-Forwarded-Proto` is believed.
    pub(crate) trusted: Arc<[IpNet]>,
    /// Where plain HTTP is redirected: `https://host[:port]`, no slash.
    pub(crate) public_origin: Option<Arc<str>>,
}

/// `origin` as `https://host[:port]` (lower-cased, no trailing slash), or
/// `None` if it is not an https origin without path, query or userinfo.
fn public_origin(origin: &str) -> Option<Arc<str>> {
    let origin = origin.trim().trim_end_matches('/');
    let rest = origin.strip_prefix("https://")?;
    let authority = rest.parse::<axum::http::uri::Authority>().ok()?;
    if authority.as_str() != rest || rest.contains('@') || authority.host().is_empty() {
        return None;
    }
    Some(Arc::from(origin.to_ascii_lowercase()))
}

/// A request whose `Host` header breaks RFC 9112 §3.2: missing from an
/// HTTP/1.1 request, repeated, or not a valid `host[:port]`. Set by the
/// accept loop ([`crate::shutdown::serve_with`]) on requests from the wire;
/// [`RequireHttps`] answers them 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostHeaderFault {
    /// An HTTP/1.1 request without `Host`.
    Missing,
    /// More than one `Host` line.
    Repeated,
    /// A value that is not `host[:port]`.
    Invalid,
}

impl HostHeaderFault {
    /// The fault of `request`'s `Host` header, if any.
    pub(crate) fn of<B>(request: &Request<B>) -> Option<Self> {
        let mut hosts = request.headers().get_all(header::HOST).iter();
        match (hosts.next(), hosts.next()) {
            (None, _) if request.version() == axum::http::Version::HTTP_11 => Some(Self::Missing),
            (None, _) => None,
            (Some(_), Some(_)) => Some(Self::Repeated),
            (Some(host), None) => {
                let valid = host
                    .to_str()
                    .ok()
                    .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
                    .is_some_and(|a| !a.as_str().contains('@') && !a.host().is_empty());
                (!valid).then_some(Self::Invalid)
            }
        }
    }

    /// What the client is told.
    const fn detail(self) -> &'static str {
        match self {
            Self::Missing => "an HTTP/1.1 request needs a Host header (RFC 9112 section 3.2)",
            Self::Repeated => "a request must carry exactly one Host header (RFC 9112 section 3.2)",
            Self::Invalid => "the Host header is not a valid host[:port] (RFC 9112 section 3.2)",
        }
    }
}

/// What [`RequireHttps`] does with one request.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Secure, exempt, or enforcement is off.
    Pass,
    /// A 308 to this `https://` location.
    Redirect(HeaderValue),
    /// A 400 problem.
    Refuse,
}

impl HttpsPolicy {
    /// Whether a request from `peer` with `headers` came over HTTPS.
    fn is_secure(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> bool {
        if self.tls {
            return true;
        }
        let Some(peer) = peer else {
            return false;
        };
        self.trusted.iter().any(|net| net.contains(peer))
            && forwarded_proto(headers).is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
    }

    /// The verdict on `request`.
    fn verdict<B>(&self, request: &Request<B>) -> Verdict {
        if self.mode == HttpsMode::Off || request.uri().path().starts_with("/health/") {
            return Verdict::Pass;
        }
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        if self.is_secure(peer, request.headers()) {
            return Verdict::Pass;
        }
        let idempotent = request.method() == Method::GET || request.method() == Method::HEAD;
        if self.mode == HttpsMode::Redirect
            && idempotent
            && let Some(origin) = &self.public_origin
            && let Some(location) = https_location(origin, request)
        {
            return Verdict::Redirect(location);
        }
        Verdict::Refuse
    }
}

/// The protocol the nearest proxy saw: the last entry of the last
/// `X-Forwarded-Proto` line (a proxy appends, or replaces the header).
fn forwarded_proto(headers: &HeaderMap) -> Option<&str> {
    let line = headers
        .get_all("x-forwarded-proto")
        .iter()
        .next_back()?
        .to_str()
        .ok()?;
    line.rsplit(',').next().map(str::trim)
}

/// The configured public `origin` + the request's path and query. The
/// request's `Host` (and an absolute-form target's authority) play no
/// part: the client writes them.
fn https_location<B>(origin: &str, request: &Request<B>) -> Option<HeaderValue> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", axum::http::uri::PathAndQuery::as_str);
    // `//evil.example` after the origin is a path on the origin's host.
    HeaderValue::from_str(&format!("{origin}{path}")).ok()
}

/// Wraps a service with [`RequireHttps`].
#[derive(Debug, Clone)]
pub(crate) struct RequireHttpsLayer {
    policy: Arc<HttpsPolicy>,
}

impl RequireHttpsLayer {
    /// Enforce `policy`.
    pub(crate) fn new(policy: HttpsPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }
}

impl<S> Layer<S> for RequireHttpsLayer {
    type Service = RequireHttps<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireHttps {
            inner,
            policy: Arc::clone(&self.policy),
        }
    }
}

/// Redirects or refuses requests that did not arrive over HTTPS; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub(crate) struct RequireHttps<S> {
    inner: S,
    policy: Arc<HttpsPolicy>,
}

/// The body-type conversion of passed responses.
type IntoBody<B> = fn(Response<B>) -> Response<Body>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireHttps<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future =
        Either<Ready<Result<Response<Body>, S::Error>>, MapOk<S::Future, IntoBody<ResBody>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if let Some(fault) = request.extensions().get::<HostHeaderFault>() {
            tracing::debug!(fault = ?fault, "request with a bad Host header refused");
            let answer = Error::invalid_input(fault.detail()).into_response();
            return Either::Left(std::future::ready(Ok(answer)));
        }
        let answer = match self.policy.verdict(&request) {
            Verdict::Pass => {
                let into_body: IntoBody<ResBody> = |response| response.map(Body::new);
                return Either::Right(self.inner.call(request).map_ok(into_body));
            }
            Verdict::Redirect(location) => {
                tracing::debug!(path = %request.uri().path(), "plain HTTP redirected to HTTPS");
                (
                    StatusCode::PERMANENT_REDIRECT,
                    [(header::LOCATION, location)],
                )
                    .into_response()
            }
            Verdict::Refuse => {
                tracing::debug!(path = %request.uri().path(), "plain HTTP refused");
                Error::invalid_input("plain HTTP is refused: send the request over HTTPS")
                    .into_response()
            }
        };
        Either::Left(std::future::ready(Ok(answer)))
    }
}

/// When a response is compressed: at least the minimum size (or of
/// unknown size), not already encoded (tower-http checks that), and not a
/// media type that is compressed already or streamed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CompressWhen {
    /// Smallest body compressed; `None` disables compression.
    min_bytes: Option<u64>,
}

/// Media types (prefixes) whose bodies are compressed already.
const PRECOMPRESSED: [&str; 10] = [
    "image/",
    "audio/",
    "video/",
    "font/woff",
    "application/pdf",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/zstd",
    "application/octet-stream",
];

impl Predicate for CompressWhen {
    fn should_compress<B>(&self, response: &Response<B>) -> bool
    where
        B: axum::body::HttpBody,
    {
        let Some(min_bytes) = self.min_bytes else {
            return false;
        };
        let precompressed = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                // Lower-cased on the stack: no allocation per response.
                let ct = ct.trim_start().as_bytes();
                let mut lower = [0u8; 32];
                let len = ct.len().min(lower.len());
                for (to, from) in lower.iter_mut().zip(ct) {
                    *to = from.to_ascii_lowercase();
                }
                let head = &lower[..len];
                // SVG is text: compress it despite `image/`.
                !head.starts_with(b"image/svg+xml")
                    && PRECOMPRESSED.iter().any(|p| head.starts_with(p.as_bytes()))
            });
        !precompressed
            && SizeAbove::new(min_bytes)
                .and(NotForContentType::GRPC)
                .and(NotForContentType::SSE)
                .should_compress(response)
    }
}

/// Response compression, negotiated: tower-http's [`Compression`] for a
/// request that sends `Accept-Encoding`; for one that does not (it can only
/// be answered in identity), the inner service directly, with what
/// `Compression` would have added: `Vary: Accept-Encoding` when the response
/// could have been compressed. This skips the compression body wrapper, a
/// large value moved through every outer future, on the common path of API
/// clients.
#[derive(Clone)]
pub(crate) struct Negotiated<S> {
    /// Compression over the inner service.
    compression: Compression<S, CompressWhen>,
    /// Its predicate, for the `Vary` decision of identity answers.
    when: CompressWhen,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Negotiated<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Negotiated")
            .field("inner", self.compression.get_ref())
            .field("when", &self.when)
            .finish()
    }
}

/// The body-type conversion of compressed responses.
type FromCompressed<B> =
    fn(Response<tower_http::compression::CompressionBody<B>>) -> Response<Body>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Negotiated<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError> + Send + Sync,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<
        MapOk<
            tower_http::compression::ResponseFuture<S::Future, CompressWhen>,
            FromCompressed<ResBody>,
        >,
        IdentityFuture<S::Future>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.compression.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.headers().contains_key(header::ACCEPT_ENCODING) {
            let into_body: FromCompressed<ResBody> = |response| response.map(Body::new);
            return Either::Left(self.compression.call(request).map_ok(into_body));
        }
        Either::Right(IdentityFuture {
            inner: self.compression.get_mut().call(request),
            when: self.when,
        })
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Negotiated`] for a request without
    /// `Accept-Encoding`.
    #[derive(Debug)]
    pub(crate) struct IdentityFuture<F> {
        #[pin]
        inner: F,
        when: CompressWhen,
    }
}

impl<F, B, E> std::future::Future for IdentityFuture<F>
where
    F: std::future::Future<Output = Result<Response<B>, E>>,
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        // As tower-http's `Compression` does for an identity answer.
        let headers = response.headers();
        let compressible = !headers.contains_key(header::CONTENT_ENCODING)
            && !headers.contains_key(header::CONTENT_RANGE)
            && this.when.should_compress(&response);
        let varies = || {
            response
                .headers()
                .get_all(header::VARY)
                .iter()
                .any(|value| {
                    value
                        .as_bytes()
                        .windows(ACCEPT_ENCODING_NAME.len())
                        .any(|w| w.eq_ignore_ascii_case(ACCEPT_ENCODING_NAME))
                })
        };
        if compressible && !varies() {
            response
                .headers_mut()
                .append(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        Poll::Ready(Ok(response.map(Body::new)))
    }
}

/// `accept-encoding`, as `Vary` lists it.
const ACCEPT_ENCODING_NAME: &[u8] = b"accept-encoding";

/// `X-Content-Type-Options`.
const X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");

/// The service stack of [`HardeningLayer`], outermost first.
pub(crate) type Hardened<S> = SecurityHeaders<RequireHttps<Negotiated<S>>>;

/// Security headers, HTTPS enforcement and compression, in that order
/// (outermost first); see the [module docs](self).
#[derive(Debug, Clone)]
pub(crate) struct HardeningLayer {
    settings: Arc<HttpHardening>,
}

impl<S> Layer<S> for HardeningLayer {
    type Service = Hardened<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let settings = &self.settings;
        let compression = CompressionLayer::new()
            .gzip(true)
            .br(true)
            .compress_when(CompressWhen {
                min_bytes: settings.compression_min_bytes,
            });
        let https = RequireHttpsLayer::new(settings.https.clone());
        let service = https.layer(Negotiated {
            compression: compression.layer(inner),
            when: CompressWhen {
                min_bytes: settings.compression_min_bytes,
            },
        });
        // In the order the five single-header layers this replaces set them
        // (the innermost first); the unset ones (no HSTS over plain HTTP,
        // an empty CSP or referrer policy) are left out.
        let headers = [
            (header::REFERRER_POLICY, settings.referrer_policy.clone()),
            (
                header::X_FRAME_OPTIONS,
                Some(HeaderValue::from_static("DENY")),
            ),
            (
                X_CONTENT_TYPE_OPTIONS,
                Some(HeaderValue::from_static("nosniff")),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                settings.content_security_policy.clone(),
            ),
            (header::STRICT_TRANSPORT_SECURITY, settings.hsts.clone()),
        ];
        SecurityHeaders {
            inner: service,
            headers: IfAbsent(
                headers
                    .into_iter()
                    .filter_map(|(name, value)| Some((name, value?)))
                    .collect(),
            ),
        }
    }
}

/// Sets the security headers on every answer of the inner service, each
/// only when the answer does not carry that header already (a handler's own
/// value wins); one service for all of them, so a request pays for one
/// layer rather than one per header.
#[derive(Debug, Clone)]
pub(crate) struct SecurityHeaders<S> {
    inner: S,
    /// The headers set, in order.
    headers: IfAbsent,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SecurityHeaders<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = AmendedFuture<S::Future, IfAbsent>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        AmendedFuture::new(self.inner.call(request), self.headers.clone())
    }
}

/// A change a layer makes to the headers of every answer.
pub(crate) trait AmendHeaders {
    /// Change `headers`, the answer's.
    fn amend(&self, headers: &mut HeaderMap);
}

/// The security headers, each set only where the answer has none.
#[derive(Debug, Clone)]
pub(crate) struct IfAbsent(Arc<[(HeaderName, HeaderValue)]>);

impl AmendHeaders for IfAbsent {
    fn amend(&self, headers: &mut HeaderMap) {
        for (name, value) in self.0.iter() {
            if let header::Entry::Vacant(entry) = headers.entry(name) {
                entry.insert(value.clone());
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's answer, its headers amended by `A` (the
    /// response future of [`SecurityHeaders`] and of CORS's fast path).
    #[derive(Debug)]
    pub(crate) struct AmendedFuture<F, A> {
        #[pin]
        inner: F,
        amend: A,
    }
}

impl<F, A> AmendedFuture<F, A> {
    /// `inner`'s answer, amended by `amend`.
    pub(crate) const fn new(inner: F, amend: A) -> Self {
        Self { inner, amend }
    }
}

impl<F, A, B, E> std::future::Future for AmendedFuture<F, A>
where
    F: std::future::Future<Output = Result<Response<B>, E>>,
    A: AmendHeaders,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        this.amend.amend(response.headers_mut());
        Poll::Ready(Ok(response))
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
        assert!(hardening.hsts.is_none(), "no HSTS over plain HTTP");
        assert_eq!(hardening.https.mode, HttpsMode::Off);
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
            hardening.hsts.as_ref().map(HeaderValue::as_bytes),
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

    #[test]
    fn http_settings_come_from_the_environment() {
        let env = |name: &str| {
            match name {
                "DOCAICHE_HTTPS" => Some("Redirect"),
                "DOCAICHE_TLS_CERT_FILE" => Some("/tls/cert.pem"),
                "DOCAICHE_TLS_KEY_FILE" => Some("/tls/key.pem"),
                "DOCAICHE_HTTPS_TRUSTED_PROXIES" => Some("10.0.0.0/8, 192.0.2.1"),
                "DOCAICHE_IDLE_TIMEOUT_SECS" => Some("90"),
                "DOCAICHE_PUBLIC_ORIGIN" => Some("https://api.example"),
                "DOCAICHE_HEADER_READ_TIMEOUT_SECS" => Some("5"),
                "DOCAICHE_MAX_CONNECTIONS" => Some("500"),
                "DOCAICHE_MAX_CONNECTIONS_PER_ADDRESS" => Some("8"),
                _ => None,
            }
            .map(str::to_owned)
        };
        let mut http = HttpConfig::default();
        let mut problems = Vec::new();
        http.apply_env(&env, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(http.https, HttpsMode::Redirect);
        assert!(http.has_tls());
        assert_eq!(http.trusted_proxies, ["10.0.0.0/8", "192.0.2.1"]);
        assert_eq!(http.idle_timeout(), Duration::from_secs(90));
        assert_eq!(http.public_origin.as_deref(), Some("https://api.example"));
        assert_eq!(http.header_read_timeout(), Duration::from_secs(5));
        assert_eq!(http.max_connections, 500);
        assert_eq!(http.max_connections_per_address, 8);

        let bad = |name: &str| {
            matches!(
                name,
                "DOCAICHE_HTTPS"
                    | "DOCAICHE_IDLE_TIMEOUT_SECS"
                    | "DOCAICHE_HEADER_READ_TIMEOUT_SECS"
                    | "DOCAICHE_MAX_CONNECTIONS"
                    | "DOCAICHE_MAX_CONNECTIONS_PER_ADDRESS"
            )
            .then(|| "soon".to_owned())
        };
        let mut problems = Vec::new();
        HttpConfig::default().apply_env(&bad, &mut problems);
        assert_eq!(problems.len(), 5, "{problems:?}");
    }

    #[test]
    fn x_forwarded_proto_counts_only_from_trusted_proxies() {
        let policy = HttpsPolicy {
            mode: HttpsMode::Refuse,
            tls: false,
            trusted: vec!["10.0.0.0/8".parse().expect("cidr")].into(),
            public_origin: None,
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let proxy: IpAddr = "10.1.2.3".parse().expect("ip");
        let client: IpAddr = "192.0.2.7".parse().expect("ip");
        assert!(policy.is_secure(Some(proxy), &headers));
        assert!(!policy.is_secure(Some(client), &headers));
        assert!(!policy.is_secure(None, &headers));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https, http"));
        assert!(
            !policy.is_secure(Some(proxy), &headers),
            "the nearest hop wins"
        );
        assert!(!policy.is_secure(Some(proxy), &HeaderMap::new()));
    }

    #[test]
    fn the_redirect_goes_to_the_public_origin_whatever_the_host() {
        let origin = public_origin("https://API.example/").expect("origin");
        assert_eq!(&*origin, "https://api.example");
        for host in ["api.example:8080", "evil.example", "evil@api.example"] {
            let request = Request::get("/v1/keys?limit=2")
                .header(header::HOST, host)
                .body(())
                .expect("request");
            assert_eq!(
                https_location(&origin, &request).expect("location"),
                "https://api.example/v1/keys?limit=2"
            );
        }
        let absolute = Request::get("http://evil.example//evil.example/x")
            .body(())
            .expect("request");
        assert_eq!(
            https_location(&origin, &absolute).expect("location"),
            "https://api.example//evil.example/x"
        );
        for bad in [
            "http://api.example",
            "https://api.example/path",
            "https://user@api.example",
            "https://",
            "api.example",
            "https://api.example?x",
        ] {
            assert_eq!(public_origin(bad), None, "{bad}");
        }
        assert!(public_origin("https://api.example:8443").is_some());
    }

    #[test]
    fn host_header_faults_follow_rfc_9112() {
        let request = |version, hosts: &[&str]| {
            let mut builder = Request::get("/").version(version);
            for host in hosts {
                builder = builder.header(header::HOST, *host);
            }
            builder.body(()).expect("request")
        };
        use axum::http::Version;
        assert_eq!(
            HostHeaderFault::of(&request(Version::HTTP_11, &["a.example"])),
            None
        );
        assert_eq!(
            HostHeaderFault::of(&request(Version::HTTP_11, &["a.example:80"])),
            None
        );
        assert_eq!(HostHeaderFault::of(&request(Version::HTTP_10, &[])), None);
        assert_eq!(
            HostHeaderFault::of(&request(Version::HTTP_11, &[])),
            Some(HostHeaderFault::Missing)
        );
        assert_eq!(
            HostHeaderFault::of(&request(Version::HTTP_10, &["a", "b"])),
            Some(HostHeaderFault::Repeated)
        );
        for bad in ["a b", "", "user@a.example", "a.example/x"] {
            assert_eq!(
                HostHeaderFault::of(&request(Version::HTTP_11, &[bad])),
                Some(HostHeaderFault::Invalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn compression_skips_small_and_precompressed_bodies() {
        let when = CompressWhen {
            min_bytes: Some(100),
        };
        let response = |ct: &str, len: usize| {
            Response::builder()
                .header(header::CONTENT_TYPE, ct)
                .body(http_body_util::Full::new(axum::body::Bytes::from(vec![
                    b'a';
                    len
                ])))
                .expect("response")
        };
        assert!(when.should_compress(&response("application/json", 100)));
        assert!(!when.should_compress(&response("application/json", 99)));
        assert!(!when.should_compress(&response("application/pdf", 5000)));
        assert!(!when.should_compress(&response("image/png", 5000)));
        assert!(when.should_compress(&response("image/svg+xml", 5000)));
        assert!(!when.should_compress(&response("text/event-stream", 5000)));
        let off = CompressWhen { min_bytes: None };
        assert!(!off.should_compress(&response("application/json", 5000)));
    }
}
