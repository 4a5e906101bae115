//! [`MemoryTenantStore`].

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::ops::Bound;
use std::sync::Mutex;

use docaiche_core::page::{Page, PageRequest};
use docaiche_core::tenant::{
    StatusChange, Tenant, TenantSettings, TenantStatus, TenantStore, parse_tenant_cursor,
};
use docaiche_core::{Error, Result, TenantId};
use time::OffsetDateTime;

use super::{capacity_exceeded, lock};

const STORE: &str = "memory tenant store";

/// The tenant registry in memory.
///
/// Holds at most `max_tenants` tenants (default 100 000); registering one
/// beyond that is refused with `Unavailable`
/// ([`CapacityExceeded`](super::CapacityExceeded)).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use docaiche_core::tenant::{StatusChange, Tenant, TenantStore};
/// use docaiche_core::TenantId;
/// use docaiche_store::memory::MemoryTenantStore;
///
/// let store = MemoryTenantStore::new();
/// let acme = TenantId::new("acme")?;
/// let at = time::OffsetDateTime::UNIX_EPOCH;
/// store.create(&Tenant::new(acme.clone(), "Acme", at)).await?;
/// store.set_status(&acme, StatusChange::Suspend { reason: "unpaid" }, at).await?;
/// assert!(store.get(&acme).await?.expect("registered").is_suspended());
/// # Ok::<(), docaiche_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct MemoryTenantStore {
    max_tenants: usize,
    /// Ordered by id.
    tenants: Mutex<BTreeMap<TenantId, Tenant>>,
}

impl MemoryTenantStore {
    /// Default bound on the number of tenants.
    pub const DEFAULT_MAX_TENANTS: usize = 100_000;

    /// An empty store holding up to [`Self::DEFAULT_MAX_TENANTS`] tenants.
    #[must_use]
    pub fn new() -> Self {
        Self {
            max_tenants: Self::DEFAULT_MAX_TENANTS,
            tenants: Mutex::new(BTreeMap::new()),
        }
    }

    /// Set the bound on the number of tenants.
    #[must_use]
    pub fn with_max_tenants(mut self, max_tenants: NonZeroUsize) -> Self {
        self.max_tenants = max_tenants.get();
        self
    }

    /// How many tenants are registered.
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.tenants).len()
    }

    /// Whether no tenant is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn update(&self, id: &TenantId, at: OffsetDateTime, change: impl FnOnce(&mut Tenant)) -> bool {
        let mut tenants = lock(&self.tenants);
        let Some(tenant) = tenants.get_mut(id) else {
            return false;
        };
        change(tenant);
        tenant.updated_at = at;
        true
    }
}

impl Default for MemoryTenantStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl TenantStore for MemoryTenantStore {
    async fn create(&self, tenant: &Tenant) -> Result<()> {
        let mut tenants = lock(&self.tenants);
        if tenants.contains_key(&tenant.id) {
            return Err(Error::conflict("tenant already exists"));
        }
        if tenants.len() >= self.max_tenants {
            return Err(capacity_exceeded(STORE, self.max_tenants, "tenants"));
        }
        tenants.insert(tenant.id.clone(), tenant.clone());
        Ok(())
    }

    async fn get(&self, id: &TenantId) -> Result<Option<Tenant>> {
        Ok(lock(&self.tenants).get(id).cloned())
    }

    async fn list(&self, status: Option<TenantStatus>, page: &PageRequest) -> Result<Page<Tenant>> {
        let after = parse_tenant_cursor(page.after.as_deref())?;
        let tenants = lock(&self.tenants);
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let mut items: Vec<Tenant> = tenants
            .range((lower, Bound::Unbounded))
            .map(|(_, t)| t)
            .filter(|t| status.is_none_or(|s| t.status == s))
            .take(limit.saturating_add(1))
            .cloned()
            .collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|t| t.id.to_string())
        } else {
            None
        };
        Ok(Page::new(items, next))
    }

    async fn update_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
        at: OffsetDateTime,
    ) -> Result<bool> {
        Ok(self.update(id, at, |t| t.settings = settings.clone()))
    }

    async fn set_status(
        &self,
        id: &TenantId,
        change: StatusChange<'_>,
        at: OffsetDateTime,
    ) -> Result<bool> {
        Ok(self.update(id, at, |t| match change {
            StatusChange::Suspend { reason } => {
                t.status = TenantStatus::Suspended;
                t.suspended_at = Some(at);
                t.suspension_reason = Some(reason.to_owned());
            }
            StatusChange::Resume => {
                t.status = TenantStatus::Active;
                t.suspended_at = None;
                t.suspension_reason = None;
            }
        }))
    }
}
