//! [`MemoryAccountStore`].

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::ops::Bound;
use std::sync::Mutex;

use docaiche_core::account::{Account, AccountEmail, AccountStore, parse_account_cursor};
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::{Error, PrincipalId, Result, TenantId};
use time::OffsetDateTime;

use super::{capacity_exceeded, lock};

const STORE: &str = "memory account store";

/// Password accounts in memory.
///
/// Holds at most `max_accounts` accounts (default 100 000); creating one
/// beyond that is refused with `Unavailable`
/// ([`CapacityExceeded`](super::CapacityExceeded)).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use docaiche_core::account::{Account, AccountEmail, AccountStore};
/// use docaiche_core::{PrincipalId, TenantId};
/// use docaiche_store::memory::MemoryAccountStore;
///
/// let store = MemoryAccountStore::new();
/// let acme = TenantId::new("acme")?;
/// let email = AccountEmail::new("alice@example.com")?;
/// let alice = Account::new(acme.clone(), PrincipalId::new("alice")?, email.clone(), "$argon2id$…", time::OffsetDateTime::UNIX_EPOCH);
/// store.create(&alice).await?;
/// assert!(store.find_by_email(&acme, &email).await?.is_some());
/// assert!(store.find_by_email(&TenantId::new("globex")?, &email).await?.is_none());
/// # Ok::<(), docaiche_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct MemoryAccountStore {
    max_accounts: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct Tenant {
    /// Ordered by id.
    accounts: BTreeMap<PrincipalId, Account>,
    emails: HashMap<AccountEmail, PrincipalId>,
}

#[derive(Debug, Default)]
struct State {
    tenants: HashMap<TenantId, Tenant>,
    count: usize,
}

impl State {
    fn account_mut(&mut self, tenant: &TenantId, id: &PrincipalId) -> Option<&mut Account> {
        self.tenants.get_mut(tenant)?.accounts.get_mut(id)
    }
}

impl MemoryAccountStore {
    /// Default bound on the number of accounts.
    pub const DEFAULT_MAX_ACCOUNTS: usize = 100_000;

    /// An empty store holding up to [`Self::DEFAULT_MAX_ACCOUNTS`] accounts.
    #[must_use]
    pub fn new() -> Self {
        Self {
            max_accounts: Self::DEFAULT_MAX_ACCOUNTS,
            state: Mutex::new(State::default()),
        }
    }

    /// Set the bound on the number of accounts.
    #[must_use]
    pub fn with_max_accounts(mut self, max_accounts: NonZeroUsize) -> Self {
        self.max_accounts = max_accounts.get();
        self
    }

    /// How many accounts are stored, across tenants.
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.state).count
    }

    /// Whether the store is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn update(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        at: OffsetDateTime,
        change: impl FnOnce(&mut Account),
    ) -> bool {
        let mut state = lock(&self.state);
        let Some(account) = state.account_mut(tenant, id) else {
            return false;
        };
        change(account);
        account.updated_at = at;
        true
    }
}

impl Default for MemoryAccountStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl AccountStore for MemoryAccountStore {
    async fn create(&self, account: &Account) -> Result<()> {
        let mut state = lock(&self.state);
        if let Some(t) = state.tenants.get(&account.tenant) {
            if t.accounts.contains_key(&account.id) {
                return Err(Error::conflict("account id already exists"));
            }
            if t.emails.contains_key(&account.email) {
                return Err(Error::conflict("account email already exists"));
            }
        }
        if state.count >= self.max_accounts {
            return Err(capacity_exceeded(STORE, self.max_accounts, "accounts"));
        }
        let tenant = state.tenants.entry(account.tenant.clone()).or_default();
        tenant
            .emails
            .insert(account.email.clone(), account.id.clone());
        tenant.accounts.insert(account.id.clone(), account.clone());
        state.count += 1;
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, id: &PrincipalId) -> Result<Option<Account>> {
        let state = lock(&self.state);
        Ok(state
            .tenants
            .get(tenant)
            .and_then(|t| t.accounts.get(id))
            .cloned())
    }

    async fn find_by_email(
        &self,
        tenant: &TenantId,
        email: &AccountEmail,
    ) -> Result<Option<Account>> {
        let state = lock(&self.state);
        Ok(state
            .tenants
            .get(tenant)
            .and_then(|t| t.accounts.get(t.emails.get(email)?))
            .cloned())
    }

    async fn update_password_hash(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        password_hash: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        Ok(self.update(tenant, id, at, |a| {
            password_hash.clone_into(&mut a.password_hash);
        }))
    }

    async fn swap_password_hash(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        expected: &str,
        password_hash: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let mut state = lock(&self.state);
        match state.account_mut(tenant, id) {
            Some(account) if account.password_hash == expected => {
                password_hash.clone_into(&mut account.password_hash);
                account.updated_at = at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn set_roles(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        roles: &[String],
        at: OffsetDateTime,
    ) -> Result<bool> {
        Ok(self.update(tenant, id, at, |a| a.roles = roles.to_vec()))
    }

    async fn set_disabled(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        disabled: bool,
        at: OffsetDateTime,
    ) -> Result<bool> {
        Ok(self.update(tenant, id, at, |a| a.disabled = disabled))
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Account>> {
        let after = parse_account_cursor(page.after.as_deref())?;
        let state = lock(&self.state);
        let Some(t) = state.tenants.get(tenant) else {
            return Ok(Page::new(Vec::new(), None));
        };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let mut items: Vec<Account> = t
            .accounts
            .range((lower, Bound::Unbounded))
            .take(limit.saturating_add(1))
            .map(|(_, a)| a.clone())
            .collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|a| a.id.to_string())
        } else {
            None
        };
        Ok(Page::new(items, next))
    }

    async fn delete(&self, tenant: &TenantId, id: &PrincipalId) -> Result<bool> {
        let mut state = lock(&self.state);
        let Some(t) = state.tenants.get_mut(tenant) else {
            return Ok(false);
        };
        let Some(account) = t.accounts.remove(id) else {
            return Ok(false);
        };
        t.emails.remove(&account.email);
        if t.accounts.is_empty() {
            state.tenants.remove(tenant);
        }
        state.count -= 1;
        Ok(true)
    }
}
