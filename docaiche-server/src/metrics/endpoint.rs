//! `GET /metrics`: on the API listener ([`scrape`]) or on a listener of its
//! own ([`serve_separately`]), with the optional bearer token.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_core::Error;

use super::{Metrics, OPENMETRICS};
use crate::openapi::{Payload, RouteDoc};
use crate::routes::Endpoint;
use crate::state::AppState;

/// `GET /metrics`: the route of [`scrape`] and its documentation.
pub(crate) const SCRAPE: Endpoint = Endpoint::new(
    Method::GET,
    "/metrics",
    RouteDoc {
        description: Some(
            "OpenMetrics text. When `metrics.token_source` is set the scraper \
             sends it as `Authorization: Bearer <token>`.",
        ),
        errors: &[
            (
                401,
                "`metrics.token_source` is set and the request does not carry it",
            ),
            (404, "metrics are disabled (`metrics.enabled = false`)"),
        ],
        ..RouteDoc::ok(
            "Prometheus metrics",
            "every metric family",
            Payload::Media(crate::metrics::OPENMETRICS, None),
        )
    },
);

/// `GET /metrics` on the API listener: every family, OpenMetrics text;
/// 404 when disabled or served on `metrics.bind`, 401 without the
/// configured bearer token.
pub(crate) async fn scrape(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    if state.metrics.inner.separate {
        return Error::not_found("route").into_response();
    }
    render_scrape(&state.metrics, &headers)
}

/// Serve `GET /metrics` (and nothing else) on `listener`, the
/// `metrics.bind` address, until `shutdown` resolves; the scrape token, if
/// configured, is required there too.
///
/// # Errors
/// An I/O error from the server.
pub(crate) async fn serve_separately(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    header_read_timeout: Duration,
) -> std::io::Result<crate::shutdown::Stopped> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let metrics = metrics.clone();
            async move { render_scrape(&metrics, &headers) }
        }),
    );
    crate::shutdown::serve_with(
        listener,
        app,
        shutdown,
        Duration::from_secs(1),
        header_read_timeout,
    )
    .await
}

/// A scrape of `metrics` with the request's `headers`.
fn render_scrape(metrics: &Metrics, headers: &axum::http::HeaderMap) -> Response {
    if !metrics.inner.enabled {
        return Error::not_found("route").into_response();
    }
    if let Some(token) = &metrics.inner.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        if !token.matches(presented) {
            let reason = if presented.is_empty() {
                docaiche_core::error::AuthFailure::Missing
            } else {
                docaiche_core::error::AuthFailure::BadCredential
            };
            return Error::Unauthenticated { reason }.into_response();
        }
    }
    match metrics.render() {
        Ok(text) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
