//! The unwrapped-data-key cache of [`EncryptedDocumentStore`](super::EncryptedDocumentStore).
//!
//! An entry is the plaintext data key of one subject *together with the
//! wrapped key it was unwrapped from*. A lookup hands the key out only when
//! the caller presents the same wrapped key, freshly read from the
//! [`DataKeyStore`](super::DataKeyStore): the cache spares the unwrap (a
//! Vault Transit round trip, or a local AES-GCM call), never the key store
//! read, so a key destroyed or rewrapped by another process stops being
//! used at once.
//!
//! The map is [`quick_cache`]'s sharded cache rather than our own: a full
//! cache evicts in O(1) (CLOCK-Pro style: a key used once goes before a key
//! in steady use), each shard under its own lock, where a hand-written LRU
//! scanned every entry under one lock on each insert into a full cache. It
//! was chosen over `moka` for its size: no background threads, and with
//! default features off it adds only itself to the facade's build (its
//! `equivalent` and `hashbrown` are already there), where `moka` brings
//! crossbeam, `parking_lot` and a timer wheel. `moka` would expire idle
//! keys on its own; here an idle key is refused on lookup and swept out at
//! most once per idle period ([`KeyCache::insert`]).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use docaiche_core::id::{PrincipalId, TenantId};
use docaiche_core::key_wrapper::WrappedKey;
use docaiche_core::secret::SecretBytes;
use quick_cache::sync::Cache;

/// Most shards of the map; each holds at least [`MIN_PER_SHARD`] keys.
const MAX_SHARDS: usize = 16;
/// Fewest keys per shard (quick_cache's own floor).
const MIN_PER_SHARD: usize = 32;

/// One cached key. Dropping the last `Arc` zeroizes the plaintext
/// ([`SecretBytes`] zeroizes on drop).
struct Entry {
    wrapped: WrappedKey,
    key: Arc<SecretBytes>,
    /// Last use, in nanoseconds since the cache's epoch.
    used: AtomicU64,
}

/// A bounded map of unwrapped data keys: at most `capacity` entries, each
/// forgotten after `idle` without use; when full, one entry goes in O(1)
/// (a key not used again since it was cached before one in steady use).
pub(super) struct KeyCache {
    capacity: usize,
    idle: Duration,
    /// `None` when the cache is off (capacity 0).
    entries: Option<Cache<(TenantId, PrincipalId), Arc<Entry>>>,
    /// What `Entry::used` counts from.
    epoch: Instant,
    /// When idle entries were last swept out (nanoseconds since `epoch`).
    swept: AtomicU64,
}

impl KeyCache {
    pub(super) fn new(capacity: usize, idle: Duration) -> Self {
        let entries = (capacity > 0).then(|| {
            // Shard capacity is rounded up, so a shard count dividing
            // `capacity` keeps the bound exact.
            let mut shards = MAX_SHARDS;
            while shards > 1
                && (!capacity.is_multiple_of(shards) || capacity / shards < MIN_PER_SHARD)
            {
                shards /= 2;
            }
            let options = quick_cache::OptionsBuilder::new()
                .shards(shards)
                .estimated_items_capacity(capacity)
                .weight_capacity(capacity as u64)
                .build();
            match options {
                Ok(options) => Cache::with_options(
                    options,
                    quick_cache::UnitWeighter,
                    quick_cache::DefaultHashBuilder::default(),
                    quick_cache::sync::DefaultLifecycle::default(),
                ),
                // Unreachable: both required options are set above.
                Err(_) => Cache::new(capacity),
            }
        });
        Self {
            capacity,
            idle,
            entries,
            epoch: Instant::now(),
            swept: AtomicU64::new(0),
        }
    }

    /// Nanoseconds since the epoch (saturating; u64 nanoseconds last 584 years).
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn is_fresh(&self, entry: &Entry, now: u64) -> bool {
        let idle = u64::try_from(self.idle.as_nanos()).unwrap_or(u64::MAX);
        now.saturating_sub(entry.used.load(Ordering::Relaxed)) < idle
    }

    /// The plaintext of `wrapped`, if it is the key cached for the subject.
    /// A different wrapped key (rewrapped, or destroyed and recreated) or
    /// an idle one evicts the entry.
    pub(super) fn get(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        wrapped: &WrappedKey,
    ) -> Option<Arc<SecretBytes>> {
        let entries = self.entries.as_ref()?;
        let id = (tenant.clone(), subject.clone());
        let entry = entries.get(&id)?;
        let now = self.now();
        if entry.wrapped == *wrapped && self.is_fresh(&entry, now) {
            entry.used.store(now, Ordering::Relaxed);
            return Some(entry.key.clone());
        }
        // Only this very entry: another caller may have cached the new key
        // since.
        entries.remove_if(&id, |current| Arc::ptr_eq(current, &entry));
        None
    }

    /// Remember that `wrapped` unwraps to `key` for the subject.
    pub(super) fn insert(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        wrapped: WrappedKey,
        key: Arc<SecretBytes>,
    ) {
        let Some(entries) = &self.entries else {
            return;
        };
        let now = self.now();
        self.sweep_idle(entries, now);
        entries.insert(
            (tenant.clone(), subject.clone()),
            Arc::new(Entry {
                wrapped,
                key,
                used: AtomicU64::new(now),
            }),
        );
    }

    /// Drops the keys idle for longer than `idle`, at most once per `idle`
    /// (one shard locked at a time), so a plaintext key left unused does
    /// not stay in memory for long while the store is in use.
    fn sweep_idle(&self, entries: &Cache<(TenantId, PrincipalId), Arc<Entry>>, now: u64) {
        let idle = u64::try_from(self.idle.as_nanos()).unwrap_or(u64::MAX);
        let last = self.swept.load(Ordering::Relaxed);
        if now.saturating_sub(last) < idle
            || self
                .swept
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        entries.retain(|_, entry| self.is_fresh(entry, now));
    }

    /// Forget the subject's key.
    pub(super) fn remove(&self, tenant: &TenantId, subject: &PrincipalId) {
        if let Some(entries) = &self.entries {
            entries.remove(&(tenant.clone(), subject.clone()));
        }
    }

    /// How many keys are cached.
    pub(super) fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, Cache::len)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(i: usize) -> (TenantId, PrincipalId) {
        (
            TenantId::new("acme").expect("tenant"),
            PrincipalId::new(format!("user-{i}")).expect("subject"),
        )
    }

    fn wrapped(i: usize) -> WrappedKey {
        WrappedKey::new("k1", 1, i.to_le_bytes().to_vec())
    }

    fn key(i: usize) -> Arc<SecretBytes> {
        Arc::new(SecretBytes::from(i.to_le_bytes().to_vec()))
    }

    #[test]
    fn many_entries_stay_within_capacity_and_the_kept_ones_are_right() {
        for capacity in [1, 2, 3, 100, 1000, 1024] {
            let cache = KeyCache::new(capacity, Duration::from_secs(60));
            for i in 0..capacity * 20 {
                let (tenant, who) = subject(i);
                cache.insert(&tenant, &who, wrapped(i), key(i));
                assert!(cache.len() <= capacity, "{} > {capacity}", cache.len());
            }
            assert!(cache.len() > 0);
            let mut hits = 0;
            for i in 0..capacity * 20 {
                let (tenant, who) = subject(i);
                if let Some(found) = cache.get(&tenant, &who, &wrapped(i)) {
                    assert!(found.eq_secret(&key(i)), "subject {i} got another key");
                    hits += 1;
                }
                // Another subject's wrapped key never unlocks this one.
                assert!(cache.get(&tenant, &who, &wrapped(i + 1)).is_none());
            }
            assert!(hits <= capacity);
        }
    }

    #[test]
    fn a_key_in_steady_use_survives_a_flood_of_one_off_keys() {
        let cache = KeyCache::new(64, Duration::from_secs(60));
        let (tenant, hot) = subject(usize::MAX);
        cache.insert(&tenant, &hot, wrapped(7), key(7));
        for i in 0..10_000 {
            let (tenant, who) = subject(i);
            cache.insert(&tenant, &who, wrapped(i), key(i));
            assert!(cache.get(&tenant, &hot, &wrapped(7)).is_some(), "after {i}");
        }
        assert!(cache.len() <= 64);
    }

    #[test]
    fn an_idle_key_is_not_served_and_is_swept_out() {
        let cache = KeyCache::new(8, Duration::ZERO);
        let (tenant, who) = subject(1);
        cache.insert(&tenant, &who, wrapped(1), key(1));
        assert!(cache.get(&tenant, &who, &wrapped(1)).is_none(), "idle");
        assert_eq!(cache.len(), 0, "the idle entry is dropped on lookup");
        cache.insert(&tenant, &who, wrapped(1), key(1));
        let (tenant2, other) = subject(2);
        cache.insert(&tenant2, &other, wrapped(2), key(2));
        assert!(cache.len() <= 1, "the sweep dropped the idle key");
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = KeyCache::new(0, Duration::from_secs(60));
        let (tenant, who) = subject(1);
        cache.insert(&tenant, &who, wrapped(1), key(1));
        assert!(cache.get(&tenant, &who, &wrapped(1)).is_none());
        assert_eq!(cache.len(), 0);
    }
}
