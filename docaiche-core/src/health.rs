//! The health model: each dependency reports up, degraded or down, with its
//! latency and a detail; a [`HealthRegistry`] runs every check concurrently,
//! each under a timeout, and aggregates them into a [`HealthReport`] that
//! renders as `application/health+json` (draft-inadarei-api-health-check).
//!
//! ```
//! # tokio_test_block_on(async {
//! use std::{sync::Arc, time::Duration};
//! use docaiche_core::health::{HealthRegistry, HealthStatus, StaticHealthCheck};
//!
//! let registry = HealthRegistry::new(Duration::from_secs(2))
//!     .with_check(Arc::new(StaticHealthCheck::up("sqlite")));
//! let report = registry.check_all().await;
//! assert_eq!(report.status, HealthStatus::Up);
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The media type of health documents.
pub const HEALTH_JSON: &str = "application/health+json";

/// How healthy a component (or the whole service) is. Ordered from best to
/// worst, so the aggregate is the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HealthStatus {
    /// Working normally.
    Up,
    /// Working with reduced capacity or on a fallback (e.g. the local rate
    /// limiter while Redis is down). Still ready for traffic.
    Degraded,
    /// Not working.
    Down,
}

impl HealthStatus {
    /// The draft-inadarei status word: `pass`, `warn` or `fail`.
    #[must_use]
    pub const fn as_health_json(self) -> &'static str {
        match self {
            Self::Up => "pass",
            Self::Degraded => "warn",
            Self::Down => "fail",
        }
    }

    /// Whether a service in this state should receive traffic.
    #[must_use]
    pub const fn is_ready(self) -> bool {
        !matches!(self, Self::Down)
    }
}

/// How much a component's failure matters to readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Criticality {
    /// The service cannot serve without it: `Down` makes the service `Down`.
    Critical,
    /// The service can limp without it: `Down` makes the service `Degraded`.
    Optional,
}

/// One component's health at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ComponentHealth {
    /// Component name, e.g. `postgres`, `redis`, `vault`.
    pub name: Cow<'static, str>,
    /// Its status.
    pub status: HealthStatus,
    /// How long the check took.
    pub latency: Duration,
    /// A short, operator-facing detail (no secrets, no connection strings).
    pub detail: Option<String>,
    /// When the check finished.
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: OffsetDateTime,
}

impl ComponentHealth {
    /// A component report observed now.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        status: HealthStatus,
        latency: Duration,
    ) -> Self {
        Self {
            name: name.into(),
            status,
            latency,
            detail: None,
            observed_at: OffsetDateTime::now_utc(),
        }
    }

    /// Attach a detail.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// A dependency that can report its health.
///
/// Contract: `check` must return within a reasonable time on its own, but the
/// [`HealthRegistry`] also bounds it with a timeout and reports `Down` if it
/// is exceeded. `check` never returns an error: failure *is* a status. It must
/// not put secrets or connection strings in `detail`.
#[async_trait::async_trait]
pub trait HealthCheck: Send + Sync + fmt::Debug + 'static {
    /// The component name (stable; used as the key in health documents).
    fn name(&self) -> Cow<'static, str>;

    /// How much the component matters to readiness.
    fn criticality(&self) -> Criticality {
        Criticality::Critical
    }

    /// Probe the component.
    async fn check(&self) -> ComponentHealth;
}

/// A check that always reports the same status: for components with nothing
/// to probe (in-memory stores) and for tests.
#[derive(Debug, Clone)]
pub struct StaticHealthCheck {
    name: Cow<'static, str>,
    status: HealthStatus,
    criticality: Criticality,
}

impl StaticHealthCheck {
    /// A critical component that is always up.
    pub fn up(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            status: HealthStatus::Up,
            criticality: Criticality::Critical,
        }
    }

    /// A component always reporting `status` with `criticality`.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        status: HealthStatus,
        criticality: Criticality,
    ) -> Self {
        Self {
            name: name.into(),
            status,
            criticality,
        }
    }
}

#[async_trait::async_trait]
impl HealthCheck for StaticHealthCheck {
    fn name(&self) -> Cow<'static, str> {
        self.name.clone()
    }

    fn criticality(&self) -> Criticality {
        self.criticality
    }

    async fn check(&self) -> ComponentHealth {
        ComponentHealth::new(self.name.clone(), self.status, Duration::ZERO)
    }
}

/// The aggregate of every component's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// The service's overall status.
    pub status: HealthStatus,
    /// Each component's report, in registration order.
    pub components: Vec<ComponentHealth>,
}

impl HealthReport {
    /// Aggregate component reports: the worst critical status wins; an
    /// optional component that is down only degrades the service.
    #[must_use]
    pub fn aggregate(components: Vec<(ComponentHealth, Criticality)>) -> Self {
        let status = components
            .iter()
            .map(|(c, criticality)| match (c.status, criticality) {
                (HealthStatus::Down, Criticality::Optional) => HealthStatus::Degraded,
                (status, _) => status,
            })
            .max()
            .unwrap_or(HealthStatus::Up);
        Self {
            status,
            components: components.into_iter().map(|(c, _)| c).collect(),
        }
    }

    /// Render as an `application/health+json` document.
    #[must_use]
    pub fn to_health_json(&self) -> serde_json::Value {
        let mut checks = serde_json::Map::new();
        for c in &self.components {
            let mut entry = serde_json::json!({
                "status": c.status.as_health_json(),
                "componentType": "datastore",
                "observedValue": duration_millis(c.latency),
                "observedUnit": "ms",
                "time": c.observed_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            });
            if let Some(detail) = &c.detail {
                entry["output"] = serde_json::Value::String(detail.clone());
            }
            checks.insert(
                format!("{}:responseTime", c.name),
                serde_json::json!([entry]),
            );
        }
        serde_json::json!({
            "status": self.status.as_health_json(),
            "checks": checks,
        })
    }
}

fn duration_millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs registered [`HealthCheck`]s concurrently, each bounded by a timeout.
#[derive(Debug, Clone)]
pub struct HealthRegistry {
    checks: Vec<Arc<dyn HealthCheck>>,
    timeout: Duration,
}

impl HealthRegistry {
    /// An empty registry whose checks each get `timeout`.
    #[must_use]
    pub fn new(timeout: Duration) -> Self {
        Self {
            checks: Vec::new(),
            timeout,
        }
    }

    /// Register a check.
    #[must_use]
    pub fn with_check(mut self, check: Arc<dyn HealthCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Register a check in place.
    pub fn register(&mut self, check: Arc<dyn HealthCheck>) {
        self.checks.push(check);
    }

    /// Run every check concurrently and aggregate. A check that exceeds the
    /// timeout is reported `Down` with detail `timed out`.
    pub async fn check_all(&self) -> HealthReport {
        let runs = self.checks.iter().map(|check| async move {
            let started = Instant::now();
            let report = match tokio::time::timeout(self.timeout, check.check()).await {
                Ok(report) => report,
                Err(_) => ComponentHealth::new(check.name(), HealthStatus::Down, started.elapsed())
                    .with_detail("timed out"),
            };
            (report, check.criticality())
        });
        HealthReport::aggregate(futures_util::future::join_all(runs).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Hangs;

    #[async_trait::async_trait]
    impl HealthCheck for Hangs {
        fn name(&self) -> Cow<'static, str> {
            "hangs".into()
        }
        async fn check(&self) -> ComponentHealth {
            std::future::pending().await
        }
    }

    #[test]
    fn worst_critical_status_wins() {
        let c = |status| ComponentHealth::new("x", status, Duration::ZERO);
        let report = HealthReport::aggregate(vec![
            (c(HealthStatus::Up), Criticality::Critical),
            (c(HealthStatus::Degraded), Criticality::Critical),
        ]);
        assert_eq!(report.status, HealthStatus::Degraded);
        let report = HealthReport::aggregate(vec![
            (c(HealthStatus::Up), Criticality::Critical),
            (c(HealthStatus::Down), Criticality::Optional),
        ]);
        assert_eq!(report.status, HealthStatus::Degraded);
        let report = HealthReport::aggregate(vec![
            (c(HealthStatus::Down), Criticality::Critical),
            (c(HealthStatus::Up), Criticality::Optional),
        ]);
        assert_eq!(report.status, HealthStatus::Down);
        assert_eq!(HealthReport::aggregate(vec![]).status, HealthStatus::Up);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_check_is_reported_down_after_the_timeout() {
        let registry = HealthRegistry::new(Duration::from_secs(1))
            .with_check(Arc::new(StaticHealthCheck::up("sqlite")))
            .with_check(Arc::new(Hangs));
        let report = registry.check_all().await;
        assert_eq!(report.status, HealthStatus::Down);
        assert_eq!(report.components[1].detail.as_deref(), Some("timed out"));
        let json = report.to_health_json();
        assert_eq!(json["status"], "fail");
        assert_eq!(json["checks"]["sqlite:responseTime"][0]["status"], "pass");
        assert_eq!(json["checks"]["hangs:responseTime"][0]["status"], "fail");
    }
}
