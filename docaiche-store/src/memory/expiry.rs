//! [`ExpiringMap`]: the map-plus-expiry-index both the cache and the
//! revocation store need.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// Values that expire at a time `T`, with an index in expiry order so that
/// forgetting expired entries, or evicting the one closest to expiry, costs
/// O(log n) per entry rather than a scan.
#[derive(Debug)]
pub(crate) struct ExpiringMap<K, V, T> {
    entries: HashMap<K, (T, V)>,
    by_expiry: BTreeSet<(T, K)>,
}

impl<K, V, T> Default for ExpiringMap<K, V, T> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }
}

impl<K, V, T> ExpiringMap<K, V, T>
where
    K: Hash + Ord + Clone,
    T: Ord + Copy,
{
    /// The entry for `key` (expired or not) with its expiry.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&(T, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key)
    }

    /// Insert or replace `key`, expiring at `at`.
    pub(crate) fn insert(&mut self, key: K, at: T, value: V) {
        self.remove(&key);
        self.by_expiry.insert((at, key.clone()));
        self.entries.insert(key, (at, value));
    }

    /// Remove `key`, returning its entry.
    pub(crate) fn remove(&mut self, key: &K) -> Option<(T, V)> {
        let entry = self.entries.remove(key)?;
        self.by_expiry.remove(&(entry.0, key.clone()));
        Some(entry)
    }

    /// Drop every entry expiring at or before `now`.
    pub(crate) fn forget_expired(&mut self, now: T) {
        while self.by_expiry.first().is_some_and(|(at, _)| *at <= now) {
            self.evict_soonest();
        }
    }

    /// Drop the entry closest to its expiry.
    pub(crate) fn evict_soonest(&mut self) {
        if let Some((_, key)) = self.by_expiry.pop_first() {
            self.entries.remove(&key);
        }
    }

    /// How many entries are held, expired ones included.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_in_expiry_order_and_keeps_the_index_in_step() {
        let mut map = ExpiringMap::default();
        map.insert("a", 30, 'a');
        map.insert("b", 10, 'b');
        map.insert("c", 20, 'c');
        map.insert("b", 40, 'B'); // replacing moves it in the index
        map.forget_expired(20);
        assert_eq!(map.len(), 2);
        assert!(map.get(&"c").is_none());
        map.evict_soonest();
        assert_eq!(map.get(&"b"), Some(&(40, 'B')));
        assert_eq!(map.remove(&"b"), Some((40, 'B')));
        map.forget_expired(u32::MAX);
        assert_eq!((map.len(), map.by_expiry.len()), (0, 0));
    }
}
