//! [`FanOutSink`]: one event to several sinks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};
use docaiche_core::{Error, Result};

/// When a fan-out counts as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FanOutPolicy {
    /// Every sink must record the event (the default).
    All,
    /// At least one sink must; the failures are logged and counted.
    AnyOne,
}

/// Records each event in every sink, concurrently. The receipt is the first
/// sink's (put the sequencing sink first); under [`FanOutPolicy::AnyOne`] it
/// is the first sink's that succeeded.
#[derive(Debug)]
pub struct FanOutSink {
    sinks: Vec<Arc<dyn AuditSink>>,
    policy: FanOutPolicy,
    failures: AtomicU64,
}

impl FanOutSink {
    /// A fan-out to `sinks`.
    ///
    /// # Errors
    /// `Misconfigured` if `sinks` is empty.
    pub fn new(sinks: Vec<Arc<dyn AuditSink>>, policy: FanOutPolicy) -> Result<Self> {
        if sinks.is_empty() {
            return Err(Error::misconfigured(
                "audit.sinks",
                "at least one sink is needed",
            ));
        }
        Ok(Self {
            sinks,
            policy,
            failures: AtomicU64::new(0),
        })
    }

    /// How many sink failures were tolerated under [`FanOutPolicy::AnyOne`]
    /// (or reported under [`FanOutPolicy::All`]).
    #[must_use]
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl AuditSink for FanOutSink {
    async fn record(&self, event: &AuditEvent) -> Result<AuditReceipt> {
        let results =
            futures_util::future::join_all(self.sinks.iter().map(|sink| sink.record(event))).await;
        let mut receipt = None;
        let mut first_error = None;
        for (index, result) in results.into_iter().enumerate() {
            match result {
                Ok(r) => {
                    receipt.get_or_insert(r);
                }
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(sink = index, error = %e.log_chain(), "audit sink failed to record");
                    first_error.get_or_insert(e);
                }
            }
        }
        match (self.policy, receipt, first_error) {
            (FanOutPolicy::All, _, Some(e)) | (FanOutPolicy::AnyOne, None, Some(e)) => Err(e),
            (_, Some(r), _) => Ok(r),
            (_, None, None) => Ok(AuditReceipt::new(None)),
        }
    }

    async fn flush(&self) -> Result<()> {
        let results =
            futures_util::future::join_all(self.sinks.iter().map(|sink| sink.flush())).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let first_error = results.into_iter().find_map(std::result::Result::err);
        match (self.policy, first_error) {
            (FanOutPolicy::AnyOne, Some(_)) if ok > 0 => Ok(()),
            (_, Some(e)) => Err(e),
            (_, None) => Ok(()),
        }
    }
}
