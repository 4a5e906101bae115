//! Where wrapped per-subject data keys live.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use docaiche_core::error::Result;
use docaiche_core::id::{PrincipalId, TenantId};
use docaiche_core::key_wrapper::WrappedKey;

use crate::trace::traced;

/// A wrapped data key and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubjectKey {
    /// The tenant.
    pub tenant: TenantId,
    /// The data subject (a document's owner).
    pub subject: PrincipalId,
    /// The data key, wrapped by the KEK.
    pub wrapped: WrappedKey,
}

impl SubjectKey {
    /// A subject key from its parts.
    #[must_use]
    pub const fn new(tenant: TenantId, subject: PrincipalId, wrapped: WrappedKey) -> Self {
        Self {
            tenant,
            subject,
            wrapped,
        }
    }
}

/// Persistence of wrapped per-subject data keys (never plaintext keys).
///
/// Contract:
/// - `insert_if_absent` is atomic: of two concurrent inserts for one
///   subject, one wins and both callers get the winner's key back.
/// - `replace` is a compare-and-swap on the wrapped key (a concurrent
///   rewrap or destroy wins; the loser gets `false`).
/// - `destroy` deletes for good (crypto-shredding); idempotent.
/// - `list` pages through every key in `(tenant, subject)` order (byte
///   order of the ids, whatever a database's locale), for rewrapping after
///   a KEK rotation; it is the one call that crosses tenants.
/// - Reads see every completed write at once (no replica lag, no cache):
///   [`EncryptedDocumentStore`](super::EncryptedDocumentStore) relies on a
///   destroyed key being gone for every process on the next `get`.
///
/// `conformance::run_data_key_store` (feature `conformance`) checks all of
/// this against an implementation.
#[async_trait]
pub trait DataKeyStore: Send + Sync + fmt::Debug + 'static {
    /// The wrapped key of `subject` in `tenant`.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn get(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<Option<WrappedKey>>;

    /// Store `key` for `subject` unless it has one; the stored key either way.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn insert_if_absent(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        key: WrappedKey,
    ) -> Result<WrappedKey>;

    /// Replace the key of `subject` with `new` if it is still `expected`.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn replace(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        expected: &WrappedKey,
        new: WrappedKey,
    ) -> Result<bool>;

    /// Delete the key of `subject`; whether there was one.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn destroy(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<bool>;

    /// Up to `limit` keys after `after` (exclusive), in `(tenant, subject)`
    /// order.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn list(
        &self,
        after: Option<(&TenantId, &PrincipalId)>,
        limit: usize,
    ) -> Result<Vec<SubjectKey>>;
}

/// An in-memory [`DataKeyStore`]: for tests and single-process
/// deployments whose documents are in memory too (keys and documents must
/// live and die together).
#[derive(Default)]
pub struct MemoryDataKeyStore {
    keys: Mutex<BTreeMap<(TenantId, PrincipalId), WrappedKey>>,
}

impl MemoryDataKeyStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(TenantId, PrincipalId), WrappedKey>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryDataKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDataKeyStore")
            .field("keys", &self.lock().len())
            .finish()
    }
}

#[async_trait]
impl DataKeyStore for MemoryDataKeyStore {
    async fn get(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<Option<WrappedKey>> {
        traced!("memory", "data_keys", "get", async move {
            Ok(self.lock().get(&(tenant.clone(), subject.clone())).cloned())
        })
        .await
    }

    async fn insert_if_absent(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        key: WrappedKey,
    ) -> Result<WrappedKey> {
        traced!("memory", "data_keys", "insert_if_absent", async move {
            Ok(self
                .lock()
                .entry((tenant.clone(), subject.clone()))
                .or_insert(key)
                .clone())
        })
        .await
    }

    async fn replace(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        expected: &WrappedKey,
        new: WrappedKey,
    ) -> Result<bool> {
        traced!("memory", "data_keys", "replace", async move {
            let mut keys = self.lock();
            match keys.get_mut(&(tenant.clone(), subject.clone())) {
                Some(current) if current == expected => {
                    *current = new;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await
    }

    async fn destroy(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<bool> {
        traced!("memory", "data_keys", "destroy", async move {
            Ok(self
                .lock()
                .remove(&(tenant.clone(), subject.clone()))
                .is_some())
        })
        .await
    }

    async fn list(
        &self,
        after: Option<(&TenantId, &PrincipalId)>,
        limit: usize,
    ) -> Result<Vec<SubjectKey>> {
        traced!("memory", "data_keys", "list", async move {
            use std::ops::Bound;
            let keys = self.lock();
            let start = match after {
                Some((tenant, subject)) => Bound::Excluded((tenant.clone(), subject.clone())),
                None => Bound::Unbounded,
            };
            Ok(keys
                .range((start, Bound::Unbounded))
                .take(limit)
                .map(|((tenant, subject), wrapped)| {
                    SubjectKey::new(tenant.clone(), subject.clone(), wrapped.clone())
                })
                .collect())
        })
        .await
    }
}
