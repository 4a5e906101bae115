//! The purge: expired items out, held items kept, every deletion audited.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource, AuditSink};
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::{
    Clock, DocumentId, DocumentStore, PrincipalId, RequestContext, Result, TenantId,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::hold::{LegalHold, LegalHoldRegistry};
use super::policy::RetentionPolicies;
use super::resource;
use super::source::RetentionSource;

/// One item a [`Purgeable`] reports as older than the cutoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PurgeCandidate {
    /// The item's id within its kind.
    pub id: String,
    /// The data subject it belongs to, when known (legal holds on a
    /// subject match on it).
    pub subject: Option<PrincipalId>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl PurgeCandidate {
    /// A candidate.
    #[must_use]
    pub fn new(
        id: impl Into<String>,
        subject: Option<PrincipalId>,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id: id.into(),
            subject,
            created_at,
        }
    }
}

/// A store whose items expire: what the [`Purger`] deletes from.
///
/// Contract:
/// - `expired` pages through the tenant's items created strictly before
///   `cutoff`, in a stable order, `page.limit` at most per page; items
///   deleted between pages do not disturb the cursor (keyset paging).
/// - `purge` deletes one item with everything attached to it (content,
///   text, derived data) and is idempotent: `Ok(false)` if it was gone.
/// - Both are tenant-scoped like every store.
#[async_trait]
pub trait Purgeable: Send + Sync + fmt::Debug + 'static {
    /// The resource kind, as named in [`RetentionPolicies`]
    /// (e.g. [`resource::DOCUMENTS`]).
    fn resource_kind(&self) -> &str;

    /// One page of items created before `cutoff`.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed cursor; `Unavailable` on outage.
    async fn expired(
        &self,
        tenant: &TenantId,
        cutoff: OffsetDateTime,
        page: &PageRequest,
    ) -> Result<Page<PurgeCandidate>>;

    /// Delete one item.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn purge(&self, tenant: &TenantId, id: &str) -> Result<bool>;
}

/// [`Purgeable`] over any [`DocumentStore`]: the core contract lists a
/// tenant's documents in id order with their `created_at`, which is all a
/// purge needs. Each page of the store is filtered by age, so a page of
/// candidates may be short or empty while more follow (`next` is set).
#[derive(Debug, Clone)]
pub struct DocumentPurgeTarget {
    store: Arc<dyn DocumentStore>,
}

impl DocumentPurgeTarget {
    /// Purge from `store`.
    #[must_use]
    pub fn new(store: Arc<dyn DocumentStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Purgeable for DocumentPurgeTarget {
    fn resource_kind(&self) -> &str {
        resource::DOCUMENTS
    }

    async fn expired(
        &self,
        tenant: &TenantId,
        cutoff: OffsetDateTime,
        page: &PageRequest,
    ) -> Result<Page<PurgeCandidate>> {
        let listed = self.store.list(tenant, page).await?;
        let items = listed
            .items
            .into_iter()
            .filter(|meta| meta.created_at < cutoff)
            .map(|meta| PurgeCandidate::new(meta.id.to_string(), Some(meta.owner), meta.created_at))
            .collect();
        Ok(Page::new(items, listed.next))
    }

    async fn purge(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let id: DocumentId = id.parse()?;
        self.store.delete(tenant, &id).await
    }
}

/// A trail whose old entries expire together rather than item by item: the
/// audit trail (kind [`resource::AUDIT`]), which is cut at a signed anchor
/// (see `docaiche_compliance::audit::FileTrailRetention`). The [`Purger`]
/// runs it once per run, after the per-tenant targets.
///
/// Contract: apply each tenant's [`resource::AUDIT`] period (the default
/// period for entries without a tenant), keep whatever an active legal hold
/// on the tenant's `audit` kind (or on every kind) covers, record each
/// removal on `audit` (`retention.purge`) before removing, and report per
/// tenant.
#[async_trait]
pub trait TrailRetention: Send + Sync + fmt::Debug + 'static {
    /// Remove what has expired at `now`.
    ///
    /// # Errors
    /// The first error of the trail, the hold registry or the audit sink;
    /// nothing is removed that was not recorded.
    async fn purge_trail(
        &self,
        policies: &RetentionPolicies,
        holds: &dyn LegalHoldRegistry,
        audit: &dyn AuditSink,
        now: OffsetDateTime,
    ) -> Result<BTreeMap<TenantId, KindPurge>>;
}

/// What a purge run did, per tenant and resource kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PurgeReport {
    /// When the run started (`None` for an empty report).
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When it finished.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Per tenant, per resource kind.
    pub tenants: BTreeMap<TenantId, BTreeMap<String, KindPurge>>,
    /// Tenants whose run failed, with the error code (the cause is logged).
    pub failures: BTreeMap<TenantId, String>,
    /// The error code of the [`TrailRetention`] step, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_failure: Option<String>,
}

impl PurgeReport {
    /// Items purged in total.
    #[must_use]
    pub fn purged(&self) -> u64 {
        self.tenants
            .values()
            .flat_map(BTreeMap::values)
            .map(|k| k.purged)
            .sum()
    }

    /// Items kept because of a legal hold, in total.
    #[must_use]
    pub fn held(&self) -> u64 {
        self.tenants
            .values()
            .flat_map(BTreeMap::values)
            .map(|k| k.held)
            .sum()
    }

    fn merge(&mut self, other: Self) {
        self.tenants.extend(other.tenants);
        self.failures.extend(other.failures);
    }
}

/// What a purge did to one resource kind of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KindPurge {
    /// The retention period applied, in days.
    pub retention_days: u32,
    /// Items deleted.
    pub purged: u64,
    /// Expired items kept because a legal hold covers them.
    pub held: u64,
    /// Whether a hold on the whole kind suspended this purge.
    pub suspended_by_hold: bool,
    /// Whether the run stopped at its per-run limit (more remain).
    pub truncated: bool,
}

/// Deletes expired items according to each tenant's retention periods,
/// skipping what a [`LegalHold`] covers, and records each deletion on the
/// audit trail *before* deleting (action `retention.purge`): an item is
/// never gone without a record. If the audit sink refuses, the run for
/// that tenant stops there (fail closed) and the report names the failure.
///
/// The periods come from a [`RetentionSource`], asked once per tenant and
/// run: the [`RetentionPolicies`] given to [`Purger::new`], or the source
/// given to [`Purger::with_source`] (say [`TenantStoreRetention`], whose
/// per-tenant settings change while the process runs). A tenant whose
/// periods cannot be read, or are out of bounds, is skipped for the run
/// and listed in [`PurgeReport::failures`]: nothing is purged on a guess.
///
/// A tenant-wide hold on a kind suspends that kind's purge entirely (one
/// `retention.suspended` event per run records that it was skipped).
///
/// [`TenantStoreRetention`]: super::TenantStoreRetention
#[derive(Debug)]
pub struct Purger {
    policies: RetentionPolicies,
    source: Arc<dyn RetentionSource>,
    holds: Arc<dyn LegalHoldRegistry>,
    targets: Vec<Arc<dyn Purgeable>>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    max_per_run: u64,
    trail: Option<Arc<dyn TrailRetention>>,
    last_report: Mutex<Option<PurgeReport>>,
}

impl Purger {
    /// Default bound on items deleted per tenant and kind in one run, so a
    /// first run over years of data does not hold the store for hours.
    pub const DEFAULT_MAX_PER_RUN: u64 = 10_000;

    /// A purger over `targets`.
    ///
    /// # Errors
    /// [`docaiche_core::Error::Misconfigured`] if the policies are invalid.
    pub fn new(
        policies: RetentionPolicies,
        holds: Arc<dyn LegalHoldRegistry>,
        targets: Vec<Arc<dyn Purgeable>>,
        audit: Arc<dyn AuditSink>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        policies.validate()?;
        Ok(Self {
            source: Arc::new(policies.clone()),
            policies,
            holds,
            targets,
            audit,
            clock,
            max_per_run: Self::DEFAULT_MAX_PER_RUN,
            trail: None,
            last_report: Mutex::new(None),
        })
    }

    /// Read each tenant's periods from `source` at every run, instead of
    /// the policies given to [`Purger::new`]. Those policies still govern
    /// the trail of [`Purger::with_trail`], which is cut across tenants at
    /// once, and are what [`Purger::policies`] returns.
    #[must_use]
    pub fn with_source(mut self, source: Arc<dyn RetentionSource>) -> Self {
        self.source = source;
        self
    }

    /// Also purge `trail` (the audit trail) on every run, under the
    /// [`resource::AUDIT`] policy of the policies given to [`Purger::new`].
    #[must_use]
    pub fn with_trail(mut self, trail: Arc<dyn TrailRetention>) -> Self {
        self.trail = Some(trail);
        self
    }

    /// Set the per-run bound (per tenant and kind).
    #[must_use]
    pub fn with_max_per_run(mut self, max: u64) -> Self {
        self.max_per_run = max.max(1);
        self
    }

    /// The policies given to [`Purger::new`] (the configured ones: a
    /// source given to [`Purger::with_source`] may answer other periods
    /// for a tenant).
    #[must_use]
    pub const fn policies(&self) -> &RetentionPolicies {
        &self.policies
    }

    /// The report of the last completed [`Purger::run`], for the
    /// compliance report.
    #[must_use]
    pub fn last_report(&self) -> Option<PurgeReport> {
        self.last_report
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Purge every tenant of `tenants`, then the trail given with
    /// [`Purger::with_trail`] (every stream it holds). A failing tenant does
    /// not stop the others: it is listed in [`PurgeReport::failures`]; a
    /// failing trail purge in [`PurgeReport::trail_failure`].
    pub async fn run(&self, tenants: &[TenantId]) -> PurgeReport {
        let mut report = PurgeReport {
            started_at: Some(self.clock.now()),
            ..PurgeReport::default()
        };
        for tenant in tenants {
            match self.purge_tenant(tenant).await {
                Ok(one) => report.merge(one),
                Err(error) => {
                    tracing::warn!(%tenant, error = %error.log_chain(), "retention purge failed");
                    report
                        .failures
                        .insert(tenant.clone(), error.code().as_str().to_owned());
                }
            }
        }
        if let Some(trail) = &self.trail {
            let now = self.clock.now();
            match trail
                .purge_trail(
                    &self.policies,
                    self.holds.as_ref(),
                    self.audit.as_ref(),
                    now,
                )
                .await
            {
                Ok(tenants) => {
                    for (tenant, outcome) in tenants {
                        report
                            .tenants
                            .entry(tenant)
                            .or_default()
                            .insert(resource::AUDIT.to_owned(), outcome);
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error.log_chain(), "audit trail retention failed");
                    report.trail_failure = Some(error.code().as_str().to_owned());
                }
            }
        }
        report.finished_at = Some(self.clock.now());
        *self
            .last_report
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(report.clone());
        report
    }

    /// Purge one tenant, with the periods its source answers now.
    ///
    /// # Errors
    /// The error of the [`RetentionSource`] (nothing is purged), or
    /// [`docaiche_core::Error::Misconfigured`] when a period it answers is
    /// not 1 to [`MAX_RETENTION_DAYS`](super::MAX_RETENTION_DAYS) (nothing
    /// is purged); else the first error of the hold registry, a target or
    /// the audit sink, what was purged before it staying purged (and
    /// recorded).
    pub async fn purge_tenant(&self, tenant: &TenantId) -> Result<PurgeReport> {
        let mut report = PurgeReport {
            started_at: Some(self.clock.now()),
            ..PurgeReport::default()
        };
        let periods = self.source.periods(tenant).await?;
        // The bounds of configured policies hold for every source: a
        // period of 0 days would purge everything.
        RetentionPolicies {
            default: periods.clone(),
            tenants: BTreeMap::new(),
        }
        .validate()?;
        let holds = self.holds.active(tenant).await?;
        for target in &self.targets {
            let kind = target.resource_kind();
            let Some(&days) = periods.get(kind) else {
                continue;
            };
            let outcome = self
                .purge_kind(tenant, target.as_ref(), days, &holds)
                .await?;
            report
                .tenants
                .entry(tenant.clone())
                .or_default()
                .insert(kind.to_owned(), outcome);
        }
        report.finished_at = Some(self.clock.now());
        Ok(report)
    }

    async fn purge_kind(
        &self,
        tenant: &TenantId,
        target: &dyn Purgeable,
        days: u32,
        holds: &[LegalHold],
    ) -> Result<KindPurge> {
        let kind = target.resource_kind();
        let now = self.clock.now();
        let cutoff = now - time::Duration::days(i64::from(days));
        let mut outcome = KindPurge {
            retention_days: days,
            ..KindPurge::default()
        };
        if let Some(hold) = holds.iter().find(|h| h.covers_whole_kind(tenant, kind)) {
            outcome.suspended_by_hold = true;
            let event = suspended_event(tenant, hold.id, kind, now);
            self.audit.record(&event).await?;
            return Ok(outcome);
        }
        let mut page = PageRequest::first(100)?;
        loop {
            let candidates = target.expired(tenant, cutoff, &page).await?;
            for candidate in candidates.items {
                if holds
                    .iter()
                    .any(|h| h.covers(tenant, kind, candidate.subject.as_ref()))
                {
                    outcome.held += 1;
                    continue;
                }
                if outcome.purged >= self.max_per_run {
                    outcome.truncated = true;
                    return Ok(outcome);
                }
                let event = AuditEvent::new(
                    "retention.purge",
                    AuditOutcome::Success,
                    self.clock.now(),
                    &RequestContext::new(),
                )
                .by(tenant.clone(), None)
                .on(AuditResource::new(kind, candidate.id.clone()))
                .because("retention_expired")
                .with_detail("retention_days", days.into())
                .with_detail(
                    "created_at",
                    candidate
                        .created_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                        .into(),
                );
                self.audit.record(&event).await?;
                target.purge(tenant, &candidate.id).await?;
                outcome.purged += 1;
            }
            match candidates.next {
                Some(next) => page = PageRequest::new(Some(next), 100)?,
                None => return Ok(outcome),
            }
        }
    }
}

/// The audit record of a purge that legal hold `hold` suspended: what
/// every purge (stores and audit trails) records before keeping the data.
pub(crate) fn suspended_event(
    tenant: &TenantId,
    hold: uuid::Uuid,
    kind: &str,
    now: OffsetDateTime,
) -> AuditEvent {
    AuditEvent::new(
        "retention.suspended",
        AuditOutcome::Denied,
        now,
        &RequestContext::new(),
    )
    .by(tenant.clone(), None)
    .on(AuditResource::new("legal_hold", hold.to_string()))
    .because("legal_hold")
    .with_detail("resource_kind", kind.into())
}
