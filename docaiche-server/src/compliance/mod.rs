//! Retention, legal holds and the compliance report (`[retention]`).
//!
//! ```toml
//! [retention]
//! enabled = true            # run the scheduled purge (default: true)
//! interval_secs = 3600      # between purge runs (60 to 604800)
//! max_per_run = 10000       # items deleted per tenant and kind in one run
//! purge_tenants = ["acme"]  # tenants the purge visits (see below)
//!
//! [retention.default]       # days, per resource kind, for every tenant
//! documents = 90
//! audit = 365
//!
//! [retention.tenants.acme]  # per-tenant overrides, kind by kind
//! documents = 30
//! ```
//!
//! Nothing expires without a policy. The purge job
//! ([`start_purge`]) runs `docaiche_compliance::retention::PurgeSchedule`
//! over the server's (encrypted) document store: expired documents are
//! deleted, documents under an active legal hold are kept, and every
//! deletion is recorded (`retention.purge`) on the audit trail before it
//! happens. The stores cannot list their tenants, so the purge visits the
//! tenants the configuration names: `purge_tenants`, the tenants of
//! `[retention.tenants.*]` and those of `[[auth.bindings]]`.
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
//! Routes (cross-tenant administrators):
//! - `POST /v1/admin/legal-holds`, `GET /v1/admin/legal-holds?tenant=`,
//!   `DELETE /v1/admin/legal-holds/{id}?tenant=` (`tenants:cross` and
//!   `admin:access`; placing and releasing are audited fail-closed);
//! - `GET /v1/admin/compliance/report?tenant=[&days=][&format=html]`
//!   (`tenants:cross` and `audit:read`, like `/v1/admin/audit`): JSON, or
//!   a self-contained HTML page with `format=html` or `Accept: text/html`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_auth::layer::Authenticated;
use docaiche_compliance::audit::{CheckpointKey, Criticality, Verifier};
use docaiche_compliance::privacy::{
    PrivacyRequest, PrivacyRequestPurgeTarget, PrivacyRequestStore,
};
use docaiche_compliance::report::{ChainStatus, ComplianceReport};
use docaiche_compliance::retention::{
    DocumentPurgeTarget, LegalHold, LegalHoldRegistry, MAX_RETENTION_DAYS, MemoryLegalHoldRegistry,
    PurgeSchedule, Purgeable, Purger, RetentionPolicies, StaticTenants, TenantDirectory, resource,
};
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource};
use docaiche_core::error::FieldError;
use docaiche_core::page::PageRequest;
use docaiche_core::{
    AuditSink, Clock, DocumentStore, Error, Permission, Principal, PrincipalId, RequestContext,
    TenantId,
};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::app::{AppState, RouteGroup};
use crate::audit::{AuditFacts, ReadBack};
use crate::config::{AuthSection, Config, SecretSource};
use crate::json::{ValidJson, Validate};
use crate::rejection::Path;

/// The resource kinds `[retention]` accepts.
pub(crate) const KINDS: &[&str] = &[
    resource::DOCUMENTS,
    resource::AUDIT,
    resource::PRIVACY_REQUESTS,
];

/// `[retention]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RetentionSection {
    /// Run the scheduled purge.
    pub(crate) enabled: bool,
    /// Seconds between purge runs.
    pub(crate) interval_secs: u64,
    /// Items deleted per tenant and kind in one run.
    pub(crate) max_per_run: u64,
    /// Tenants the purge visits (beyond those named in `tenants` and in
    /// `[[auth.bindings]]`).
    pub(crate) purge_tenants: Vec<String>,
    /// Resource kind → days, for every tenant.
    pub(crate) default: BTreeMap<String, u32>,
    /// Tenant → resource kind → days, overriding `default`.
    pub(crate) tenants: BTreeMap<String, BTreeMap<String, u32>>,
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 3600,
            max_per_run: Purger::DEFAULT_MAX_PER_RUN,
            purge_tenants: Vec::new(),
            default: BTreeMap::new(),
            tenants: BTreeMap::new(),
        }
    }
}

/// Bounds of `retention.interval_secs`.
const INTERVAL_SECS: (u64, u64) = (60, 7 * 24 * 3600);
/// Upper bound of `retention.max_per_run`.
const MAX_PER_RUN: u64 = 1_000_000;

impl RetentionSection {
    /// Invalid settings, as `(setting, reason)` (see `Config::validate`).
    pub(crate) fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !(INTERVAL_SECS.0..=INTERVAL_SECS.1).contains(&self.interval_secs) {
            out.push((
                "retention.interval_secs".to_owned(),
                format!(
                    "must be between {} (one minute) and {} (one week)",
                    INTERVAL_SECS.0, INTERVAL_SECS.1
                ),
            ));
        }
        if self.max_per_run == 0 || self.max_per_run > MAX_PER_RUN {
            out.push((
                "retention.max_per_run".to_owned(),
                format!("must be between 1 and {MAX_PER_RUN}"),
            ));
        }
        periods(&mut out, "retention.default", &self.default);
        for (tenant, kinds) in &self.tenants {
            if TenantId::new(tenant.as_str()).is_err() {
                out.push((
                    "retention.tenants".to_owned(),
                    format!("`{tenant}` is not a tenant id"),
                ));
                continue;
            }
            periods(&mut out, &format!("retention.tenants.{tenant}"), kinds);
        }
        for tenant in &self.purge_tenants {
            if TenantId::new(tenant.as_str()).is_err() {
                out.push((
                    "retention.purge_tenants".to_owned(),
                    format!("`{tenant}` is not a tenant id"),
                ));
            }
        }
        out
    }

    /// The policies of this section.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for what [`Self::problems`] reports.
    pub(crate) fn policies(&self) -> Result<RetentionPolicies, Error> {
        if let Some((setting, reason)) = self.problems().into_iter().next() {
            return Err(Error::misconfigured(setting, reason));
        }
        let mut policies = RetentionPolicies::new();
        for (kind, &days) in &self.default {
            policies = policies.with_default(kind.clone(), days);
        }
        for (tenant, kinds) in &self.tenants {
            let tenant = TenantId::new(tenant.as_str())
                .map_err(|_| Error::misconfigured("retention.tenants", "not a tenant id"))?;
            for (kind, &days) in kinds {
                policies = policies.with_tenant(tenant.clone(), kind.clone(), days);
            }
        }
        policies.validate()?;
        Ok(policies)
    }

    /// The tenants the purge visits: `purge_tenants`, the tenants with a
    /// policy of their own and those of `[[auth.bindings]]` (the stores
    /// cannot list their tenants). Invalid ids are skipped (validation
    /// reports them).
    fn purge_directory(&self, auth: &AuthSection) -> StaticTenants {
        let names: BTreeSet<&str> = self
            .purge_tenants
            .iter()
            .chain(self.tenants.keys())
            .chain(auth.bindings.iter().map(|b| &b.tenant))
            .map(String::as_str)
            .collect();
        StaticTenants::new(names.into_iter().filter_map(|t| TenantId::new(t).ok()))
    }
}

/// The problems of the periods `kinds` under `prefix`, added to `out`.
fn periods(out: &mut Vec<(String, String)>, prefix: &str, kinds: &BTreeMap<String, u32>) {
    for (kind, &days) in kinds {
        let setting = format!("{prefix}.{kind}");
        if !KINDS.contains(&kind.as_str()) {
            out.push((
                setting,
                format!("is not a resource kind; use one of {}", KINDS.join(", ")),
            ));
        } else if days == 0 || days > MAX_RETENTION_DAYS {
            out.push((setting, format!("must be 1 to {MAX_RETENTION_DAYS} days")));
        }
    }
}

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
    /// The tenants the scheduled purge visits.
    tenants: Arc<dyn TenantDirectory>,
    /// `[retention]`.
    settings: RetentionSection,
    /// Where purge events go.
    audit: Arc<dyn AuditSink>,
    /// The clock of the purge and the report.
    clock: Arc<dyn Clock>,
    /// Secrets whose file tells their age.
    secrets: Vec<SecretFile>,
    /// The policies (kept to rebuild the purger).
    policies: RetentionPolicies,
}

impl Compliance {
    /// Retention for `config` over `documents`, with legal holds in memory,
    /// recording purges on `audit`, timed by `clock`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for an invalid `[retention]`.
    pub(crate) fn new(
        config: &Config,
        documents: Arc<dyn DocumentStore>,
        audit: Arc<dyn AuditSink>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let settings = config.retention.clone();
        let policies = settings.policies()?;
        let holds: Arc<dyn LegalHoldRegistry> = Arc::new(MemoryLegalHoldRegistry::new());
        let purger = purger(
            &settings, &policies, &holds, documents, None, None, &audit, &clock,
        )?;
        Ok(Self {
            holds,
            purger,
            requests: None,
            trail: None,
            tenants: Arc::new(settings.purge_directory(&config.auth)),
            settings,
            audit,
            clock,
            secrets: secret_files(config),
            policies,
        })
    }

    /// The same, purging `documents` instead.
    pub(crate) fn over_documents(&self, documents: Arc<dyn DocumentStore>) -> Self {
        match purger(
            &self.settings,
            &self.policies,
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
        stores: &crate::backends::Stores,
        documents: Arc<dyn DocumentStore>,
    ) -> Result<Self, Error> {
        let holds: Arc<dyn LegalHoldRegistry> = match &stores.sql {
            crate::backends::StorePool::Sqlite(store) => Arc::new(
                docaiche_compliance::privacy::sql::SqliteComplianceStore::new(store.pool().clone())
                    .await?,
            ),
            #[cfg(feature = "postgres")]
            crate::backends::StorePool::Postgres(pool) => Arc::new(
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
            &self.policies,
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
            &self.policies,
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
        let (AuditRetention::Applied, Some(key)) =
            (audit_retention(&self.policies, trail), &trail.anchor_key)
        else {
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
            &self.policies,
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
/// store) for `settings`.
#[expect(
    clippy::too_many_arguments,
    reason = "every piece the purger is built from, one private call site per builder"
)]
fn purger(
    settings: &RetentionSection,
    policies: &RetentionPolicies,
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
        policies.clone(),
        Arc::clone(holds),
        targets,
        Arc::clone(audit),
        Arc::clone(clock),
    )?
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
    let schedule = PurgeSchedule::new(
        Arc::clone(&compliance.purger),
        Arc::clone(&compliance.tenants),
        Arc::clone(&compliance.clock),
        Duration::from_secs(settings.interval_secs),
    )?;
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

/// Add the legal-hold and compliance-report routes to `group` (the
/// protected `default` group).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    let holds = [Permission::TENANTS_CROSS, Permission::ADMIN_ACCESS];
    group
        .route(Method::POST, "/v1/admin/legal-holds", &holds, place_hold)
        .route(Method::GET, "/v1/admin/legal-holds", &holds, list_holds)
        .route(
            Method::DELETE,
            "/v1/admin/legal-holds/{id}",
            &holds,
            release_hold,
        )
        .route(
            Method::GET,
            "/v1/admin/compliance/report",
            &[Permission::TENANTS_CROSS, Permission::AUDIT_READ],
            report,
        )
}

/// Longest legal-hold reason, in characters.
pub(crate) const MAX_REASON: usize = 500;

/// The body of `POST /v1/admin/legal-holds` (its schema:
/// [`crate::openapi`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlaceHold {
    /// The tenant whose data is held.
    tenant: String,
    /// Hold only this data subject's data (default: every subject).
    #[serde(default)]
    subject: Option<String>,
    /// Hold only this resource kind: `documents`, `audit` or
    /// `privacy_requests` (default: every kind).
    #[serde(default)]
    kind: Option<String>,
    /// Why: a case or matter reference (1 to 500 characters).
    reason: String,
}

impl Validate for PlaceHold {
    fn validate(&self) -> Vec<FieldError> {
        let mut fields = Vec::new();
        if TenantId::new(self.tenant.as_str()).is_err() {
            fields.push(FieldError::new("/tenant", "is not a tenant id"));
        }
        if self
            .subject
            .as_ref()
            .is_some_and(|s| PrincipalId::new(s.as_str()).is_err())
        {
            fields.push(FieldError::new("/subject", "is not a principal id"));
        }
        if self
            .kind
            .as_ref()
            .is_some_and(|k| !KINDS.contains(&k.as_str()))
        {
            fields.push(FieldError::new(
                "/kind",
                format!("must be one of {}", KINDS.join(", ")),
            ));
        }
        let length = self.reason.chars().count();
        if self.reason.trim().is_empty()
            || length > MAX_REASON
            || self.reason.chars().any(char::is_control)
        {
            fields.push(FieldError::new(
                "/reason",
                format!("must be 1 to {MAX_REASON} characters, without control characters"),
            ));
        }
        fields
    }
}

/// The `tenant` query of the legal-hold routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantQuery {
    /// The tenant (required).
    tenant: String,
}

/// The tenant of `query`, checked.
fn tenant_of(query: Result<Query<TenantQuery>, QueryRejection>) -> Result<TenantId, Error> {
    let Query(query) =
        query.map_err(|e| Error::invalid_input(format!("invalid query: {}", e.body_text())))?;
    TenantId::new(query.tenant).map_err(|_| Error::invalid_input("tenant is not a tenant id"))
}

/// An uncacheable JSON answer.
fn no_store(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// The event of `caller` doing `action` to the hold `hold` (on the held
/// tenant's stream).
fn hold_event(
    action: &str,
    outcome: AuditOutcome,
    caller: &Principal,
    hold: &LegalHold,
    at: OffsetDateTime,
    context: &RequestContext,
) -> AuditEvent {
    let mut event = AuditEvent::new(action, outcome, at, context)
        .by(hold.tenant.clone(), Some(caller.id.clone()))
        .on(AuditResource::new("legal_hold", hold.id.to_string()))
        .with_detail("actor_tenant", caller.tenant.as_str().into());
    if let Some(kind) = &hold.resource_kind {
        event = event.with_detail("resource_kind", kind.as_str().into());
    }
    if hold.subject.is_some() {
        event = event.with_detail("scope", "subject".into());
    }
    event
}

/// Record an administrative event before acting: through the trail's
/// auditor (refused when unrecordable and `[audit]` is fail-closed), or,
/// without a trail, through the stores' sink.
async fn record_administrative(state: &AppState, event: AuditEvent) -> Result<(), Error> {
    match &state.audit {
        Some(trail) => trail
            .auditor
            .audit(event, Criticality::Administrative)
            .await
            .map(|_| ()),
        None => state.auth.stores.audit.record(&event).await.map(|_| ()),
    }
}

/// Record a routine event (queued; drops are counted).
async fn record_routine(state: &AppState, event: AuditEvent) {
    let recorded = match &state.audit {
        Some(trail) => trail
            .auditor
            .audit(event, Criticality::Routine)
            .await
            .map(|_| ()),
        None => state.auth.stores.audit.record(&event).await.map(|_| ()),
    };
    if let Err(error) = recorded {
        tracing::warn!(error = %error.log_chain(), "audit event not recorded");
    }
}

/// `POST /v1/admin/legal-holds`: place a hold; 201 with the hold.
async fn place_hold(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    ValidJson(request): ValidJson<PlaceHold>,
) -> Result<Response, Error> {
    let tenant = TenantId::new(request.tenant)
        .map_err(|_| Error::invalid_input("tenant is not a tenant id"))?;
    caller.authorize_tenant(&tenant, &Permission::ADMIN_ACCESS)?;
    let compliance = &state.compliance;
    let mut hold = LegalHold::new(
        tenant,
        request.reason,
        caller.id.clone(),
        compliance.clock.now(),
    );
    if let Some(subject) = request.subject {
        hold = hold.on_subject(
            PrincipalId::new(subject).map_err(|_| Error::invalid_input("invalid subject"))?,
        );
    }
    if let Some(kind) = request.kind {
        hold = hold.on_kind(kind);
    }
    crate::audit::administrative(&state, &caller, "legal_hold.place", &context).await?;
    let event = hold_event(
        "legal_hold.place",
        AuditOutcome::Success,
        &caller,
        &hold,
        hold.placed_at,
        &context,
    );
    record_administrative(&state, event).await?;
    if let Err(error) = compliance.holds.place(hold.clone()).await {
        let failed = hold_event(
            "legal_hold.place",
            AuditOutcome::Failure,
            &caller,
            &hold,
            compliance.clock.now(),
            &context,
        )
        .because(error.code().as_str());
        record_routine(&state, failed).await;
        return Err(error);
    }
    let body = serde_json::to_value(&hold)
        .map_err(|e| Error::internal_with("legal hold not serialisable", e))?;
    let mut response = no_store(StatusCode::CREATED, body);
    if let Ok(location) =
        format!("/v1/admin/legal-holds/{}?tenant={}", hold.id, hold.tenant).parse()
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/admin/legal-holds?tenant=`: the holds of the tenant, active
/// or released, oldest first, a page at a time (`after`, `limit`).
async fn list_holds(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<HoldsQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let Query(query) =
        query.map_err(|e| Error::invalid_input(format!("invalid query: {}", e.body_text())))?;
    let tenant = TenantId::new(query.tenant)
        .map_err(|_| Error::invalid_input("tenant is not a tenant id"))?;
    caller.authorize_tenant(&tenant, &Permission::ADMIN_ACCESS)?;
    let holds = state.compliance.holds.all(&tenant).await?;
    let (holds, next) = crate::page::of(holds, |hold| hold.id, query.after, query.limit)?;
    let items = serde_json::to_value(&holds)
        .map_err(|e| Error::internal_with("legal holds not serialisable", e))?;
    Ok(no_store(
        StatusCode::OK,
        serde_json::json!({ "items": items, "next": next }),
    ))
}

/// The query of `GET /v1/admin/legal-holds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldsQuery {
    /// The tenant (required).
    tenant: String,
    /// The cursor of the previous page's `next`.
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<u32>,
}

/// `DELETE /v1/admin/legal-holds/{id}?tenant=`: release an active hold;
/// 204. The release is recorded before it takes effect.
async fn release_hold(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    AuditFacts(context): AuditFacts,
    Path(id): Path<String>,
    query: Result<Query<TenantQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let tenant = tenant_of(query)?;
    caller.authorize_tenant(&tenant, &Permission::ADMIN_ACCESS)?;
    let compliance = &state.compliance;
    let id = id.to_ascii_lowercase();
    let hold = compliance
        .holds
        .active(&tenant)
        .await?
        .into_iter()
        .find(|h| h.id.to_string() == id)
        .ok_or_else(|| Error::not_found("legal_hold"))?;
    crate::audit::administrative(&state, &caller, "legal_hold.release", &context).await?;
    let now = compliance.clock.now();
    let event = hold_event(
        "legal_hold.release",
        AuditOutcome::Success,
        &caller,
        &hold,
        now,
        &context,
    );
    record_administrative(&state, event).await?;
    if !compliance.holds.release(&tenant, &hold.id, now).await? {
        return Err(Error::not_found("legal_hold"));
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, "no-store")],
    )
        .into_response())
}

/// Largest number of audit events a report reads back.
const MAX_REPORT_EVENTS: usize = 100_000;
/// Largest trail (bytes of every file segment) a report verifies.
const MAX_VERIFY_BYTES: u64 = 256 * 1024 * 1024;
/// Largest `audit_trail` table (rows) a report verifies.
#[cfg(feature = "postgres")]
const MAX_VERIFY_ROWS: i64 = 1_000_000;
/// Longest a chain verification may take.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest number of API key records a report lists.
const MAX_REPORT_KEYS: usize = 10_000;
/// Default report period, in days.
const DEFAULT_DAYS: u32 = 30;
/// Longest report period, in days.
const MAX_DAYS: u32 = 366;

/// The query of `GET /v1/admin/compliance/report`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// The tenant (required).
    tenant: String,
    /// The period: this many days up to now (default 30).
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    days: Option<u32>,
    /// `json` or `html` (default: from `Accept`, else JSON).
    format: Option<String>,
}

/// Whether the answer is HTML: `format=html`, or no `format` and an
/// `Accept` naming `text/html`.
fn wants_html(format: Option<&str>, headers: &HeaderMap) -> Result<bool, Error> {
    match format {
        Some("html") => Ok(true),
        Some("json") => Ok(false),
        Some(_) => Err(Error::invalid_input("format must be json or html")),
        None => Ok(headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.split(';').next().is_some_and(|m| m.trim() == "text/html"))),
    }
}

/// `GET /v1/admin/compliance/report`: a tenant's compliance report.
async fn report(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let Query(query) =
        query.map_err(|e| Error::invalid_input(format!("invalid query: {}", e.body_text())))?;
    let tenant = TenantId::new(query.tenant)
        .map_err(|_| Error::invalid_input("tenant is not a tenant id"))?;
    caller.authorize_tenant(&tenant, &Permission::AUDIT_READ)?;
    let days = query.days.unwrap_or(DEFAULT_DAYS);
    if days == 0 || days > MAX_DAYS {
        return Err(Error::invalid_input(format!(
            "days must be between 1 and {MAX_DAYS}"
        )));
    }
    let html = wants_html(query.format.as_deref(), &headers)?;
    let (report, notes) = build_report(&state, &caller, &tenant, days).await?;
    if html {
        return Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            report.to_html(),
        )
            .into_response());
    }
    let mut body = serde_json::to_value(&report)
        .map_err(|e| Error::internal_with("report not serialisable", e))?;
    if let Some(object) = body.as_object_mut() {
        object.insert("period_days".to_owned(), days.into());
        object.insert("notes".to_owned(), notes.into());
    }
    Ok(no_store(StatusCode::OK, body))
}

/// The report of `tenant` over the last `days`, and notes on what it could
/// not cover.
async fn build_report(
    state: &AppState,
    caller: &Principal,
    tenant: &TenantId,
    days: u32,
) -> Result<(ComplianceReport, Vec<String>), Error> {
    let compliance = &state.compliance;
    let now = compliance.clock.now();
    let since = now - time::Duration::days(i64::from(days));
    let mut notes = Vec::new();
    let source = state
        .audit
        .as_ref()
        .map_or(ReadBack::None, |trail| trail.source.clone());

    let events = match crate::audit::read_back(&source, tenant, since, now, MAX_REPORT_EVENTS)
        .await?
    {
        Some((events, more)) => {
            if more {
                notes.push(format!(
                    "only the first {MAX_REPORT_EVENTS} audit events of the period were read"
                ));
            }
            events
        }
        None => {
            notes.push("no configured audit sink can be read back: no audit figures".to_owned());
            Vec::new()
        }
    };
    let anchor_key = state
        .audit
        .as_ref()
        .and_then(|trail| trail.anchor_key.clone());
    let chain = verify_chain(&source, anchor_key, &mut notes).await;
    if let Some(trail) = &state.audit
        && let AuditRetention::NotApplied(why) =
            audit_retention(compliance.purger.policies(), trail)
    {
        notes.push(format!(
            "audit retention is configured but not applied: {why}"
        ));
    }

    let holds = compliance.holds.all(tenant).await?;
    let last_purge = compliance.purger.last_report().map(|mut purge| {
        purge.tenants.retain(|t, _| t == tenant);
        purge.failures.retain(|t, _| t == tenant);
        purge
    });

    let keys = api_keys(state, tenant, &mut notes).await?;
    let requests = privacy_requests(state, caller, tenant, &mut notes).await?;

    let mut builder = ComplianceReport::builder(now)
        .tenant(tenant.clone())
        .audit_events(&events)
        .chain_status(chain)
        .retention(compliance.purger.policies().clone(), holds, last_purge)
        .api_key_rotation_days(ROTATION_DAYS)
        .api_keys(&keys)
        .privacy_requests(&requests);
    let mut unknown = Vec::new();
    for secret in &compliance.secrets {
        match modified(&secret.path) {
            Some(at) => builder = builder.secret(secret.name, at, ROTATION_DAYS),
            None => unknown.push(secret.name),
        }
    }
    if compliance.secrets.is_empty() || !unknown.is_empty() {
        notes.push(
            "secret ages are known only for secrets kept in files (a `file:` source or \
             generated development secrets); env and Vault sources carry no creation time"
                .to_owned(),
        );
    }
    Ok((builder.build(), notes))
}

/// `tenant`'s data-subject requests through the privacy service, with the
/// caller's own rights (`privacy:export` or `privacy:erase`): without
/// them, or without the service, none are listed and a note says so.
async fn privacy_requests(
    state: &AppState,
    caller: &Principal,
    tenant: &TenantId,
    notes: &mut Vec<String>,
) -> Result<Vec<PrivacyRequest>, Error> {
    let Some(privacy) = &state.privacy else {
        notes.push("privacy requests: no privacy service is configured; none listed".to_owned());
        return Ok(Vec::new());
    };
    match privacy.service.list(caller, tenant).await {
        Ok(requests) => Ok(requests),
        Err(Error::Forbidden { .. }) => {
            notes.push(
                "privacy requests: not listed, the caller holds neither privacy:export nor \
                 privacy:erase"
                    .to_owned(),
            );
            Ok(Vec::new())
        }
        Err(error) => Err(error),
    }
}

/// When the file at `path` was last written.
fn modified(path: &std::path::Path) -> Option<OffsetDateTime> {
    let at = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(OffsetDateTime::from(at))
}

/// Up to [`MAX_REPORT_KEYS`] of `tenant`'s API key records.
async fn api_keys(
    state: &AppState,
    tenant: &TenantId,
    notes: &mut Vec<String>,
) -> Result<Vec<docaiche_core::api_key::ApiKeyRecord>, Error> {
    let store = &state.auth.stores.api_keys;
    let mut records = Vec::new();
    let mut page = PageRequest::first(docaiche_core::page::MAX_PAGE_SIZE)?;
    loop {
        let listed = store.list(tenant, &page).await?;
        records.extend(listed.items);
        if records.len() >= MAX_REPORT_KEYS {
            records.truncate(MAX_REPORT_KEYS);
            notes.push(format!(
                "only the first {MAX_REPORT_KEYS} API keys are listed"
            ));
            return Ok(records);
        }
        match listed.next {
            Some(next) => page = PageRequest::new(Some(next), docaiche_core::page::MAX_PAGE_SIZE)?,
            None => return Ok(records),
        }
    }
}

/// Verify the whole trail (every tenant's stream), within bounds: at most
/// [`MAX_VERIFY_BYTES`] of file segments or `MAX_VERIFY_ROWS` rows, and
/// [`VERIFY_TIMEOUT`]; beyond them the chain is `not_checked` and a note
/// says why. Checkpoint MACs are not checked here (no key at request time).
async fn verify_chain(
    source: &ReadBack,
    anchor_key: Option<CheckpointKey>,
    notes: &mut Vec<String>,
) -> ChainStatus {
    let verified = match source {
        ReadBack::None => return ChainStatus::NotChecked,
        ReadBack::File(path) => {
            let path = path.clone();
            let task = tokio::task::spawn_blocking(move || {
                let size: u64 = docaiche_compliance::audit::trail_segments(&path)?
                    .iter()
                    .filter_map(|segment| std::fs::metadata(segment).ok())
                    .map(|meta| meta.len())
                    .sum();
                if size > MAX_VERIFY_BYTES {
                    return Ok(None);
                }
                // A retention anchor counts only if the checkpoint key
                // signed it; checkpoint MACs themselves stay unchecked.
                let mut verifier = Verifier::new();
                if let Some(key) = anchor_key
                    && let Some(anchor) = docaiche_compliance::audit::Anchor::load(&path)?
                {
                    verifier = verifier.with_anchor_key(key).with_anchor(anchor);
                }
                verifier.verify_path(&path).map(Some)
            });
            match tokio::time::timeout(VERIFY_TIMEOUT, task).await {
                Ok(Ok(result)) => result,
                Ok(Err(e)) => Err(Error::internal_with("chain verification task failed", e)),
                Err(_) => Ok(None),
            }
        }
        #[cfg(feature = "postgres")]
        ReadBack::Postgres(pool) => {
            let verify = async {
                let (rows,): (i64,) =
                    docaiche_store::postgres::sqlx::query_as("SELECT count(*) FROM audit_trail")
                        .fetch_one(pool)
                        .await
                        .map_err(|e| Error::unavailable("audit trail (postgres)", e))?;
                if rows > MAX_VERIFY_ROWS {
                    return Ok(None);
                }
                // Retention anchors count only if the checkpoint key
                // signed them; checkpoint MACs themselves stay unchecked.
                let verifier = match anchor_key {
                    Some(key) => Verifier::new().with_anchor_key(key),
                    None => Verifier::new(),
                };
                docaiche_compliance::audit::PgAuditTrail::existing(pool.clone())
                    .verify(&verifier)
                    .await
                    .map(Some)
            };
            tokio::time::timeout(VERIFY_TIMEOUT, verify)
                .await
                .unwrap_or(Ok(None))
        }
    };
    match verified {
        Ok(Some(report)) => match report.tamper {
            None => ChainStatus::Verified {
                events: report.records,
            },
            Some(tamper) => ChainStatus::Broken {
                at_sequence: tamper.seq,
                detail: format!("{}: {}", tamper.kind, tamper.detail),
            },
        },
        Ok(None) => {
            notes.push(
                "the audit chain was not verified: the trail is over the report's bound \
                 (256 MiB of files or 1000000 rows, 10 s); run `verify` offline"
                    .to_owned(),
            );
            ChainStatus::NotChecked
        }
        Err(error) => {
            tracing::warn!(error = %error.log_chain(), "audit chain verification failed");
            notes.push("the audit chain could not be read for verification".to_owned());
            ChainStatus::NotChecked
        }
    }
}

/// A legal hold (the OpenAPI schema of the legal-hold routes).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct LegalHoldDoc {
    /// Hold id (UUIDv7).
    id: String,
    /// The tenant whose data is held.
    tenant: String,
    /// The data subject held; none for every subject.
    subject: Option<String>,
    /// The resource kind held; none for every kind.
    resource_kind: Option<String>,
    /// Why.
    reason: String,
    /// Who placed it.
    placed_by: String,
    /// When (RFC 3339).
    placed_at: String,
    /// When it was released (RFC 3339); none while active.
    released_at: Option<String>,
}

/// A tenant's legal holds.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct LegalHoldList {
    /// The holds of the page, active or released, oldest first.
    items: Vec<LegalHoldDoc>,
    /// The cursor of the next page (`after`), `null` on the last one.
    next: Option<String>,
}

/// A compliance report (the OpenAPI schema of its JSON form).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct ComplianceReportDoc {
    /// When it was generated (RFC 3339).
    generated_at: String,
    /// The tenant.
    tenant: Option<String>,
    /// Events per action, missing expected actions, chain status.
    #[schema(value_type = Object)]
    audit: serde_json::Value,
    /// Policies, active holds, the last purge.
    #[schema(value_type = Object)]
    retention: serde_json::Value,
    /// Open data-subject requests and their deadlines.
    #[schema(value_type = Object)]
    privacy: serde_json::Value,
    /// API key and secret ages.
    #[schema(value_type = Object)]
    keys: serde_json::Value,
    /// Failed logins and lockouts.
    #[schema(value_type = Object)]
    auth: serde_json::Value,
    /// The period, in days up to `generated_at`.
    period_days: u32,
    /// What the report could not cover.
    notes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::{json, local_state, send};
    use crate::audit::FsyncSetting;
    use crate::backends::Secrets;
    use crate::test_support::TestDir;
    use crate::test_support::key_with;
    use axum::body::Body;
    use docaiche_core::ManualClock;
    use docaiche_core::document::NewDocument;

    fn config(dir: &TestDir) -> Config {
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.audit.fsync = FsyncSetting::Never;
        config.audit.checkpoint_every = 0;
        config
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::new(name).expect("tenant")
    }

    /// Unique tenant ids per test run.
    fn unique(prefix: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{prefix}-{}-{nanos}", std::process::id())
    }

    /// State over memory stores with the file trail of `config`.
    async fn state_with_trail(config: &Config) -> AppState {
        let mut state = local_state(config);
        let secrets = Secrets::from_config(config, &|_| None)
            .await
            .expect("secrets");
        let trail = crate::audit::open(config, &secrets, &|_| None)
            .await
            .expect("trail");
        let compliance = Compliance::new(
            config,
            Arc::clone(&state.documents) as Arc<dyn DocumentStore>,
            trail.sink(),
            Arc::clone(&state.auth.clock),
        )
        .expect("compliance");
        state.compliance = Arc::new(compliance);
        state.audit = Some(trail);
        state
    }

    fn request(
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> axum::http::Request<Body> {
        let mut builder = axum::http::Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            builder = builder.header("x-api-key", key);
        }
        match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_owned())),
            None => builder.body(Body::empty()),
        }
        .expect("request")
    }

    /// Write the trail's buffered records.
    async fn flush(state: &AppState) {
        state
            .audit
            .as_ref()
            .expect("trail")
            .buffer
            .flush()
            .await
            .expect("flushed");
    }

    /// The JSON compliance report of `tenant`, asked with `key` (200).
    async fn report_json(state: &AppState, key: &str, tenant: &str) -> serde_json::Value {
        let uri = format!("/v1/admin/compliance/report?tenant={tenant}");
        let (status, _, body) = send(
            crate::app::router(state.clone()),
            request("GET", &uri, Some(key), None),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        json(&body)
    }

    async fn trail_text(state: &AppState, config: &Config) -> String {
        let trail = state.audit.as_ref().expect("trail");
        trail.buffer.flush().await.expect("flushed");
        std::fs::read_to_string(config.audit.file_path(config)).expect("trail file")
    }

    #[test]
    fn the_section_parses_and_bad_values_are_refused_at_start() {
        let config = Config::from_toml_str(
            "[retention]\ninterval_secs = 600\nmax_per_run = 50\npurge_tenants = [\"acme\"]\n\
             [retention.default]\ndocuments = 90\naudit = 365\n\
             [retention.tenants.globex]\ndocuments = 30\n",
        )
        .expect("parses");
        config.validate().expect("valid");
        let policies = config.retention.policies().expect("policies");
        assert_eq!(policies.days(&tenant("globex"), "documents"), Some(30));
        assert_eq!(policies.days(&tenant("acme"), "documents"), Some(90));
        let directory = config.retention.purge_directory(&config.auth);
        let names = futures_util::FutureExt::now_or_never(directory.tenants())
            .expect("ready")
            .expect("tenants");
        assert_eq!(names, [tenant("acme"), tenant("globex")]);

        let bad = Config::from_toml_str(
            "[retention]\ninterval_secs = 5\nmax_per_run = 0\npurge_tenants = [\"no spaces\"]\n\
             [retention.default]\ndocuments = 0\nexports = 10\n\
             [retention.tenants.acme]\naudit = 99999\n",
        )
        .expect("parses");
        let problems = bad.validate().expect_err("refused").to_string();
        for setting in [
            "retention.interval_secs",
            "retention.max_per_run",
            "retention.purge_tenants",
            "retention.default.documents",
            "retention.default.exports",
            "retention.tenants.acme.audit",
        ] {
            assert!(problems.contains(setting), "{setting} missing: {problems}");
        }
        assert!(bad.retention.policies().is_err());
        assert!(Config::from_toml_str("[retention]\nkeep_forever = true\n").is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_purge_job_deletes_expired_keeps_held_and_audits() {
        let dir = TestDir::new("retention-purge");
        let acme = unique("acme");
        let mut config = config(&dir);
        config.retention.default.insert("documents".into(), 30);
        config.retention.purge_tenants = vec![acme.clone()];
        config.validate().expect("valid");
        let base = local_state(&config);
        let secrets = Secrets::from_config(&config, &|_| None)
            .await
            .expect("secrets");
        let trail = crate::audit::open(&config, &secrets, &|_| None)
            .await
            .expect("trail");
        let acme = tenant(&acme);
        let documents: Arc<dyn DocumentStore> = base.documents.clone();
        let put = |owner: &str| {
            NewDocument::new(
                PrincipalId::new(owner).expect("owner"),
                "application/pdf",
                "00",
                axum::body::Bytes::from_static(b"%PDF-1.4 test"),
            )
        };
        let expired = documents.put(&acme, put("alice")).await.expect("put");
        let held = documents.put(&acme, put("bob")).await.expect("put");
        // The purge runs 40 days later on a clock the test controls.
        let clock = Arc::new(ManualClock::starting_at(
            OffsetDateTime::now_utc() + time::Duration::days(40),
        ));
        let compliance =
            Compliance::new(&config, Arc::clone(&documents), trail.sink(), clock.clone())
                .expect("compliance");
        compliance
            .holds
            .place(
                LegalHold::new(
                    acme.clone(),
                    "case 17",
                    PrincipalId::new("counsel").expect("id"),
                    clock.now(),
                )
                .on_subject(PrincipalId::new("bob").expect("id")),
            )
            .await
            .expect("hold");
        let job = start_purge(&compliance).expect("job").expect("enabled");
        let mut waited = 0;
        while compliance.purger.last_report().is_none() {
            assert!(waited < 500, "the first run finishes");
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += 1;
        }
        assert_eq!(job.shutdown(Duration::from_secs(5)).await, Some(1));
        let report = compliance.purger.last_report().expect("report");
        assert_eq!((report.purged(), report.held()), (1, 1), "{report:?}");
        assert!(
            documents
                .head(&acme, &expired.id)
                .await
                .expect("head")
                .is_none()
        );
        assert!(
            documents
                .head(&acme, &held.id)
                .await
                .expect("head")
                .is_some()
        );
        trail.buffer.flush().await.expect("flushed");
        let text = std::fs::read_to_string(config.audit.file_path(&config)).expect("trail");
        let purge_line = text
            .lines()
            .find(|l| l.contains("\"retention.purge\""))
            .expect("retention.purge recorded");
        assert!(purge_line.contains(&expired.id.to_string()), "{purge_line}");
        assert!(
            !text.contains(&held.id.to_string()),
            "the held document is not purged"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_purge_deletes_closed_privacy_requests_past_their_period_only() {
        use docaiche_compliance::privacy::{Regulation, RequestKind, RequestStatus};
        let dir = TestDir::new("retention-privacy");
        let acme = unique("acme");
        let mut config = config(&dir);
        config
            .retention
            .default
            .insert("privacy_requests".into(), 30);
        config.retention.purge_tenants = vec![acme.clone()];
        config.validate().expect("valid");
        crate::storage::prepare_data_dir(dir.path()).expect("data dir");
        let state = AppState::from_config(&config, &|_| None)
            .await
            .expect("state");
        // The privacy service's own store, as the purge sees it.
        let requests = Arc::clone(&state.privacy.as_ref().expect("privacy service").requests);
        let acme = tenant(&acme);
        let now = OffsetDateTime::now_utc();
        let request = |status, closed_days_ago: Option<i64>| {
            let mut request = PrivacyRequest::new(
                acme.clone(),
                PrincipalId::new("alice").expect("id"),
                RequestKind::Export,
                Regulation::Gdpr,
                PrincipalId::new("dpo").expect("id"),
                now - time::Duration::days(60),
            );
            request.status = status;
            request.completed_at = closed_days_ago.map(|d| now - time::Duration::days(d));
            request
        };
        let expired = request(RequestStatus::Completed, Some(40));
        let recent = request(RequestStatus::Completed, Some(10));
        let open = request(RequestStatus::Received, None);
        for r in [&expired, &recent, &open] {
            requests.insert(r).await.expect("inserted");
        }

        let job = start_purge(&state.compliance)
            .expect("job")
            .expect("enabled");
        let mut waited = 0;
        while state.compliance.purger.last_report().is_none() {
            assert!(waited < 1000, "the first run finishes");
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += 1;
        }
        assert_eq!(job.shutdown(Duration::from_secs(5)).await, Some(1));
        let report = state.compliance.purger.last_report().expect("report");
        assert_eq!(
            report.tenants[&acme][resource::PRIVACY_REQUESTS].purged,
            1,
            "{report:?}"
        );
        let kept = |id| {
            let requests = Arc::clone(&requests);
            let acme = acme.clone();
            async move { requests.get(&acme, &id).await.expect("read").is_some() }
        };
        assert!(!kept(expired.id).await, "closed 40 days ago, over 30");
        assert!(kept(recent.id).await, "closed 10 days ago");
        assert!(kept(open.id).await, "open requests are never purged");

        let text = trail_text(&state, &config).await;
        let purge_line = text
            .lines()
            .find(|l| l.contains("\"retention.purge\""))
            .expect("retention.purge recorded");
        assert!(purge_line.contains(&expired.id.to_string()), "{purge_line}");
        assert!(purge_line.contains("privacy_requests"), "{purge_line}");
        assert!(!text.contains(&open.id.to_string()));
        assert!(!text.contains(&recent.id.to_string()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn legal_hold_routes_round_trip_and_are_audited() {
        let dir = TestDir::new("legal-holds");
        let config = config(&dir);
        let state = state_with_trail(&config).await;
        let acme = unique("acme");
        let admin = key_with(&state, "ops", &["tenants:cross", "admin:access"]).await;
        let app = crate::app::router(state.clone());
        let body = format!(
            r#"{{"tenant":"{acme}","subject":"bob","kind":"documents","reason":"case 2026-17"}}"#
        );
        let (status, headers, body) = send(
            app.clone(),
            request("POST", "/v1/admin/legal-holds", Some(&admin), Some(&body)),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let hold = json(&body);
        let id = hold["id"].as_str().expect("id").to_owned();
        assert_eq!(hold["subject"], "bob");
        assert_eq!(hold["resource_kind"], "documents");
        assert!(
            state
                .compliance
                .holds
                .is_held(
                    &tenant(&acme),
                    "documents",
                    Some(&PrincipalId::new("bob").expect("id"))
                )
                .await
                .expect("held")
        );

        let list = format!("/v1/admin/legal-holds?tenant={acme}");
        let (status, _, body) = send(app.clone(), request("GET", &list, Some(&admin), None)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json(&body)["items"][0]["id"], id.as_str());

        // Bad bodies and queries are 400; an unknown hold is 404.
        for bad in [
            r#"{"tenant":"no spaces","reason":"x"}"#,
            r#"{"tenant":"acme","reason":"  "}"#,
            r#"{"tenant":"acme","kind":"exports","reason":"x"}"#,
        ] {
            let (status, _, _) = send(
                app.clone(),
                request("POST", "/v1/admin/legal-holds", Some(&admin), Some(bad)),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let (status, _, _) = send(
            app.clone(),
            request("GET", "/v1/admin/legal-holds", Some(&admin), None),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _, _) = send(
            app.clone(),
            request(
                "DELETE",
                &format!("/v1/admin/legal-holds/{id}?tenant=globex"),
                Some(&admin),
                None,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's hold");

        let release = format!("/v1/admin/legal-holds/{id}?tenant={acme}");
        let (status, _, _) =
            send(app.clone(), request("DELETE", &release, Some(&admin), None)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _, _) =
            send(app.clone(), request("DELETE", &release, Some(&admin), None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "already released");
        let (_, _, body) = send(app.clone(), request("GET", &list, Some(&admin), None)).await;
        assert!(json(&body)["items"][0]["released_at"].is_string());

        let text = trail_text(&state, &config).await;
        for action in [
            "legal_hold.place.attempt",
            "legal_hold.place",
            "legal_hold.release.attempt",
            "legal_hold.release",
        ] {
            assert!(text.contains(&format!("\"{action}\"")), "{action} missing");
        }
        assert!(
            !text.contains("case 2026-17"),
            "the reason stays off the trail"
        );

        // A tenant administrator without the cross-tenant permission: 403;
        // no credential: 401.
        let tenant_admin = key_with(&state, &acme, &["admin:access", "audit:read"]).await;
        let (status, _, _) = send(
            app.clone(),
            request("GET", &list, Some(&tenant_admin), None),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, _) = send(app, request("GET", &list, None, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_report_is_json_or_escaped_html_for_admins_only() {
        let dir = TestDir::new("compliance-report");
        let mut config = config(&dir);
        config.retention.default.insert("documents".into(), 90);
        let state = state_with_trail(&config).await;
        let acme = unique("acme.x@y");
        let admin = key_with(&state, "ops", &["tenants:cross", "audit:read"]).await;
        // A key in the tenant, and events of the period on its stream.
        let _member = key_with(&state, &acme, &["documents:read"]).await;
        let sink = state.audit.as_ref().expect("trail").sink();
        let now = OffsetDateTime::now_utc();
        let ctx = RequestContext::new();
        for event in [
            AuditEvent::new("auth.failure", AuditOutcome::Failure, now, &ctx)
                .because("bad_credential"),
            AuditEvent::new("auth.lockout", AuditOutcome::Denied, now, &ctx).because("locked_out"),
            AuditEvent::new("document.create", AuditOutcome::Success, now, &ctx),
        ] {
            sink.record(&event.by(tenant(&acme), None))
                .await
                .expect("recorded");
        }
        state
            .compliance
            .holds
            .place(LegalHold::new(
                tenant(&acme),
                "<script>alert(1)</script>",
                PrincipalId::new("counsel").expect("id"),
                OffsetDateTime::now_utc(),
            ))
            .await
            .expect("hold");
        let app = crate::app::router(state.clone());
        flush(&state).await;

        let uri = format!("/v1/admin/compliance/report?tenant={acme}");
        let (status, headers, body) =
            send(app.clone(), request("GET", &uri, Some(&admin), None)).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii")
                .starts_with("application/json")
        );
        let report = json(&body);
        for section in ["audit", "retention", "privacy", "keys", "auth", "notes"] {
            assert!(!report[section].is_null(), "{section} missing: {report}");
        }
        assert_eq!(report["tenant"], acme.as_str());
        assert_eq!(report["audit"]["events_by_action"]["document.create"], 1);
        assert_eq!(report["audit"]["events_total"], 3);
        assert_eq!(report["audit"]["chain"]["status"], "verified");
        assert_eq!(report["retention"]["policies"]["default"]["documents"], 90);
        assert_eq!(
            report["retention"]["active_holds"].as_array().map(Vec::len),
            Some(1)
        );
        assert_eq!(report["keys"]["api_keys"].as_array().map(Vec::len), Some(1));
        assert_eq!(report["auth"]["failed_logins"], 1);
        assert_eq!(report["auth"]["lockouts"], 1);
        let missing = report["audit"]["missing_actions"].to_string();
        assert!(!missing.contains("document.create"), "{missing}");
        assert!(missing.contains("document.delete"), "{missing}");
        assert!(missing.contains("retention.purge"), "{missing}");

        // HTML: by `format` or by `Accept`; every value escaped.
        for (uri, accept) in [
            (format!("{uri}&format=html"), None),
            (uri.clone(), Some("text/html,application/xhtml+xml;q=0.9")),
        ] {
            let mut req = request("GET", &uri, Some(&admin), None);
            if let Some(accept) = accept {
                req.headers_mut()
                    .insert(header::ACCEPT, accept.parse().expect("header"));
            }
            let (status, headers, body) = send(app.clone(), req).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert_eq!(headers[header::CACHE_CONTROL], "no-store");
            let html = String::from_utf8(body).expect("utf-8");
            assert!(html.starts_with("<!DOCTYPE html>"));
            assert!(html.contains(&acme), "the tenant is named");
            assert!(!html.contains("<script>"), "reason escaped");
            assert!(html.contains("&lt;script&gt;"), "reason escaped");
        }

        for bad in [
            format!("{uri}&format=pdf"),
            format!("{uri}&days=0"),
            "/v1/admin/compliance/report".to_owned(),
        ] {
            let (status, _, _) = send(app.clone(), request("GET", &bad, Some(&admin), None)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let tenant_admin = key_with(&state, &acme, &["audit:read", "admin:access"]).await;
        let (status, _, _) =
            send(app.clone(), request("GET", &uri, Some(&tenant_admin), None)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, _) = send(app, request("GET", &uri, None, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    /// Place a hold over HTTP on the state of `config`, then open a second
    /// state on the same configuration: the hold is still there.
    async fn holds_survive_a_restart(config: &Config, env: crate::config::EnvLookup<'_>) {
        let acme = unique("acme");
        let state = AppState::from_config(config, env).await.expect("state");
        let admin = key_with(
            &state,
            "ops",
            &[
                "tenants:cross",
                "admin:access",
                "audit:read",
                "privacy:export",
            ],
        )
        .await;
        // The report lists the privacy service's requests (none yet).
        let (status, _, body) = send(
            crate::app::router(state.clone()),
            request(
                "GET",
                &format!("/v1/admin/compliance/report?tenant={acme}"),
                Some(&admin),
                None,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let report = json(&body);
        assert_eq!(report["privacy"]["open"], serde_json::json!([]));
        assert!(
            !report["notes"].to_string().contains("privacy requests"),
            "{report}"
        );
        assert_eq!(report["audit"]["chain"]["status"], "verified", "{report}");
        let body = format!(r#"{{"tenant":"{acme}","kind":"documents","reason":"case 9"}}"#);
        let (status, _, body) = send(
            crate::app::router(state.clone()),
            request("POST", "/v1/admin/legal-holds", Some(&admin), Some(&body)),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let id = json(&body)["id"].as_str().expect("id").to_owned();
        drop(state);
        let again = AppState::from_config(config, env).await.expect("state");
        let holds = again
            .compliance
            .holds
            .all(&tenant(&acme))
            .await
            .expect("holds");
        assert_eq!(holds.len(), 1);
        assert_eq!(holds[0].id.to_string(), id);
        // The privacy service and the purge share the same registry.
        assert!(
            again
                .compliance
                .holds
                .is_held(&tenant(&acme), "documents", None)
                .await
                .expect("held")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn legal_holds_are_kept_in_the_sqlite_store() {
        let dir = TestDir::new("holds-sqlite");
        let config = config(&dir);
        crate::storage::prepare_data_dir(dir.path()).expect("data dir");
        holds_survive_a_restart(&config, &|_| None).await;
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn legal_holds_are_kept_in_the_postgres_store() {
        use crate::backends::tests::on_test_schema;
        const SUITE: &str = "server-postgres";
        let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
            return;
        };
        let dir = TestDir::new("holds-postgres");
        let mut config = config(&dir);
        let (schema, env) = on_test_schema(&url, "holds_test", &mut config).await;
        config.validate().expect("valid");
        crate::storage::prepare_data_dir(dir.path()).expect("data dir");
        crate::keys::prepare(&config.key_source()).expect("keys");
        holds_survive_a_restart(&config, &env).await;
        let (rows,): (i64,) = docaiche_store::postgres::sqlx::query_as(&format!(
            "SELECT count(*) FROM {}.compliance_legal_holds",
            schema.name
        ))
        .fetch_one(&schema.admin)
        .await
        .expect("the holds table is in the store's schema");
        assert_eq!(rows, 1);
        crate::report::mark_ran(SUITE, &format!("legal holds schema {}", schema.name));
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_audit_purge_cuts_the_postgres_trail_and_the_report_still_verifies() {
        use crate::backends::tests::on_test_schema;
        const SUITE: &str = "server-postgres";
        let Some(url) = crate::report::require_backend(SUITE, "DOCAICHE_TEST_POSTGRES_URL") else {
            return;
        };
        let dir = TestDir::new("audit-purge-postgres");
        let mut config = config(&dir);
        let (schema, database) = on_test_schema(&url, "audit_purge", &mut config).await;
        config.audit.sink = crate::audit::AuditSinkKind::Postgres;
        config.audit.checkpoint_every = 4;
        config.retention.default.insert("audit".into(), 1);
        config.secrets.sources = vec!["env".into()];
        let checkpoint = "p".repeat(32);
        let env = move |name: &str| match name {
            "DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY" => Some(checkpoint.clone()),
            _ => database(name),
        };
        let mut state = local_state(&config);
        let secrets = Secrets::from_config(&config, &env).await.expect("secrets");
        let trail = crate::audit::open(&config, &secrets, &env)
            .await
            .expect("trail");
        let acme = unique("acme");
        let sink = trail.sink();
        for i in 0..6 {
            let event = AuditEvent::new(
                "document.read",
                AuditOutcome::Success,
                OffsetDateTime::now_utc(),
                &RequestContext::new(),
            )
            .by(tenant(&acme), None)
            .on(AuditResource::new("document", format!("doc-{i}")));
            sink.record(&event).await.expect("recorded");
        }
        trail.buffer.flush().await.expect("flushed");
        // The purge runs two days later: a one-day period has expired.
        let later = Arc::new(ManualClock::starting_at(
            OffsetDateTime::now_utc() + time::Duration::days(2),
        ));
        let documents = Arc::clone(&state.documents) as Arc<dyn DocumentStore>;
        let compliance = Compliance::new(&config, Arc::clone(&documents), trail.sink(), later)
            .expect("compliance")
            .with_audit_trail(&trail, documents)
            .expect("audit retention");
        state.compliance = Arc::new(compliance);
        state.audit = Some(trail);
        let report = state.compliance.purger.run(&[tenant(&acme)]).await;
        assert_eq!(report.trail_failure, None, "{report:?}");
        assert_eq!(report.tenants[&tenant(&acme)][resource::AUDIT].purged, 6);
        let (rows,): (i64,) = docaiche_store::postgres::sqlx::query_as(&format!(
            "SELECT count(*) FROM {}.audit_trail WHERE stream = $1",
            schema.name
        ))
        .bind(&acme)
        .fetch_one(&schema.admin)
        .await
        .expect("count");
        // The purge event itself (recorded before the cut) stays.
        assert_eq!(rows, 1);

        let admin_key = key_with(&state, "ops", &["tenants:cross", "audit:read"]).await;
        flush(&state).await;
        let report = report_json(&state, &admin_key, &acme).await;
        assert_eq!(report["audit"]["chain"]["status"], "verified", "{report}");
        crate::report::mark_ran(SUITE, &format!("audit purge schema {}", schema.name));
    }

    #[tokio::test]
    async fn fail_closed_refuses_a_hold_the_trail_cannot_record() {
        use docaiche_compliance::audit::{Auditor, BufferConfig, BufferedSink};
        let dir = TestDir::new("holds-closed");
        let config = config(&dir);
        let mut state = local_state(&config);
        let buffer = BufferedSink::new(
            Arc::new(crate::test_support::Unwritable),
            BufferConfig::default(),
        );
        state.audit = Some(crate::audit::AuditTrail {
            auditor: Auditor::new(buffer.clone(), true),
            buffer,
            source: ReadBack::None,
            anchor_key: None,
            inbox: None,
        });
        let acme = unique("acme");
        let admin = key_with(&state, "ops", &["tenants:cross", "admin:access"]).await;
        let body = format!(r#"{{"tenant":"{acme}","reason":"case 3"}}"#);
        let (status, _, _) = send(
            crate::app::router(state.clone()),
            request("POST", "/v1/admin/legal-holds", Some(&admin), Some(&body)),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let holds = state
            .compliance
            .holds
            .all(&tenant(&acme))
            .await
            .expect("holds");
        assert!(holds.is_empty(), "nothing was placed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_audit_purge_removes_expired_segments_and_the_report_still_verifies() {
        let dir = TestDir::new("compliance-audit-purge");
        let mut config = config(&dir);
        config.audit.rotate_bytes = 2048;
        config.audit.checkpoint_every = 4;
        config.retention.default.insert("audit".into(), 365);
        config.secrets.sources = vec!["env".into()];
        let checkpoint = "k".repeat(32);
        let env = move |name: &str| {
            (name == "DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY").then(|| checkpoint.clone())
        };
        let mut state = local_state(&config);
        let secrets = Secrets::from_config(&config, &env).await.expect("secrets");
        let trail = crate::audit::open(&config, &secrets, &env)
            .await
            .expect("trail");
        assert!(trail.anchor_key.is_some(), "the key comes from the chain");
        let documents = Arc::clone(&state.documents) as Arc<dyn DocumentStore>;
        let compliance = Compliance::new(
            &config,
            Arc::clone(&documents),
            trail.sink(),
            Arc::clone(&state.auth.clock),
        )
        .expect("compliance")
        .with_audit_trail(&trail, documents)
        .expect("audit retention");
        state.compliance = Arc::new(compliance);
        state.audit = Some(trail);

        // Two years old, then today: the old ones fill rotated segments.
        let acme = unique("acme");
        let sink = state.audit.as_ref().expect("trail").sink();
        let old = OffsetDateTime::now_utc() - time::Duration::days(730);
        for i in 0..40 {
            let at = if i < 30 {
                old
            } else {
                OffsetDateTime::now_utc()
            };
            let event = AuditEvent::new(
                "document.read",
                AuditOutcome::Success,
                at,
                &RequestContext::new(),
            )
            .by(tenant(&acme), None)
            .on(AuditResource::new("document", format!("doc-{i}")));
            sink.record(&event).await.expect("recorded");
        }
        flush(&state).await;
        let path = config.audit.file_path(&config);
        let before: Vec<_> = docaiche_compliance::audit::trail_segments(&path)
            .expect("segments")
            .into_iter()
            .filter(|s| s != &path)
            .collect();
        assert!(before.len() > 2, "{before:?}");

        let report = state.compliance.purger.run(&[tenant(&acme)]).await;
        flush(&state).await;
        assert_eq!(report.trail_failure, None);
        let purged = &report.tenants[&tenant(&acme)][resource::AUDIT];
        assert!(purged.purged > 0, "{report:?}");
        assert!(before.iter().any(|s| !s.exists()), "old segments are gone");
        assert!(docaiche_compliance::audit::Anchor::path_for(&path).exists());
        assert!(
            trail_text(&state, &config)
                .await
                .contains("retention.purge")
                || {
                    // The purge event may sit in a segment rotated since.
                    docaiche_compliance::audit::trail_segments(&path)
                        .expect("segments")
                        .iter()
                        .any(|s| {
                            std::fs::read_to_string(s).is_ok_and(|t| t.contains("retention.purge"))
                        })
                }
        );

        let admin = key_with(&state, "ops", &["tenants:cross", "audit:read"]).await;
        flush(&state).await;
        let report = report_json(&state, &admin, &acme).await;
        assert_eq!(report["audit"]["chain"]["status"], "verified", "{report}");
        assert!(
            !report["notes"].to_string().contains("audit retention"),
            "{report}"
        );
    }
}
