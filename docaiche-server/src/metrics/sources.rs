//! What `/metrics` reads at scrape time: connection pool probes, circuit
//! breakers, registered gauges and other sources ([`MetricSource`]), the
//! collector encoding them, and the helpers that encode constant families.

use std::fmt;
use std::sync::{Arc, RwLock};

use docaiche_core::resilience::{CircuitBreaker, CircuitState};
use docaiche_ratelimit::layer::RateLimitMetrics;
use docaiche_store::sql::PoolStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric as _, MetricEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// A gauge read at scrape time.
pub(crate) type GaugeFn = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Live pool figures of one named pool, read at scrape time.
#[derive(Clone)]
pub(crate) struct PoolProbe {
    /// The `pool` label.
    name: &'static str,
    /// Reads the figures.
    read: Arc<dyn Fn() -> PoolStats + Send + Sync>,
}

impl PoolProbe {
    /// A probe of the pool `name`.
    pub(crate) fn new(
        name: &'static str,
        read: impl Fn() -> PoolStats + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            read: Arc::new(read),
        }
    }
}

impl fmt::Debug for PoolProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PoolProbe").field(&self.name).finish()
    }
}

/// A store with connection pools to report.
pub(crate) trait PoolSource {
    /// A probe per pool.
    fn probes(self) -> Vec<PoolProbe>;
}

impl PoolSource for docaiche_store::sqlite::SqliteStore {
    fn probes(self) -> Vec<PoolProbe> {
        vec![PoolProbe::new("sqlite", move || self.pool_stats())]
    }
}

#[cfg(feature = "postgres")]
impl PoolSource for docaiche_store::postgres::PgStore {
    fn probes(self) -> Vec<PoolProbe> {
        let replica = self.pool_stats().replica.is_some();
        let primary = self.clone();
        let mut probes = vec![PoolProbe::new("postgres_primary", move || {
            primary.pool_stats().primary
        })];
        if replica {
            probes.push(PoolProbe::new("postgres_replica", move || {
                let stats = self.pool_stats();
                stats.replica.unwrap_or(stats.primary)
            }));
        }
        probes
    }
}

/// The pools of `store`, for [`Metrics::register_pool`].
pub(crate) fn pools(store: impl PoolSource) -> Vec<PoolProbe> {
    store.probes()
}

/// A source of families read at scrape time (implemented by the event hub).
pub(crate) trait MetricSource: Send + Sync + fmt::Debug + 'static {
    /// Encode this source's families.
    ///
    /// # Errors
    /// The encoder's.
    fn encode(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result;
}

/// Everything read at scrape time.
#[derive(Default)]
pub(super) struct Sources {
    pub(super) rate_limit: Option<RateLimitMetrics>,
    pub(super) pools: Vec<PoolProbe>,
    pub(super) breakers: Vec<CircuitBreaker>,
    pub(super) gauges: Vec<(&'static str, &'static str, GaugeFn)>,
    pub(super) events: Option<Arc<dyn MetricSource>>,
    /// Other sources ([`Metrics::register_source`](super::Metrics::register_source)).
    pub(super) others: Vec<Arc<dyn MetricSource>>,
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field("pools", &self.pools.len())
            .field("breakers", &self.breakers.len())
            .field("gauges", &self.gauges.len())
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// The collector reading [`Sources`] on each scrape.
#[derive(Debug, Clone, Default)]
pub(super) struct LiveFigures(pub(super) Arc<RwLock<Sources>>);

/// Encode one family of constant gauges.
///
/// # Errors
/// The encoder's.
pub(crate) fn gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, i64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encode one unlabelled constant gauge.
///
/// # Errors
/// The encoder's.
pub(crate) fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> fmt::Result {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// Encode one unlabelled constant counter (`_total` is appended).
///
/// # Errors
/// The encoder's.
pub(crate) fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> fmt::Result {
    encode_counter(
        value,
        encoder.encode_descriptor(name, help, None, MetricType::Counter)?,
    )
}

/// Encode one family of constant counters (`_total` is appended).
///
/// # Errors
/// The encoder's.
pub(crate) fn counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        encode_counter(value, family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn encode_counter(value: u64, encoder: MetricEncoder<'_>) -> fmt::Result {
    ConstCounter::new(value).encode(encoder)
}

/// A `u32` or `u64` figure as a gauge value.
fn gauge_value(value: impl Into<u64>) -> i64 {
    i64::try_from(value.into()).unwrap_or(i64::MAX)
}

impl Collector for LiveFigures {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let sources = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = &mut encoder;
        if let Some(limits) = &sources.rate_limit {
            let policies = limits.snapshot();
            counters(
                e,
                "ratelimit_decisions",
                "Rate-limit decisions by policy and outcome",
                policies.iter().flat_map(|p| {
                    [
                        (
                            [("policy", p.policy.as_str()), ("outcome", "allowed")],
                            p.allowed,
                        ),
                        (
                            [("policy", p.policy.as_str()), ("outcome", "limited")],
                            p.limited,
                        ),
                        (
                            [("policy", p.policy.as_str()), ("outcome", "error")],
                            p.errors,
                        ),
                    ]
                }),
            )?;
            counters(
                e,
                "ratelimit_fallback_decisions",
                "Rate-limit decisions taken by the failure policy while the shared limiter was down",
                policies
                    .iter()
                    .map(|p| ([("policy", p.policy.as_str())], p.fallback)),
            )?;
        }
        if !sources.pools.is_empty() {
            let stats: Vec<(&str, PoolStats)> =
                sources.pools.iter().map(|p| (p.name, (p.read)())).collect();
            gauges(
                e,
                "db_pool_connections",
                "Open connections of a pool, by state",
                stats.iter().flat_map(|(pool, s)| {
                    [
                        ([("pool", *pool), ("state", "idle")], gauge_value(s.idle)),
                        (
                            [("pool", *pool), ("state", "in_use")],
                            gauge_value(s.in_use()),
                        ),
                    ]
                }),
            )?;
            gauges(
                e,
                "db_pool_max_connections",
                "Configured maximum connections of a pool",
                stats
                    .iter()
                    .map(|(pool, s)| ([("pool", *pool)], gauge_value(s.max_connections))),
            )?;
            gauges(
                e,
                "db_pool_waiting",
                "Tasks waiting for a connection",
                stats
                    .iter()
                    .map(|(pool, s)| ([("pool", *pool)], gauge_value(s.waiting))),
            )?;
            counters(
                e,
                "db_pool_acquires",
                "Successful connection acquisitions",
                stats
                    .iter()
                    .map(|(pool, s)| ([("pool", *pool)], s.acquired)),
            )?;
            counters(
                e,
                "db_pool_acquire_failures",
                "Failed connection acquisitions (timeouts, refused connections)",
                stats
                    .iter()
                    .map(|(pool, s)| ([("pool", *pool)], s.acquire_failures)),
            )?;
        }
        if !sources.breakers.is_empty() {
            let figures: Vec<_> = sources
                .breakers
                .iter()
                .map(|b| (b.name().to_owned(), b.metrics()))
                .collect();
            gauges(
                e,
                "circuit_breaker_state",
                "1 for the current state of each circuit breaker, 0 for the others",
                figures.iter().flat_map(|(name, m)| {
                    [
                        CircuitState::Closed,
                        CircuitState::Open,
                        CircuitState::HalfOpen,
                    ]
                    .map(|state| {
                        (
                            [("breaker", name.as_str()), ("state", state.as_str())],
                            i64::from(m.state == state),
                        )
                    })
                }),
            )?;
            counters(
                e,
                "circuit_breaker_opened",
                "Times each circuit breaker has opened",
                figures
                    .iter()
                    .map(|(name, m)| ([("breaker", name.as_str())], m.transitions_to_open)),
            )?;
            counters(
                e,
                "circuit_breaker_rejected_calls",
                "Calls refused by an open (or saturated half-open) circuit breaker",
                figures
                    .iter()
                    .map(|(name, m)| ([("breaker", name.as_str())], m.rejected_calls)),
            )?;
        }
        for (name, help, read) in &sources.gauges {
            gauge(e, name, help, read())?;
        }
        if let Some(source) = &sources.events {
            source.encode(e)?;
        }
        for source in &sources.others {
            source.encode(e)?;
        }
        Ok(())
    }
}
