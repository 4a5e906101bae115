//! The scheduled purge job.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use docaiche_core::{Clock, Error, Result, TenantId};
use futures_util::future::{Either, select};

use super::purge::{PurgeReport, Purger};

/// Which tenants a scheduled purge visits: read at every run, so tenants
/// added between runs are purged from the next one.
/// [`TenantStoreRetention`](super::TenantStoreRetention) lists the tenant
/// registry's.
#[async_trait]
pub trait TenantDirectory: Send + Sync + fmt::Debug + 'static {
    /// Every tenant to purge.
    ///
    /// # Errors
    /// `Unavailable` on outage (the run is skipped and retried next tick).
    async fn tenants(&self) -> Result<Vec<TenantId>>;
}

/// A fixed list of tenants.
#[derive(Debug, Clone, Default)]
pub struct StaticTenants(Vec<TenantId>);

impl StaticTenants {
    /// These tenants.
    #[must_use]
    pub fn new(tenants: impl IntoIterator<Item = TenantId>) -> Self {
        Self(tenants.into_iter().collect())
    }
}

#[async_trait]
impl TenantDirectory for StaticTenants {
    async fn tenants(&self) -> Result<Vec<TenantId>> {
        Ok(self.0.clone())
    }
}

/// Runs a [`Purger`] every `interval` on the injected [`Clock`] until a
/// shutdown future completes.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use std::time::Duration;
/// # use docaiche_compliance::retention::{PurgeSchedule, Purger, StaticTenants};
/// # async fn demo(purger: Arc<Purger>, clock: Arc<dyn docaiche_core::Clock>) -> docaiche_core::Result<()> {
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let schedule = PurgeSchedule::new(purger, Arc::new(StaticTenants::default()), clock, Duration::from_secs(3600))?;
/// let job = tokio::spawn(schedule.run_until(async move { let _ = stopped.await; }));
/// // … on shutdown:
/// let _ = stop.send(());
/// let runs = job.await.unwrap_or(0);
/// # let _ = runs; Ok(()) }
/// ```
///
/// A run in progress is finished before the shutdown is honoured: runs
/// are bounded ([`Purger::with_max_per_run`]) and each deletion is
/// recorded before it happens, so stopping between runs loses nothing.
#[derive(Debug, Clone)]
pub struct PurgeSchedule {
    purger: Arc<Purger>,
    tenants: Arc<dyn TenantDirectory>,
    clock: Arc<dyn Clock>,
    interval: Duration,
}

impl PurgeSchedule {
    /// A schedule running `purger` over `tenants` every `interval`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if `interval` is under one minute.
    pub fn new(
        purger: Arc<Purger>,
        tenants: Arc<dyn TenantDirectory>,
        clock: Arc<dyn Clock>,
        interval: Duration,
    ) -> Result<Self> {
        if interval < Duration::from_secs(60) {
            return Err(Error::misconfigured(
                "retention.interval",
                "must be at least one minute",
            ));
        }
        Ok(Self {
            purger,
            tenants,
            clock,
            interval,
        })
    }

    /// One run, as the schedule makes it: the directory's tenants now, then
    /// [`Purger::run`] over them. `None` when the directory cannot answer
    /// (the run is skipped, with a warning, and nothing is purged).
    pub async fn run_once(&self) -> Option<PurgeReport> {
        match self.tenants.tenants().await {
            Ok(tenants) => {
                let report = self.purger.run(&tenants).await;
                tracing::info!(
                    purged = report.purged(),
                    held = report.held(),
                    failed_tenants = report.failures.len(),
                    "retention purge run finished"
                );
                Some(report)
            }
            Err(error) => {
                tracing::warn!(error = %error.log_chain(), "retention purge skipped: tenants unavailable");
                None
            }
        }
    }

    /// Run now, then every interval, until `shutdown` completes. Returns
    /// the number of runs.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> u64 {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut runs = 0;
        loop {
            self.run_once().await;
            runs += 1;
            let tick = self.clock.sleep(self.interval);
            match select(tick, shutdown.as_mut()).await {
                Either::Left(((), _)) => {}
                Either::Right(((), _)) => return runs,
            }
        }
    }
}
