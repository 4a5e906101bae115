//! OpenTelemetry tracing: the request span, child spans around every call
//! to a backend, W3C trace-context propagation and the OTLP exporter.
//!
//! Every request gets a server span from `docaiche_http`'s edge layer
//! ([`docaiche_http::trace::request_span`]; `tracing` span `request`, exported as
//! `GET /v1/keys/{id}` with kind `server`) carrying the HTTP semantic
//! conventions: `http.request.method`, `http.route` (the matched pattern,
//! never the raw URI), `url.path`, `url.scheme`, `network.protocol.version`,
//! `user_agent.original`, and on the response `http.response.status_code`
//! (5xx also set the span status to error and `error.type`). When the
//! request carries a valid `traceparent` header (W3C Trace Context), the
//! span joins that trace as a child of the caller's span.
//!
//! Calls to the stores (SQLite, PostgreSQL, Redis revocations), to the key
//! wrapper (Vault Transit) and to the extractor run in `client` child spans
//! (`db.system.name`, `db.collection.name`, `db.operation.name`; errors set
//! `error.type` to the stable error code) that the adapters in the library
//! crates open themselves with `tracing` alone; the layer here turns them
//! into OpenTelemetry spans.
//!
//! Export is off unless `[telemetry] otlp_endpoint` is set (for instance
//! `http://127.0.0.1:4318/v1/traces`): spans then go, batched, over
//! OTLP/HTTP with protobuf bodies. `service_name` (default `docaiche`) and
//! `sample_ratio` (default 1.0; parent-based: a sampled caller is always
//! followed) complete the section. Without an endpoint the spans stay
//! local to the log lines (request id, method, path).

use std::time::Duration;

// The tests below build requests.
#[cfg(test)]
use axum::http::{Request, StatusCode};
use docaiche_core::Error;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::Deserialize;

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TelemetrySection {
    /// OTLP/HTTP traces endpoint (`http://collector:4318/v1/traces`); no
    /// export when unset.
    pub(crate) otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub(crate) service_name: String,
    /// Share of new traces sampled, in [0, 1]; a caller's sampling
    /// decision is always followed.
    pub(crate) sample_ratio: f64,
    /// Deadline of one export request, in seconds.
    pub(crate) export_timeout_secs: u64,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "docaiche".to_owned(),
            sample_ratio: 1.0,
            export_timeout_secs: 10,
        }
    }
}

/// The tracer provider exporting over OTLP, when `[telemetry]` asks for
/// one. Must run inside the tokio runtime (the batch exporter is a task).
/// Call [`SdkTracerProvider::shutdown`] before exit to flush.
///
/// # Errors
/// [`Error::Misconfigured`] for an endpoint that is not an `http(s)` URL,
/// a ratio outside [0, 1], or an exporter that cannot be built.
pub(crate) fn tracer_provider(
    section: &TelemetrySection,
) -> Result<Option<SdkTracerProvider>, Error> {
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};

    if !(0.0..=1.0).contains(&section.sample_ratio) {
        return Err(Error::misconfigured(
            "telemetry.sample_ratio",
            "must be between 0 and 1",
        ));
    }
    let Some(endpoint) = &section.otlp_endpoint else {
        return Ok(None);
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(Error::misconfigured(
            "telemetry.otlp_endpoint",
            "must be an http:// or https:// URL, e.g. http://127.0.0.1:4318/v1/traces",
        ));
    }
    // The HTTP client's TLS (for https endpoints) uses the process-wide
    // rustls provider: ring, as the Vault and OIDC clients. An error only
    // says one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint.clone())
        .with_timeout(Duration::from_secs(section.export_timeout_secs.max(1)))
        .build()
        .map_err(|e| Error::misconfigured("telemetry.otlp_endpoint", e.to_string()))?;
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(section.service_name.clone())
        .build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                section.sample_ratio,
            ))))
            .with_resource(resource)
            .build(),
    ))
}

/// The `tracing` layer sending spans to `provider`.
pub(crate) fn layer<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("docaiche-server"))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::header;
    use docaiche_core::Extractor as _;
    use docaiche_core::extract::{ExtractInput, ExtractOptions};
    use opentelemetry::trace::{SpanKind, TraceId};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
    use tracing::Instrument as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::config::Config;
    use crate::routes::router;
    use crate::routes::tests::send;
    use crate::state::AppState;
    use crate::test_support::TestDir;

    /// A trace id and span id as a caller would send them.
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// Spans recorded in memory while the returned guard lives.
    fn in_memory() -> (
        InMemorySpanExporter,
        SdkTracerProvider,
        tracing::subscriber::DefaultGuard,
    ) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry().with(layer(&provider));
        let guard = crate::test_support::capture_with(&tracing::Dispatch::new(subscriber));
        (exporter, provider, guard)
    }

    /// The finished spans once `done` holds of them, or as they are after
    /// five seconds. A span ends when its last child does, and a child may
    /// end a moment after the answer, on the thread that ran it (a blocking
    /// store call): reading the exporter at once would race it.
    async fn finished_spans(
        exporter: &InMemorySpanExporter,
        provider: &SdkTracerProvider,
        done: impl Fn(&[SpanData]) -> bool,
    ) -> Vec<SpanData> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            provider.force_flush().expect("flush");
            let spans = exporter.get_finished_spans().expect("spans");
            if done(&spans) || tokio::time::Instant::now() >= deadline {
                return spans;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Whether `spans` hold a server span.
    fn has_server_span(spans: &[SpanData]) -> bool {
        spans.iter().any(|s| s.span_kind == SpanKind::Server)
    }

    fn attribute(span: &SpanData, key: &str) -> Option<String> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    }

    #[tokio::test]
    async fn the_request_span_joins_the_callers_trace_and_parents_the_store_span() {
        let (exporter, provider, _guard) = in_memory();
        let dir = TestDir::new("telemetry-span-tree");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        crate::storage::prepare_data_dir(&config.storage.data_dir).expect("data dir");
        crate::keys::prepare(&config.key_source()).expect("key");
        let state = AppState::from_config(&config, &|_| None)
            .await
            .expect("state");
        let key = state
            .auth
            .bootstrap_key("acme", "admin", "telemetry")
            .await
            .expect("key");
        exporter.reset();

        let request = Request::get("/v1/whoami")
            .header("x-api-key", key.key.expose_secret())
            .header("traceparent", TRACEPARENT)
            .header(header::USER_AGENT, "span-test/1")
            .body(Body::empty())
            .expect("request");
        let (status, _, _) = send(router(state), request).await;
        assert_eq!(status, StatusCode::OK);
        let spans = finished_spans(&exporter, &provider, |spans| {
            has_server_span(spans)
                && spans
                    .iter()
                    .any(|s| attribute(s, "db.operation.name").as_deref() == Some("find_by_lookup"))
        })
        .await;

        let server = spans
            .iter()
            .find(|s| s.span_kind == SpanKind::Server)
            .unwrap_or_else(|| panic!("no server span in {spans:#?}"));
        assert_eq!(server.name, "GET /v1/whoami");
        let caller = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex");
        assert_eq!(
            server.span_context.trace_id(),
            caller,
            "joins the caller's trace"
        );
        assert_eq!(
            server.parent_span_id,
            opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
            "child of the caller's span"
        );
        assert_eq!(
            attribute(server, "http.route").as_deref(),
            Some("/v1/whoami")
        );
        assert_eq!(
            attribute(server, "http.request.method").as_deref(),
            Some("GET")
        );
        assert_eq!(
            attribute(server, "http.response.status_code").as_deref(),
            Some("200")
        );
        assert_eq!(
            attribute(server, "user_agent.original").as_deref(),
            Some("span-test/1")
        );

        // The SQLite adapter's own span: the server wraps no store.
        let lookup = spans
            .iter()
            .find(|s| attribute(s, "db.operation.name").as_deref() == Some("find_by_lookup"))
            .unwrap_or_else(|| panic!("no API key lookup span in {spans:#?}"));
        assert_eq!(lookup.span_kind, SpanKind::Client);
        assert_eq!(lookup.name, "find_by_lookup api_keys");
        assert_eq!(lookup.span_context.trace_id(), caller);
        assert_eq!(
            lookup.parent_span_id,
            server.span_context.span_id(),
            "the store call is a child of the request span"
        );
        assert_eq!(
            attribute(lookup, "db.system.name").as_deref(),
            Some("sqlite")
        );
    }

    #[tokio::test]
    async fn without_traceparent_a_request_starts_its_own_trace_and_5xx_is_an_error() {
        let (exporter, provider, _guard) = in_memory();
        let dir = TestDir::new("telemetry-root");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        let app = router(crate::state::tests::local_state(&config));
        let (status, _, _) = send(app, crate::routes::tests::get_request("/test/panic")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let spans = finished_spans(&exporter, &provider, has_server_span).await;
        let server = spans
            .iter()
            .find(|s| s.span_kind == SpanKind::Server)
            .unwrap_or_else(|| panic!("no server span in {spans:#?}"));
        assert_eq!(server.parent_span_id, opentelemetry::trace::SpanId::INVALID);
        assert!(matches!(
            server.status,
            opentelemetry::trace::Status::Error { .. }
        ));
        assert_eq!(attribute(server, "error.type").as_deref(), Some("500"));
    }

    #[tokio::test]
    async fn an_extraction_runs_in_a_child_span() {
        let (exporter, provider, _guard) = in_memory();
        // docaiche-extract's own span: the server wraps nothing.
        let extractor = docaiche_extract::PdfExtractor::new(docaiche_extract::Limits::default());
        let parent = tracing::info_span!("request", otel.kind = "server");
        let result = extractor
            .extract(
                ExtractInput::new(axum::body::Bytes::from_static(b"not a pdf")),
                &ExtractOptions::default(),
            )
            .instrument(parent.clone())
            .await;
        assert!(result.is_err(), "garbage is refused");
        drop(parent);
        provider.force_flush().expect("flush");
        let spans = exporter.get_finished_spans().expect("spans");
        let request = spans
            .iter()
            .find(|s| s.name == "request")
            .expect("request span");
        let extract = spans
            .iter()
            .find(|s| s.name == "extract")
            .expect("extract span");
        assert_eq!(extract.parent_span_id, request.span_context.span_id());
        assert!(attribute(extract, "error.type").is_some());
    }

    #[test]
    fn an_endpoint_must_be_http_and_the_ratio_a_fraction() {
        let bad = TelemetrySection {
            otlp_endpoint: Some("collector:4318".into()),
            ..TelemetrySection::default()
        };
        assert!(tracer_provider(&bad).is_err());
        let bad = TelemetrySection {
            sample_ratio: 1.5,
            ..TelemetrySection::default()
        };
        assert!(tracer_provider(&bad).is_err());
        assert!(
            tracer_provider(&TelemetrySection::default())
                .expect("valid")
                .is_none(),
            "off unless configured"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_otlp_endpoint_builds_an_exporting_provider_that_shuts_down() {
        let section = TelemetrySection {
            otlp_endpoint: Some("http://127.0.0.1:1/v1/traces".into()),
            export_timeout_secs: 1,
            ..TelemetrySection::default()
        };
        let provider = tracer_provider(&section).expect("valid").expect("on");
        let tracer = provider.tracer("test");
        drop(opentelemetry::trace::Tracer::start(&tracer, "one span"));
        // Nothing listens there: shutting down (off the runtime's threads,
        // as main does: the batch exporter is a task of this runtime)
        // gives up on the export within its timeout.
        let shutdown = tokio::task::spawn_blocking(move || provider.shutdown());
        tokio::time::timeout(Duration::from_secs(20), shutdown)
            .await
            .expect("no hang")
            .expect("joined")
            .ok();
    }
}
