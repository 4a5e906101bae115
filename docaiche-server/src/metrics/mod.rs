//! Prometheus metrics: `GET /metrics` in the OpenMetrics text format.
//!
//! RED metrics per route, recorded by the edge layer (the outermost, so
//! panics, timeouts and refusals of the auth and rate-limit layers count):
//!
//! | family | type | labels |
//! | --- | --- | --- |
//! | `docaiche_http_requests_total` | counter | `method`, `route`, `status` |
//! | `docaiche_http_request_errors_total` | counter (5xx answers) | `method`, `route` |
//! | `docaiche_http_request_duration_seconds` | histogram | `method`, `route` |
//! | `docaiche_http_requests_in_flight` | gauge | |
//!
//! `route` is the matched route pattern (`/v1/keys/{id}/rotate`), never the
//! raw URI: an unknown path is `unmatched`, and a method outside the usual
//! ones is `_OTHER`, so no caller can grow the label sets. The latency
//! histogram's buckets include the `[slo]` latency threshold, which the
//! generated burn-rate alerts ([`crate::slo`]) read as `le`.
//!
//! Read at scrape time from the figures the components already keep:
//! the rate-limit layer's counters per policy
//! (`docaiche_ratelimit_decisions_total{policy,outcome}`,
//! `docaiche_ratelimit_fallback_decisions_total`), connection pools
//! (`docaiche_db_pool_*{pool}`), circuit breakers
//! (`docaiche_circuit_breaker_state{breaker,state}` and counters), the
//! `/v1/events` hub ([`crate::events`]), the retention purge's failed
//! reads of the tenant registry
//! (`docaiche_retention_settings_read_failures_total`, see
//! [`crate::compliance`]) and any gauge registered with
//! [`Metrics::register_gauge`] (the audit queue's depth, for instance).
//!
//! `[metrics]` in the configuration: `enabled` (default true; when false
//! `/metrics` answers 404), `token_source` (`env:NAME` or `file:/path`):
//! when set, a scrape must send `Authorization: Bearer <token>`, else 401,
//! and `bind` (`DOCAICHE_METRICS_BIND`): a socket address of its own for
//! `/metrics` ([`serve_separately`]), typically on a private interface
//! only Prometheus reaches; the API listener then answers `/metrics` with
//! 404. The figures name routes, tenants' traffic and backend health, so
//! production refuses to start with `/metrics` on the public listener and
//! no token: set `bind`, `token_source` (both, for defence in depth) or
//! `enabled = false`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Method, StatusCode};
use docaiche_core::Error;
use docaiche_core::resilience::CircuitBreaker;
use docaiche_ratelimit::layer::RateLimitMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Deserialize;

use self::sources::{LiveFigures, Sources};
use crate::config::{Config, SecretRef};
use crate::state::AppState;

/// The OpenMetrics content type of `/metrics`.
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `route` label of a request that matched no route.
const UNMATCHED: &str = "unmatched";

/// Latency buckets, in seconds, before the SLO threshold is added.
const BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MetricsSection {
    /// Serve `/metrics` (default true).
    pub(crate) enabled: bool,
    /// `env:NAME` or `file:/path` holding a bearer token a scrape must send.
    pub(crate) token_source: Option<String>,
    /// Serve `/metrics` on this address only, not on the API listener.
    pub(crate) bind: Option<std::net::SocketAddr>,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            token_source: None,
            bind: None,
        }
    }
}

/// What `[metrics]` deserves to be told, each with the fix; called by
/// [`Config::validate`].
pub(crate) fn findings(
    config: &Config,
    add: &mut dyn FnMut(crate::config::Severity, &str, std::borrow::Cow<'static, str>),
) {
    use crate::config::Severity;
    let metrics = &config.metrics;
    if !metrics.enabled {
        return;
    }
    match metrics.bind {
        Some(bind) if bind == config.server.bind => add(
            Severity::Invalid,
            "metrics.bind",
            "is server.bind; give /metrics an address of its own (a private interface or \
             another port)"
                .into(),
        ),
        Some(_) => {}
        None if metrics.token_source.is_none() => add(
            Severity::DevelopmentDefault,
            "metrics.bind",
            "/metrics is served to anyone who reaches the API; set metrics.bind to a private \
             address only Prometheus reaches, or metrics.token_source to require a bearer \
             token, or metrics.enabled = false"
                .into(),
        ),
        None => {}
    }
}

impl MetricsSection {
    /// The scrape token, resolved.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for a reference that is not `env:`/`file:`,
    /// or whose value is missing or empty.
    fn token(&self) -> Result<Option<ScrapeToken>, Error> {
        const SETTING: &str = "metrics.token_source";
        let Some(source) = &self.token_source else {
            return Ok(None);
        };
        let value = match SecretRef::parse(source).map_err(|r| Error::misconfigured(SETTING, r))? {
            SecretRef::Env(name) => std::env::var(&name)
                .map_err(|_| Error::misconfigured(SETTING, format!("${name} is not set")))?,
            SecretRef::File(path) => std::fs::read_to_string(&path).map_err(|e| {
                Error::misconfigured(SETTING, format!("cannot read {}: {e}", path.display()))
            })?,
            SecretRef::Vault(_) => {
                return Err(Error::misconfigured(
                    SETTING,
                    "takes env:NAME or file:/path (the token is read at start-up)",
                ));
            }
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(Error::misconfigured(SETTING, "names an empty token"));
        }
        Ok(Some(ScrapeToken(value.as_bytes().to_vec())))
    }
}

/// The bearer token of `/metrics`; never printed.
#[derive(Clone)]
struct ScrapeToken(Vec<u8>);

impl fmt::Debug for ScrapeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScrapeToken([REDACTED])")
    }
}

impl ScrapeToken {
    /// Whether `presented` is the token, in time independent of where they
    /// differ (`subtle`; only a length mismatch answers early, and the
    /// length of an operator-chosen token is no help to a guesser).
    fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.as_slice().ct_eq(presented).into()
    }
}

/// Labels of a request count.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

/// Labels of the error count and the latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

/// Builds each latency histogram with the configured buckets.
#[derive(Debug, Clone)]
struct Buckets(Arc<[f64]>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// The server's metrics: the registry, the HTTP families and the live
/// sources. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    enabled: bool,
    /// Served on `metrics.bind`: the API listener answers 404.
    separate: bool,
    token: Option<ScrapeToken>,
    registry: Registry,
    /// The route patterns of the router, interned, with their index in
    /// `figures` (`routes.len()` is `unmatched`). Only the router's own
    /// patterns are keys: foldhash rather than SipHash on this per-request
    /// lookup.
    routes: HashMap<&'static str, usize, foldhash::fast::RandomState>,
    /// Per method and route, the figures found once in the families below.
    figures: Box<[OnceLock<RouteFigures>]>,
    requests: Family<RequestLabels, Counter>,
    errors: Family<RouteLabels, Counter>,
    duration: Family<RouteLabels, Histogram, Buckets>,
    in_flight: Gauge,
    live: LiveFigures,
}

impl Metrics {
    /// The metrics of `config`: `[metrics]`, and latency buckets holding
    /// the `[slo]` latency threshold; the routes of
    /// [`crate::routes::route_groups`] become the only `route` label values.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] when `metrics.token_source` cannot be read.
    pub(crate) fn from_config(config: &Config) -> Result<Self, Error> {
        config.slo.validate()?;
        let token = if config.metrics.enabled {
            config.metrics.token()?
        } else {
            None
        };
        let mut buckets = BUCKETS.to_vec();
        let threshold = config.slo.latency_threshold_secs();
        if !buckets.iter().any(|b| (b - threshold).abs() < 1e-9) {
            buckets.push(threshold);
            buckets.sort_by(f64::total_cmp);
        }
        let mut routes = HashMap::default();
        for path in crate::routes::route_groups()
            .iter()
            .flat_map(|g| g.routes.iter().map(|r| r.path))
        {
            let index = routes.len();
            routes.entry(path).or_insert(index);
        }
        let figures = (0..(routes.len() + 1) * METHODS.len())
            .map(|_| OnceLock::new())
            .collect();
        let requests = Family::<RequestLabels, Counter>::default();
        let errors = Family::<RouteLabels, Counter>::default();
        let duration = Family::new_with_constructor(Buckets(buckets.into()));
        let in_flight = Gauge::default();
        let live = LiveFigures::default();
        let mut registry = Registry::with_prefix("docaiche");
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            requests.clone(),
        );
        registry.register(
            "http_request_errors",
            "HTTP requests answered with a 5xx status, by method and route pattern",
            errors.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from receiving a request to its response head, by method and route pattern",
            duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being handled",
            in_flight.clone(),
        );
        registry.register_collector(Box::new(live.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                enabled: config.metrics.enabled,
                separate: config.metrics.bind.is_some(),
                token,
                registry,
                routes,
                figures,
                requests,
                errors,
                duration,
                in_flight,
                live,
            }),
        })
    }

    /// Run `f` on the live sources.
    fn sources(&self, f: impl FnOnce(&mut Sources)) {
        // A poisoned lock only means a panic elsewhere mid-registration;
        // the lists stay usable.
        let mut sources = self
            .inner
            .live
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut sources);
    }

    /// Report the rate-limit layer's counters.
    pub(crate) fn register_rate_limit(&self, metrics: RateLimitMetrics) {
        self.sources(|s| s.rate_limit = Some(metrics));
    }

    /// Report the pools of `stores` and the rate limiter's circuit breaker.
    pub(crate) fn register_backends(
        &self,
        stores: &crate::wiring::Stores,
        breaker: Option<&CircuitBreaker>,
    ) {
        for pool in &stores.pools {
            self.register_pool(pool.clone());
        }
        if let Some(breaker) = breaker {
            self.register_breaker(breaker.clone());
        }
    }

    /// Report a connection pool's figures under `pool`.
    pub(crate) fn register_pool(&self, probe: PoolProbe) {
        self.sources(|s| s.pools.push(probe));
    }

    /// Report a circuit breaker's state and counters (under its name).
    pub(crate) fn register_breaker(&self, breaker: CircuitBreaker) {
        self.sources(|s| s.breakers.push(breaker));
    }

    /// Report `read()` as the gauge `docaiche_<name>` (e.g. the audit
    /// queue's depth: `register_gauge("audit_queue_depth", "…", f)`).
    pub(crate) fn register_gauge(&self, name: &'static str, help: &'static str, read: GaugeFn) {
        self.sources(|s| s.gauges.push((name, help, read)));
    }

    /// Report `source`'s families on every scrape (e.g. the usage
    /// recorder's counters, `crate::usage`).
    pub(crate) fn register_source(&self, source: Arc<dyn MetricSource>) {
        self.sources(|s| s.others.push(source));
    }

    /// Record one answered request of the figures slot `slot`.
    fn record(&self, slot: Slot, status: u16, took: Duration) {
        let inner = &*self.inner;
        let Some(cell) = inner.figures.get(slot.index) else {
            return;
        };
        let labels = RouteLabels {
            method: slot.method,
            route: slot.route,
        };
        let figures = cell.get_or_init(|| RouteFigures {
            duration: inner.duration.get_or_create(&labels).clone(),
            errors: OnceLock::new(),
            by_status: RwLock::default(),
        });
        figures.duration.observe(took.as_secs_f64());
        figures.count(status, || {
            inner
                .requests
                .get_or_create(&RequestLabels {
                    method: slot.method,
                    route: slot.route,
                    status,
                })
                .clone()
        });
        if status >= 500 {
            figures
                .errors
                .get_or_init(|| inner.errors.get_or_create(&labels).clone())
                .inc();
        }
    }

    /// The OpenMetrics text of every family.
    ///
    /// # Errors
    /// [`Error::Internal`] if encoding fails (it writes to a `String`).
    pub(crate) fn render(&self) -> Result<String, Error> {
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
            .map_err(|e| Error::internal_with("cannot encode metrics", e))?;
        Ok(text)
    }

    /// The figures slot of a request: its method, and its route pattern
    /// (interned) or `unmatched`.
    fn slot(&self, method: &Method, path: Option<&MatchedPath>) -> Slot {
        let routes = &self.inner.routes;
        let (route, route_index) = path
            .and_then(|p| routes.get_key_value(p.as_str()))
            .map_or((UNMATCHED, routes.len()), |(route, index)| (*route, *index));
        let method_index = method_index(method);
        Slot {
            index: route_index * METHODS.len() + method_index,
            method: METHODS[method_index],
            route,
        }
    }
}

impl AppState {
    /// This state with its own figures reported by its metrics: the
    /// rate-limit layer's counters, the `/v1/events` hub and the retention
    /// purge's failed registry reads (counted by the `retention` every
    /// rebuilt `Compliance` shares).
    #[must_use]
    pub(crate) fn observed(self) -> Self {
        self.metrics
            .register_rate_limit(self.rate_limit.metrics().clone());
        let events: Arc<dyn MetricSource> = Arc::new(self.events.clone());
        self.metrics.sources(|s| s.events = Some(events));
        self.metrics
            .register_source(self.compliance.retention.clone());
        self
    }
}

/// The method labels: the usual methods, then `_OTHER` (OpenTelemetry's
/// convention), so label values stay bounded.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "_OTHER",
];

/// The index of `method`'s label in [`METHODS`].
fn method_index(method: &Method) -> usize {
    match *method {
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
    }
}

/// Where a request's figures are: a method and a route pattern, and their
/// index in [`Inner::figures`].
#[derive(Debug, Clone, Copy)]
struct Slot {
    index: usize,
    method: &'static str,
    route: &'static str,
}

/// The figures of one method and route, found in the families once and
/// then updated by each request of the pair without hashing label sets.
#[derive(Debug)]
struct RouteFigures {
    duration: Histogram,
    /// Made at the first 5xx, so a route without errors shows none.
    errors: OnceLock<Counter>,
    /// The request counts by status: a few per route.
    by_status: RwLock<Vec<(u16, Counter)>>,
}

impl RouteFigures {
    /// Count one answer with `status`; `counter` finds its counter the
    /// first time.
    fn count(&self, status: u16, counter: impl FnOnce() -> Counter) {
        let read = |list: &[(u16, Counter)]| {
            list.iter()
                .find(|(s, _)| *s == status)
                .map(|(_, c)| c.inc())
                .is_some()
        };
        // A poisoned lock only means a panic elsewhere mid-push; the list
        // stays usable.
        let counted = read(
            &self
                .by_status
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if !counted {
            let mut list = self
                .by_status
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !read(&list) {
                let counter = counter();
                counter.inc();
                list.push((status, counter));
            }
        }
    }
}

/// One request being answered, from `RequestObserver::begin`: in the in-flight
/// gauge until finished or dropped (a client that went away before the
/// answer), then counted.
#[derive(Debug)]
pub(crate) struct RequestMeter {
    metrics: Metrics,
    slot: Slot,
}

/// The RED figures of every request, reported by `docaiche_http`'s edge
/// layer (the outermost, so panics, timeouts and refusals count).
impl docaiche_http::edge::RequestObserver for Metrics {
    type Meter = RequestMeter;

    /// Start metering `request`: its method and route pattern are read now
    /// (the router has matched it).
    fn begin<B>(&self, request: &axum::http::Request<B>) -> RequestMeter {
        self.inner.in_flight.inc();
        RequestMeter {
            metrics: self.clone(),
            slot: self.slot(request.method(), request.extensions().get::<MatchedPath>()),
        }
    }

    /// Count the answer.
    fn finish(meter: RequestMeter, status: StatusCode, latency: Duration) {
        meter.metrics.record(meter.slot, status.as_u16(), latency);
    }
}

impl Drop for RequestMeter {
    fn drop(&mut self) {
        self.metrics.inner.in_flight.dec();
    }
}

mod endpoint;
mod sources;
#[cfg(test)]
mod tests;

pub(crate) use endpoint::{SCRAPE, scrape, serve_separately};
pub(crate) use sources::{GaugeFn, MetricSource, PoolProbe, counter, counters, gauge, pools};
