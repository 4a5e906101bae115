//! Per-key usage analytics (`[usage]`): every authenticated request is
//! counted once, per tenant, per key (and per account for bearer-token
//! principals), per route class and per outcome, in a
//! [`UsageRecorder`] on the request path; a [`UsageFlusher`] task writes
//! the counts to the store's [`UsageStore`] once per
//! `usage.flush_interval_secs`, and a retention task drops old rows
//! ([`UsageStore::apply_retention`]). `GET /v1/usage` and
//! `GET /v1/usage/top` (`crate::routes::usage`) read them back.
//!
//! # Where requests are counted
//!
//! Inside each protected route group's gate ([`crate::auth::AuthGate`]),
//! [`CountLayer`] sits between authentication and the group's rate limit:
//! it sees the verified principal and, on the way out, the answer, so the
//! outcome is one comparison of the status: 429 is `rate_limited` (the
//! group's limit, or a connection cap inside), 403 is `denied` (the
//! permission guards, or a handler's tenant check), anything else is
//! `allowed`. The cost is one `Arc` clone on the way in and, on the way
//! out, one small allocation (the subject's principal id) plus the
//! recorder's shard lock and increment.
//!
//! A request whose credential fails (401 from the authentication layer, or
//! 429 once its source is locked out) never reaches `CountLayer`. It is
//! counted as `invalid_credential` when it can be attributed: an API key of
//! the configured shape whose checksum holds and whose lookup id names a
//! stored key (a wrong secret, a revoked or expired key) is charged to that
//! key, read in a task off the request path. Nothing else is attributed: a
//! bearer token that fails verification has no claim worth trusting (a
//! forged token would charge any tenant), and a malformed key names no
//! record; those are counted, unattributed, in the metric
//! `docaiche_usage_unattributed_failures_total`. Requests without any
//! credential are not counted (no tenant to charge), nor are public routes.
//!
//! # Losing counts
//!
//! Counts live in memory for one flush interval. A failed write keeps the
//! batch for the next flush (same batch id: never counted twice); past
//! `usage.max_pending_batches` the oldest is dropped and
//! `docaiche_usage_lost_batches_total` / `_lost_requests_total` count it.
//! A crash loses at most the interval in memory.

mod layer;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use docaiche_auth::api_key::ApiKeyFormat;
use docaiche_core::api_key::ApiKeyLookup;
use docaiche_core::usage::{
    RouteClass, UsageFlusher, UsageOutcome, UsageRecorder, UsageStore, UsageSubject,
};
use docaiche_core::{ApiKeyStore, Clock, Error, Principal};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) use self::layer::{Count, CountLayer, Presented, Refusals};
use crate::config::UsageSection;
use crate::metrics::{MetricSource, counter, gauge};

/// Usage counting, its store and its settings; shared by the gates, the
/// routes and the background tasks.
pub(crate) struct Usage {
    /// Counts on the request path (`None` with `usage.enabled = false`).
    recorder: Option<Arc<UsageRecorder>>,
    /// Where counts are flushed to and read from.
    pub(crate) store: Arc<dyn UsageStore>,
    /// `[usage]`.
    settings: UsageSection,
    /// Time of the flusher and the retention task.
    clock: Arc<dyn Clock>,
    /// The API keys, to attribute failed credentials.
    api_keys: Arc<dyn ApiKeyStore>,
    /// The shape of this server's API keys.
    format: ApiKeyFormat,
    /// Failed credentials not attributed to a key.
    unattributed: AtomicU64,
    /// Retention runs that succeeded.
    retention_runs: AtomicU64,
    /// Retention runs that failed.
    retention_failures: AtomicU64,
}

impl fmt::Debug for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Usage")
            .field("enabled", &self.recorder.is_some())
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Usage {
    /// Usage of `settings` over `store`, attributing failed API keys through
    /// `api_keys` (whose keys have the `key_prefix` shape), timed by `clock`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for settings `Config::validate` also
    /// refuses.
    pub(crate) fn new(
        settings: &UsageSection,
        store: Arc<dyn UsageStore>,
        api_keys: Arc<dyn ApiKeyStore>,
        key_prefix: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        settings.flush_interval()?;
        settings.retention()?;
        let recorder = settings
            .enabled
            .then(|| Arc::new(UsageRecorder::new().with_max_series(settings.max_series())));
        Ok(Self {
            recorder,
            store,
            settings: settings.clone(),
            clock,
            api_keys,
            format: ApiKeyFormat::new(key_prefix)?,
            unattributed: AtomicU64::new(0),
            retention_runs: AtomicU64::new(0),
            retention_failures: AtomicU64::new(0),
        })
    }

    /// This usage over `store` instead (same recorder and settings).
    ///
    /// # Errors
    /// As [`Self::new`].
    pub(crate) fn with_store(&self, store: Arc<dyn UsageStore>) -> Result<Self, Error> {
        let mut usage = Self::new(
            &self.settings,
            store,
            Arc::clone(&self.api_keys),
            self.format.prefix(),
            Arc::clone(&self.clock),
        )?;
        usage.recorder.clone_from(&self.recorder);
        Ok(usage)
    }

    /// Whether requests are counted.
    pub(crate) const fn is_enabled(&self) -> bool {
        self.recorder.is_some()
    }

    /// The recorder, while counting is on.
    #[cfg(test)]
    pub(crate) const fn recorder(&self) -> Option<&Arc<UsageRecorder>> {
        self.recorder.as_ref()
    }

    /// Count one request of `principal` on `class` (the hot path).
    pub(crate) fn record(&self, principal: &Principal, class: &RouteClass, outcome: UsageOutcome) {
        if let Some(recorder) = &self.recorder {
            recorder.record(&principal.tenant, &subject_of(principal), class, outcome);
        }
    }

    /// A credential the authentication layer refused on `class`: charge it
    /// to its API key if it names one (in a task: it reads the store), else
    /// count it unattributed.
    pub(crate) fn refused(self: &Arc<Self>, presented: &Presented, class: &RouteClass) {
        if self.recorder.is_none() {
            return;
        }
        let lookup = presented
            .api_key()
            .and_then(|raw| self.format.parse(raw).ok())
            .and_then(|parsed| ApiKeyLookup::new(parsed.lookup()).ok());
        let (Some(lookup), Ok(runtime)) = (lookup, tokio::runtime::Handle::try_current()) else {
            self.unattributed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let usage = Arc::clone(self);
        let class = class.clone();
        runtime.spawn(async move { usage.charge_refused(&lookup, &class).await });
    }

    /// [`Self::refused`]'s store read and count.
    async fn charge_refused(&self, lookup: &ApiKeyLookup, class: &RouteClass) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        match self.api_keys.find_by_lookup(lookup).await {
            Ok(Some(record)) if record.lookup == *lookup => {
                let subject = UsageSubject::for_key_of(record.id, record.principal);
                recorder.record(
                    &record.tenant,
                    &subject,
                    class,
                    UsageOutcome::InvalidCredential,
                );
            }
            Ok(_) => {
                self.unattributed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.unattributed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e.log_chain(), "failed credential not attributed");
            }
        }
    }

    /// Failed credentials counted unattributed so far.
    #[cfg(test)]
    pub(crate) fn unattributed(&self) -> u64 {
        self.unattributed.load(Ordering::Relaxed)
    }

    /// A flusher of the recorder into the store, per `[usage]`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for a flush interval not dividing a minute.
    pub(crate) fn flusher(&self) -> Result<Option<UsageFlusher>, Error> {
        let Some(recorder) = &self.recorder else {
            return Ok(None);
        };
        let flusher = UsageFlusher::new(
            Arc::clone(recorder),
            Arc::clone(&self.store),
            Arc::clone(&self.clock),
        )
        .with_interval(self.settings.flush_interval()?)?
        .with_max_pending_batches(self.settings.max_pending_batches());
        Ok(Some(flusher))
    }

    /// One retention run ([`UsageStore::apply_retention`] at the clock's
    /// now), counted in the metrics.
    ///
    /// # Errors
    /// The store's.
    pub(crate) async fn apply_retention(&self) -> Result<(), Error> {
        let retention = self.settings.retention()?;
        match self
            .store
            .apply_retention(self.clock.now(), &retention)
            .await
        {
            Ok(report) => {
                self.retention_runs.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    minute_rows = report.minute_rows,
                    hour_rows = report.hour_rows,
                    day_rows = report.day_rows,
                    batches = report.batches,
                    "usage retention applied"
                );
                Ok(())
            }
            Err(e) => {
                self.retention_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e.log_chain(), "usage retention failed");
                Err(e)
            }
        }
    }

    /// Start the flusher and the retention task (nothing with
    /// `usage.enabled = false`); stop them with [`UsageJob::shutdown`].
    ///
    /// # Errors
    /// As [`Self::flusher`].
    pub(crate) fn start(self: &Arc<Self>) -> Result<Option<UsageJob>, Error> {
        let Some(flusher) = self.flusher()? else {
            tracing::info!("usage counting disabled");
            return Ok(None);
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (stop_retention, retention_stopped) = oneshot::channel::<()>();
        let flushing = tokio::spawn(flusher.run(async move {
            let _ = stopped.await;
        }));
        let usage = Arc::clone(self);
        let interval = self.settings.retention_interval();
        let retention = tokio::spawn(async move {
            let mut stopped = std::pin::pin!(retention_stopped);
            loop {
                // Failures are logged and counted; the next run retries.
                let _ = usage.apply_retention().await;
                tokio::select! {
                    _ = &mut stopped => return,
                    () = usage.clock.sleep(interval) => {}
                }
            }
        });
        tracing::info!(
            flush_interval_secs = self.settings.flush_interval_secs,
            retention_interval_secs = self.settings.retention_interval_secs,
            "usage counting started"
        );
        Ok(Some(UsageJob {
            stop,
            stop_retention,
            flushing,
            retention,
        }))
    }
}

/// Who made a request of `principal`: its API key (and the key's
/// principal), or its account.
pub(crate) fn subject_of(principal: &Principal) -> UsageSubject {
    match &principal.auth_method {
        docaiche_core::AuthMethod::ApiKey { key_id } => {
            UsageSubject::for_key_of(*key_id, principal.id.clone())
        }
        _ => UsageSubject::for_account(principal.id.clone()),
    }
}

/// The running flusher and retention task of [`Usage::start`].
#[derive(Debug)]
pub(crate) struct UsageJob {
    stop: oneshot::Sender<()>,
    stop_retention: oneshot::Sender<()>,
    flushing: JoinHandle<()>,
    retention: JoinHandle<()>,
}

impl UsageJob {
    /// Stop both tasks: the flusher writes what was counted once more
    /// (within `grace`; what it cannot write is counted lost).
    pub(crate) async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(());
        let _ = self.stop_retention.send(());
        if tokio::time::timeout(grace, self.flushing).await.is_err() {
            tracing::warn!("the last usage flush did not finish within the grace period");
        }
        let _ = tokio::time::timeout(grace, self.retention).await;
    }
}

impl MetricSource for Usage {
    fn encode(&self, e: &mut prometheus_client::encoding::DescriptorEncoder<'_>) -> fmt::Result {
        let stats = self
            .recorder
            .as_ref()
            .map(|r| r.stats())
            .unwrap_or_default();
        gauge(
            e,
            "usage_series",
            "Usage series counted in memory since the last flush",
            i64::try_from(stats.series).unwrap_or(i64::MAX),
        )?;
        for (name, help, value) in [
            (
                "usage_overflowed_requests",
                "Requests not counted because usage.max_series was reached",
                stats.overflowed,
            ),
            (
                "usage_flushed_batches",
                "Usage batches written to the store",
                stats.flushed_batches,
            ),
            (
                "usage_failed_flushes",
                "Usage flushes that failed (the batch is retried)",
                stats.failed_flushes,
            ),
            (
                "usage_lost_batches",
                "Usage batches dropped unwritten (each loses at most one flush interval)",
                stats.lost_batches,
            ),
            (
                "usage_lost_requests",
                "Requests in usage batches dropped unwritten",
                stats.lost_requests,
            ),
            (
                "usage_unattributed_failures",
                "Failed credentials not attributable to an API key (not in the usage rollups)",
                self.unattributed.load(Ordering::Relaxed),
            ),
            (
                "usage_retention_runs",
                "Usage retention runs that succeeded",
                self.retention_runs.load(Ordering::Relaxed),
            ),
            (
                "usage_retention_failures",
                "Usage retention runs that failed",
                self.retention_failures.load(Ordering::Relaxed),
            ),
        ] {
            counter(e, name, help, value)?;
        }
        Ok(())
    }
}
