//! The server's audit trail (`[audit]`): the tamper-evident chained trail
//! of `docaiche_compliance::audit` in place of the store's plain audit
//! table, behind a bounded [`BufferedSink`].
//!
//! ```toml
//! [audit]
//! sink = "file"              # or "stdout"
//! fan_out = ["stdout"]       # optional extra sinks, every event goes to each
//! path = "/var/lib/docaiche/audit/audit.jsonl"  # default: <data_dir>/audit/audit.jsonl
//! fsync = "every_batch"      # or "interval" (fsync_interval_ms) or "never"
//! buffer_capacity = 1024
//! fail_closed = true         # default: true in production, false in development
//! checkpoint_every = 1000    # signed checkpoint every N records (0: none)
//! ```
//!
//! Every event the server records (API key lifecycle, logins, failures,
//! lockouts) goes through the buffer to the configured sink. The keys of
//! the signed checkpoints (`audit/checkpoint-key`) come from the secret
//! chain of `[secrets]`; in development without one an ephemeral key is
//! generated (with a warning: its checkpoints do not verify after a
//! restart), in production a missing key stops start-up.
//!
//! Personal data in event details is stored as keyed hashes
//! (`hmac-sha256:<hex>`): a [`ProtectedSink`] between the buffer and the
//! sinks hashes the paths of [`DEFAULT_PROTECTED_PATHS`] (the e-mail of
//! `auth.failure`'s `subjects.account` and `auth.lockout`'s `subject`)
//! before anything is written, so neither the file, the table nor stdout
//! holds them in clear; an auditor matches a known address by asking the
//! key holder for its hash. The key is the secret `audit/detail-hash-key`
//! (at least 32 bytes; `DOCAICHE_SECRET_AUDIT_DETAIL_HASH_KEY` under the
//! `env` source). Without it, the key is derived from
//! `audit/checkpoint-key` as `HMAC-SHA-256(checkpoint key,
//! "docaiche/audit-detail-hash/v1")` (logged at info); with neither, a
//! production start-up stops, development uses an ephemeral key (with a
//! warning: hashes of the same address differ after a restart). Set the
//! dedicated secret to rotate one key without the other.
//!
//! One writer per file trail (`docaiche_compliance::audit::TrailLocked`):
//! the server owns the trail ([`TrailRole::Owner`]) and holds its lock
//! (`<path>.lock`) while it runs; a `bootstrap-*` command is a guest
//! ([`TrailRole::Guest`]): it owns the trail when it is free, and
//! otherwise deposits its events in the trail's inbox (`<path>.inbox/`,
//! `AuditInbox`), which the owner appends to its own chain when it opens
//! the trail, every [`INBOX_INTERVAL`] ([`start_inbox`]) and at shutdown.
//! The command never writes the file while another process holds it, so
//! the chain never forks. A server that finds the trail locked waits
//! [`OWNER_LOCK_WAIT`] (a command holds it for a moment), then refuses to
//! start (`audit.path`): two servers must not share one trail.

use std::net::SocketAddr;
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_compliance::audit::record::{ParsedLine, event_of, parse_line};
use docaiche_compliance::audit::{
    AuditInbox, Auditor, BufferConfig, BufferedSink, CheckpointKey, CheckpointPolicy, Criticality,
    DEFAULT_PROTECTED_PATHS, DetailHasher, FanOutPolicy, FanOutSink, FileSinkConfig, FsyncPolicy,
    InboxSink, JsonlFileSink, ProtectedSink, StdoutSink, TrailLocked,
};
use docaiche_compliance::audit::{read_lines, trail_segments};
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource};
use docaiche_core::{
    AuditSink, Error, Permission, Principal, RequestContext, SecretBytes, TenantId,
};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::app::{AppState, RouteGroup};
use crate::backends::Secrets;
use crate::config::{Config, EnvLookup, Environment};

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

/// Which process this is to the file trail: its one writer, or a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrailRole {
    /// The server: it must own the trail. A `bootstrap-*` command may hold
    /// the lock for a moment, so it waits up to [`OWNER_LOCK_WAIT`], then
    /// refuses to start.
    Owner,
    /// `bootstrap-key`, `bootstrap-admin`: own the trail when it is free
    /// (and ingest its inbox), else deposit their events in its inbox for
    /// the owner.
    Guest,
}

/// How long the server waits for the trail's lock at start.
pub(crate) const OWNER_LOCK_WAIT: Duration = Duration::from_secs(5);

/// How often the owner of the file trail ingests its inbox.
pub(crate) const INBOX_INTERVAL: Duration = Duration::from_secs(1);

/// The file trail this process owns, and its inbox.
#[derive(Debug, Clone)]
pub(crate) struct OwnedInbox {
    /// The trail's inbox.
    pub(crate) inbox: AuditInbox,
    /// The trail's sink, below the buffer and the detail hasher: deposited
    /// events were hashed by their writer already.
    pub(crate) sink: JsonlFileSink,
}

impl OwnedInbox {
    /// Append what waits in the inbox, logging (not returning) a failure:
    /// the files stay for the next round.
    pub(crate) async fn ingest(&self) -> usize {
        let mut total = 0;
        loop {
            match self.inbox.ingest(&self.sink).await {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(error) => {
                    tracing::error!(
                        error = %error.log_chain(),
                        inbox = %self.inbox.path().display(),
                        "audit inbox not ingested; retried on the next round"
                    );
                    return total;
                }
            }
            if total >= docaiche_compliance::audit::MAX_INGEST * 10 {
                return total;
            }
        }
    }
}

/// The periodic inbox ingestion of a running server.
#[derive(Debug)]
pub(crate) struct InboxTask {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    owned: OwnedInbox,
}

impl InboxTask {
    /// Stop the rounds, then ingest once more (events deposited up to now
    /// are on the trail before the server exits).
    pub(crate) async fn shutdown(self) -> usize {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.owned.ingest().await
    }
}

/// Ingest the inbox of the file trail `trail` owns every
/// [`INBOX_INTERVAL`] until [`InboxTask::shutdown`] (`None`: no file trail
/// owned here).
pub(crate) fn start_inbox(trail: &AuditTrail) -> Option<InboxTask> {
    let owned = trail.inbox.clone()?;
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let rounds = owned.clone();
    let task = tokio::spawn(async move {
        let mut every = tokio::time::interval(INBOX_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = every.tick() => {
                    rounds.ingest().await;
                }
            }
        }
    });
    Some(InboxTask { stop, task, owned })
}

/// The opened trail: the buffer every server component records through.
#[derive(Debug, Clone)]
pub(crate) struct AuditTrail {
    /// The bounded buffer in front of the sinks.
    pub(crate) buffer: BufferedSink,
    /// The buffer and the fail-closed decision for administrative actions.
    pub(crate) auditor: Auditor,
    /// Where the admin listing reads back from.
    pub(crate) source: ReadBack,
    /// The checkpoint key when it is a configured secret (never an
    /// ephemeral one): it signs and checks the retention anchor of the file
    /// trail, so without it the `audit` retention is not applied.
    pub(crate) anchor_key: Option<CheckpointKey>,
    /// The file trail's inbox, when this process owns the trail.
    pub(crate) inbox: Option<OwnedInbox>,
}

/// Where `GET /v1/admin/audit` reads events back from.
#[derive(Debug, Clone)]
pub(crate) enum ReadBack {
    /// No readable sink (`stdout` only).
    None,
    /// The file trail (its active file; rotated segments beside it).
    File(PathBuf),
    /// The `audit_trail` table.
    #[cfg(feature = "postgres")]
    Postgres(docaiche_store::postgres::sqlx::PgPool),
}

impl AuditTrail {
    /// The buffer, as the sink the stores and services record through.
    pub(crate) fn sink(&self) -> Arc<dyn AuditSink> {
        Arc::new(self.buffer.clone())
    }

    /// Report the buffer's depth and drops as `docaiche_audit_queue_depth`
    /// and `docaiche_audit_events_dropped`.
    pub(crate) fn register_metrics(&self, metrics: &crate::metrics::Metrics) {
        let depth = self.buffer.clone();
        metrics.register_gauge(
            "audit_queue_depth",
            "Audit events waiting to be written",
            Arc::new(move || i64::try_from(depth.queued()).unwrap_or(i64::MAX)),
        );
        let dropped = self.buffer.clone();
        metrics.register_gauge(
            "audit_events_dropped",
            "Audit events dropped because the buffer was full or closed",
            Arc::new(move || i64::try_from(dropped.dropped()).unwrap_or(i64::MAX)),
        );
    }
}

/// Open the sinks of `config.audit` and the buffer in front of them (on
/// the current tokio runtime).
///
/// # Errors
/// [`Error::Misconfigured`] for a missing checkpoint key in production; the
/// file sink's error when its file cannot be created or recovered.
#[cfg(test)]
pub(crate) async fn open(
    config: &Config,
    secrets: &Secrets,
    env: EnvLookup<'_>,
) -> Result<AuditTrail, Error> {
    open_as(config, secrets, env, TrailRole::Owner).await
}

/// [`open`] for a process in `role` (see [`TrailRole`]).
///
/// # Errors
/// As [`open`]; for [`TrailRole::Owner`], [`Error::Misconfigured`]
/// (`audit.path`) when another process keeps the file trail locked.
pub(crate) async fn open_as(
    config: &Config,
    secrets: &Secrets,
    env: EnvLookup<'_>,
    role: TrailRole,
) -> Result<AuditTrail, Error> {
    let section = &config.audit;
    let mut sinks: Vec<Arc<dyn AuditSink>> = Vec::new();
    let mut source = ReadBack::None;
    let mut inbox = None;
    for kind in std::iter::once(section.sink).chain(section.fan_out.iter().copied()) {
        sinks.push(match kind {
            AuditSinkKind::Stdout => Arc::new(StdoutSink::new()),
            AuditSinkKind::File => {
                let path = section.file_path(config);
                if matches!(source, ReadBack::None) {
                    source = ReadBack::File(path.clone());
                }
                match open_file(config, secrets, role).await? {
                    FileTrail::Owned(sink) => {
                        let owned = OwnedInbox {
                            inbox: AuditInbox::for_trail(&path),
                            sink: sink.clone(),
                        };
                        // Events deposited while no one owned the trail.
                        owned.ingest().await;
                        inbox = Some(owned);
                        Arc::new(sink)
                    }
                    FileTrail::Guest(sink) => Arc::new(sink),
                }
            }
            #[cfg(feature = "postgres")]
            AuditSinkKind::Postgres => {
                let (sink, pool) = open_postgres(config, secrets, env).await?;
                source = ReadBack::Postgres(pool);
                Arc::new(sink)
            }
            #[cfg(not(feature = "postgres"))]
            AuditSinkKind::Postgres => {
                let _ = env;
                return Err(Error::misconfigured(
                    "audit.sink",
                    crate::config::missing_feature("postgres"),
                ));
            }
        });
    }
    let inner: Arc<dyn AuditSink> = if sinks.len() == 1 {
        sinks.swap_remove(0)
    } else {
        Arc::new(FanOutSink::new(sinks, FanOutPolicy::All)?)
    };
    // Behind the buffer, in front of every sink: the buffer's worker is the
    // only caller of `inner`, so `record`, `submit`, the auditor and the
    // buffer's drop alerts all pass here, and hashing stays off the
    // request path.
    let inner: Arc<dyn AuditSink> = Arc::new(ProtectedSink::new(
        inner,
        detail_hasher(config, secrets).await?,
        DEFAULT_PROTECTED_PATHS.iter().copied(),
    ));
    let capacity = NonZeroUsize::new(section.buffer_capacity)
        .ok_or_else(|| Error::misconfigured("audit.buffer_capacity", "must be at least 1"))?;
    let buffer = BufferedSink::new(inner, BufferConfig::default().with_capacity(capacity));
    let fail_closed = section.fail_closed(config.environment);
    tracing::info!(
        sink = ?section.sink,
        fan_out = section.fan_out.len(),
        fail_closed,
        "audit trail ready"
    );
    Ok(AuditTrail {
        auditor: Auditor::new(buffer.clone(), fail_closed),
        buffer,
        source,
        anchor_key: anchor_key(secrets).await?,
        inbox,
    })
}

/// The checkpoint key, if the secret chain holds it (an ephemeral key
/// would leave anchors unverifiable after a restart).
async fn anchor_key(secrets: &Secrets) -> Result<Option<CheckpointKey>, Error> {
    let name = CheckpointKey::DEFAULT_SECRET;
    let Some(chain) = secrets.chain() else {
        return Ok(None);
    };
    let Some(found) = chain.get(name).await? else {
        return Ok(None);
    };
    CheckpointKey::from_bytes(name, &found.value)
        .map(Some)
        .map_err(|e| Error::misconfigured("audit.checkpoint_every", e.to_string()))
}

/// The checkpoint policy of `config.audit`, if any.
async fn checkpoints(
    config: &Config,
    secrets: &Secrets,
) -> Result<Option<CheckpointPolicy>, Error> {
    let Some(every) = NonZeroU64::new(config.audit.checkpoint_every) else {
        return Ok(None);
    };
    let name = CheckpointKey::DEFAULT_SECRET;
    let key = CheckpointKey::from_bytes(name, &key_bytes(config, secrets, name).await?)
        .map_err(|e| Error::misconfigured("audit.checkpoint_every", e.to_string()))?;
    Ok(Some(CheckpointPolicy::new(key, every)))
}

/// The `audit_trail` table in the `[store]` database (its own small pool,
/// in `store.schema`; migrated), and the pool for reading back.
#[cfg(feature = "postgres")]
async fn open_postgres(
    config: &Config,
    secrets: &Secrets,
    env: EnvLookup<'_>,
) -> Result<
    (
        docaiche_compliance::audit::PgAuditTrail,
        docaiche_store::postgres::sqlx::PgPool,
    ),
    Error,
> {
    use docaiche_store::postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    if config.store.backend != crate::config::StoreBackend::Postgres {
        return Err(Error::misconfigured(
            "audit.sink",
            "\"postgres\" writes to the [store] database: set store.backend = \"postgres\"",
        ));
    }
    let source = config.store.url_source.as_deref().ok_or_else(|| {
        Error::misconfigured(
            "store.url_source",
            "is required with store.backend = \"postgres\"",
        )
    })?;
    let url = secrets.resolve("store.url_source", source, env).await?;
    let mut options: PgConnectOptions = url
        .expose_secret()
        .parse()
        .map_err(|_| Error::misconfigured("store.url_source", "is not a PostgreSQL URL"))?;
    options = options.application_name("docaiche-audit");
    if let Some(schema) = &config.store.schema {
        options = options.options([("search_path", schema.as_str())]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|e| Error::unavailable("audit trail (postgres)", e))?;
    let mut trail = docaiche_compliance::audit::PgAuditTrail::new(pool.clone()).await?;
    if let Some(policy) = checkpoints(config, secrets).await? {
        trail = trail.with_checkpoints(policy);
    }
    tracing::info!("audit trail in PostgreSQL (table audit_trail)");
    Ok((trail, pool))
}

/// The file trail as this process writes it.
enum FileTrail {
    /// This process holds the trail's lock and appends itself.
    Owned(JsonlFileSink),
    /// Another process owns the trail: events go to its inbox.
    Guest(InboxSink),
}

/// The chained JSON-lines file sink of `config.audit`, or, for a guest
/// when another process owns the trail, its inbox.
async fn open_file(
    config: &Config,
    secrets: &Secrets,
    role: TrailRole,
) -> Result<FileTrail, Error> {
    let section = &config.audit;
    let path = section.file_path(config);
    if let Some(dir) = path.parent() {
        crate::storage::create_private_dir(dir).map_err(|e| {
            Error::misconfigured(
                "audit.path",
                format!("cannot create the directory {}: {e}", dir.display()),
            )
        })?;
    }
    let fsync = match section.fsync {
        FsyncSetting::EveryBatch => FsyncPolicy::EveryBatch,
        FsyncSetting::Interval => {
            FsyncPolicy::Interval(Duration::from_millis(section.fsync_interval_ms))
        }
        FsyncSetting::Never => FsyncPolicy::Never,
    };
    let mut file = FileSinkConfig::new(&path)
        .with_fsync(fsync)
        .with_rotation(NonZeroU64::new(section.rotate_bytes));
    if let Some(policy) = checkpoints(config, secrets).await? {
        file = file.with_checkpoints(policy);
    }
    let deadline = tokio::time::Instant::now() + OWNER_LOCK_WAIT;
    loop {
        let error = match JsonlFileSink::open(file.clone()) {
            Ok(sink) => {
                tracing::info!(path = %path.display(), "audit file sink open");
                return Ok(FileTrail::Owned(sink));
            }
            Err(error) => error,
        };
        let Some(locked) = TrailLocked::find(&error) else {
            return Err(error);
        };
        match role {
            TrailRole::Guest => {
                let inbox = AuditInbox::for_trail(&path);
                // Not a warning: this is how the CLI runs beside a server.
                tracing::info!(
                    holder = locked.pid,
                    inbox = %inbox.path().display(),
                    "the audit trail is owned by another process; events go to its inbox"
                );
                return Ok(FileTrail::Guest(InboxSink::new(inbox)));
            }
            TrailRole::Owner if tokio::time::Instant::now() >= deadline => {
                return Err(Error::misconfigured(
                    "audit.path",
                    format!(
                        "{locked}: another server writes this trail; give each server its \
                         own audit.path (or storage.data_dir)"
                    ),
                ));
            }
            // A bootstrap command holds it for a moment.
            TrailRole::Owner => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The secrets `[audit]` reads through the chain (the `env` source
/// snapshots their variables too).
pub(crate) const SECRET_NAMES: &[&str] =
    &[CheckpointKey::DEFAULT_SECRET, DetailHasher::DEFAULT_SECRET];

/// The label deriving the detail hash key from the checkpoint key.
pub(crate) const DETAIL_HASH_LABEL: &str = "docaiche/audit-detail-hash/v1";

/// A key for one purpose derived from `base` (HMAC-SHA-256 of `label`
/// under `base`), for a secret that may stand in for a dedicated one:
/// `audit/detail-hash-key` from `audit/checkpoint-key` with
/// [`DETAIL_HASH_LABEL`], `privacy/pseudonym-key` likewise with its own
/// label. Distinct labels give independent keys.
pub(crate) fn derived_key(base: &SecretBytes, label: &str) -> SecretBytes {
    docaiche_compliance::audit::derive_key(base, label)
}

/// The hasher of sensitive details: `audit/detail-hash-key` from the
/// chain, else derived from `audit/checkpoint-key` (logged at info); with
/// neither, a refusal in production and an ephemeral key (with a warning)
/// in development.
async fn detail_hasher(config: &Config, secrets: &Secrets) -> Result<DetailHasher, Error> {
    const SETTING: &str = "audit";
    let name = DetailHasher::DEFAULT_SECRET;
    let base_name = CheckpointKey::DEFAULT_SECRET;
    let usable = |secret: &str, e: Error| {
        Error::misconfigured(SETTING, format!("the secret `{secret}`: {e}"))
    };
    let mut base = None;
    if let Some(chain) = secrets.chain() {
        if let Some(found) = chain.get(name).await? {
            return DetailHasher::from_bytes(&found.value).map_err(|e| usable(name, e));
        }
        base = chain.get(base_name).await?.map(|found| found.value);
    }
    let base = match base {
        Some(base) if base.len() < 32 => {
            return Err(usable(
                base_name,
                Error::invalid_input("must be at least 32 bytes"),
            ));
        }
        Some(base) => {
            tracing::info!(
                secret = name,
                from = base_name,
                label = DETAIL_HASH_LABEL,
                "audit detail hash key derived from the checkpoint key (HMAC-SHA-256); set \
                 the secret to keep the two keys apart"
            );
            base
        }
        None if config.environment == Environment::Production => {
            let naming = docaiche_store::EnvSecretProvider::new();
            let variable = |n: &str| naming.variable_name(n).unwrap_or_else(|_| n.to_owned());
            return Err(Error::misconfigured(
                SETTING,
                format!(
                    "audit details are hashed with the secret `{name}` (at least 32 random \
                     bytes), or a key derived from `{base_name}`; neither is in the configured \
                     secret sources: set {} or {}",
                    variable(name),
                    variable(base_name)
                ),
            ));
        }
        None => {
            tracing::warn!(
                secret = name,
                "audit detail hash key not configured: using an ephemeral key for this \
                 process; hashes of the same value differ after a restart (development only)"
            );
            let key = crate::keys::random_key()
                .map_err(|e| Error::internal_with("cannot generate an ephemeral audit key", e))?;
            return DetailHasher::from_bytes(&SecretBytes::from(key.to_vec()))
                .map_err(|e| usable(name, e));
        }
    };
    DetailHasher::from_bytes(&derived_key(&base, DETAIL_HASH_LABEL)).map_err(|e| usable(name, e))
}

/// The secret `name` from the chain; in development without it, an
/// ephemeral random key (with a warning); in production, a refusal.
async fn key_bytes(config: &Config, secrets: &Secrets, name: &str) -> Result<SecretBytes, Error> {
    if let Some(chain) = secrets.chain()
        && let Some(found) = chain.get(name).await?
    {
        return Ok(found.value);
    }
    if config.environment == Environment::Production {
        let variable = docaiche_store::EnvSecretProvider::new()
            .variable_name(name)
            .unwrap_or_else(|_| name.to_owned());
        return Err(Error::misconfigured(
            "audit.checkpoint_every",
            format!(
                "the required secret `{name}` (at least 32 random bytes) is in none of the \
                 configured secret sources; set {variable}, or the file `{name}` under a \
                 file: source, or the KV secret `{name}`; or set audit.checkpoint_every = 0"
            ),
        ));
    }
    tracing::warn!(
        secret = name,
        "audit secret not configured: using an ephemeral key for this process; its \
         checkpoints will not verify after a restart (development only)"
    );
    let key = crate::keys::random_key()
        .map_err(|e| Error::internal_with("cannot generate an ephemeral audit key", e))?;
    Ok(SecretBytes::from(key.to_vec()))
}

/// The facts of a request for the audit trail: client address,
/// `X-Request-Id` and `User-Agent` (bounded), as an extractor.
pub(crate) struct AuditFacts(pub(crate) RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for AuditFacts {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(context) = parts.extensions.get::<RequestContext>() {
            return Ok(Self(context.clone()));
        }
        let mut context = RequestContext::new();
        if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            context = context.with_client_addr(peer.ip());
        }
        Ok(Self(with_headers(context, &parts.headers)))
    }
}

/// The facts of `headers` for an audit event: `X-Request-Id` and
/// `User-Agent` (bounded), on top of `context`.
fn with_headers(mut context: RequestContext, headers: &HeaderMap) -> RequestContext {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
    };
    if let Some(id) = header("x-request-id") {
        context = context.with_request_id(id);
    }
    if let Some(agent) = header("user-agent") {
        context = context.with_user_agent(agent);
    }
    context
}

/// An event of `caller` doing `action` to the document `id`.
fn document_event(caller: &Principal, action: &str, id: &str, headers: &HeaderMap) -> AuditEvent {
    AuditEvent::new(
        action,
        AuditOutcome::Success,
        OffsetDateTime::now_utc(),
        &with_headers(RequestContext::new(), headers),
    )
    .by(caller.tenant.clone(), Some(caller.id.clone()))
    .on(AuditResource::new("document", id))
}

/// Audit a document access (`document.create`, `document.read`,
/// `document.delete`): queued without waiting; a full buffer drops the
/// event (counted, alerted) rather than slowing the request.
pub(crate) fn document(
    state: &AppState,
    caller: &Principal,
    action: &'static str,
    id: &str,
    headers: &HeaderMap,
) {
    if let Some(trail) = &state.audit {
        let event = document_event(caller, action, id, headers);
        // Routine events never fail the request; drops are counted.
        let _ = trail.buffer.submit(event);
    }
}

/// Record that `caller` is about to perform the administrative `action`
/// (`<action>.attempt`), before acting.
///
/// # Errors
/// `Unavailable` (503) when the event cannot be recorded and `[audit]` is
/// fail-closed: the action must not happen.
pub(crate) async fn administrative(
    state: &AppState,
    caller: &Principal,
    action: &str,
    context: &RequestContext,
) -> Result<(), Error> {
    let Some(trail) = &state.audit else {
        return Ok(());
    };
    let event = AuditEvent::new(
        format!("{action}.attempt"),
        AuditOutcome::Success,
        OffsetDateTime::now_utc(),
        context,
    )
    .by(caller.tenant.clone(), Some(caller.id.clone()));
    trail
        .auditor
        .audit(event, Criticality::Administrative)
        .await
        .map(|_| ())
}

/// Add `GET /v1/admin/audit` to `group` (the protected `default` group):
/// cross-tenant administrators holding `audit:read`.
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    group.route(
        Method::GET,
        "/v1/admin/audit",
        &[Permission::TENANTS_CROSS, Permission::AUDIT_READ],
        list_events,
    )
}

/// Largest page of `GET /v1/admin/audit`.
const MAX_PAGE: u32 = 500;
/// Default page of `GET /v1/admin/audit`.
const DEFAULT_PAGE: u32 = 100;

/// Longest `action` filter of the audit listing, in characters.
pub(crate) const MAX_ACTION_CHARS: usize = 128;

/// The query of `GET /v1/admin/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// The tenant whose stream is read (required).
    tenant: String,
    /// Only this action.
    action: Option<String>,
    /// Only this outcome (`success`, `failure`, `denied`).
    outcome: Option<String>,
    /// Events at or after this time (RFC 3339).
    since: Option<String>,
    /// Events before this time (RFC 3339).
    until: Option<String>,
    /// The `next` of the previous page: a sequence number.
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    after: Option<u64>,
    /// Page size.
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    limit: Option<u32>,
}

/// The parsed filter of [`ListQuery`].
#[derive(Debug)]
struct Filter {
    tenant: String,
    action: Option<String>,
    outcome: Option<AuditOutcome>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    after: u64,
    limit: usize,
}

impl Filter {
    /// Check and parse `query`.
    fn parse(query: ListQuery) -> Result<Self, Error> {
        let tenant = TenantId::new(query.tenant)
            .map_err(|_| Error::invalid_input("tenant is not a tenant id"))?;
        let time = |name: &str, value: Option<String>| {
            value
                .map(|v| {
                    OffsetDateTime::parse(&v, &Rfc3339).map_err(|_| {
                        Error::invalid_input(format!("{name} is not an RFC 3339 time"))
                    })
                })
                .transpose()
        };
        let outcome = match query.outcome.as_deref() {
            None => None,
            Some("success") => Some(AuditOutcome::Success),
            Some("failure") => Some(AuditOutcome::Failure),
            Some("denied") => Some(AuditOutcome::Denied),
            Some(_) => {
                return Err(Error::invalid_input(
                    "outcome must be success, failure or denied",
                ));
            }
        };
        let limit = query.limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(Error::invalid_input(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        if query
            .action
            .as_ref()
            .is_some_and(|a| a.chars().count() > MAX_ACTION_CHARS)
        {
            return Err(Error::invalid_input("action is too long"));
        }
        Ok(Self {
            tenant: tenant.as_str().to_owned(),
            action: query.action,
            outcome,
            since: time("since", query.since)?,
            until: time("until", query.until)?,
            after: query.after.unwrap_or(0),
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        })
    }

    /// Whether `event` passes the filter (the stream and cursor aside).
    fn admits(&self, event: &AuditEvent) -> bool {
        self.action.as_ref().is_none_or(|a| *a == event.action)
            && self.outcome.is_none_or(|o| o == event.outcome)
            && self.since.is_none_or(|t| event.time >= t)
            && self.until.is_none_or(|t| event.time < t)
    }
}

/// A page of records: (sequence, event) pairs, and the cursor of the next
/// page.
pub(crate) type Page = (Vec<(u64, AuditEvent)>, Option<u64>);

/// One page of the file trail at `path`: the matching records of the
/// tenant's stream after the cursor, oldest first.
fn scan_file(path: &std::path::Path, filter: &Filter) -> Result<Page, Error> {
    let mut items = Vec::new();
    for segment in trail_segments(path)? {
        for line in read_lines(&segment)? {
            let line = line?;
            if !line.complete || line.too_long {
                continue;
            }
            // Lines failing their own hash are skipped here; `verify` reports them.
            let Ok(ParsedLine::Record(fields)) = parse_line(&line.bytes) else {
                continue;
            };
            if fields.stream != filter.tenant || fields.seq <= filter.after {
                continue;
            }
            let event = event_of(&line.bytes)?;
            if !filter.admits(&event) {
                continue;
            }
            if items.len() == filter.limit {
                let next = items.last().map(|(seq, _): &(u64, AuditEvent)| *seq);
                return Ok((items, next));
            }
            items.push((fields.seq, event));
        }
    }
    Ok((items, None))
}

/// One page of the `audit_trail` table: the tenant's records after the
/// cursor, by the `(stream, seq)` index, filtered here.
#[cfg(feature = "postgres")]
async fn scan_table(
    pool: &docaiche_store::postgres::sqlx::PgPool,
    filter: &Filter,
) -> Result<Page, Error> {
    const BATCH: i64 = 500;
    const QUERY: &str = "SELECT seq, line FROM audit_trail \
         WHERE stream = $1 AND kind = 'record' AND seq > $2 ORDER BY seq LIMIT $3";
    let mut after =
        i64::try_from(filter.after).map_err(|_| Error::invalid_input("after is out of range"))?;
    let mut items: Vec<(u64, AuditEvent)> = Vec::new();
    loop {
        let rows: Vec<(i64, String)> = docaiche_store::postgres::sqlx::query_as(QUERY)
            .bind(&filter.tenant)
            .bind(after)
            .bind(BATCH)
            .fetch_all(pool)
            .await
            .map_err(|e| Error::unavailable("audit trail (postgres)", e))?;
        let exhausted = i64::try_from(rows.len()).unwrap_or(i64::MAX) < BATCH;
        for (seq, line) in rows {
            after = seq;
            let event = event_of(line.as_bytes())?;
            if !filter.admits(&event) {
                continue;
            }
            if items.len() == filter.limit {
                let next = items.last().map(|(seq, _)| *seq);
                return Ok((items, next));
            }
            items.push((u64::try_from(seq).unwrap_or(0), event));
        }
        if exhausted {
            return Ok((items, None));
        }
    }
}

/// `tenant`'s events of `[since, until)`, oldest first, at most `limit`,
/// read back from `source` (the compliance report); `None` when no sink
/// can be read back. The flag says whether more events remained.
///
/// # Errors
/// As `GET /v1/admin/audit`: the trail cannot be read.
pub(crate) async fn read_back(
    source: &ReadBack,
    tenant: &TenantId,
    since: OffsetDateTime,
    until: OffsetDateTime,
    limit: usize,
) -> Result<Option<(Vec<AuditEvent>, bool)>, Error> {
    let filter = Filter {
        tenant: tenant.as_str().to_owned(),
        action: None,
        outcome: None,
        since: Some(since),
        until: Some(until),
        after: 0,
        limit,
    };
    let (items, next) = match source {
        ReadBack::None => return Ok(None),
        ReadBack::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || scan_file(&path, &filter))
                .await
                .map_err(|e| Error::internal_with("audit read-back task failed", e))??
        }
        #[cfg(feature = "postgres")]
        ReadBack::Postgres(pool) => scan_table(pool, &filter).await?,
    };
    let more = next.is_some();
    Ok(Some((items.into_iter().map(|(_, e)| e).collect(), more)))
}

/// One page of `tenant`'s stream: at most `limit` events after the
/// sequence number `after`, oldest first, with the cursor of the next page
/// (subject exports); `None` when no sink can be read back.
///
/// # Errors
/// As `GET /v1/admin/audit`: the trail cannot be read.
pub(crate) async fn read_page(
    source: &ReadBack,
    tenant: &TenantId,
    after: u64,
    limit: usize,
) -> Result<Option<Page>, Error> {
    let filter = Filter {
        tenant: tenant.as_str().to_owned(),
        action: None,
        outcome: None,
        since: None,
        until: None,
        after,
        limit,
    };
    Ok(Some(match source {
        ReadBack::None => return Ok(None),
        ReadBack::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || scan_file(&path, &filter))
                .await
                .map_err(|e| Error::internal_with("audit read-back task failed", e))??
        }
        #[cfg(feature = "postgres")]
        ReadBack::Postgres(pool) => scan_table(pool, &filter).await?,
    }))
}

/// `GET /v1/admin/audit`: a tenant's audit events, filtered, a page at a
/// time, read back from the file trail.
async fn list_events(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let Query(query) =
        query.map_err(|e| Error::invalid_input(format!("invalid query: {}", e.body_text())))?;
    let filter = Filter::parse(query)?;
    let source = state
        .audit
        .as_ref()
        .map_or(ReadBack::None, |trail| trail.source.clone());
    let (items, next) = match source {
        ReadBack::None => {
            return Err(Error::unavailable(
                "audit read-back",
                std::io::Error::other("no configured audit sink can be read back"),
            ));
        }
        ReadBack::File(path) => tokio::task::spawn_blocking(move || scan_file(&path, &filter))
            .await
            .map_err(|e| Error::internal_with("audit read-back task failed", e))??,
        #[cfg(feature = "postgres")]
        ReadBack::Postgres(pool) => scan_table(&pool, &filter).await?,
    };
    let items: Vec<serde_json::Value> = items
        .into_iter()
        .map(|(sequence, event)| serde_json::json!({ "sequence": sequence, "event": event }))
        .collect();
    Ok((
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "items": items, "next": next })),
    )
        .into_response())
}

/// A page of audit events (the OpenAPI schema of `GET /v1/admin/audit`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct AuditPage {
    /// The events, oldest first.
    items: Vec<AuditItem>,
    /// The cursor of the next page (`?after=`); none on the last page.
    next: Option<u64>,
}

/// One audit record.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct AuditItem {
    /// Its sequence number in the tenant's chain.
    sequence: u64,
    /// The event: `action`, `outcome`, `time`, `tenant`, `actor`, `resource`, ….
    #[schema(value_type = Object)]
    event: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TestDir, key_with};
    use docaiche_compliance::audit::Verifier;

    fn config(dir: &TestDir) -> Config {
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.audit.fsync = FsyncSetting::Never;
        config.audit.checkpoint_every = 2;
        config
    }

    #[test]
    fn section_parses_and_validates() {
        let config = Config::from_toml_str(
            "[audit]\nsink = \"file\"\nfan_out = [\"stdout\"]\nbuffer_capacity = 8\n",
        )
        .expect("parses");
        assert_eq!(config.audit.fan_out, vec![AuditSinkKind::Stdout]);
        assert!(config.audit.problems(false).is_empty());
        let pg = Config::from_toml_str("[audit]\nsink = \"postgres\"\n").expect("parses");
        assert_eq!(pg.audit.problems(false)[0].0, "audit.sink");
        assert!(pg.audit.problems(true).is_empty());
        assert!(!config.audit.fail_closed(Environment::Development));
        assert!(config.audit.fail_closed(Environment::Production));
        let bad = AuditSection {
            buffer_capacity: 0,
            fan_out: vec![AuditSinkKind::File],
            ..AuditSection::default()
        };
        let settings: Vec<_> = bad.problems(true).into_iter().map(|(s, _)| s).collect();
        assert_eq!(settings, ["audit.buffer_capacity", "audit.fan_out"]);
        assert!(Config::from_toml_str("[audit]\nsink = \"carrier-pigeon\"\n").is_err());
    }

    #[tokio::test]
    async fn events_land_on_a_verifiable_chained_trail() {
        let dir = TestDir::new("audit-trail");
        let config = config(&dir);
        let secrets = Secrets::from_config(&config, &|_| None)
            .await
            .expect("secrets");
        let trail = open(&config, &secrets, &|_| None).await.expect("open");
        let sink = trail.sink();
        let tenant = TenantId::new("acme").expect("tenant");
        for action in ["api_key.create", "auth.login", "auth.failure"] {
            let event = AuditEvent::new(
                action,
                AuditOutcome::Success,
                time::OffsetDateTime::now_utc(),
                &RequestContext::new(),
            )
            .by(tenant.clone(), None);
            sink.record(&event).await.expect("recorded");
        }
        sink.flush().await.expect("flushed");
        let path = config.audit.file_path(&config);
        let report = Verifier::new().verify_path(&path).expect("verify");
        assert!(report.is_ok(), "{:?}", report.tamper);
        let text = std::fs::read_to_string(&path).expect("read");
        for action in ["api_key.create", "auth.login", "auth.failure"] {
            assert!(text.contains(action), "{action} missing from the trail");
        }
        assert_eq!(trail.buffer.dropped(), 0);
    }

    #[tokio::test]
    async fn production_without_the_checkpoint_key_refuses_to_start() {
        let dir = TestDir::new("audit-prod");
        let mut config = config(&dir);
        config.environment = Environment::Production;
        let secrets = Secrets::from_config(&Config::default(), &|_| None)
            .await
            .expect("secrets");
        let error = open(&config, &secrets, &|_| None)
            .await
            .expect_err("refused");
        let text = error.to_string();
        assert!(text.contains("audit/checkpoint-key"), "{text}");
        assert!(
            text.contains("DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn sensitive_details_reach_the_file_trail_as_keyed_hashes() {
        let email = "o'brien+audit@example.com";
        let checkpoint = "c".repeat(32);
        let dedicated = "d".repeat(40);
        let derived = derived_key(
            &SecretBytes::from(checkpoint.as_bytes().to_vec()),
            DETAIL_HASH_LABEL,
        );
        let cases = [
            // Only the checkpoint key: the detail key is derived from it.
            (
                vec![("DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY", checkpoint.clone())],
                derived,
            ),
            // The dedicated secret wins.
            (
                vec![
                    ("DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY", checkpoint.clone()),
                    ("DOCAICHE_SECRET_AUDIT_DETAIL_HASH_KEY", dedicated.clone()),
                ],
                SecretBytes::from(dedicated.as_bytes().to_vec()),
            ),
        ];
        let mut seen = Vec::new();
        for (vars, key) in cases {
            let dir = TestDir::new("audit-hashed");
            let mut config = config(&dir);
            config.secrets.sources = vec!["env".into()];
            let env = move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
            };
            let secrets = Secrets::from_config(&config, &env).await.expect("secrets");
            let trail = open(&config, &secrets, &env).await.expect("open");
            let tenant = TenantId::new("acme").expect("tenant");
            let at = time::OffsetDateTime::now_utc();
            let failure = AuditEvent::new(
                "auth.failure",
                AuditOutcome::Failure,
                at,
                &RequestContext::new(),
            )
            .by(tenant.clone(), None)
            .because("bad_credential")
            .with_detail(
                "subjects",
                serde_json::json!({ "account": email, "client_addr": "192.0.2.9" }),
            );
            let lockout = AuditEvent::new(
                "auth.lockout",
                AuditOutcome::Denied,
                at,
                &RequestContext::new(),
            )
            .by(tenant, None)
            .with_detail("subject_kind", "account".into())
            .with_detail("subject", email.into());
            trail.sink().record(&failure).await.expect("recorded");
            trail.buffer.submit(lockout).expect("queued");
            trail.buffer.flush().await.expect("flushed");

            let path = config.audit.file_path(&config);
            let report = Verifier::new().verify_path(&path).expect("verify");
            assert!(report.is_ok(), "{:?}", report.tamper);
            let text = std::fs::read_to_string(&path).expect("read");
            assert!(
                !text.contains("o'brien") && !text.contains("brien+audit"),
                "{text}"
            );
            let hashed = DetailHasher::from_bytes(&key).expect("key").hash_str(email);
            assert_eq!(text.matches(hashed.as_str()).count(), 2, "{text}");
            assert!(text.contains("192.0.2.9"), "other subjects stay readable");
            seen.push(hashed);
        }
        assert_ne!(
            seen[0], seen[1],
            "the dedicated key replaces the derived one"
        );
    }

    #[tokio::test]
    async fn production_without_any_detail_hash_key_refuses_to_start() {
        let dir = TestDir::new("audit-prod-hash");
        let mut config = config(&dir);
        config.environment = Environment::Production;
        config.audit.checkpoint_every = 0;
        let secrets = Secrets::from_config(&Config::default(), &|_| None)
            .await
            .expect("secrets");
        let text = open(&config, &secrets, &|_| None)
            .await
            .expect_err("refused")
            .to_string();
        assert!(
            text.contains("DOCAICHE_SECRET_AUDIT_DETAIL_HASH_KEY"),
            "{text}"
        );
        assert!(
            text.contains("DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY"),
            "{text}"
        );
    }

    fn request(method: &str, uri: &str, key: &str) -> axum::http::Request<axum::body::Body> {
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("x-api-key", key)
            .header("user-agent", "audit-test/1")
            .header("x-request-id", "req-audit-1")
            .body(axum::body::Body::empty())
            .expect("request")
    }

    fn corpus_pdf() -> Vec<u8> {
        crate::test_support::corpus_pdf("latex-recommended__test.pdf")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn key_and_document_events_are_chained_verified_and_listed() {
        use crate::app::tests::{json, send};
        let dir = TestDir::new("audit-server");
        let mut config = config(&dir);
        config.documents.inline_max_bytes = 1024 * 1024;
        crate::storage::prepare_data_dir(dir.path()).expect("data dir");
        let state = AppState::from_config(&config, &|_| None)
            .await
            .expect("state");
        let admin = key_with(
            &state,
            "acme",
            &["tenants:cross", "audit:read", "keys:manage", "documents:*"],
        )
        .await;
        let app = crate::app::router(state.clone());

        let (status, _, body) = send(
            app.clone(),
            axum::http::Request::post("/v1/keys")
                .header("x-api-key", &admin)
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(
                    r#"{"name":"ci","scopes":["keys:manage"]}"#,
                ))
                .expect("request"),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let (status, _, body) = send(
            app.clone(),
            axum::http::Request::post("/v1/documents?filename=a.pdf")
                .header("x-api-key", &admin)
                .header("user-agent", "audit-test/1")
                .header(header::CONTENT_TYPE, "application/pdf")
                .body(axum::body::Body::from(corpus_pdf()))
                .expect("request"),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let id = json(&body)["id"].as_str().expect("id").to_owned();
        let doc = format!("/v1/documents/{id}");
        let (status, _, _) = send(app.clone(), request("GET", &doc, &admin)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = send(app.clone(), request("DELETE", &doc, &admin)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        // A bad credential: the failed-authentication tracker's event.
        let (status, _, _) =
            send(app.clone(), request("GET", "/v1/keys", "dk_not_a_real_key")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let trail = state.audit.as_ref().expect("trail");
        trail.buffer.flush().await.expect("flushed");

        // The trail verifies and holds every event.
        let path = config.audit.file_path(&config);
        let report = Verifier::new().verify_path(&path).expect("verify");
        assert!(report.is_ok(), "{:?}", report.tamper);
        let text = std::fs::read_to_string(&path).expect("read");
        for action in [
            "api_key.create.attempt",
            "api_key.create",
            "document.create",
            "document.read",
            "document.delete",
            "auth.failure",
        ] {
            assert!(text.contains(&format!("\"{action}\"")), "{action} missing");
        }
        assert!(text.contains("audit-test/1"), "the user agent is recorded");

        // Filtered.
        let (status, _, body) = send(
            app.clone(),
            request(
                "GET",
                "/v1/admin/audit?tenant=acme&action=document.read",
                &admin,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let page: AuditPage = serde_json::from_slice(&body).expect("matches its schema");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].event["action"], "document.read");
        assert_eq!(page.items[0].event["resource"]["id"], id.as_str());
        assert!(page.next.is_none());

        // Paginated: one at a time, in sequence order, every event once.
        let mut seen = Vec::new();
        let mut uri = "/v1/admin/audit?tenant=acme&limit=1".to_owned();
        loop {
            let (status, _, body) = send(app.clone(), request("GET", &uri, &admin)).await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            let page: AuditPage = serde_json::from_slice(&body).expect("schema");
            assert!(page.items.len() <= 1);
            seen.extend(page.items.iter().map(|i| i.sequence));
            match page.next {
                Some(next) => uri = format!("/v1/admin/audit?tenant=acme&limit=1&after={next}"),
                None => break,
            }
            assert!(seen.len() < 100, "pagination terminates");
        }
        assert!(seen.len() >= 5, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        // Another tenant's stream is empty; bad filters are 400.
        let (status, _, body) = send(
            app.clone(),
            request("GET", "/v1/admin/audit?tenant=globex", &admin),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json(&body)["items"], serde_json::json!([]));
        for bad in [
            "/v1/admin/audit",
            "/v1/admin/audit?tenant=acme&outcome=maybe",
            "/v1/admin/audit?tenant=acme&since=yesterday",
            "/v1/admin/audit?tenant=acme&limit=0",
        ] {
            let (status, _, _) = send(app.clone(), request("GET", bad, &admin)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        }

        // A tenant administrator without the cross-tenant permission: 403.
        let tenant_admin = key_with(&state, "acme", &["keys:manage", "audit:read"]).await;
        let (status, _, _) = send(
            app.clone(),
            request("GET", "/v1/admin/audit?tenant=acme", &tenant_admin),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn fail_closed_refuses_key_creation_rotation_and_revocation_when_the_trail_is_unwritable()
    {
        use crate::app::tests::{json, local_state, send};
        let dir = TestDir::new("audit-closed");
        let config = config(&dir);
        let mut state = local_state(&config);
        let buffer = BufferedSink::new(
            Arc::new(crate::test_support::Unwritable),
            BufferConfig::default(),
        );
        state.audit = Some(AuditTrail {
            auditor: Auditor::new(buffer.clone(), true),
            buffer,
            source: ReadBack::None,
            anchor_key: None,
            inbox: None,
        });
        let admin = key_with(&state, "acme", &["keys:manage"]).await;
        let app = crate::app::router(state);
        let (status, _, body) = send(
            app.clone(),
            axum::http::Request::post("/v1/keys")
                .header("x-api-key", &admin)
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(
                    r#"{"name":"ci","scopes":["keys:manage"]}"#,
                ))
                .expect("request"),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            String::from_utf8_lossy(&body)
        );
        // Nothing was created: only the caller's own key is listed.
        let (status, _, body) = send(app.clone(), request("GET", "/v1/keys", &admin)).await;
        assert_eq!(status, StatusCode::OK);
        let items = json(&body)["items"].clone();
        assert_eq!(items.as_array().map(Vec::len), Some(1));
        // Rotation and revocation are refused too, and the key still works.
        let own = items[0]["id"].as_str().expect("key id").to_owned();
        for (method, uri) in [
            ("POST", format!("/v1/keys/{own}/rotate")),
            ("DELETE", format!("/v1/keys/{own}")),
        ] {
            let (status, _, body) = send(app.clone(), request(method, &uri, &admin)).await;
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{method} {uri}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let (status, _, body) = send(app, request("GET", "/v1/keys", &admin)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json(&body)["items"].as_array().map(Vec::len), Some(1));
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_postgres_sink_chains_key_events_and_lists_them() {
        use crate::app::tests::send;
        use crate::backends::tests::on_test_schema;
        const SUITE: &str = "server-postgres";
        let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
            return;
        };
        let dir = TestDir::new("audit-postgres");
        let mut config = config(&dir);
        let (schema, env) = on_test_schema(&url, "audit_test", &mut config).await;
        config.audit.sink = AuditSinkKind::Postgres;
        config.validate().expect("valid");
        crate::storage::prepare_data_dir(dir.path()).expect("data dir");
        crate::keys::prepare(&config.key_source()).expect("keys");
        let state = AppState::from_config(&config, &env)
            .await
            .expect("state on PostgreSQL");
        let admin_key = key_with(
            &state,
            "acme",
            &["tenants:cross", "audit:read", "keys:manage"],
        )
        .await;
        let app = crate::app::router(state.clone());
        let (status, _, body) = send(
            app.clone(),
            axum::http::Request::post("/v1/keys")
                .header("x-api-key", &admin_key)
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from(
                    r#"{"name":"ci","scopes":["keys:manage"]}"#,
                ))
                .expect("request"),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let trail = state.audit.as_ref().expect("trail");
        trail.buffer.flush().await.expect("flushed");
        let ReadBack::Postgres(pool) = &trail.source else {
            panic!("reads back from PostgreSQL");
        };
        // The table verifies (records and checkpoints).
        let report = docaiche_compliance::audit::PgAuditTrail::existing(pool.clone())
            .verify(&Verifier::new())
            .await
            .expect("verify");
        assert!(report.is_ok(), "{:?}", report.tamper);
        let (status, _, body) = send(
            app.clone(),
            request(
                "GET",
                "/v1/admin/audit?tenant=acme&action=api_key.create",
                &admin_key,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let page: AuditPage = serde_json::from_slice(&body).expect("schema");
        // The test's own key and the one created over HTTP.
        assert_eq!(page.items.len(), 2, "{}", String::from_utf8_lossy(&body));
        let (status, _, body) = send(
            app,
            request("GET", "/v1/admin/audit?tenant=acme&limit=1", &admin_key),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let page: AuditPage = serde_json::from_slice(&body).expect("schema");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.next, Some(page.items[0].sequence));
        crate::report::mark_ran(SUITE, &format!("audit schema {}", schema.name));
    }
}
