//! CORS from a typed policy: [`CorsPolicy`], applied by tower-http's
//! `CorsLayer`, with the answer to requests that carry no `Origin`
//! computed once.
//!
//! [`CorsPolicy::new`] allows no origin. Listed origins
//! ([`CorsPolicy::allow_origins`]) may be given credentials; the wildcard
//! ([`CorsPolicy::allow_any_origin`], for public read-only APIs) never is.
//! Every policy allows the API's methods (`GET`, `HEAD`, `POST`, `PUT`,
//! `PATCH`, `DELETE`) and request headers (`Authorization`,
//! `Content-Type`, `X-API-Key`, `X-Request-Id`), exposes `X-Request-Id`
//! and `Retry-After` (plus [`CorsPolicy::expose_headers`]), and lets a
//! browser cache a preflight for ten minutes.
//!
//! A request without `Origin` is not a CORS request: no browser is asking,
//! and what tower-http's layer adds to its response does not depend on the
//! request — the policy has no predicates, so it is the same `Vary`,
//! `Access-Control-Expose-Headers` and, with `*`,
//! `Access-Control-Allow-Origin` for every such request. [`Cors`] asks
//! tower-http's own layer for those headers once, when built, and appends
//! them to every `Origin`-less answer as tower-http would (a `Vary` value
//! appended, the rest replacing any of the same name). API clients, which
//! send no `Origin`, so skip a header map built and merged per request;
//! browser requests and every `OPTIONS` go through tower-http's layer.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::Either;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, header};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_layer::Layer;
use tower_service::Service;

use crate::headers::{AmendHeaders, AmendedFuture};
use crate::request_id::REQUEST_ID;

/// Which browser origins may call the API; see the [module docs](self).
///
/// [`Default`] is [`CorsPolicy::new`]: no origin allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsPolicy {
    origins: Origins,
    credentials: bool,
    expose: Vec<HeaderName>,
}

/// The allowed origins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Origins {
    /// None.
    #[default]
    None,
    /// These exact origins.
    List(Vec<HeaderValue>),
    /// Any origin (`*`), never with credentials.
    Any,
}

impl CorsPolicy {
    /// No origin allowed: browsers may not call the API cross-origin.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Allow these exact origins (`https://app.example`); an empty list
    /// allows none.
    #[must_use]
    pub fn allow_origins(mut self, origins: impl IntoIterator<Item = HeaderValue>) -> Self {
        let origins: Vec<_> = origins.into_iter().collect();
        self.origins = if origins.is_empty() {
            Origins::None
        } else {
            Origins::List(origins)
        };
        self
    }

    /// Allow any origin (`Access-Control-Allow-Origin: *`): any web site
    /// may read the API's answers from its visitors' browsers. Never with
    /// credentials: [`Self::allow_credentials`] is ignored.
    #[must_use]
    pub fn allow_any_origin(mut self) -> Self {
        self.origins = Origins::Any;
        self
    }

    /// Let listed origins send credentials (cookies, `Authorization`
    /// from the browser's store); ignored with [`Self::allow_any_origin`].
    #[must_use]
    pub const fn allow_credentials(mut self, credentials: bool) -> Self {
        self.credentials = credentials;
        self
    }

    /// Also expose these response headers to browser scripts (rate-limit
    /// headers, say).
    #[must_use]
    pub fn expose_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.expose.extend(headers);
        self
    }

    /// The layer applying this policy.
    #[must_use]
    pub fn layer(&self) -> Cors {
        let any = self.origins == Origins::Any;
        let allow_origin = match &self.origins {
            Origins::Any => AllowOrigin::any(),
            Origins::List(list) => AllowOrigin::list(list.iter().cloned()),
            Origins::None => AllowOrigin::list([]),
        };
        let mut expose = vec![REQUEST_ID, header::RETRY_AFTER];
        expose.extend(self.expose.iter().cloned());
        let cors = CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                REQUEST_ID,
            ])
            .expose_headers(expose)
            .allow_credentials(self.credentials && !any)
            .max_age(Duration::from_secs(600));
        let origin_less = OriginLess(Arc::new(origin_less_headers(&cors)));
        Cors {
            cors: Arc::new(cors),
            origin_less,
        }
    }
}

/// What `cors` adds to the answer of a `GET` without `Origin`.
fn origin_less_headers(cors: &CorsLayer) -> HeaderMap {
    let mut probe = cors.layer(Probe);
    let request = Request::get("/").body(()).unwrap_or_default();
    // The probe answers at once and the allowlist decides without waiting:
    // the future is ready when first polled.
    probe
        .call(request)
        .now_or_never()
        .and_then(Result::ok)
        .map(Response::into_parts)
        .map(|(parts, ())| parts.headers)
        .unwrap_or_default()
}

/// A service answering an empty response at once.
#[derive(Debug, Clone, Copy)]
struct Probe;

impl Service<Request<()>> for Probe {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        std::future::ready(Ok(Response::new(())))
    }
}

/// The layer of [`CorsService`], from [`CorsPolicy::layer`].
#[derive(Debug, Clone)]
pub struct Cors {
    cors: Arc<CorsLayer>,
    origin_less: OriginLess,
}

impl<S> Layer<S> for Cors {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> CorsService<S> {
        CorsService {
            inner,
            cors: Arc::clone(&self.cors),
            origin_less: self.origin_less.clone(),
        }
    }
}

/// tower-http's CORS for browser requests, the precomputed headers for the
/// rest (see the [module docs](self)).
///
/// A router may clone the service per request, so it holds the layer
/// behind an `Arc` (a `CorsLayer` clone copies vectors) and wraps the
/// inner service in tower-http's `Cors` only for requests that need it.
#[derive(Debug, Clone)]
pub struct CorsService<S> {
    inner: S,
    cors: Arc<CorsLayer>,
    origin_less: OriginLess,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CorsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future =
        Either<tower_http::cors::ResponseFuture<S::Future>, AmendedFuture<S::Future, OriginLess>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.method() == Method::OPTIONS || request.headers().contains_key(header::ORIGIN) {
            // tower-http's `Cors` is ready when its inner service is: wrap
            // the instance driven to readiness, keep a fresh clone.
            let clone = self.inner.clone();
            let ready = std::mem::replace(&mut self.inner, clone);
            return Either::Left(self.cors.layer(ready).call(request));
        }
        Either::Right(AmendedFuture::new(
            self.inner.call(request),
            self.origin_less.clone(),
        ))
    }
}

/// The CORS headers of an `Origin`-less answer, merged as tower-http
/// merges its own: a `Vary` value appended, the others replacing any of the
/// same name.
#[derive(Debug, Clone)]
pub struct OriginLess(Arc<HeaderMap>);

impl AmendHeaders for OriginLess {
    fn amend(&self, headers: &mut HeaderMap) {
        let mut previous: Option<&HeaderName> = None;
        for (name, value) in self.0.iter() {
            if name == header::VARY || previous == Some(name) {
                headers.append(name, value.clone());
            } else {
                headers.insert(name, value.clone());
            }
            previous = Some(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt as _;

    use super::*;

    /// A handler answer that already carries some of the names CORS sets.
    fn answer() -> Response<()> {
        let mut response = Response::new(());
        let headers = response.headers_mut();
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-handler"),
        );
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        response
    }

    /// The test handler: always [`answer`].
    type Handler = fn(Request<()>) -> std::future::Ready<Result<Response<()>, Infallible>>;

    async fn headers_through<L>(layer: &L, request: Request<()>) -> HeaderMap
    where
        L: Layer<tower::util::ServiceFn<Handler>>,
        L::Service: Service<Request<()>, Response = Response<()>, Error = Infallible>,
    {
        let handler: Handler = |_| std::future::ready(Ok(answer()));
        let service = layer.layer(tower::service_fn(handler));
        let response = service.oneshot(request).await.expect("infallible");
        response.into_parts().0.headers
    }

    fn policies() -> [CorsPolicy; 4] {
        let listed = [HeaderValue::from_static("https://app.example")];
        [
            CorsPolicy::new().allow_any_origin(),
            CorsPolicy::new().allow_origins(listed.clone()),
            CorsPolicy::new()
                .allow_origins(listed)
                .allow_credentials(true)
                .expose_headers([HeaderName::from_static("ratelimit")]),
            CorsPolicy::new(),
        ]
    }

    #[tokio::test]
    async fn origin_less_answers_get_exactly_what_tower_http_adds() {
        for policy in policies() {
            let ours = policy.layer();
            for method in [Method::GET, Method::POST, Method::DELETE] {
                let request = || {
                    Request::builder()
                        .method(method.clone())
                        .uri("/v1/whoami")
                        .body(())
                        .expect("request")
                };
                let fast = headers_through(&ours, request()).await;
                let reference = headers_through(&*ours.cors, request()).await;
                assert_eq!(fast, reference, "{policy:?} {method}");
                assert_eq!(fast["content-type"], "text/plain");
            }
            // A browser request still goes through tower-http.
            let browser = Request::get("/v1/whoami")
                .header(header::ORIGIN, "https://app.example")
                .body(())
                .expect("request");
            let allowed = headers_through(&ours, browser).await;
            let expected = policy != CorsPolicy::new();
            assert_eq!(
                allowed.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
                expected,
                "{policy:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_unlisted_origin_is_not_allowed_and_any_origin_gets_no_credentials() {
        let listed = CorsPolicy::new()
            .allow_origins([HeaderValue::from_static("https://app.example")])
            .allow_credentials(true)
            .layer();
        let evil = Request::get("/")
            .header(header::ORIGIN, "https://evil.example")
            .body(())
            .expect("request");
        let headers = headers_through(&listed, evil).await;
        // Without `Access-Control-Allow-Origin` the browser withholds the
        // answer (tower-http still sends `Allow-Credentials`, which alone
        // grants nothing).
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));

        let any = CorsPolicy::new()
            .allow_any_origin()
            .allow_credentials(true)
            .layer();
        let browser = Request::get("/")
            .header(header::ORIGIN, "https://evil.example")
            .body(())
            .expect("request");
        let headers = headers_through(&any, browser).await;
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
    }

    #[test]
    fn the_precomputed_headers_are_the_expected_ones() {
        let any = CorsPolicy::new().allow_any_origin().layer();
        assert_eq!(any.origin_less.0[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let listed = CorsPolicy::new()
            .allow_origins([HeaderValue::from_static("https://app.example")])
            .allow_credentials(true)
            .layer();
        assert!(
            !listed
                .origin_less
                .0
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            "no origin, no allowed origin"
        );
        for cors in [&any, &listed] {
            assert!(
                cors.origin_less
                    .0
                    .contains_key(header::ACCESS_CONTROL_EXPOSE_HEADERS)
            );
        }
    }
}
