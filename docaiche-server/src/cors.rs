//! CORS from the `[cors]` allowlist: tower-http's [`CorsLayer`], with the
//! answer to requests that carry no `Origin` computed once.
//!
//! A request without `Origin` is not a CORS request: no browser is asking,
//! and what tower-http's layer adds to its response does not depend on the
//! request — our configuration has no predicates, so it is the same
//! `Vary`, `Access-Control-Expose-Headers` and, with `*`,
//! `Access-Control-Allow-Origin` for every such request. [`Cors`] asks
//! tower-http's own layer for those headers once, at startup, and appends
//! them to every `Origin`-less answer as tower-http would (a `Vary` value
//! appended, the rest replacing any of the same name). API clients, which
//! send no `Origin`, so skip a header map built and merged per request;
//! browser requests and every `OPTIONS` go through tower-http's layer as
//! before. `origin_less_answers_get_exactly_what_tower_http_adds` checks the
//! two paths agree.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, header};
use futures_util::FutureExt as _;
use futures_util::future::Either;
use tower::{Layer, Service, ServiceExt as _};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::edge::REQUEST_ID;
use crate::http::{AmendHeaders, AmendedFuture};

/// The CORS layer for validated `origins`: nothing allowed when empty;
/// credentials only with listed origins (validation refuses them with `*`).
pub(crate) fn layer(origins: &[String], credentials: bool) -> Cors {
    let any = origins.iter().any(|o| o == "*");
    let allow_origin = if any {
        AllowOrigin::any()
    } else {
        // Config::validate has checked every origin; skip rather than panic.
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
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
        .expose_headers([
            REQUEST_ID,
            header::RETRY_AFTER,
            docaiche_ratelimit::headers::RATELIMIT,
            docaiche_ratelimit::headers::RATELIMIT_POLICY,
        ])
        .allow_credentials(credentials && !any)
        .max_age(Duration::from_secs(600));
    let origin_less = OriginLess(Arc::new(origin_less_headers(&cors)));
    Cors {
        cors: Arc::new(cors),
        origin_less,
    }
}

/// What `cors` adds to the answer of a `GET` without `Origin`.
fn origin_less_headers(cors: &CorsLayer) -> HeaderMap {
    let probe = cors.layer(tower::service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    let request = Request::get("/").body(()).unwrap_or_default();
    // The inner service answers at once and the allowlist decides without
    // waiting: the future is ready when first polled.
    probe
        .oneshot(request)
        .now_or_never()
        .and_then(Result::ok)
        .map(Response::into_parts)
        .map(|(parts, ())| parts.headers)
        .unwrap_or_default()
}

/// The layer of [`CorsService`].
#[derive(Debug, Clone)]
pub(crate) struct Cors {
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
/// rest (see the module docs).
///
/// The service is cloned with the route for every request, so it holds the
/// layer behind an `Arc` (a `CorsLayer` clone copies vectors) and wraps the
/// inner service in tower-http's `Cors` only for requests that need it.
#[derive(Debug, Clone)]
pub(crate) struct CorsService<S> {
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
pub(crate) struct OriginLess(Arc<HeaderMap>);

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

    #[tokio::test]
    async fn origin_less_answers_get_exactly_what_tower_http_adds() {
        let listed = ["https://app.example".to_owned()];
        for (origins, credentials) in [
            (&["*".to_owned()][..], false),
            (&listed[..], false),
            (&listed[..], true),
            (&[][..], false),
        ] {
            let ours = layer(origins, credentials);
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
                assert_eq!(fast, reference, "{origins:?} {method}");
                assert_eq!(fast["content-type"], "text/plain");
            }
            // A browser request still goes through tower-http.
            let browser = Request::get("/v1/whoami")
                .header(header::ORIGIN, "https://app.example")
                .body(())
                .expect("request");
            let allowed = headers_through(&ours, browser).await;
            let expected = !origins.is_empty();
            assert_eq!(
                allowed.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
                expected,
                "{origins:?}"
            );
        }
    }

    #[test]
    fn the_precomputed_headers_are_the_expected_ones() {
        let any = layer(&["*".to_owned()], false);
        assert_eq!(any.origin_less.0[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let listed = layer(&["https://app.example".to_owned()], true);
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
