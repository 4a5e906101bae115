//! [`MemoryCacheStore`].

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use docaiche_core::cache::{CacheEntry, CacheKey, CacheStore};
use docaiche_core::{Clock, Result};

use super::expiry::ExpiringMap;
use super::{lock, system_clock};

/// A TTL byte cache in memory.
///
/// Time is the injected clock's monotonic time, so wall-clock adjustments do
/// not revive or kill entries. At most `max_entries` entries (default
/// 10 000): when a new key arrives at the bound, expired entries go first,
/// then the entry closest to its expiry is evicted (it had the least life
/// left to give). An entry is never returned once its TTL has elapsed.
#[derive(Debug)]
pub struct MemoryCacheStore {
    clock: Arc<dyn Clock>,
    max_entries: usize,
    state: Mutex<State>,
}

/// Values by key, in expiry order; time is the clock's monotonic time.
type State = ExpiringMap<CacheKey, Bytes, Duration>;

impl MemoryCacheStore {
    /// Default bound on the number of entries.
    pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

    /// An empty cache on the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self {
            clock: system_clock(),
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            state: Mutex::new(State::default()),
        }
    }

    /// Read time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Set the bound on the number of entries.
    #[must_use]
    pub fn with_max_entries(mut self, max_entries: NonZeroUsize) -> Self {
        self.max_entries = max_entries.get();
        self
    }

    /// How many entries are held (expired ones may linger until the next write).
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.state).len()
    }

    /// Whether the cache holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryCacheStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl CacheStore for MemoryCacheStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>> {
        let now = self.clock.monotonic();
        let state = lock(&self.state);
        Ok(state
            .get(key)
            .filter(|(deadline, _)| now < *deadline)
            .map(|(deadline, value)| CacheEntry::new(value.clone(), *deadline - now)))
    }

    async fn set(&self, key: &CacheKey, value: Bytes, ttl: Duration) -> Result<()> {
        let now = self.clock.monotonic();
        let mut state = lock(&self.state);
        state.remove(key);
        if ttl.is_zero() {
            return Ok(());
        }
        if state.len() >= self.max_entries {
            state.forget_expired(now);
        }
        while state.len() >= self.max_entries {
            state.evict_soonest();
        }
        state.insert(key.clone(), now.saturating_add(ttl), value);
        Ok(())
    }

    async fn delete(&self, key: &CacheKey) -> Result<bool> {
        let now = self.clock.monotonic();
        let mut state = lock(&self.state);
        Ok(state
            .remove(key)
            .is_some_and(|(deadline, _)| now < deadline))
    }
}
