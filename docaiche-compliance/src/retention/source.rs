//! Where a purge run reads each tenant's retention periods: the
//! [`RetentionSource`] contract, the static [`RetentionPolicies`] as one
//! source, and [`TenantStoreRetention`], which lays the tenant registry's
//! per-tenant setting over them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use docaiche_core::page::PageRequest;
use docaiche_core::{Error, Result, TenantId, TenantStore};

use super::policy::RetentionPolicies;
use super::resource;
use super::schedule::TenantDirectory;

/// Where the [`Purger`](super::Purger) reads a tenant's retention periods:
/// asked once per tenant at every run ([`Purger::with_source`]), so a
/// period changed between runs (by a platform administrator, say) applies
/// from the next run on, with no restart. [`RetentionPolicies`] is the
/// static source, the one [`Purger::new`] uses; [`TenantStoreRetention`]
/// lays each tenant's stored setting over them.
///
/// Contract:
/// - `periods` answers resource kind → days for `tenant`, as in force now.
///   A kind it leaves out is kept until deleted: nothing expires without a
///   period.
/// - An error means the periods are unknown, and the purger skips the
///   tenant for this run (it is listed in
///   [`PurgeReport::failures`](super::PurgeReport::failures) and tried
///   again at the next run). A source that cannot read what it needs must
///   return the error rather than a fallback it is not sure of: a period
///   shorter than the real one deletes data that had to be kept, and a
///   purge cannot be undone; a longer one only delays deletion to a later
///   run.
/// - Every period must be 1 to [`MAX_RETENTION_DAYS`](super::MAX_RETENTION_DAYS):
///   on any other the purger refuses the tenant's run (`Misconfigured`),
///   so a stored 0 never purges everything.
/// - `tenant` comes from the purge's [`TenantDirectory`] or its caller,
///   never from a request; the answer concerns that tenant alone.
/// - Called once per tenant and run; the runs of one
///   [`PurgeSchedule`](super::PurgeSchedule) never overlap.
///
/// [`Purger::with_source`]: super::Purger::with_source
/// [`Purger::new`]: super::Purger::new
#[async_trait]
pub trait RetentionSource: Send + Sync + fmt::Debug + 'static {
    /// The retention period of each resource kind in `tenant`, in days.
    ///
    /// # Errors
    /// `Unavailable` when the periods cannot be read (the tenant is skipped
    /// for this run).
    async fn periods(&self, tenant: &TenantId) -> Result<BTreeMap<String, u32>>;
}

/// The static policies: a tenant's own periods over the defaults
/// ([`RetentionPolicies::tenant_periods`]); never fails.
#[async_trait]
impl RetentionSource for RetentionPolicies {
    async fn periods(&self, tenant: &TenantId) -> Result<BTreeMap<String, u32>> {
        Ok(self.tenant_periods(tenant))
    }
}

/// Retention from the platform's tenant registry: a tenant's stored
/// `TenantSettings::retention_days` (set by a platform administrator), when
/// set, is its [`resource::DOCUMENTS`] period, over the configured
/// `policies`. For documents the precedence is therefore:
///
/// 1. the stored `retention_days` of the tenant;
/// 2. the tenant's own documents policy in `policies`;
/// 3. the default documents policy in `policies`.
///
/// The stored setting wins over configuration because it is the later,
/// more specific decision, made for that tenant through the API; it
/// applies even where the configuration sets no documents period at all.
/// Other kinds (`audit`, `privacy_requests`) follow `policies` alone.
///
/// ```
/// use std::sync::Arc;
/// use docaiche_compliance::retention::{
///     RetentionPolicies, RetentionSource, TenantStoreRetention, resource,
/// };
/// use docaiche_core::tenant::{Tenant, TenantSettings, TenantStore};
/// use docaiche_core::TenantId;
/// use docaiche_store::memory::MemoryTenantStore;
/// use time::OffsetDateTime;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> docaiche_core::Result<()> {
/// let registry = Arc::new(MemoryTenantStore::new());
/// let acme = TenantId::new("acme")?;
/// registry.create(
///     &Tenant::new(acme.clone(), "Acme", OffsetDateTime::UNIX_EPOCH)
///         .with_settings(TenantSettings::default().with_retention_days(Some(7))),
/// ).await?;
/// let retention = TenantStoreRetention::new(
///     registry,
///     RetentionPolicies::new().with_default(resource::DOCUMENTS, 90),
/// );
/// assert_eq!(retention.periods(&acme).await?[resource::DOCUMENTS], 7);
/// let globex = TenantId::new("globex")?; // not registered: the configuration
/// assert_eq!(retention.periods(&globex).await?[resource::DOCUMENTS], 90);
/// # Ok(()) }
/// ```
///
/// It is also the purge's [`TenantDirectory`]: every tenant of the
/// registry, active or suspended (a suspension does not pause retention),
/// plus those of the directory given to [`Self::with_directory`] (tenants
/// that are only configured).
///
/// Every call reads the registry (one indexed read per tenant and run, one
/// listing per run), with no cache: a cached record may be older, and
/// shorter, than the current setting. A failed read is returned, never
/// replaced by the configured period (which may be shorter than the stored
/// one): the tenant, or for the listing the whole run, is skipped and
/// retried at the next run. Failed reads are counted
/// ([`Self::read_failures`]) for metrics.
#[derive(Debug)]
pub struct TenantStoreRetention {
    store: Arc<dyn TenantStore>,
    policies: RetentionPolicies,
    directory: Option<Arc<dyn TenantDirectory>>,
    read_failures: AtomicU64,
}

impl TenantStoreRetention {
    /// Tenants read per page of the registry's listing.
    const PAGE: u32 = 500;

    /// The settings of `store` over `policies`.
    #[must_use]
    pub fn new(store: Arc<dyn TenantStore>, policies: RetentionPolicies) -> Self {
        Self {
            store,
            policies,
            directory: None,
            read_failures: AtomicU64::new(0),
        }
    }

    /// Also visit the tenants of `directory` (those configured but perhaps
    /// not registered).
    #[must_use]
    pub fn with_directory(mut self, directory: Arc<dyn TenantDirectory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The configured policies under the stored settings.
    #[must_use]
    pub const fn policies(&self) -> &RetentionPolicies {
        &self.policies
    }

    /// How many reads of the registry (a tenant's record, or the listing)
    /// have failed since this value was made.
    #[must_use]
    pub fn read_failures(&self) -> u64 {
        self.read_failures.load(Ordering::Relaxed)
    }

    /// `result`, counted as a failed read when it is an error.
    fn counted<T>(&self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.read_failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Every tenant of the registry, page by page.
    async fn registered(&self) -> Result<Vec<TenantId>> {
        let mut tenants = Vec::new();
        let mut page = PageRequest::first(Self::PAGE)?;
        loop {
            let listed = self.store.list(None, &page).await?;
            tenants.extend(listed.items.into_iter().map(|tenant| tenant.id));
            match listed.next {
                // The cursor is the last id of the page, in byte order: one
                // that does not advance would loop for ever.
                Some(next) if page.after.as_ref().is_some_and(|after| next <= *after) => {
                    return Err(Error::internal(
                        "tenant registry listing did not advance its cursor",
                    ));
                }
                Some(next) => page = PageRequest::new(Some(next), Self::PAGE)?,
                None => return Ok(tenants),
            }
        }
    }
}

#[async_trait]
impl RetentionSource for TenantStoreRetention {
    async fn periods(&self, tenant: &TenantId) -> Result<BTreeMap<String, u32>> {
        let record = self.counted(self.store.get(tenant).await)?;
        let mut periods = self.policies.tenant_periods(tenant);
        if let Some(days) = record.and_then(|record| record.settings.retention_days) {
            periods.insert(resource::DOCUMENTS.to_owned(), days);
        }
        Ok(periods)
    }
}

#[async_trait]
impl TenantDirectory for TenantStoreRetention {
    async fn tenants(&self) -> Result<Vec<TenantId>> {
        let mut tenants: BTreeSet<TenantId> =
            self.counted(self.registered().await)?.into_iter().collect();
        if let Some(directory) = &self.directory {
            tenants.extend(directory.tenants().await?);
        }
        Ok(tenants.into_iter().collect())
    }
}
