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

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use docaiche_compliance::audit::{
    AuditInbox, Auditor, BufferConfig, BufferedSink, CheckpointKey, CheckpointPolicy,
    DEFAULT_PROTECTED_PATHS, DetailHasher, FanOutPolicy, FanOutSink, FileSinkConfig, FsyncPolicy,
    InboxSink, JsonlFileSink, ProtectedSink, StdoutSink, TrailLocked,
};
use docaiche_core::{AuditSink, Error, SecretBytes};

use crate::config::{Config, EnvLookup, Environment};
use crate::wiring::Secrets;

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

mod facts;
pub(crate) mod read;
#[cfg(test)]
mod tests;

pub(crate) use self::facts::{AuditFacts, administrative, document};
pub(crate) use self::read::{MAX_ACTION_CHARS, read_back, read_page};
pub(crate) use crate::config::audit::{AuditSinkKind, FsyncSetting};
