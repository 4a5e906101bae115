//! The edge of every route: the outermost layer, where a request is
//! metered, named and traced, and its credentials hidden, before anything
//! else runs.
//!
//! [`EdgeLayer`] does, per request, in this order:
//!
//! 1. **Metering** ([`crate::metrics::RequestMeter`]): in-flight gauge,
//!    then the RED figures (requests by method, route pattern and status;
//!    5xx; latency) when the answer is ready — panics and refusals of the
//!    inner layers included, since they are answers by then.
//! 2. **Credential hiding**: `Authorization`, `Proxy-Authorization`,
//!    `Cookie` and `X-API-Key` on the request, `Set-Cookie` on the
//!    response, are marked [sensitive], so `Debug` output (and any layer
//!    that logs headers) prints `Sensitive` instead of the value.
//! 3. **Request id** (`X-Request-Id`): a caller's id is kept when it is a
//!    plausible id (1–128 bytes of letters, digits and `-_.:+/=@`), so a
//!    request can be followed across services; anything else, or none, is
//!    replaced by a random UUID (v4), so a hostile id cannot forge log
//!    lines or bloat them. The id is echoed on the response unless the
//!    handler set its own.
//! 4. **Trace span** ([`crate::telemetry::request_span`]): entered while
//!    the inner layers are called and polled, so their log lines and
//!    backend spans are its children; the status is recorded on it and the
//!    answer logged as tower-http's `TraceLayer` does (`started processing
//!    request` at DEBUG, `finished processing request` with `latency` and
//!    `status` at INFO, `response failed` at ERROR for a 5xx).
//!
//! # Why one layer of ours instead of six of tower-http's
//!
//! These four jobs used to be six layers: the metrics layer, tower-http's
//! `SetSensitiveRequestHeaders`, `SetRequestId`, `Trace`,
//! `PropagateRequestId` and `SetSensitiveResponseHeaders`. Each is small,
//! but each nests the whole inner future in its own (the outermost future
//! was 1,000 bytes, moved by every layer it passes through), clones its
//! state per request, and — for `Trace` — wraps the response body, which
//! every byte of the answer then crosses. On the load report's
//! authenticated route they cost about a quarter of the full stack's
//! throughput (measured by switching them off one at a time), which put
//! the stack under its target of half of bare axum's throughput. One
//! layer does the same work with one future, one clone and no body
//! wrapper: our response bodies are complete when the handler returns (no
//! streaming), so the span has nothing to follow after the head. The
//! layers that carry real protocol logic — CORS, compression, timeouts,
//! body limits, panic catching — stay tower-http's.
//!
//! [sensitive]: axum::http::HeaderValue::set_sensitive

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, header};
use tower::{Layer, Service};
use tracing::Span;

use crate::metrics::{Metrics, RequestMeter};

/// The request id header.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-chosen request id kept, in bytes.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Request headers that carry credentials.
const SENSITIVE_REQUEST_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    HeaderName::from_static("x-api-key"),
];

/// The layer of [`Edge`], recording into `metrics`.
#[derive(Debug, Clone)]
pub(crate) struct EdgeLayer {
    metrics: Metrics,
}

impl EdgeLayer {
    /// Meter requests into `metrics`.
    pub(crate) fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// Meters, names, traces a request and hides its credentials (see the
/// module docs).
#[derive(Debug, Clone)]
pub(crate) struct Edge<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Edge<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let meter = self.metrics.begin(&request);
        let headers = request.headers_mut();
        hide_credentials(headers);
        let request_id = request_id(headers);
        let span = crate::telemetry::request_span(&request);
        let inner = span.in_scope(|| {
            tracing::debug!("started processing request");
            self.inner.call(request)
        });
        EdgeFuture {
            inner,
            span,
            request_id: Some(request_id),
            meter: Some(meter),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Edge`]: the inner answer, with the request id,
    /// recorded in the span and the metrics.
    pub(crate) struct EdgeFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        request_id: Option<HeaderValue>,
        // Dropped (out of the in-flight gauge) with the future if the
        // client goes away before the answer.
        meter: Option<RequestMeter>,
    }
}

impl<F, B, E> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
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
                let latency = meter.map(|m| m.finish(status)).unwrap_or_default();
                crate::telemetry::record_response(this.span, status, latency);
            }
            Err(_) => {
                // axum's services never fail; a layer error is a bug, and
                // not an HTTP answer the metrics could count.
                tracing::error!("response failed: the service returned an error");
            }
        }
        Poll::Ready(result)
    }
}

/// Mark the credential headers of a request sensitive: one pass over its
/// few headers rather than a lookup per name.
fn hide_credentials(headers: &mut HeaderMap) {
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

/// The request's id: the caller's when it is plausible (see the module
/// docs), else a new one, written into `headers` either way.
fn request_id(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(id) = headers.get(REQUEST_ID)
        && is_plausible_id(id.as_bytes())
        && headers.get_all(REQUEST_ID).iter().count() == 1
    {
        return id.clone();
    }
    let id = crate::telemetry::new_request_id();
    headers.insert(REQUEST_ID, id.clone());
    id
}

/// Whether `id` is a request id this server keeps or makes (see
/// [`is_plausible_id`]): the log redactor leaves such a value whole in the
/// `request_id` field, so operators can search the logs for it.
pub(crate) fn is_request_id(id: &str) -> bool {
    is_plausible_id(id.as_bytes())
}

/// 1–128 bytes of letters, digits and `-_.:+/=@`.
fn is_plausible_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_.:+/=@".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plausible_caller_id_is_kept_and_anything_else_replaced() {
        for kept in [
            "client-chosen-id-42",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "req_1.2:3+4/5=6@x",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, HeaderValue::from_static(kept));
            assert_eq!(request_id(&mut headers), kept);
            assert_eq!(headers[REQUEST_ID], kept);
        }
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        for replaced in [
            "",
            "two words",
            "fake\"} {\"level\":\"ERROR",
            "tab\there",
            "caf\u{e9}",
            long.as_str(),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(
                REQUEST_ID,
                HeaderValue::from_bytes(replaced.as_bytes()).expect("a header value"),
            );
            let id = request_id(&mut headers);
            assert_ne!(id, replaced);
            assert_eq!(id.len(), 36, "a UUID replaces {replaced:?}: {id:?}");
            assert_eq!(headers[REQUEST_ID], id, "the request carries the new id");
        }
        // Two ids: neither is believed.
        let mut headers = HeaderMap::new();
        headers.append(REQUEST_ID, HeaderValue::from_static("one"));
        headers.append(REQUEST_ID, HeaderValue::from_static("two"));
        let id = request_id(&mut headers);
        assert_eq!(id.len(), 36);
        assert_eq!(headers.get_all(REQUEST_ID).iter().count(), 1);
    }

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
}
