//! # docaiche-http
//!
//! The HTTP security stack of a DocAIche server as tower layers, for any
//! tower-based server (axum, hyper, tonic): HTTPS enforcement behind
//! trusted proxies, security headers, request ids (validated, echoed or
//! replaced), credential headers marked sensitive, request spans with W3C
//! trace context, a RED-metrics hook, CORS from a typed policy, response
//! compression, body limits and timeouts answered with RFC 9457 problems,
//! and validated JSON bodies.
//!
//! One call gives the whole stack in the right order, and each layer is
//! also usable alone:
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use docaiche_http::cors::CorsPolicy;
//! use docaiche_http::https::{HttpsMode, HttpsPolicy};
//! use docaiche_http::SecurityPolicy;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt as _};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), docaiche_core::Error> {
//! let policy = SecurityPolicy::new()
//!     .with_https(
//!         HttpsPolicy::new(HttpsMode::Redirect)
//!             .with_trusted_proxies(["10.0.0.0/8".parse().expect("a CIDR block")])
//!             .with_public_origin("https://api.example")?,
//!     )
//!     .with_cors(CorsPolicy::new().allow_origins(["https://app.example".parse().expect("an origin")]))
//!     .with_request_timeout(Duration::from_secs(10));
//!
//! let app = ServiceBuilder::new()
//!     .layer(docaiche_http::secure_stack(&policy))
//!     .service_fn(|_request: Request<_>| async {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
//!     });
//!
//! // A client talking plain HTTP, not through the trusted proxy, with a
//! // Host it chose: redirected to the configured origin, never its Host.
//! let request = Request::get("/v1/documents?page=2")
//!     .header("host", "evil.example")
//!     .header("x-forwarded-proto", "https")
//!     .header("x-request-id", "bad id\twith a tab")
//!     .body(Full::new(Bytes::new()))
//!     .expect("a request");
//! let response = app.oneshot(request).await.expect("the stack answers");
//! assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
//! assert_eq!(response.headers()["location"], "https://api.example/v1/documents?page=2");
//! assert_eq!(response.headers()["x-content-type-options"], "nosniff");
//! assert_eq!(response.headers()["x-request-id"].len(), 36, "a fresh UUID replaced the hostile id");
//! # Ok(()) }
//! ```
//!
//! ## The stack, outermost first
//!
//! | layer | does |
//! |---|---|
//! | [`edge::EdgeLayer`] | metering hook ([`edge::RequestObserver`]), credential headers marked sensitive, request id, request span |
//! | [`headers::SecurityHeadersLayer`] | HSTS, CSP, `nosniff`, `X-Frame-Options`, `Referrer-Policy` on every answer |
//! | [`https::RequireHttpsLayer`] | plain HTTP redirected (308) or refused (400 problem); bad `Host` headers refused |
//! | [`compression::NegotiatedLayer`] | gzip / brotli when asked, skipped for small and precompressed bodies |
//! | [`cors::Cors`] | CORS from [`cors::CorsPolicy`] |
//! | tower-http `CatchPanicLayer` | a panic becomes a 500 problem with a correlation id |
//! | [`rejection::ProblemAnswersLayer`] | plain error answers (413, 504, router rejections) become problems |
//! | tower-http `RequestBodyLimitLayer`, [`timeout::RequestTimeoutLayer`] | body limit (413), request deadline (504) |
//!
//! The order is the point: every answer — a handler's, a problem, a CORS
//! preflight, a panic's 500 and the HTTPS layer's own redirect — carries
//! the security headers, a request id, a span and a metric.
//!
//! ## What it does not do
//!
//! It does not authenticate or rate limit (`docaiche-auth`,
//! `docaiche-ratelimit`: put them inside this stack), terminate TLS, or
//! limit connections: those belong to the accept loop. It parses no
//! configuration file: policies are typed values a server builds from its
//! own.
//!
//! ## Design decisions and their cost
//!
//! - **Hand-written services, no boxing.** Each layer is a `Service` with a
//!   `pin-project` response future; the layers that answer on their own
//!   return a [`body::ResponseBody`] enum rather than a boxed body. The
//!   cost is long types ([`SecureStack`]); the only allocation the stack
//!   adds per request is [`rejection::ProblemAnswers`]' boxed inner future,
//!   which keeps every future outside it small.
//! - **One edge layer for four jobs** ([`edge`]): one future, one clone,
//!   no response-body wrapper. The span ends with the response head.
//! - **`X-Forwarded-Proto` only from trusted proxies**, and redirects only
//!   to a configured origin, never the request's `Host`.
//!
//! ## Features
//!
//! | feature | enables |
//! |---|---|
//! | `axum` | the [`json::ValidJson`] and `rejection::Path` extractors; the client address from `ConnectInfo<SocketAddr>`, the route from `MatchedPath` |
//! | `otel` | request spans join the caller's trace (W3C `traceparent`) through `tracing-opentelemetry` |
//!
//! ## MSRV
//!
//! Rust 1.88.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::any::Any;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use tower_http::catch_panic::{CatchPanic, CatchPanicLayer};
use tower_http::limit::{RequestBodyLimit, RequestBodyLimitLayer};
use tower_layer::Layer;

pub mod body;
pub mod compression;
pub mod cors;
pub mod edge;
pub mod headers;
pub mod https;
pub mod json;
pub mod per_thread;
pub mod rejection;
pub mod request_id;
pub mod timeout;
pub mod trace;

use compression::{CompressWhen, Negotiated, NegotiatedLayer};
use cors::{Cors, CorsPolicy, CorsService};
use edge::{Edge, EdgeLayer};
use headers::{SecurityHeaders, SecurityHeadersLayer, SecurityHeadersPolicy};
use https::{HttpsPolicy, RequireHttps, RequireHttpsLayer};
use rejection::{ProblemAnswers, ProblemAnswersLayer};
use timeout::{RequestTimeout, RequestTimeoutLayer};

/// The default body limit of [`SecurityPolicy`]: 2 MiB, axum's own.
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The default request deadline of [`SecurityPolicy`]: 30 seconds.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The default smallest body compressed: 1 KiB.
pub const DEFAULT_COMPRESSION_MIN_BYTES: u64 = 1024;

/// Everything [`secure_stack`] enforces, as typed values.
///
/// [`Default`] ([`SecurityPolicy::new`]): the default security headers
/// (no HSTS), no HTTPS enforcement (say where TLS ends with
/// [`Self::with_https`]), no CORS origin, compression from 1 KiB, a 2 MiB
/// body limit and a 30 s deadline.
#[derive(Debug, Clone)]
pub struct SecurityPolicy {
    headers: SecurityHeadersPolicy,
    https: HttpsPolicy,
    cors: CorsPolicy,
    compression: CompressWhen,
    body_limit: usize,
    request_timeout: Duration,
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        Self {
            headers: SecurityHeadersPolicy::default(),
            https: HttpsPolicy::default(),
            cors: CorsPolicy::default(),
            compression: CompressWhen::new(Some(DEFAULT_COMPRESSION_MIN_BYTES)),
            body_limit: DEFAULT_BODY_LIMIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl SecurityPolicy {
    /// The defaults (see the type's docs).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The security headers.
    #[must_use]
    pub fn with_headers(mut self, headers: SecurityHeadersPolicy) -> Self {
        self.headers = headers;
        self
    }

    /// HTTPS enforcement.
    #[must_use]
    pub fn with_https(mut self, https: HttpsPolicy) -> Self {
        self.https = https;
        self
    }

    /// The CORS policy.
    #[must_use]
    pub fn with_cors(mut self, cors: CorsPolicy) -> Self {
        self.cors = cors;
        self
    }

    /// Compress (gzip, brotli) answers of at least `min_bytes`; `None`
    /// compresses nothing.
    #[must_use]
    pub const fn with_compression(mut self, min_bytes: Option<u64>) -> Self {
        self.compression = CompressWhen::new(min_bytes);
        self
    }

    /// Refuse bodies over `bytes` with a 413 problem.
    #[must_use]
    pub const fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Answer a request not done within `timeout` with a 504 problem.
    #[must_use]
    pub const fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The HTTPS policy.
    #[must_use]
    pub const fn https(&self) -> &HttpsPolicy {
        &self.https
    }

    /// The body limit, in bytes.
    #[must_use]
    pub const fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// The request deadline.
    #[must_use]
    pub const fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

/// The whole stack of `policy`, in the right order (see the
/// [crate docs](crate)), without metering; add an observer with
/// [`SecureStackLayer::with_observer`].
#[must_use]
pub fn secure_stack(policy: &SecurityPolicy) -> SecureStackLayer {
    SecureStackLayer {
        edge: EdgeLayer::new(),
        headers: policy.headers.layer(),
        https: policy.https.layer(),
        compression: NegotiatedLayer::new(policy.compression),
        cors: policy.cors.layer(),
        problems: ProblemAnswersLayer::new(policy.body_limit, policy.request_timeout),
        body_limit: policy.body_limit,
        request_timeout: policy.request_timeout,
    }
}

/// The answer to a panicking handler.
pub type PanicAnswer = fn(Box<dyn Any + Send + 'static>) -> Response<Full<Bytes>>;

/// The service [`SecureStackLayer`] builds around `S`, outermost first.
pub type SecureStack<S, O = ()> = Edge<
    SecurityHeaders<
        RequireHttps<
            Negotiated<
                CorsService<
                    CatchPanic<ProblemAnswers<RequestBodyLimit<RequestTimeout<S>>>, PanicAnswer>,
                >,
            >,
        >,
    >,
    O,
>;

/// The layer of [`secure_stack`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct SecureStackLayer<O = ()> {
    edge: EdgeLayer<O>,
    headers: SecurityHeadersLayer,
    https: RequireHttpsLayer,
    compression: NegotiatedLayer,
    cors: Cors,
    problems: ProblemAnswersLayer,
    body_limit: usize,
    request_timeout: Duration,
}

impl<O> SecureStackLayer<O> {
    /// The same stack, reporting every request to `observer` (RED
    /// metrics).
    #[must_use]
    pub fn with_observer<P>(self, observer: P) -> SecureStackLayer<P> {
        SecureStackLayer {
            edge: EdgeLayer::with_observer(observer),
            headers: self.headers,
            https: self.https,
            compression: self.compression,
            cors: self.cors,
            problems: self.problems,
            body_limit: self.body_limit,
            request_timeout: self.request_timeout,
        }
    }
}

impl<S, O: Clone> Layer<S> for SecureStackLayer<O> {
    type Service = SecureStack<S, O>;

    fn layer(&self, inner: S) -> Self::Service {
        let inner = RequestTimeoutLayer::new(self.request_timeout, StatusCode::GATEWAY_TIMEOUT)
            .layer(inner);
        let inner = RequestBodyLimitLayer::new(self.body_limit).layer(inner);
        let inner = self.problems.layer(inner);
        let inner = CatchPanicLayer::custom(panic_answer as PanicAnswer).layer(inner);
        let inner = self.cors.layer(inner);
        let inner = self.compression.layer(inner);
        let inner = self.https.layer(inner);
        let inner = self.headers.layer(inner);
        self.edge.layer(inner)
    }
}

/// A 500 problem carrying only a correlation id; the panic message goes to
/// the log under that id.
fn panic_answer(panic: Box<dyn Any + Send + 'static>) -> Response<Full<Bytes>> {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    docaiche_core::Error::internal(format!("handler panicked: {message}")).into_problem_response()
}
