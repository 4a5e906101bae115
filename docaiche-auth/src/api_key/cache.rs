//! The bounded, short-lived cache of verified keys.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use docaiche_core::Clock;

/// A bounded map from lookup id to a verified value, each entry living at
/// most `ttl` (on the [`Clock`]'s monotonic time).
///
/// Written by hand (about 80 lines) rather than with `moka`: we need an
/// invalidation that also wins against a verification already in flight
/// (see [`TtlCache::generation`]), the injected clock for tests, and no
/// background threads; `moka` brings all three differently and doubles the
/// crate's build time on a small CI machine.
///
/// Capacity: when full, expired entries are dropped first, then the oldest
/// tenth, so an insert costs amortised O(1) even under a flood of distinct
/// valid keys.
#[derive(Debug)]
pub(crate) struct TtlCache<V> {
    ttl: Duration,
    capacity: usize,
    clock: Arc<dyn Clock>,
    state: RwLock<State<V>>,
}

#[derive(Debug)]
struct State<V> {
    /// Only verified keys are inserted, so callers cannot fill the map with
    /// colliding lookups: foldhash (randomly seeded) rather than SipHash on
    /// this per-request path.
    entries: HashMap<Box<str>, (Duration, V), foldhash::fast::RandomState>,
    /// Bumped by every invalidation; an insert computed before the latest
    /// invalidation is discarded.
    generation: u64,
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new(ttl: Duration, capacity: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            clock,
            state: RwLock::new(State {
                entries: HashMap::default(),
                generation: 0,
            }),
        }
    }

    /// The live value for `lookup`.
    pub(crate) fn get(&self, lookup: &str) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        let now = self.clock.monotonic();
        let state = self.read();
        let (inserted, value) = state.entries.get(lookup)?;
        (now.saturating_sub(*inserted) < self.ttl).then(|| value.clone())
    }

    /// The generation to pass to [`TtlCache::insert`]: read it *before*
    /// reading the store.
    pub(crate) fn generation(&self) -> u64 {
        self.read().generation
    }

    /// Cache `value` unless an invalidation happened since `generation`
    /// was read (the value may be stale then).
    pub(crate) fn insert(&self, lookup: &str, value: V, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let now = self.clock.monotonic();
        let mut state = self.write();
        if state.generation != generation {
            return;
        }
        if state.entries.len() >= self.capacity && !state.entries.contains_key(lookup) {
            let ttl = self.ttl;
            state
                .entries
                .retain(|_, (inserted, _)| now.saturating_sub(*inserted) < ttl);
            if state.entries.len() >= self.capacity {
                evict_oldest_tenth(&mut state.entries);
            }
        }
        state.entries.insert(lookup.into(), (now, value));
    }

    /// Forget `lookup`, and make every verification in flight skip its
    /// insert.
    pub(crate) fn invalidate(&self, lookup: &str) {
        let mut state = self.write();
        state.generation = state.generation.wrapping_add(1);
        state.entries.remove(lookup);
    }

    /// Forget every entry, and make every verification in flight skip its
    /// insert.
    pub(crate) fn clear(&self) {
        let mut state = self.write();
        state.generation = state.generation.wrapping_add(1);
        state.entries.clear();
    }

    /// How many entries are held (live or not yet swept).
    pub(crate) fn len(&self) -> usize {
        self.read().entries.len()
    }

    fn read(&self) -> RwLockReadGuard<'_, State<V>> {
        // The state is plain data, consistent between statements: recover
        // from a poisoned lock rather than failing every request after.
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State<V>> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn evict_oldest_tenth<V>(
    entries: &mut HashMap<Box<str>, (Duration, V), foldhash::fast::RandomState>,
) {
    let mut ages: Vec<Duration> = entries.values().map(|(at, _)| *at).collect();
    let cut = (ages.len() / 10).max(1);
    let (_, threshold, _) = ages.select_nth_unstable(cut - 1);
    let threshold = *threshold;
    let mut removed = 0;
    entries.retain(|_, (at, _)| {
        if removed < cut && *at <= threshold {
            removed += 1;
            false
        } else {
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use docaiche_core::ManualClock;

    use super::*;

    fn cache(ttl_secs: u64, capacity: usize) -> (TtlCache<u32>, ManualClock) {
        let clock = ManualClock::new();
        let cache = TtlCache::new(
            Duration::from_secs(ttl_secs),
            capacity,
            Arc::new(clock.clone()),
        );
        (cache, clock)
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let (cache, clock) = cache(30, 10);
        cache.insert("a", 1, cache.generation());
        clock.advance(Duration::from_secs(29));
        assert_eq!(cache.get("a"), Some(1));
        clock.advance(Duration::from_secs(1));
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn an_insert_computed_before_an_invalidation_is_discarded() {
        let (cache, _) = cache(30, 10);
        let generation = cache.generation();
        cache.invalidate("a");
        cache.insert("a", 1, generation);
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn stays_within_capacity() {
        let (cache, clock) = cache(30, 20);
        for i in 0..1000u32 {
            clock.advance(Duration::from_millis(1));
            cache.insert(&format!("k{i}"), i, cache.generation());
            assert!(cache.len() <= 20);
        }
        assert_eq!(cache.get("k999"), Some(999), "the newest survives");
        assert_eq!(cache.get("k0"), None, "the oldest was evicted");
    }
}
