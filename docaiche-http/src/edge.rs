//! The edge of every route: the outermost layer, where a request is
//! metered, named and traced, and its credentials hidden, before anything
//! else runs.
//!
//! [`EdgeLayer`] does, per request, in this order:
//!
//! 1. **Metering** ([`RequestObserver`]): the observer sees the request
//!    begin (an in-flight gauge, say), then its status and latency when
//!    the answer is ready — panics and refusals of the inner layers
//!    included, since they are answers by then. A request whose client
//!    went away drops its meter unfinished.
//! 2. **Credential hiding**: `Authorization`, `Proxy-Authorization`,
//!    `Cookie` and `X-API-Key` on the request, `Set-Cookie` on the
//!    response, are marked [sensitive], so `Debug` output (and any layer
//!    that logs headers) prints `Sensitive` instead of the value.
//! 3. **Request id** ([`crate::request_id`]): kept when plausible, else
//!    replaced; echoed on the response unless the handler set its own.
//! 4. **Trace span** ([`crate::trace::request_span`]): entered while the
//!    inner layers are called and polled, so their log lines and backend
//!    spans are its children; the status is recorded on it and the answer
//!    logged as tower-http's `TraceLayer` does (`started processing
//!    request` at DEBUG, `finished processing request` with `latency` and
//!    `status` at INFO, `response failed` at ERROR for a 5xx).
//!
//! # Why one layer instead of six of tower-http's
//!
//! These four jobs used to be six layers: a metrics layer, tower-http's
//! `SetSensitiveRequestHeaders`, `SetRequestId`, `Trace`,
//! `PropagateRequestId` and `SetSensitiveResponseHeaders`. Each is small,
//! but each nests the whole inner future in its own (the outermost future
//! was 1,000 bytes, moved by every layer it passes through), clones its
//! state per request, and — for `Trace` — wraps the response body, which
//! every byte of the answer then crosses. On the DocAIche server's
//! authenticated route they cost about a quarter of the full stack's
//! throughput (measured by switching them off one at a time). One layer
//! does the same work with one future, one clone and no body wrapper. The
//! cost: the span ends with the response head, so a streamed body's time
//! is not in it.
//!
//! [sensitive]: http::HeaderValue::set_sensitive

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Span;

use crate::request_id::{REQUEST_ID, ensure_request_id};

/// Request headers that carry credentials, marked sensitive.
pub const SENSITIVE_REQUEST_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    HeaderName::from_static("x-api-key"),
];

/// Sees every request begin and end: the hook of RED metrics (rate,
/// errors, duration) into [`EdgeLayer`].
///
/// Generic rather than a trait object: it runs twice per request, and the
/// meter lives inside the response future without a box.
///
/// The request is the client's: its method and extensions (the matched
/// route, see [`crate::trace::matched_route`]) may be anything, so an
/// implementation must bound its label values itself
/// ([`crate::trace::method_label`]) and must not panic.
pub trait RequestObserver {
    /// What is kept while the request is answered; dropped unfinished when
    /// the client goes away before the answer.
    type Meter;

    /// A request begins (after the router has matched it, if the edge is
    /// inside the router).
    fn begin<B>(&self, request: &Request<B>) -> Self::Meter;

    /// The request was answered with `status`, `latency` after it began.
    fn finish(meter: Self::Meter, status: StatusCode, latency: Duration);
}

/// No metering.
impl RequestObserver for () {
    type Meter = ();

    fn begin<B>(&self, _: &Request<B>) {}

    fn finish((): (), _: StatusCode, _: Duration) {}
}

/// The layer of [`Edge`], reporting to `O`.
#[derive(Debug, Clone, Default)]
pub struct EdgeLayer<O = ()> {
    observer: O,
}

impl EdgeLayer {
    /// An edge without metering.
    #[must_use]
    pub const fn new() -> Self {
        Self { observer: () }
    }
}

impl<O> EdgeLayer<O> {
    /// An edge reporting every request to `observer`.
    #[must_use]
    pub const fn with_observer(observer: O) -> Self {
        Self { observer }
    }
}

impl<S, O: Clone> Layer<S> for EdgeLayer<O> {
    type Service = Edge<S, O>;

    fn layer(&self, inner: S) -> Edge<S, O> {
        Edge {
            inner,
            observer: self.observer.clone(),
        }
    }
}

/// Meters, names, traces a request and hides its credentials (see the
/// [module docs](self)).
#[derive(Debug, Clone)]
pub struct Edge<S, O = ()> {
    inner: S,
    observer: O,
}

impl<S, O, ReqBody, ResBody> Service<Request<ReqBody>> for Edge<S, O>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    O: RequestObserver,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = EdgeFuture<S::Future, O>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let meter = self.observer.begin(&request);
        let started = Instant::now();
        let headers = request.headers_mut();
        hide_credentials(headers);
        let request_id = ensure_request_id(headers);
        let span = crate::trace::request_span(&request);
        let inner = span.in_scope(|| {
            tracing::debug!("started processing request");
            self.inner.call(request)
        });
        EdgeFuture {
            inner,
            span,
            request_id: Some(request_id),
            meter: Some(meter),
            started,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Edge`]: the inner answer, with the request id,
    /// recorded in the span and reported to the observer.
    pub struct EdgeFuture<F, O: RequestObserver> {
        #[pin]
        inner: F,
        span: Span,
        request_id: Option<HeaderValue>,
        // Dropped with the future if the client goes away before the
        // answer.
        meter: Option<O::Meter>,
        started: Instant,
    }
}

impl<F: std::fmt::Debug, O: RequestObserver> std::fmt::Debug for EdgeFuture<F, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeFuture")
            .field("inner", &self.inner)
            .field("span", &self.span)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl<F, O, B, E> Future for EdgeFuture<F, O>
where
    F: Future<Output = Result<Response<B>, E>>,
    O: RequestObserver,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let mut result = ready!(this.inner.poll(cx));
        let meter = this.meter.take();
        match &mut result {
            Ok(response) => {
                let status = response.status();
                let headers = response.headers_mut();
                if let Some(id) = this.request_id.take()
                    && !headers.contains_key(REQUEST_ID)
                {
                    headers.insert(REQUEST_ID, id);
                }
                hide(headers, &header::SET_COOKIE);
                let latency = this.started.elapsed();
                if let Some(meter) = meter {
                    O::finish(meter, status, latency);
                }
                crate::trace::record_response(this.span, status, latency);
            }
            Err(_) => {
                // A layer error is a bug of the stack (security layers
                // answer, they do not fail), and not an HTTP answer the
                // metrics could count.
                tracing::error!("response failed: the service returned an error");
            }
        }
        Poll::Ready(result)
    }
}

/// Mark the credential headers of a request sensitive: one pass over its
/// few headers rather than a lookup per name.
pub fn hide_credentials(headers: &mut HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if SENSITIVE_REQUEST_HEADERS.contains(name) {
            value.set_sensitive(true);
        }
    }
}

/// Mark every `name` header in `headers` sensitive.
fn hide(headers: &mut HeaderMap, name: &HeaderName) {
    if let header::Entry::Occupied(mut entry) = headers.entry(name) {
        for value in entry.iter_mut() {
            value.set_sensitive(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use tower::ServiceExt as _;

    use super::*;

    #[test]
    fn credentials_are_marked_sensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        headers.append(header::COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        headers.insert("x-api-key", HeaderValue::from_static("dk_live_x"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        hide_credentials(&mut headers);
        for name in &SENSITIVE_REQUEST_HEADERS {
            assert!(headers.get_all(name).iter().all(HeaderValue::is_sensitive));
        }
        assert!(!headers[header::ACCEPT].is_sensitive());
        let debug = format!("{headers:?}");
        for secret in ["Bearer t", "a=1", "b=2", "dk_live_x"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    /// A request's path, and its status once answered.
    type Seen = (String, Option<StatusCode>);

    /// Records what it observed.
    #[derive(Debug, Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Seen>>>);

    /// Pushes the path on begin and the status on finish.
    struct Meter(Recorder, usize);

    impl RequestObserver for Recorder {
        type Meter = Meter;

        fn begin<B>(&self, request: &Request<B>) -> Meter {
            let mut seen = self.0.lock().expect("lock");
            seen.push((request.uri().path().to_owned(), None));
            Meter(self.clone(), seen.len() - 1)
        }

        fn finish(meter: Meter, status: StatusCode, _: Duration) {
            meter.0.0.lock().expect("lock")[meter.1].1 = Some(status);
        }
    }

    #[tokio::test]
    async fn the_edge_echoes_the_id_hides_set_cookie_and_reports_the_status() {
        let recorder = Recorder::default();
        let service = EdgeLayer::with_observer(recorder.clone()).layer(tower::service_fn(
            |request: Request<()>| async move {
                assert!(request.headers()[header::AUTHORIZATION].is_sensitive());
                let mut response = Response::new(());
                *response.status_mut() = StatusCode::CREATED;
                response
                    .headers_mut()
                    .insert(header::SET_COOKIE, HeaderValue::from_static("s=1"));
                Ok::<_, Infallible>(response)
            },
        ));
        let request = Request::get("/v1/x")
            .header(header::AUTHORIZATION, "Bearer t")
            .header(REQUEST_ID, "caller-7")
            .body(())
            .expect("request");
        let response = service.oneshot(request).await.expect("infallible");
        assert_eq!(response.headers()[REQUEST_ID], "caller-7");
        assert!(response.headers()[header::SET_COOKIE].is_sensitive());
        assert_eq!(
            recorder.0.lock().expect("lock").as_slice(),
            [("/v1/x".to_owned(), Some(StatusCode::CREATED))]
        );
    }
}
