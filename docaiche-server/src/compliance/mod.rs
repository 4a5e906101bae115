//! Retention, legal holds and the compliance report (`[retention]`).
//!
//! ```toml
//! [retention]
//! enabled = true            # run the scheduled purge (default: true)
//! interval_secs = 3600      # between purge runs (60 to 604800)
//! max_per_run = 10000       # items deleted per tenant and kind in one run
//! purge_tenants = ["acme"]  # tenants the purge visits beyond the registry's
//!
//! [retention.default]       # days, per resource kind, for every tenant
//! documents = 90
//! audit = 365
//!
//! [retention.tenants.acme]  # per-tenant overrides, kind by kind
//! documents = 30            # acme's stored `retention_days` wins over it
//! ```
//!
//! Nothing expires without a policy. The purge job
//! ([`start_purge`]) runs `docaiche_compliance::retention::PurgeSchedule`
//! over the server's (encrypted) document store: expired documents are
//! deleted, documents under an active legal hold are kept, and every
//! deletion is recorded (`retention.purge`) on the audit trail before it
//! happens.
//!
//! # Per-tenant retention from the tenant registry
//!
//! A tenant's `retention_days`, set by a platform administrator through
//! `PATCH /v1/tenants/{id}` (`TenantSettings::retention_days` in the
//! `[store]` database), is its documents period from the next purge run on,
//! on every instance: each run reads each tenant's record afresh through
//! `docaiche_compliance::retention::TenantStoreRetention`. For documents
//! the stored setting wins, then `[retention.tenants.<id>] documents`, then
//! `[retention.default] documents`: the setting is the later decision,
//! made for that tenant, and it applies even when the configuration sets
//! no documents period. `audit` and `privacy_requests` follow the
//! configuration alone. Legal holds still win over every period.
//!
//! The purge visits the tenants of the registry (active and suspended) and
//! those the configuration names: `purge_tenants`, the tenants of
//! `[retention.tenants.*]` and those of `[[auth.bindings]]` (the document
//! stores cannot list their tenants). The purge reads the registry itself,
//! not the request path's cache (`crate::tenants::TenantDirectory`), whose
//! last record read stands in when the store is down: that record may be
//! older, and shorter, than the current setting. When the registry cannot
//! be read, nothing is purged on a guess: a tenant whose record cannot be
//! read is skipped for the run (listed in the purge report's `failures`),
//! a run whose tenant listing fails is skipped (a warning), and both are
//! counted in `docaiche_retention_settings_read_failures_total`.
//! `privacy_requests` retention purges the privacy service's request
//! records (`docaiche_compliance::privacy::PrivacyRequestPurgeTarget`):
//! closed requests (completed, rejected) whose closing is older than the
//! period; open ones never. `audit` retention applies to the stored trail
//! when the checkpoint key is a configured secret (not an ephemeral
//! development key): with `[audit] sink = "file"`, whole rotated segments
//! whose every record has expired (and whose tenants hold no legal hold on
//! `audit`) are removed behind a signed anchor (`audit.jsonl.anchor`,
//! `docaiche_compliance::audit::FileTrailRetention`); with `"postgres"`,
//! each stream's expired prefix is deleted by the table owner's anchored
//! purge (`PgTrailRetention`). The report's chain check honours the
//! anchors. Without the key it is reported, not applied, and the report
//! says so in a note.
//!
//! Legal holds live in the `[store]` database (`compliance_legal_holds`,
//! through `docaiche_compliance::privacy::sql`); the privacy service reads
//! the same registry (`AppState::compliance.holds`), so a hold refuses
//! erasure as well as purging.
//!
//! Routes (handlers in `crate::routes::admin`, the report builder in
//! [`report`]):
//! - `POST /v1/admin/legal-holds`, `GET /v1/admin/legal-holds?tenant=`,
//!   `DELETE /v1/admin/legal-holds/{id}?tenant=` (`tenants:cross` and
//!   `admin:access`; placing and releasing are audited fail-closed);
//! - `GET /v1/admin/compliance/report[?tenant=][&days=][&format=html]`
//!   (`audit:read` on the caller's own tenant, the default; another tenant
//!   also needs `tenants:cross`, else 404, like `/v1/admin/audit`): JSON,
//!   or a self-contained HTML page with `format=html` or `Accept: text/html`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use docaiche_compliance::audit::CheckpointKey;
use docaiche_compliance::privacy::{PrivacyRequestPurgeTarget, PrivacyRequestStore};
use docaiche_compliance::retention::{
    DocumentPurgeTarget, LegalHoldRegistry, MemoryLegalHoldRegistry, PurgeSchedule, Purgeable,
    Purger, RetentionPolicies, TenantStoreRetention, resource,
};
use docaiche_core::{AuditSink, Clock, DocumentStore, Error, TenantStore};
use prometheus_client::encoding::DescriptorEncoder;
use tokio::sync::oneshot;

use crate::audit::ReadBack;
use crate::config::{AuthSection, Config, RetentionSection, SecretSource};
use crate::metrics::{MetricSource, counter};

/// A secret whose age the report reads from a file's modification time.
#[derive(Debug, Clone)]
struct SecretFile {
    /// The secret's name (never its value).
    name: &'static str,
    /// The file.
    path: PathBuf,
}

/// Rotation period the report applies to API keys and secrets, in days.
const ROTATION_DAYS: i64 = 90;

/// Retention, legal holds and what the compliance report needs.
#[derive(Debug, Clone)]
pub(crate) struct Compliance {
    /// The legal holds (shared with the privacy service: a hold also
    /// suspends erasure).
    pub(crate) holds: Arc<dyn LegalHoldRegistry>,
    /// The purger over the document store (its `last_report` feeds the
    /// compliance report).
    pub(crate) purger: Arc<Purger>,
    /// The privacy service's request store, once known
    /// ([`Compliance::with_privacy_requests`]): purged too.
    requests: Option<Arc<dyn PrivacyRequestStore>>,
    /// The audit trail's retention, once known
    /// ([`Compliance::with_audit_trail`]): purged too.
    trail: Option<Arc<dyn docaiche_compliance::retention::TrailRetention>>,
    /// The periods of each tenant (the tenant registry's setting over the
    /// configured policies), and the tenants the scheduled purge visits.
    pub(crate) retention: Arc<TenantStoreRetention>,
    /// `[retention]`.
    settings: RetentionSection,
    /// Where purge events go.
    audit: Arc<dyn AuditSink>,
    /// The clock of the purge and the report.
    pub(crate) clock: Arc<dyn Clock>,
    /// Secrets whose file tells their age.
    secrets: Vec<SecretFile>,
}

impl Compliance {
    /// Retention for `config` over `documents`, with each tenant's stored
    /// setting read from `tenants` (the tenant registry), legal holds in
    /// memory, recording purges on `audit`, timed by `clock`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for an invalid `[retention]`.
    pub(crate) fn new(
        config: &Config,
        documents: Arc<dyn DocumentStore>,
        audit: Arc<dyn AuditSink>,
        clock: Arc<dyn Clock>,
        tenants: Arc<dyn TenantStore>,
    ) -> Result<Self, Error> {
        let settings = config.retention.clone();
        let retention = Arc::new(
            TenantStoreRetention::new(tenants, settings.policies()?)
                .with_directory(Arc::new(settings.purge_directory(&config.auth))),
        );
        let holds: Arc<dyn LegalHoldRegistry> = Arc::new(MemoryLegalHoldRegistry::new());
        let purger = purger(
            &settings, &retention, &holds, documents, None, None, &audit, &clock,
        )?;
        Ok(Self {
            holds,
            purger,
            requests: None,
            trail: None,
            retention,
            settings,
            audit,
            clock,
            secrets: secret_files(config),
        })
    }

    /// The same, purging `documents` instead.
    pub(crate) fn over_documents(&self, documents: Arc<dyn DocumentStore>) -> Self {
        match purger(
            &self.settings,
            &self.retention,
            &self.holds,
            documents,
            self.requests.as_ref(),
            self.trail.as_ref(),
            &self.audit,
            &self.clock,
        ) {
            Ok(purger) => Self {
                purger,
                ..self.clone()
            },
            // The policies were validated by `new`; keep the old purger.
            Err(error) => {
                tracing::error!(error = %error.log_chain(), "retention purger not rebuilt");
                self.clone()
            }
        }
    }

    /// The same, with the legal holds in the `[store]` database
    /// (`docaiche_compliance`'s `PgComplianceStore` with
    /// `store.backend = "postgres"`, `SqliteComplianceStore` otherwise;
    /// tables created if missing), purging `documents`.
    ///
    /// # Errors
    /// The store's error when its tables cannot be created.
    pub(crate) async fn with_durable_holds(
        &self,
        stores: &crate::wiring::Stores,
        documents: Arc<dyn DocumentStore>,
    ) -> Result<Self, Error> {
        let holds: Arc<dyn LegalHoldRegistry> = match &stores.sql {
            crate::wiring::StorePool::Sqlite(store) => Arc::new(
                docaiche_compliance::privacy::sql::SqliteComplianceStore::new(store.pool().clone())
                    .await?,
            ),
            #[cfg(feature = "postgres")]
            crate::wiring::StorePool::Postgres(pool) => Arc::new(
                docaiche_compliance::privacy::sql::PgComplianceStore::new(pool.clone()).await?,
            ),
        };
        tracing::info!("legal holds kept in the store database");
        self.with_holds(holds, documents)
    }

    /// The same, with legal holds in `holds`, the purger included.
    fn with_holds(
        &self,
        holds: Arc<dyn LegalHoldRegistry>,
        documents: Arc<dyn DocumentStore>,
    ) -> Result<Self, Error> {
        let purger = purger(
            &self.settings,
            &self.retention,
            &holds,
            documents,
            self.requests.as_ref(),
            self.trail.as_ref(),
            &self.audit,
            &self.clock,
        )?;
        Ok(Self {
            holds,
            purger,
            ..self.clone()
        })
    }

    /// The same, purging the privacy request records of `requests` (the
    /// privacy service's store, built after this value) beside
    /// `documents`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for invalid policies (validated by `new`).
    pub(crate) fn with_privacy_requests(
        &self,
        requests: Arc<dyn PrivacyRequestStore>,
        documents: Arc<dyn DocumentStore>,
    ) -> Result<Self, Error> {
        let purger = purger(
            &self.settings,
            &self.retention,
            &self.holds,
            documents,
            Some(&requests),
            self.trail.as_ref(),
            &self.audit,
            &self.clock,
        )?;
        Ok(Self {
            purger,
            requests: Some(requests),
            ..self.clone()
        })
    }

    /// The same, also applying the `audit` retention period to `trail`
    /// (whole expired segments of the file trail, or an expired prefix of
    /// each stream of the PostgreSQL trail, go behind an anchor signed with
    /// the checkpoint key) beside `documents`. Unchanged when no `audit`
    /// period is configured, there is no stored trail, or the checkpoint
    /// key is not a configured secret (see [`audit_retention`]).
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for invalid policies (validated by `new`).
    pub(crate) fn with_audit_trail(
        &self,
        trail: &crate::audit::AuditTrail,
        documents: Arc<dyn DocumentStore>,
    ) -> Result<Self, Error> {
        let (AuditRetention::Applied, Some(key)) = (
            audit_retention(self.retention.policies(), trail),
            &trail.anchor_key,
        ) else {
            return Ok(self.clone());
        };
        let retention: Arc<dyn docaiche_compliance::retention::TrailRetention> =
            match &trail.source {
                ReadBack::File(path) => Arc::new(
                    docaiche_compliance::audit::FileTrailRetention::new(path.clone(), key.clone()),
                ),
                // The trail's pool connects as the store's role, which
                // created (owns) `audit_trail`: the owner's purge path.
                #[cfg(feature = "postgres")]
                ReadBack::Postgres(pool) => Arc::new(
                    docaiche_compliance::audit::PgTrailRetention::new(pool.clone(), key.clone()),
                ),
                ReadBack::None => return Ok(self.clone()),
            };
        let purger = purger(
            &self.settings,
            &self.retention,
            &self.holds,
            documents,
            self.requests.as_ref(),
            Some(&retention),
            &self.audit,
            &self.clock,
        )?;
        tracing::info!("audit trail retention enabled");
        Ok(Self {
            purger,
            trail: Some(retention),
            ..self.clone()
        })
    }
}

/// Whether the `audit` retention period is applied to the server's trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuditRetention {
    /// No `audit` period is configured.
    Unset,
    /// Applied by the scheduled purge.
    Applied,
    /// Configured but not applied, and why.
    NotApplied(&'static str),
}

/// Whether `policies`' `audit` period is applied to `trail`: only to a
/// stored trail (file or PostgreSQL), and only with the checkpoint key from
/// the secret chain (an ephemeral key would leave the anchor unverifiable
/// after a restart).
fn audit_retention(
    policies: &RetentionPolicies,
    trail: &crate::audit::AuditTrail,
) -> AuditRetention {
    let configured = policies.default.contains_key(resource::AUDIT)
        || policies
            .tenants
            .values()
            .any(|kinds| kinds.contains_key(resource::AUDIT));
    if !configured {
        return AuditRetention::Unset;
    }
    match (&trail.source, &trail.anchor_key) {
        (ReadBack::None, _) => AuditRetention::NotApplied("no stored audit trail"),
        (_, None) => AuditRetention::NotApplied(
            "the audit checkpoint key is not a configured secret, so no anchor can be signed",
        ),
        (_, Some(_)) => AuditRetention::Applied,
    }
}

/// A purger of documents (and of privacy request records, given their
/// store) for `settings`, with each tenant's periods from `retention`.
#[expect(
    clippy::too_many_arguments,
    reason = "every piece the purger is built from, one private call site per builder"
)]
fn purger(
    settings: &RetentionSection,
    retention: &Arc<TenantStoreRetention>,
    holds: &Arc<dyn LegalHoldRegistry>,
    documents: Arc<dyn DocumentStore>,
    requests: Option<&Arc<dyn PrivacyRequestStore>>,
    trail: Option<&Arc<dyn docaiche_compliance::retention::TrailRetention>>,
    audit: &Arc<dyn AuditSink>,
    clock: &Arc<dyn Clock>,
) -> Result<Arc<Purger>, Error> {
    let mut targets: Vec<Arc<dyn Purgeable>> = vec![Arc::new(DocumentPurgeTarget::new(documents))];
    if let Some(requests) = requests {
        targets.push(Arc::new(PrivacyRequestPurgeTarget::new(Arc::clone(
            requests,
        ))));
    }
    let mut purger = Purger::new(
        retention.policies().clone(),
        Arc::clone(holds),
        targets,
        Arc::clone(audit),
        Arc::clone(clock),
    )?
    .with_source(Arc::clone(retention) as _)
    .with_max_per_run(settings.max_per_run);
    if let Some(trail) = trail {
        purger = purger.with_trail(Arc::clone(trail));
    }
    Ok(Arc::new(purger))
}

/// The files that hold the JWT signing key, the current API-key pepper and
/// the audit checkpoint key, where they are files: under a `file:` source
/// of `[secrets]`, or generated under `<data_dir>/keys` in development.
/// Env and Vault sources carry no creation time.
fn secret_files(config: &Config) -> Vec<SecretFile> {
    let mut out = Vec::new();
    let sources = config.secrets.chain().unwrap_or_default();
    if sources.is_empty() {
        let dir = config.storage.data_dir.join("keys");
        out.push(SecretFile {
            name: AuthSection::JWT_SECRET,
            path: dir.join("jwt-signing-ed25519.pem"),
        });
        out.push(SecretFile {
            name: "api-key/pepper",
            path: dir.join(format!("api-key-pepper-v{}", config.auth.current_pepper)),
        });
        return out;
    }
    let pepper = AuthSection::pepper_secret(config.auth.current_pepper);
    for source in sources {
        if let SecretSource::Dir(dir) = source {
            for (name, file) in [
                (AuthSection::JWT_SECRET, AuthSection::JWT_SECRET),
                ("api-key/pepper", pepper.as_str()),
                (CheckpointKey::DEFAULT_SECRET, CheckpointKey::DEFAULT_SECRET),
            ] {
                if !out.iter().any(|s: &SecretFile| s.name == name) {
                    let path = dir.join(file);
                    if path.is_file() {
                        out.push(SecretFile { name, path });
                    }
                }
            }
        }
    }
    out
}

impl Compliance {
    /// The purge schedule: this purger over the registry's and the
    /// configured tenants, every `retention.interval_secs`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for an interval under a minute.
    pub(crate) fn schedule(&self) -> Result<PurgeSchedule, Error> {
        PurgeSchedule::new(
            Arc::clone(&self.purger),
            Arc::clone(&self.retention) as _,
            Arc::clone(&self.clock),
            Duration::from_secs(self.settings.interval_secs),
        )
    }
}

/// `docaiche_retention_settings_read_failures_total`: failed reads of the
/// tenant registry by the purge (see the module docs).
impl MetricSource for TenantStoreRetention {
    fn encode(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        counter(
            encoder,
            "retention_settings_read_failures",
            "Failed reads of the tenant registry by the retention purge (the tenant, or the run, was skipped)",
            self.read_failures(),
        )
    }
}

/// The running purge job.
#[derive(Debug)]
pub(crate) struct PurgeJob {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<u64>,
}

impl PurgeJob {
    /// Stop after the run in progress (waiting at most `grace`); returns
    /// the number of runs, or `None` if the run outlived the grace.
    pub(crate) async fn shutdown(self, grace: Duration) -> Option<u64> {
        let _ = self.stop.send(());
        tokio::time::timeout(grace, self.task)
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// Spawn the scheduled purge of `compliance` (a run now, then every
/// `retention.interval_secs`); `None` when `retention.enabled` is false.
///
/// # Errors
/// [`Error::Misconfigured`] for an interval under a minute.
pub(crate) fn start_purge(compliance: &Compliance) -> Result<Option<PurgeJob>, Error> {
    let settings = &compliance.settings;
    if !settings.enabled {
        tracing::info!("retention purge disabled");
        return Ok(None);
    }
    let schedule = compliance.schedule()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(schedule.run_until(async move {
        let _ = stopped.await;
    }));
    tracing::info!(
        interval_secs = settings.interval_secs,
        max_per_run = settings.max_per_run,
        "retention purge started"
    );
    Ok(Some(PurgeJob { stop, task }))
}

pub(crate) mod report;
#[cfg(test)]
mod tests;
