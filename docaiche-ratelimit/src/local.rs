//! The in-process limiter: [`LocalRateLimiter`], GCRA over a sharded,
//! bounded map of theoretical arrival times.
//!
//! # Design decision: our own GCRA over a sharded map, governor as baseline
//!
//! `governor` is the obvious candidate and the yardstick (the `ratelimit`
//! bench runs its keyed limiter in the same group), but its keyed
//! `RateLimiter` does not fit the [`RateLimiter`] contract:
//!
//! - **one quota per limiter**: governor fixes the `Quota` at construction;
//!   ours arrives with every call (tiers and route classes are chosen per
//!   request), so we would need one governor limiter per distinct quota;
//! - **no `peek`**: governor only decides-and-consumes. Its `StateStore`
//!   seam (`measure_and_replace`) could evaluate without replacing, but only
//!   through governor's own GCRA, which is crate-private;
//! - **different answers**: `check_key_n` with `n` above the burst size is an
//!   `InsufficientCapacity` error, not a decision with a `retry_after`, and a
//!   denial reports the earliest instant rather than our `remaining` and
//!   `reset_after`;
//! - **no memory bound**: `DashMapStateStore` keeps every key until
//!   `retain_recent` is called, with no cap on how many keys it holds, and
//!   does not give memory back on its own;
//! - **its own time**: governor reads a `governor::clock::Clock`; ours is a
//!   `dyn` [`Clock`] shared with the rest of the server and moved by hand in
//!   tests.
//!
//! So the decision is [`gcra`](crate::gcra) (exact integer nanoseconds, the
//! same function the Redis script ports), and the state is ours: `N` shards
//! (a power of two, at most 64), each a `Mutex<HashMap>` from key to TAT. The
//! key is hashed once with a per-limiter random SipHash key
//! ([`RandomState`], so attacker-chosen keys cannot be made to collide); the
//! shard is picked from bits 32.. of that hash and the shard's map reuses the
//! same hash without rehashing. A lookup of a known key allocates nothing;
//! only a new key allocates (its bytes, once). The cost compared with bare
//! governor is measured by `benches/ratelimit.rs`, both in the same group.
//!
//! # Memory bound and eviction
//!
//! A key whose TAT is not after `now` holds no information (it behaves like
//! an unknown key), so it can be dropped at any time. The limiter holds at
//! most [`max_keys`](LocalRateLimiter::max_keys) keys (default
//! [`DEFAULT_MAX_KEYS`]), split evenly across shards. There is no background
//! task; eviction runs inline, when a *new* key is inserted into a shard, and
//! is amortised O(1) per insertion:
//!
//! 1. when the shard has doubled in size since its last sweep (and holds at
//!    least 1024 keys or its whole share), it drops its idle keys first
//!    (O(len) once per doubling);
//! 2. if the shard is still at its share of `max_keys`, it evicts at least a
//!    sixteenth of its share, idle keys first, then the keys with the
//!    earliest TATs, which are the ones closest to idle and so lose the
//!    least: an evicted active key gets a full bucket back. Reaching this
//!    step takes more simultaneously active keys than `max_keys`.
//!
//! [`sweep`](LocalRateLimiter::sweep) drops every idle key now and gives the
//! shards' table memory back to the allocator once they are mostly empty;
//! call it from a periodic task if the server has quiet periods after bursts
//! of distinct keys. A stored entry is 33 bytes of table (hash, key pointer
//! and length, TAT, control byte; tables are a power of two at most 7/8
//! full) plus the key's bytes on the heap: `tests/memory.rs` measures 90
//! bytes per key (requested from the allocator) for 1,000,000 21-byte keys,
//! and every byte back after `sweep`.
//!
//! Memory is released by `sweep`; the inline steps keep the count bounded
//! but reuse the table they have.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use docaiche_core::Result;
use docaiche_core::clock::Clock;
use docaiche_core::rate_limit::{LimitCheck, Quota, RateLimitDecision, RateLimitKey, RateLimiter};
use smallvec::SmallVec;

use crate::ROUND_INLINE;
use crate::gcra::{Gcra, Outcome, nanos};

/// The default bound on stored keys: one million.
pub const DEFAULT_MAX_KEYS: NonZeroUsize = NonZeroUsize::new(1 << 20).expect("non-zero");

/// Most shards a limiter uses (fewer when `max_keys` is smaller).
const MAX_SHARDS: usize = 64;

/// A shard sweeps its idle keys on insertion once it holds this many (or
/// its whole share, if smaller) and has doubled since its last sweep. Below
/// it, idle keys stay until `sweep`: at most 64 × 1024 of them, a few MB,
/// and a key that went idle between two visits is found again instead of
/// being freed and allocated anew.
const MIN_SWEEP_LEN: usize = 1024;

/// Tables at most this large (in entries) are kept by `sweep` even when
/// empty: small enough not to matter, large enough not to churn.
const MIN_RETAINED_CAPACITY: usize = 16;

/// An in-process GCRA [`RateLimiter`] with a bound on the keys it keeps.
///
/// Decisions are exact (see [`gcra`](crate::gcra)) and atomic per key: a
/// check reads and writes the key's TAT under its shard's lock, so
/// concurrent checks never let more than the quota through. It never fails
/// and never panics; the async methods return `Ok` always and
/// [`check_sync`](Self::check_sync) / [`peek_sync`](Self::peek_sync) are the
/// same decisions without the `async_trait` box.
///
/// ```
/// use std::num::NonZeroU32;
/// use std::sync::Arc;
/// use std::time::Duration;
/// use docaiche_core::clock::ManualClock;
/// use docaiche_ratelimit::contracts::{Quota, RateLimitKey};
/// use docaiche_ratelimit::local::LocalRateLimiter;
///
/// let clock = ManualClock::new();
/// let limiter = LocalRateLimiter::new(Arc::new(clock.clone()));
/// let quota = Quota::per_second(NonZeroU32::new(2).expect("non-zero"));
/// let key = RateLimitKey::new("ip:203.0.113.7").expect("valid key");
/// let one = NonZeroU32::MIN;
///
/// assert!(limiter.check_sync(&key, &quota, one).allowed);
/// assert!(limiter.check_sync(&key, &quota, one).allowed);
/// let denied = limiter.check_sync(&key, &quota, one);
/// assert_eq!(denied.retry_after, Some(Duration::from_millis(500)));
///
/// clock.advance(Duration::from_millis(500));
/// assert!(limiter.peek_sync(&key, &quota, one).allowed);
/// ```
pub struct LocalRateLimiter {
    shards: Box<[Shard]>,
    /// `shards.len() - 1`; the length is a power of two.
    shard_mask: u64,
    hasher: RandomState,
    clock: Arc<dyn Clock>,
    max_keys: NonZeroUsize,
}

impl LocalRateLimiter {
    /// A limiter keeping at most [`DEFAULT_MAX_KEYS`] keys.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_max_keys(clock, DEFAULT_MAX_KEYS)
    }

    /// A limiter keeping at most `max_keys` keys.
    #[must_use]
    pub fn with_max_keys(clock: Arc<dyn Clock>, max_keys: NonZeroUsize) -> Self {
        let max = max_keys.get();
        // Every shard must be able to hold a key: a power of two ≤ max.
        let count = if max >= MAX_SHARDS {
            MAX_SHARDS
        } else {
            1 << max.ilog2()
        };
        let shards = (0..count)
            .map(|index| {
                let share = max / count + usize::from(index < max % count);
                Shard::new(share)
            })
            .collect();
        Self {
            shards,
            shard_mask: u64::try_from(count - 1).unwrap_or(0),
            hasher: RandomState::new(),
            clock,
            max_keys,
        }
    }

    /// The most keys this limiter stores.
    #[must_use]
    pub const fn max_keys(&self) -> NonZeroUsize {
        self.max_keys
    }

    /// How many keys are stored now, idle ones included (they go at the next
    /// sweep). Locks each shard in turn, so under load it is approximate.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().map.len()).sum()
    }

    /// Whether no key is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|shard| shard.lock().map.is_empty())
    }

    /// Drop every idle key (whose TAT is not after now) and give table
    /// memory back where a shard is mostly empty. Returns how many keys were
    /// dropped. Takes each shard's lock in turn, for O(keys in the shard).
    pub fn sweep(&self) -> usize {
        let now = self.now();
        self.shards
            .iter()
            .map(|shard| {
                let mut state = shard.lock();
                let removed = state.remove_idle(now);
                state.release_memory();
                removed
            })
            .sum()
    }

    /// [`RateLimiter::check`] without the future: take `cost` units from
    /// `key` under `quota` if available.
    #[must_use]
    #[inline]
    pub fn check_sync(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> RateLimitDecision {
        self.decide(key, quota, cost, true)
    }

    /// [`RateLimiter::peek`] without the future: what
    /// [`check_sync`](Self::check_sync) would answer now, consuming nothing.
    #[must_use]
    #[inline]
    pub fn peek_sync(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> RateLimitDecision {
        self.decide(key, quota, cost, false)
    }

    /// [`RateLimiter::check_all_now`] without the `Option`: every limit of
    /// `checks` or none, decided under the locks of every shard involved
    /// (taken in shard order, so concurrent rounds cannot deadlock).
    #[must_use]
    pub fn check_all_sync(&self, checks: &[LimitCheck<'_>]) -> Vec<RateLimitDecision> {
        /// One check of the round: its key's hash, then the key's TAT after
        /// it (the new one if it passes) and its outcome.
        struct Step {
            hash: u64,
            tat: Option<u64>,
            outcome: Option<Outcome>,
        }
        let now = self.now();
        // A policy has a few limits: the round's bookkeeping stays on the
        // stack.
        let mut steps: SmallVec<[Step; ROUND_INLINE]> = checks
            .iter()
            .map(|c| Step {
                hash: self.hasher.hash_one(c.key.as_str()),
                tat: None,
                outcome: None,
            })
            .collect();
        // Lock every shard involved, in increasing order.
        let mut locked: SmallVec<[(usize, MutexGuard<'_, ShardState>); ROUND_INLINE]> =
            SmallVec::with_capacity(steps.len());
        let mut last = None;
        while let Some(next) = steps
            .iter()
            .map(|step| self.shard_of(step.hash))
            .filter(|&shard| last.is_none_or(|last| shard > last))
            .min()
        {
            locked.push((next, self.shards[next].lock()));
            last = Some(next);
        }

        // Each check sees the TAT the earlier checks of the round would leave.
        let mut all_allowed = true;
        for i in 0..steps.len() {
            let (check, hash) = (&checks[i], steps[i].hash);
            let key = check.key.as_str();
            let earlier = (0..i)
                .rev()
                .find(|&j| steps[j].hash == hash && checks[j].key.as_str() == key);
            let current = match earlier {
                Some(j) => steps[j].tat,
                None => locked_shard(&mut locked, self.shard_of(hash))
                    .and_then(|state| state.map.get(&Probe { hash, key } as &dyn KeyView).copied()),
            };
            let outcome = Gcra::new(check.quota).evaluate(current, now, check.cost);
            let after = outcome.tat(now);
            all_allowed &= after.is_some();
            steps[i].tat = after.or(current);
            steps[i].outcome = Some(outcome);
        }

        if all_allowed {
            for (check, step) in checks.iter().zip(&steps) {
                let hash = step.hash;
                let (Some(tat), Some(state)) =
                    (step.tat, locked_shard(&mut locked, self.shard_of(hash)))
                else {
                    continue;
                };
                let key = check.key.as_str();
                match state.map.get_mut(&Probe { hash, key } as &dyn KeyView) {
                    Some(stored) => *stored = tat,
                    None => state.insert(hash, key, tat, now),
                }
            }
        }
        steps
            .iter()
            .filter_map(|step| step.outcome.as_ref().map(Outcome::to_decision))
            .collect()
    }

    fn now(&self) -> u64 {
        nanos(self.clock.monotonic())
    }

    /// The shard holding keys of `hash`.
    fn shard_of(&self, hash: u64) -> usize {
        usize::try_from((hash >> 32) & self.shard_mask).unwrap_or(0)
    }

    fn decide(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
        consume: bool,
    ) -> RateLimitDecision {
        let gcra = Gcra::new(quota);
        let key = key.as_str();
        let hash = self.hasher.hash_one(key);
        let shard = self.shard_of(hash);
        let probe = Probe { hash, key };
        // Read the clock before locking: a concurrent check may then store a
        // TAT computed from a slightly later `now`, which GCRA absorbs (it
        // works from max(TAT, now)); holding the lock across a clock read
        // would only lengthen the critical section.
        let now = self.now();
        let mut state = self.shards[shard].lock();
        if let Some(tat) = state.map.get_mut(&probe as &dyn KeyView) {
            let outcome = gcra.evaluate(Some(*tat), now, cost);
            if consume && let Some(new_tat) = outcome.tat(now) {
                *tat = new_tat;
            }
            return outcome.to_decision();
        }
        let outcome = gcra.evaluate(None, now, cost);
        if consume && let Some(new_tat) = outcome.tat(now) {
            state.insert(hash, key, new_tat, now);
        }
        outcome.to_decision()
    }
}

/// The state of shard `index` among the `locked` ones.
fn locked_shard<'a>(
    locked: &'a mut [(usize, MutexGuard<'_, ShardState>)],
    index: usize,
) -> Option<&'a mut ShardState> {
    locked
        .iter_mut()
        .find(|(i, _)| *i == index)
        .map(|(_, state)| &mut **state)
}

impl fmt::Debug for LocalRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalRateLimiter")
            .field("shards", &self.shards.len())
            .field("max_keys", &self.max_keys)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn check(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Result<RateLimitDecision> {
        Ok(self.check_sync(key, quota, cost))
    }

    async fn peek(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Result<RateLimitDecision> {
        Ok(self.peek_sync(key, quota, cost))
    }

    #[inline]
    fn check_now(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Option<Result<RateLimitDecision>> {
        Some(Ok(self.check_sync(key, quota, cost)))
    }

    #[inline]
    fn peek_now(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Option<Result<RateLimitDecision>> {
        Some(Ok(self.peek_sync(key, quota, cost)))
    }

    #[inline]
    fn check_all_now(&self, checks: &[LimitCheck<'_>]) -> Option<Result<Vec<RateLimitDecision>>> {
        Some(Ok(self.check_all_sync(checks)))
    }
}

/// One shard, on its own cache lines so neighbouring locks do not share.
#[repr(align(128))]
struct Shard(Mutex<ShardState>);

impl Shard {
    fn new(capacity: usize) -> Self {
        Self(Mutex::new(ShardState {
            map: HashMap::default(),
            capacity,
            sweep_at: MIN_SWEEP_LEN.min(capacity),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, ShardState> {
        // Nothing panics while the lock is held; were it to, the map still
        // holds plain TATs, each valid on its own: recover rather than fail
        // every later check.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct ShardState {
    map: HashMap<StoredKey, u64, BuildHasherDefault<Prehashed>>,
    /// This shard's share of `max_keys`, at least 1.
    capacity: usize,
    /// Sweep idle keys before inserting once the map holds this many.
    sweep_at: usize,
}

impl ShardState {
    /// Insert a new key, evicting first if the shard has grown enough (see
    /// the module docs for why this is amortised O(1)).
    fn insert(&mut self, hash: u64, key: &str, tat: u64, now: u64) {
        if self.map.len() >= self.sweep_at {
            self.remove_idle(now);
            if self.map.len() >= self.capacity {
                self.evict_earliest((self.capacity / 16).max(1));
            }
            self.sweep_at = self
                .map
                .len()
                .saturating_mul(2)
                .clamp(MIN_SWEEP_LEN.min(self.capacity), self.capacity);
        }
        self.map.insert(
            StoredKey {
                hash,
                key: key.into(),
            },
            tat,
        );
    }

    fn remove_idle(&mut self, now: u64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, tat| *tat > now);
        self.sweep_at = self
            .map
            .len()
            .saturating_mul(2)
            .clamp(MIN_SWEEP_LEN.min(self.capacity), self.capacity);
        before - self.map.len()
    }

    /// Remove `count` keys with the earliest TATs (ties broken by table
    /// order), or every key if there are no more than that.
    fn evict_earliest(&mut self, count: usize) {
        let Some(nth) = count.checked_sub(1).filter(|&nth| nth + 1 < self.map.len()) else {
            self.map.clear();
            return;
        };
        let mut tats: Vec<u64> = self.map.values().copied().collect();
        let (_, &mut threshold, _) = tats.select_nth_unstable(nth);
        let earlier = tats.iter().filter(|&&tat| tat < threshold).count();
        drop(tats);
        // Everything strictly earlier goes; of the keys at the threshold,
        // only as many as it takes to reach `count`.
        let mut ties = count - earlier;
        self.map.retain(|_, &mut tat| {
            if tat < threshold {
                false
            } else if tat == threshold && ties > 0 {
                ties -= 1;
                false
            } else {
                true
            }
        });
    }

    fn release_memory(&mut self) {
        let len = self.map.len();
        if self.map.capacity() > MIN_RETAINED_CAPACITY.max(len.saturating_mul(4)) {
            self.map.shrink_to(len.saturating_mul(2));
        }
    }
}

/// The stored form of a key: its hash (computed once, with the limiter's
/// random SipHash key) and its bytes.
struct StoredKey {
    hash: u64,
    key: Box<str>,
}

/// A borrowed lookup key: the same hash and bytes, without allocating.
struct Probe<'a> {
    hash: u64,
    key: &'a str,
}

/// What `StoredKey` and `Probe` share, so the map can be searched with a
/// `Probe` (through `Borrow<dyn KeyView>`).
trait KeyView {
    fn hash(&self) -> u64;
    fn key(&self) -> &str;
}

impl KeyView for StoredKey {
    fn hash(&self) -> u64 {
        self.hash
    }
    fn key(&self) -> &str {
        &self.key
    }
}

impl KeyView for Probe<'_> {
    fn hash(&self) -> u64 {
        self.hash
    }
    fn key(&self) -> &str {
        self.key
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for StoredKey {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

impl Hash for dyn KeyView + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(KeyView::hash(self));
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        KeyView::hash(self) == KeyView::hash(other) && self.key() == other.key()
    }
}

impl Eq for dyn KeyView + '_ {}

impl Hash for StoredKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for StoredKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}

impl Eq for StoredKey {}

/// A hasher that passes through the one `u64` written to it: the keys'
/// SipHash, computed before the shard was chosen.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in rather than panic.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests;
