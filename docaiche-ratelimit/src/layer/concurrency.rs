//! Per-tenant concurrency limits: a counter of requests in flight per key,
//! in a bounded map.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::policy::ConcurrencyLimit;

/// The in-flight counters of one [`ConcurrencyLimit`].
///
/// A key is tracked only while it has requests in flight, so the map holds
/// at most [`ConcurrencyLimit::max_keys`] entries; when it is full, requests
/// of keys not yet tracked are refused (fail closed) until one finishes.
/// The lock guards a hash-map update and is never held across an `.await`.
pub(crate) struct ConcurrencyGate {
    limit: u32,
    max_keys: usize,
    in_flight: Mutex<HashMap<String, u32>>,
}

/// Why [`ConcurrencyGate::try_acquire`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The key has `limit` requests in flight.
    AtLimit,
    /// The map is full of other keys' requests.
    TooManyKeys,
}

impl ConcurrencyGate {
    pub(crate) fn new(limit: &ConcurrencyLimit) -> Self {
        Self {
            limit: limit.limit().get(),
            max_keys: limit.max_keys(),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Take a slot for `key` now, or refuse; never waits.
    pub(crate) fn try_acquire(self: &Arc<Self>, key: String) -> Result<ConcurrencyPermit, Refused> {
        let mut map = self.lock();
        let tracked = map.len();
        let remaining = match map.get_mut(&key) {
            Some(count) if *count >= self.limit => return Err(Refused::AtLimit),
            Some(count) => {
                *count += 1;
                self.limit - *count
            }
            None if tracked >= self.max_keys => return Err(Refused::TooManyKeys),
            None => {
                map.insert(key.clone(), 1);
                self.limit - 1
            }
        };
        drop(map);
        Ok(ConcurrencyPermit {
            gate: Arc::clone(self),
            key,
            remaining,
        })
    }

    /// Requests in flight for `key`.
    #[cfg(test)]
    pub(crate) fn in_flight(&self, key: &str) -> u32 {
        self.lock().get(key).copied().unwrap_or(0)
    }

    fn release(&self, key: &str) {
        let mut map = self.lock();
        if let Some(count) = map.get_mut(key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(key);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, u32>> {
        // Counters are plain integers updated in one step: still consistent
        // after a panic elsewhere, so recover rather than poison the layer.
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for ConcurrencyGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyGate")
            .field("limit", &self.limit)
            .field("max_keys", &self.max_keys)
            .field("tracked", &self.lock().len())
            .finish()
    }
}

/// A slot of a [`ConcurrencyGate`], given back on drop.
pub(crate) struct ConcurrencyPermit {
    gate: Arc<ConcurrencyGate>,
    key: String,
    remaining: u32,
}

impl ConcurrencyPermit {
    /// Slots left for the key when this one was taken.
    pub(crate) fn remaining(&self) -> u32 {
        self.remaining
    }
}

impl Drop for ConcurrencyPermit {
    fn drop(&mut self) {
        self.gate.release(&self.key);
    }
}

impl fmt::Debug for ConcurrencyPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyPermit")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::headers::PolicyName;

    fn gate(limit: u32, max_keys: usize) -> Arc<ConcurrencyGate> {
        let limit = ConcurrencyLimit::new(
            PolicyName::new("heavy").expect("name"),
            NonZeroU32::new(limit).expect("non-zero"),
            max_keys,
        );
        Arc::new(ConcurrencyGate::new(&limit))
    }

    #[test]
    fn refuses_over_the_limit_and_frees_the_slot_on_drop() {
        let gate = gate(2, 10);
        let a = gate.try_acquire("t:acme".into()).expect("first");
        assert_eq!(a.remaining(), 1);
        let b = gate.try_acquire("t:acme".into()).expect("second");
        assert_eq!(b.remaining(), 0);
        assert_eq!(
            gate.try_acquire("t:acme".into()).err(),
            Some(Refused::AtLimit)
        );
        let _other = gate.try_acquire("t:globex".into()).expect("other tenant");
        drop(a);
        assert_eq!(gate.in_flight("t:acme"), 1);
        let _c = gate.try_acquire("t:acme".into()).expect("slot freed");
    }

    #[test]
    fn the_map_is_bounded_and_forgets_idle_keys() {
        let gate = gate(1, 2);
        let a = gate.try_acquire("a".into()).expect("a");
        let _b = gate.try_acquire("b".into()).expect("b");
        assert_eq!(
            gate.try_acquire("c".into()).err(),
            Some(Refused::TooManyKeys)
        );
        drop(a);
        assert_eq!(gate.in_flight("a"), 0);
        let _c = gate.try_acquire("c".into()).expect("room again");
    }
}
