//! [`MemoryApiKeyStore`].

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::ops::Bound;
use std::sync::Mutex;

use docaiche_core::api_key::{ApiKeyLookup, ApiKeyRecord, ApiKeyStore, ApiKeyUsage};
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::{ApiKeyId, Error, Result, TenantId};
use time::OffsetDateTime;

use super::{capacity_exceeded, lock, page_of, parse_cursor};
use crate::trace::traced;

const STORE: &str = "memory api key store";

/// API key records in memory.
///
/// Holds at most `max_records` records (default 100 000); inserting beyond
/// that is refused with `Unavailable` ([`CapacityExceeded`](super::CapacityExceeded)),
/// never by dropping a record. Revoked and expired records stay until
/// [`ApiKeyStore::delete`] or the end of the process, as in a database, so
/// their history remains listable.
///
/// ```
/// # futures_block_on(async {
/// use docaiche_store::memory::MemoryApiKeyStore;
/// use docaiche_core::{ApiKeyStore, TenantId, page::PageRequest};
///
/// let store = MemoryApiKeyStore::new();
/// let page = store.list(&TenantId::new("acme")?, &PageRequest::first(10)?).await?;
/// assert!(page.items.is_empty());
/// # Ok::<(), docaiche_core::Error>(()) }).unwrap();
/// # fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug)]
pub struct MemoryApiKeyStore {
    max_records: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Per tenant, ordered by id.
    tenants: HashMap<TenantId, BTreeMap<ApiKeyId, ApiKeyRecord>>,
    /// Every id, globally unique, with its tenant.
    ids: HashMap<ApiKeyId, TenantId>,
    /// Every lookup, globally unique.
    lookups: HashMap<ApiKeyLookup, (TenantId, ApiKeyId)>,
}

impl State {
    fn record_mut(&mut self, tenant: &TenantId, id: &ApiKeyId) -> Option<&mut ApiKeyRecord> {
        self.tenants.get_mut(tenant)?.get_mut(id)
    }
}

impl MemoryApiKeyStore {
    /// Default bound on the number of records.
    pub const DEFAULT_MAX_RECORDS: usize = 100_000;

    /// An empty store holding up to [`Self::DEFAULT_MAX_RECORDS`] records.
    #[must_use]
    pub fn new() -> Self {
        Self {
            max_records: Self::DEFAULT_MAX_RECORDS,
            state: Mutex::new(State::default()),
        }
    }

    /// Set the bound on the number of records.
    #[must_use]
    pub fn with_max_records(mut self, max_records: NonZeroUsize) -> Self {
        self.max_records = max_records.get();
        self
    }

    /// How many records are stored, across tenants.
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.state).ids.len()
    }

    /// Whether the store is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `record` with at most [`MAX_SCOPES`](docaiche_core::MAX_SCOPES) scopes,
/// as every store reads them back (see [`ApiKeyStore`]): a listing then
/// never clones more.
fn bounded(record: &ApiKeyRecord) -> ApiKeyRecord {
    let mut kept = record.clone();
    kept.scopes.truncate(docaiche_core::MAX_SCOPES);
    kept
}

impl Default for MemoryApiKeyStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl ApiKeyStore for MemoryApiKeyStore {
    async fn insert(&self, record: &ApiKeyRecord) -> Result<()> {
        traced!("memory", "api_keys", "insert", async move {
            let mut state = lock(&self.state);
            if state.ids.contains_key(&record.id) {
                return Err(Error::conflict("api key id already exists"));
            }
            if state.lookups.contains_key(&record.lookup) {
                return Err(Error::conflict("api key lookup id already exists"));
            }
            if state.ids.len() >= self.max_records {
                return Err(capacity_exceeded(STORE, self.max_records, "records"));
            }
            state.ids.insert(record.id, record.tenant.clone());
            state
                .lookups
                .insert(record.lookup.clone(), (record.tenant.clone(), record.id));
            state
                .tenants
                .entry(record.tenant.clone())
                .or_default()
                .insert(record.id, bounded(record));
            Ok(())
        })
        .await
    }

    async fn find_by_lookup(&self, lookup: &ApiKeyLookup) -> Result<Option<ApiKeyRecord>> {
        traced!("memory", "api_keys", "find_by_lookup", async move {
            let state = lock(&self.state);
            Ok(state
                .lookups
                .get(lookup)
                .and_then(|(tenant, id)| state.tenants.get(tenant)?.get(id))
                .cloned())
        })
        .await
    }

    async fn get(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>> {
        traced!("memory", "api_keys", "get", async move {
            let state = lock(&self.state);
            Ok(state.tenants.get(tenant).and_then(|t| t.get(id)).cloned())
        })
        .await
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ApiKeyRecord>> {
        traced!("memory", "api_keys", "list", async move {
            let after = parse_cursor(page.after.as_deref())?.map(ApiKeyId::from_uuid);
            let state = lock(&self.state);
            let Some(records) = state.tenants.get(tenant) else {
                return Ok(Page::new(Vec::new(), None));
            };
            let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
            Ok(page_of(
                records
                    .range((lower, Bound::Unbounded))
                    .map(|(_, r)| r.clone()),
                page.limit,
                |r| *r.id.as_uuid(),
            ))
        })
        .await
    }

    async fn revoke(&self, tenant: &TenantId, id: &ApiKeyId, at: OffsetDateTime) -> Result<bool> {
        traced!("memory", "api_keys", "revoke", async move {
            let mut state = lock(&self.state);
            let Some(record) = state.record_mut(tenant, id) else {
                return Ok(false);
            };
            record.revoked_at.get_or_insert(at);
            Ok(true)
        })
        .await
    }

    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<bool> {
        traced!("memory", "api_keys", "delete", async move {
            let mut state = lock(&self.state);
            let Some(records) = state.tenants.get_mut(tenant) else {
                return Ok(false);
            };
            let Some(record) = records.remove(id) else {
                return Ok(false);
            };
            if records.is_empty() {
                state.tenants.remove(tenant);
            }
            state.ids.remove(id);
            state.lookups.remove(&record.lookup);
            Ok(true)
        })
        .await
    }

    async fn mark_rotated(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        replaced_by: &ApiKeyId,
        valid_until: OffsetDateTime,
    ) -> Result<bool> {
        traced!("memory", "api_keys", "mark_rotated", async move {
            let mut state = lock(&self.state);
            let Some(record) = state.record_mut(tenant, id) else {
                return Ok(false);
            };
            // The first rotation names the successor; a repeated call cannot
            // re-point it or extend the overlap window.
            record.replaced_by.get_or_insert(*replaced_by);
            record.expires_at = Some(
                record
                    .expires_at
                    .map_or(valid_until, |at| at.min(valid_until)),
            );
            Ok(true)
        })
        .await
    }

    async fn record_usage(&self, usage: &[ApiKeyUsage]) -> Result<()> {
        traced!("memory", "api_keys", "record_usage", async move {
            let mut state = lock(&self.state);
            for u in usage {
                // Scoped by the usage's tenant: a usage naming another tenant's
                // key id is ignored like an unknown id.
                if let Some(record) = state.record_mut(&u.tenant, &u.id)
                    && record.last_used_at.is_none_or(|last| last < u.used_at)
                {
                    record.last_used_at = Some(u.used_at);
                }
            }
            Ok(())
        })
        .await
    }
}
