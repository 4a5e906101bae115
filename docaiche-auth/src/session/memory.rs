//! [`MemoryRefreshTokenStore`].

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use docaiche_core::{Clock, Error, Result, SystemClock, TenantId};

use super::store::{
    RefreshTokenHash, RefreshTokenRecord, RefreshTokenState, RefreshTokenStore, SessionId,
};

/// The memory store reached its bound and refused a new record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StoreFull {
    limit: usize,
}

impl fmt::Display for StoreFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory refresh token store is full: limit is {} records",
            self.limit
        )
    }
}

impl std::error::Error for StoreFull {}

type Key = (TenantId, RefreshTokenHash);

#[derive(Debug, Default)]
struct State {
    records: HashMap<Key, RefreshTokenRecord>,
    sessions: HashMap<(TenantId, SessionId), Vec<RefreshTokenHash>>,
}

impl State {
    /// Forget records whose token has expired.
    fn forget_expired(&mut self, now: time::OffsetDateTime) {
        let expired: Vec<Key> = self
            .records
            .iter()
            .filter(|(_, r)| r.expires_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            if let Some(record) = self.records.remove(&key) {
                let session = (key.0.clone(), record.session);
                if let Some(hashes) = self.sessions.get_mut(&session) {
                    hashes.retain(|h| *h != key.1);
                    if hashes.is_empty() {
                        self.sessions.remove(&session);
                    }
                }
            }
        }
    }
}

/// Refresh-token records in memory: a real, bounded implementation of
/// [`RefreshTokenStore`] for tests and single-process deployments (nothing
/// survives a restart, so every session ends with the process).
///
/// Bounded to `max_records` (default 1 000 000). When full, records whose
/// token has expired are forgotten first; if every record is still live the
/// insert is refused with `Unavailable` (a live record is never dropped:
/// that would silently end a session or lose reuse detection).
pub struct MemoryRefreshTokenStore {
    clock: Arc<dyn Clock>,
    max_records: usize,
    state: Mutex<State>,
}

impl fmt::Debug for MemoryRefreshTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRefreshTokenStore")
            .field("records", &self.len())
            .field("max_records", &self.max_records)
            .finish_non_exhaustive()
    }
}

impl MemoryRefreshTokenStore {
    /// Default bound on records.
    pub const DEFAULT_MAX_RECORDS: usize = 1_000_000;

    /// An empty store on the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self {
            clock: Arc::new(SystemClock::new()),
            max_records: Self::DEFAULT_MAX_RECORDS,
            state: Mutex::new(State::default()),
        }
    }

    /// Read time from `clock` (a `ManualClock` in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Set the bound on records.
    #[must_use]
    pub const fn with_max_records(mut self, max: NonZeroUsize) -> Self {
        self.max_records = max.get();
        self
    }

    /// How many records are held (expired ones may linger until the store
    /// fills up).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether no record is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update keeps both maps consistent before it can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryRefreshTokenStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl RefreshTokenStore for MemoryRefreshTokenStore {
    async fn insert(&self, record: RefreshTokenRecord) -> Result<()> {
        let now = self.clock.now();
        let mut state = self.lock();
        if state.records.len() >= self.max_records {
            state.forget_expired(now);
            if state.records.len() >= self.max_records {
                return Err(Error::unavailable(
                    "memory refresh token store",
                    StoreFull {
                        limit: self.max_records,
                    },
                ));
            }
        }
        let key = (record.tenant().clone(), record.token_hash);
        if state.records.contains_key(&key) {
            return Err(Error::conflict("refresh token hash already stored"));
        }
        state
            .sessions
            .entry((key.0.clone(), record.session.clone()))
            .or_default()
            .push(record.token_hash);
        state.records.insert(key, record);
        Ok(())
    }

    async fn find(
        &self,
        tenant: &TenantId,
        hash: &RefreshTokenHash,
    ) -> Result<Option<RefreshTokenRecord>> {
        Ok(self.lock().records.get(&(tenant.clone(), *hash)).cloned())
    }

    async fn consume(
        &self,
        tenant: &TenantId,
        hash: &RefreshTokenHash,
    ) -> Result<Option<RefreshTokenRecord>> {
        let mut state = self.lock();
        let Some(record) = state.records.get_mut(&(tenant.clone(), *hash)) else {
            return Ok(None);
        };
        let before = record.clone();
        if record.state == RefreshTokenState::Active {
            record.state = RefreshTokenState::Used;
        }
        Ok(Some(before))
    }

    async fn revoke_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> Result<Vec<RefreshTokenRecord>> {
        let mut state = self.lock();
        let hashes = state
            .sessions
            .get(&(tenant.clone(), session.clone()))
            .cloned()
            .unwrap_or_default();
        let mut before = Vec::with_capacity(hashes.len());
        for hash in hashes {
            if let Some(record) = state.records.get_mut(&(tenant.clone(), hash)) {
                before.push(record.clone());
                record.state = RefreshTokenState::Revoked;
            }
        }
        Ok(before)
    }
}
