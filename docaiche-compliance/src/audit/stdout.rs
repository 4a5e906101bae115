//! [`StdoutSink`]: events as JSON lines on standard output.

use std::io::Write;

use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};
use docaiche_core::{Error, Result};

use super::record::event_json;

/// Each event as one JSON line (`{"audit":{…}}`) on standard output, for
/// platforms that collect container output. A receipt means "written and
/// flushed to the pipe".
///
/// Not chained: whatever collects standard output owns the storage, and a
/// chain restarted by every process would not verify. Put it beside a
/// [`JsonlFileSink`](super::JsonlFileSink) or
/// `PgAuditTrail` in a [`FanOutSink`](super::FanOutSink) for tamper
/// evidence.
#[derive(Debug, Default, Clone, Copy)]
#[non_exhaustive]
pub struct StdoutSink;

impl StdoutSink {
    /// A sink on this process's standard output.
    #[must_use]
    pub const fn new() -> Self {
        Self
    }
}

#[async_trait::async_trait]
impl AuditSink for StdoutSink {
    async fn record(&self, event: &AuditEvent) -> Result<AuditReceipt> {
        let mut line = Vec::with_capacity(512);
        line.extend_from_slice(b"{\"audit\":");
        line.extend_from_slice(&event_json(event)?);
        line.extend_from_slice(b"}\n");
        let mut out = std::io::stdout().lock();
        out.write_all(&line)
            .and_then(|()| out.flush())
            .map_err(|e| Error::unavailable("audit stdout sink", e))?;
        Ok(AuditReceipt::new(None))
    }
}
