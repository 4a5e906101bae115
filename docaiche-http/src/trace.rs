//! The request span: HTTP semantic conventions, the request id, and the
//! caller's trace from W3C `traceparent` (with the `otel` feature).
//!
//! [`request_span`] opens a `tracing` span `request`, exported by an
//! OpenTelemetry layer as `GET /v1/keys/{id}` with kind `server`, carrying
//! `http.request.method` (bounded: [`method_label`]), `http.route` (the
//! matched pattern, never the raw URI: see [`matched_route`]), `url.path`,
//! `url.scheme`, `network.protocol.version` and `user_agent.original`;
//! [`record_response`] adds `http.response.status_code` (5xx also set the
//! span status to error and `error.type`). With the `otel` feature, a
//! request carrying a valid `traceparent` joins that trace as a child of
//! the caller's span.

use std::time::Duration;

use http::{Method, Request, StatusCode, Version, header};
use tracing::Span;
use tracing::field::Empty;

/// The route pattern a router matched (`/v1/keys/{id}`), for routers other
/// than axum's: insert it into the request's extensions before the edge
/// layer sees the request. With the `axum` feature, axum's `MatchedPath`
/// is read first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchedRoute(&'static str);

impl MatchedRoute {
    /// The pattern `route`: a bounded set of values (the router's own
    /// patterns), never the request's path.
    #[must_use]
    pub const fn new(route: &'static str) -> Self {
        Self(route)
    }

    /// The pattern.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        self.0
    }
}

/// The route pattern of `request`: axum's `MatchedPath` (with the `axum`
/// feature), else a [`MatchedRoute`] extension.
pub fn matched_route<B>(request: &Request<B>) -> Option<&str> {
    #[cfg(feature = "axum")]
    if let Some(path) = request.extensions().get::<axum::extract::MatchedPath>() {
        return Some(path.as_str());
    }
    request
        .extensions()
        .get::<MatchedRoute>()
        .map(MatchedRoute::as_str)
}

/// The method labels: the usual methods, then `_OTHER` (OpenTelemetry's
/// convention), so label values stay bounded.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "_OTHER",
];

/// The method label: the method itself for the usual ones, `_OTHER`
/// otherwise (OpenTelemetry's convention), so a caller cannot grow the set
/// of label values.
#[must_use]
pub fn method_label(method: &Method) -> &'static str {
    let index = match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 9,
    };
    METHODS[index]
}

/// The span of one request (opened by [`crate::edge`]): the HTTP
/// semantic-convention attributes, the request id, and the caller's trace
/// from `traceparent` as parent (with the `otel` feature).
pub fn request_span<B>(request: &Request<B>) -> Span {
    // Nothing below is read when the log filter disables the span (a
    // server logging at WARN): the fields are computed inside the macro,
    // which evaluates them only for an enabled span.
    let headers = request.headers();
    let method = method_label(request.method());
    let route = || matched_route(request);
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = headers
            .get(crate::request_id::REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-"),
        otel.name = route().map_or_else(|| method.to_owned(), |r| format!("{method} {r}")),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = route(),
        http.response.status_code = Empty,
        url.path = %request.uri().path(),
        url.scheme = request.uri().scheme_str().unwrap_or("http"),
        network.protocol.version = protocol_version(request.version()),
        user_agent.original = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        error.r#type = Empty,
    );
    #[cfg(feature = "otel")]
    join_callers_trace(&span, headers);
    span
}

/// Make `span` a child of the caller's span named by `traceparent`.
#[cfg(feature = "otel")]
fn join_callers_trace(span: &Span, headers: &http::HeaderMap) {
    use opentelemetry::propagation::TextMapPropagator as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    // A span the subscriber disabled (the log filter is global, so the
    // OpenTelemetry layer never sees it) has no parent to join.
    if !span.is_disabled() {
        let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
            .extract(&TraceHeaders(headers));
        // Fails only when no OpenTelemetry layer is installed (nothing to join).
        let _ = span.set_parent(parent);
    }
}

/// Reads W3C trace-context headers from a request.
#[cfg(feature = "otel")]
struct TraceHeaders<'a>(&'a http::HeaderMap);

#[cfg(feature = "otel")]
impl opentelemetry::propagation::Extractor for TraceHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// `1.1`, `2`, … for `network.protocol.version`.
fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// Record an answer on its request span — the status, and for a 5xx the
/// error status and `error.type` — then log it as tower-http's
/// `TraceLayer` does: `finished processing request` at INFO with the
/// latency and status, plus `response failed` at ERROR for a 5xx. Call it
/// inside the span.
pub fn record_response(span: &Span, status: StatusCode, latency: Duration) {
    span.record("http.response.status_code", status.as_u16());
    let latency = format_args!("{} ms", latency.as_millis());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", status.as_str());
        tracing::error!(
            classification = %format_args!("Status code: {status}"),
            %latency,
            "response failed"
        );
    }
    tracing::info!(%latency, status = status.as_u16(), "finished processing request");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_bounded() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let made_up = Method::from_bytes(b"BREW").expect("method");
        assert_eq!(method_label(&made_up), "_OTHER");
    }

    #[test]
    fn the_route_is_the_matched_pattern_never_the_path() {
        let mut request = Request::get("/v1/keys/abc").body(()).expect("request");
        assert_eq!(matched_route(&request), None);
        request
            .extensions_mut()
            .insert(MatchedRoute::new("/v1/keys/{id}"));
        assert_eq!(matched_route(&request), Some("/v1/keys/{id}"));
    }

    #[test]
    fn protocol_versions_are_named_as_the_conventions_say() {
        assert_eq!(protocol_version(Version::HTTP_11), "1.1");
        assert_eq!(protocol_version(Version::HTTP_2), "2");
        assert_eq!(protocol_version(Version::HTTP_10), "1.0");
    }
}
