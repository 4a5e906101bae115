//! The unwrapped-data-key cache of [`EncryptedDocumentStore`](super::EncryptedDocumentStore).
//!
//! An entry is the plaintext data key of one subject *together with the
//! wrapped key it was unwrapped from*. A lookup hands the key out only when
//! the caller presents the same wrapped key, freshly read from the
//! [`DataKeyStore`](super::DataKeyStore): the cache spares the unwrap (a
//! Vault Transit round trip, or a local AES-GCM call), never the key store
//! read, so a key destroyed or rewrapped by another process stops being
//! used at once.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use docaiche_core::id::{PrincipalId, TenantId};
use docaiche_core::key_wrapper::WrappedKey;
use docaiche_core::secret::SecretBytes;

/// One cached key. Dropping the last `Arc` zeroizes the plaintext
/// ([`SecretBytes`] zeroizes on drop).
struct Entry {
    wrapped: WrappedKey,
    key: Arc<SecretBytes>,
    used: Instant,
}

/// A bounded map of unwrapped data keys: at most `capacity` entries, each
/// forgotten after `idle` without use; when full, the least recently used
/// entry goes.
pub(super) struct KeyCache {
    capacity: usize,
    idle: Duration,
    entries: Mutex<HashMap<(TenantId, PrincipalId), Entry>>,
}

impl KeyCache {
    pub(super) fn new(capacity: usize, idle: Duration) -> Self {
        Self {
            capacity,
            idle,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(TenantId, PrincipalId), Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The plaintext of `wrapped`, if it is the key cached for the subject.
    /// A different wrapped key (rewrapped, or destroyed and recreated)
    /// evicts the entry.
    pub(super) fn get(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        wrapped: &WrappedKey,
    ) -> Option<Arc<SecretBytes>> {
        if self.capacity == 0 {
            return None;
        }
        let now = Instant::now();
        let id = (tenant.clone(), subject.clone());
        let mut entries = self.lock();
        match entries.get_mut(&id) {
            Some(entry)
                if entry.wrapped == *wrapped && now.duration_since(entry.used) < self.idle =>
            {
                entry.used = now;
                Some(entry.key.clone())
            }
            Some(_) => {
                entries.remove(&id);
                None
            }
            None => None,
        }
    }

    /// Remember that `wrapped` unwraps to `key` for the subject.
    pub(super) fn insert(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        wrapped: WrappedKey,
        key: Arc<SecretBytes>,
    ) {
        if self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        let id = (tenant.clone(), subject.clone());
        let mut entries = self.lock();
        if !entries.contains_key(&id) && entries.len() >= self.capacity {
            entries.retain(|_, entry| now.duration_since(entry.used) < self.idle);
            if entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.used)
                    .map(|(id, _)| id.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            id,
            Entry {
                wrapped,
                key,
                used: now,
            },
        );
    }

    /// Forget the subject's key.
    pub(super) fn remove(&self, tenant: &TenantId, subject: &PrincipalId) {
        self.lock().remove(&(tenant.clone(), subject.clone()));
    }

    /// How many keys are cached.
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("capacity", &self.capacity)
            .field("idle", &self.idle)
            .field("cached", &self.len())
            .finish()
    }
}
