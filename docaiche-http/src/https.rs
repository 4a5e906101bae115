//! HTTPS enforcement behind trusted proxies: [`RequireHttpsLayer`].
//!
//! With TLS terminated by a proxy, a request is secure only if it comes
//! from a trusted proxy ([`HttpsPolicy::with_trusted_proxies`]) that says
//! `X-Forwarded-Proto: https`; a client talking to the server directly
//! cannot claim HTTPS by sending the header itself. An insecure
//! `GET`/`HEAD` is redirected (308) to the same path and query on the
//! configured public origin ([`HttpsPolicy::with_public_origin`]) when
//! redirecting: never to the request's `Host`, which the client writes
//! (`Host: evil.example` would make the server an open redirector).
//! Without a public origin nothing is redirected; anything not redirected
//! is refused with a 400 problem, since its body and credentials have
//! already crossed the network in clear. Paths under an exempt prefix
//! ([`HttpsPolicy::with_exempt_path_prefix`], e.g. health probes, which
//! orchestrators send over plain HTTP and which carry no credentials) pass.
//!
//! The same service refuses, with a 400 problem, a request marked with a
//! [`HostHeaderFault`] by the accept loop: an HTTP/1.1 request without a
//! `Host` header, or any request with more than one or with an invalid
//! value (RFC 9112 §3.2). The mark is set on the wire (by the server that
//! accepts connections), so in-process callers are not held to it.
//!
//! The peer address is read from the request's extensions: axum's
//! `ConnectInfo<SocketAddr>` (with the `axum` feature), else a plain
//! [`SocketAddr`] (insert one per connection when serving with hyper
//! directly). A request without one is never from a trusted proxy.

use std::future::Ready;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use docaiche_core::Error;
use futures_util::TryFutureExt as _;
use futures_util::future::{Either, MapOk};
use http::{Extensions, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use serde::Deserialize;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::ResponseBody;

/// What happens to a request that did not arrive over HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
// The three answers to plain HTTP: serve, redirect, refuse. Exhaustive so
// a configuration `match` has no arm that cannot happen.
#[allow(clippy::exhaustive_enums)]
pub enum HttpsMode {
    /// Plain HTTP is served (development, or TLS terminated here).
    #[default]
    Off,
    /// Plain `GET`/`HEAD` is redirected to `https://`; anything else refused.
    Redirect,
    /// Plain HTTP is refused.
    Refuse,
}

impl HttpsMode {
    /// The name as written in a configuration: `off`, `redirect`, `refuse`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Redirect => "redirect",
            Self::Refuse => "refuse",
        }
    }
}

impl std::str::FromStr for HttpsMode {
    type Err = &'static str;

    /// `off`, `redirect` or `refuse`, in any case, surrounding blanks
    /// ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Self::Off),
            "redirect" => Ok(Self::Redirect),
            "refuse" => Ok(Self::Refuse),
            _ => Err("expected `off`, `redirect` or `refuse`"),
        }
    }
}

/// Whether a request arrived over HTTPS, and what to do when it did not.
///
/// [`Default`] enforces nothing ([`HttpsMode::Off`]).
#[derive(Debug, Clone, Default)]
pub struct HttpsPolicy {
    mode: HttpsMode,
    /// The listener terminates TLS itself: every request is secure.
    tls: bool,
    /// Peers whose `X-Forwarded-Proto` is believed.
    trusted: Arc<[ipnet::IpNet]>,
    /// Where plain HTTP is redirected: `https://host[:port]`, no slash.
    public_origin: Option<Arc<str>>,
    /// Paths served over plain HTTP whatever the mode.
    exempt_prefix: Option<Arc<str>>,
}

impl HttpsPolicy {
    /// A policy of `mode`, with no trusted proxy and no public origin.
    #[must_use]
    pub fn new(mode: HttpsMode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// The listener terminates TLS itself: every request is secure.
    #[must_use]
    pub const fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Believe `X-Forwarded-Proto` from peers in these blocks only (an
    /// IPv4-mapped IPv6 peer counts as its IPv4 address). Never list
    /// `0.0.0.0/0`: any client could then claim HTTPS.
    #[must_use]
    pub fn with_trusted_proxies(mut self, proxies: impl IntoIterator<Item = ipnet::IpNet>) -> Self {
        self.trusted = proxies.into_iter().collect();
        self
    }

    /// Redirect plain `GET`/`HEAD` to `origin` (`https://host[:port]`)
    /// when the mode is [`HttpsMode::Redirect`].
    ///
    /// # Errors
    /// [`Error::Misconfigured`] when `origin` is not an https origin
    /// without path, query or userinfo (see [`public_origin`]).
    pub fn with_public_origin(mut self, origin: &str) -> Result<Self, Error> {
        self.public_origin = Some(
            public_origin(origin)
                .ok_or_else(|| Error::misconfigured("public_origin", "is not an https origin"))?,
        );
        Ok(self)
    }

    /// Let requests whose path starts with `prefix` (e.g. `/health/`)
    /// through over plain HTTP.
    #[must_use]
    pub fn with_exempt_path_prefix(mut self, prefix: &str) -> Self {
        self.exempt_prefix = Some(Arc::from(prefix));
        self
    }

    /// The mode.
    #[must_use]
    pub const fn mode(&self) -> HttpsMode {
        self.mode
    }

    /// Whether the deployment is HTTPS: TLS here, or plain HTTP redirected
    /// or refused (the condition for sending HSTS).
    #[must_use]
    pub fn is_https_deployment(&self) -> bool {
        self.tls || self.mode != HttpsMode::Off
    }

    /// Whether a request from `peer` with `headers` came over HTTPS.
    #[must_use]
    pub fn is_secure(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> bool {
        if self.tls {
            return true;
        }
        let Some(peer) = peer else {
            return false;
        };
        let peer = peer.to_canonical();
        self.trusted.iter().any(|net| net.contains(&peer))
            && forwarded_proto(headers).is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
    }

    /// The verdict on `request`.
    fn verdict<B>(&self, request: &Request<B>) -> Verdict {
        if self.mode == HttpsMode::Off
            || self
                .exempt_prefix
                .as_deref()
                .is_some_and(|prefix| request.uri().path().starts_with(prefix))
        {
            return Verdict::Pass;
        }
        if self.is_secure(peer_addr(request.extensions()), request.headers()) {
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

    /// The layer enforcing this policy.
    #[must_use]
    pub fn layer(&self) -> RequireHttpsLayer {
        RequireHttpsLayer::new(self.clone())
    }
}

/// The socket peer: axum's `ConnectInfo<SocketAddr>` (with the `axum`
/// feature), else a plain `SocketAddr` extension.
fn peer_addr(extensions: &Extensions) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// `origin` as `https://host[:port]` (lower-cased, no trailing slash), or
/// `None` if it is not an https origin without path, query or userinfo.
#[must_use]
pub fn public_origin(origin: &str) -> Option<Arc<str>> {
    let origin = origin.trim().trim_end_matches('/');
    let rest = origin.strip_prefix("https://")?;
    let authority = rest.parse::<http::uri::Authority>().ok()?;
    if authority.as_str() != rest || rest.contains('@') || authority.host().is_empty() {
        return None;
    }
    Some(Arc::from(origin.to_ascii_lowercase()))
}

/// A request whose `Host` header breaks RFC 9112 §3.2: missing from an
/// HTTP/1.1 request, repeated, or not a valid `host[:port]`. An accept
/// loop inserts it into the request's extensions; [`RequireHttps`] answers
/// such a request 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// The three ways RFC 9112 §3.2 can be broken.
#[allow(clippy::exhaustive_enums)]
pub enum HostHeaderFault {
    /// An HTTP/1.1 request without `Host`.
    Missing,
    /// More than one `Host` line.
    Repeated,
    /// A value that is not `host[:port]`.
    Invalid,
}

impl HostHeaderFault {
    /// The fault of `request`'s `Host` header, if any.
    #[must_use]
    pub fn of<B>(request: &Request<B>) -> Option<Self> {
        let mut hosts = request.headers().get_all(header::HOST).iter();
        match (hosts.next(), hosts.next()) {
            (None, _) if request.version() == http::Version::HTTP_11 => Some(Self::Missing),
            (None, _) => None,
            (Some(_), Some(_)) => Some(Self::Repeated),
            (Some(host), None) => {
                let valid = host
                    .to_str()
                    .ok()
                    .and_then(|h| h.parse::<http::uri::Authority>().ok())
                    .is_some_and(|a| !a.as_str().contains('@') && !a.host().is_empty());
                (!valid).then_some(Self::Invalid)
            }
        }
    }

    /// What the client is told.
    #[must_use]
    pub const fn detail(self) -> &'static str {
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
        .map_or("/", http::uri::PathAndQuery::as_str);
    // `//evil.example` after the origin is a path on the origin's host.
    HeaderValue::from_str(&format!("{origin}{path}")).ok()
}

/// Wraps a service with [`RequireHttps`].
#[derive(Debug, Clone)]
pub struct RequireHttpsLayer {
    policy: Arc<HttpsPolicy>,
}

impl RequireHttpsLayer {
    /// Enforce `policy`.
    #[must_use]
    pub fn new(policy: HttpsPolicy) -> Self {
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

/// Redirects or refuses requests that did not arrive over HTTPS, and
/// refuses those with a [`HostHeaderFault`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct RequireHttps<S> {
    inner: S,
    policy: Arc<HttpsPolicy>,
}

/// The body-type conversion of passed responses.
type IntoBody<B> = fn(Response<B>) -> Response<ResponseBody<B>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireHttps<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = Either<
        Ready<Result<Response<ResponseBody<ResBody>>, S::Error>>,
        MapOk<S::Future, IntoBody<ResBody>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if let Some(fault) = request.extensions().get::<HostHeaderFault>() {
            tracing::debug!(fault = ?fault, "request with a bad Host header refused");
            let answer = Error::invalid_input(fault.detail()).into_problem_response();
            return Either::Left(std::future::ready(Ok(ResponseBody::own_response(answer))));
        }
        let answer = match self.policy.verdict(&request) {
            Verdict::Pass => {
                let into_body: IntoBody<ResBody> = |response| response.map(ResponseBody::inner);
                return Either::Right(self.inner.call(request).map_ok(into_body));
            }
            Verdict::Redirect(location) => {
                tracing::debug!(path = %request.uri().path(), "plain HTTP redirected to HTTPS");
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
                response.headers_mut().insert(header::LOCATION, location);
                response
            }
            Verdict::Refuse => {
                tracing::debug!(path = %request.uri().path(), "plain HTTP refused");
                Error::invalid_input("plain HTTP is refused: send the request over HTTPS")
                    .into_problem_response()
            }
        };
        Either::Left(std::future::ready(Ok(ResponseBody::own_response(answer))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_forwarded_proto_counts_only_from_trusted_proxies() {
        let policy = HttpsPolicy::new(HttpsMode::Refuse)
            .with_trusted_proxies(["10.0.0.0/8".parse().expect("cidr")]);
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let proxy: IpAddr = "10.1.2.3".parse().expect("ip");
        let mapped_proxy: IpAddr = "::ffff:10.1.2.3".parse().expect("ip");
        let client: IpAddr = "192.0.2.7".parse().expect("ip");
        assert!(policy.is_secure(Some(proxy), &headers));
        assert!(policy.is_secure(Some(mapped_proxy), &headers));
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
    fn verdicts_follow_the_mode_the_method_and_the_exempt_prefix() {
        let client: SocketAddr = "192.0.2.7:5000".parse().expect("addr");
        let request = |method: Method, path: &str| {
            let mut request = Request::builder()
                .method(method)
                .uri(path)
                .header(header::HOST, "evil.example")
                .header("x-forwarded-proto", "https")
                .body(())
                .expect("request");
            request.extensions_mut().insert(client);
            request
        };
        let redirect = HttpsPolicy::new(HttpsMode::Redirect)
            .with_public_origin("https://api.example")
            .expect("origin")
            .with_exempt_path_prefix("/health/");
        assert_eq!(
            redirect.verdict(&request(Method::GET, "/v1/x?a=1")),
            Verdict::Redirect(HeaderValue::from_static("https://api.example/v1/x?a=1"))
        );
        assert_eq!(
            redirect.verdict(&request(Method::POST, "/v1/x")),
            Verdict::Refuse
        );
        assert_eq!(
            redirect.verdict(&request(Method::GET, "/health/live")),
            Verdict::Pass
        );
        let no_origin = HttpsPolicy::new(HttpsMode::Redirect);
        assert_eq!(
            no_origin.verdict(&request(Method::GET, "/v1/x")),
            Verdict::Refuse,
            "no public origin: refused, never redirected to the Host"
        );
        let off = HttpsPolicy::default();
        assert_eq!(off.verdict(&request(Method::POST, "/v1/x")), Verdict::Pass);
        let tls = HttpsPolicy::new(HttpsMode::Refuse).with_tls(true);
        assert_eq!(tls.verdict(&request(Method::POST, "/v1/x")), Verdict::Pass);
        assert!(
            HttpsPolicy::new(HttpsMode::Redirect)
                .with_public_origin("http://api.example")
                .is_err()
        );
    }

    #[test]
    fn host_header_faults_follow_rfc_9112() {
        use http::Version;
        let request = |version, hosts: &[&str]| {
            let mut builder = Request::get("/").version(version);
            for host in hosts {
                builder = builder.header(header::HOST, *host);
            }
            builder.body(()).expect("request")
        };
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
    fn https_modes_parse_as_configured() {
        assert_eq!(" Redirect ".parse(), Ok(HttpsMode::Redirect));
        assert_eq!("refuse".parse(), Ok(HttpsMode::Refuse));
        assert_eq!("OFF".parse(), Ok(HttpsMode::Off));
        assert!("soon".parse::<HttpsMode>().is_err());
        assert_eq!(HttpsMode::Redirect.as_str(), "redirect");
    }
}
