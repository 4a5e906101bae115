//! [`MemoryCustomRoleStore`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use docaiche_core::custom_role::{CustomRole, CustomRoleStore, MAX_CUSTOM_ROLES};
use docaiche_core::{Error, Result, TenantId};

use super::lock;

/// Tenant-defined roles in memory, at most
/// [`MAX_CUSTOM_ROLES`] per tenant.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use docaiche_core::custom_role::{CustomRole, CustomRoleStore};
/// use docaiche_core::{Permission, TenantId};
/// use docaiche_store::memory::MemoryCustomRoleStore;
///
/// let store = MemoryCustomRoleStore::new();
/// let acme = TenantId::new("acme")?;
/// let editor = CustomRole::new(acme.clone(), "editor", [Permission::DOCUMENTS_WRITE], time::OffsetDateTime::UNIX_EPOCH)?;
/// assert!(store.put(&editor).await?, "created");
/// assert!(!store.put(&editor).await?, "replaced");
/// assert!(store.get(&TenantId::new("globex")?, "editor").await?.is_none());
/// # Ok::<(), docaiche_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct MemoryCustomRoleStore {
    tenants: Mutex<HashMap<TenantId, BTreeMap<String, CustomRole>>>,
}

impl MemoryCustomRoleStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl CustomRoleStore for MemoryCustomRoleStore {
    async fn put(&self, role: &CustomRole) -> Result<bool> {
        role.validate()?;
        let mut tenants = lock(&self.tenants);
        let roles = tenants.entry(role.tenant.clone()).or_default();
        if let Some(existing) = roles.get_mut(&role.name) {
            let created_at = existing.created_at;
            *existing = role.clone();
            existing.created_at = created_at;
            return Ok(false);
        }
        if roles.len() >= MAX_CUSTOM_ROLES {
            return Err(Error::conflict(format!(
                "a tenant defines at most {MAX_CUSTOM_ROLES} custom roles"
            )));
        }
        roles.insert(role.name.clone(), role.clone());
        Ok(true)
    }

    async fn get(&self, tenant: &TenantId, name: &str) -> Result<Option<CustomRole>> {
        Ok(lock(&self.tenants)
            .get(tenant)
            .and_then(|roles| roles.get(name))
            .cloned())
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<CustomRole>> {
        Ok(lock(&self.tenants)
            .get(tenant)
            .map(|roles| roles.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn delete(&self, tenant: &TenantId, name: &str) -> Result<bool> {
        let mut tenants = lock(&self.tenants);
        let Some(roles) = tenants.get_mut(tenant) else {
            return Ok(false);
        };
        let found = roles.remove(name).is_some();
        if roles.is_empty() {
            tenants.remove(tenant);
        }
        Ok(found)
    }
}
