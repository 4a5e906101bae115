//! `[audit]`: the sink of the chained audit trail (file or stdout, with
//! optional fan-out), its fsync policy, buffer, fail-closed switch and
//! checkpoint interval (the trail itself is `crate::audit`).

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{Config, Environment};

/// Where audit events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AuditSinkKind {
    /// The chained JSON-lines file (the default).
    #[default]
    File,
    /// One JSON line per event on standard output (a log collector).
    Stdout,
    /// The append-only table `audit_trail` in the `[store]` PostgreSQL
    /// database (needs `store.backend = "postgres"`).
    Postgres,
}

/// When the file sink makes records durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FsyncSetting {
    /// After every batch, before any receipt (group commit).
    #[default]
    EveryBatch,
    /// At most every `fsync_interval_ms`.
    Interval,
    /// Never (the operating system decides): tests only.
    Never,
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AuditSection {
    /// The primary sink.
    pub(crate) sink: AuditSinkKind,
    /// Further sinks every event also goes to (all must succeed).
    pub(crate) fan_out: Vec<AuditSinkKind>,
    /// The file sink's active file; default `<data_dir>/audit/audit.jsonl`.
    pub(crate) path: Option<PathBuf>,
    /// The file sink's fsync policy.
    pub(crate) fsync: FsyncSetting,
    /// With `fsync = "interval"`: the interval, in milliseconds.
    pub(crate) fsync_interval_ms: u64,
    /// Rotate the file once it reaches this many bytes (0: never).
    pub(crate) rotate_bytes: u64,
    /// Events the buffer holds before back-pressure and drops.
    pub(crate) buffer_capacity: usize,
    /// Refuse administrative actions that cannot be audited; default:
    /// true in production, false in development.
    pub(crate) fail_closed: Option<bool>,
    /// A signed checkpoint every this many records (0: none).
    pub(crate) checkpoint_every: u64,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            sink: AuditSinkKind::File,
            fan_out: Vec::new(),
            path: None,
            fsync: FsyncSetting::EveryBatch,
            fsync_interval_ms: 1000,
            rotate_bytes: 64 * 1024 * 1024,
            buffer_capacity: 1024,
            fail_closed: None,
            checkpoint_every: 1000,
        }
    }
}

impl AuditSection {
    /// Invalid settings, as `(setting, reason)` (see `Config::validate`).
    pub(crate) fn problems(&self, store_is_postgres: bool) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        let uses_postgres =
            self.sink == AuditSinkKind::Postgres || self.fan_out.contains(&AuditSinkKind::Postgres);
        if uses_postgres && !store_is_postgres {
            out.push((
                "audit.sink",
                "\"postgres\" writes to the [store] database: set store.backend = \"postgres\"",
            ));
        }
        if self.buffer_capacity == 0 || self.buffer_capacity > 1_000_000 {
            out.push(("audit.buffer_capacity", "must be between 1 and 1000000"));
        }
        if self.fsync == FsyncSetting::Interval && self.fsync_interval_ms == 0 {
            out.push((
                "audit.fsync_interval_ms",
                "must be at least 1 with fsync = \"interval\"",
            ));
        }
        if self.fan_out.contains(&self.sink) {
            out.push(("audit.fan_out", "must not repeat audit.sink"));
        }
        if self.path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            out.push(("audit.path", "must name a file"));
        }
        out
    }

    /// Whether administrative actions are refused when unauditable.
    pub(crate) fn fail_closed(&self, environment: Environment) -> bool {
        self.fail_closed
            .unwrap_or(environment == Environment::Production)
    }

    /// The file sink's active file.
    pub(crate) fn file_path(&self, config: &Config) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| config.storage.data_dir.join("audit").join("audit.jsonl"))
    }
}
