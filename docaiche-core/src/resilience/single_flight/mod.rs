//! Single-flight: concurrent callers asking for the same key share one
//! computation.
//!
//! The first caller for a key (the *leader*) runs its computation; callers
//! arriving while it runs (the *waiters*) do not run theirs but receive a
//! clone of the leader's result, error included ([`Error`] is `Clone`). Once
//! the leader finishes, the key is free: the next call computes afresh.
//! Nothing is cached: this deduplicates work in flight (a cold cache key, a
//! token-introspection request, a secret fetch), it is not a cache.
//!
//! ## When the leader does not finish
//!
//! * **Panic.** The panic is caught at the computation's poll, the key is
//!   freed, every waiter receives [`Error::Internal`] ("computation
//!   panicked"), and the panic then resumes in the leader's task. A later call
//!   for the key starts fresh.
//! * **Cancellation.** If the leader's future is dropped before the
//!   computation finishes (its client hung up, an outer timeout fired), the
//!   key is freed and **a waiter takes over**: the first waiter to be polled
//!   becomes the new leader and runs *its own* computation, and the others
//!   wait for it. One caller giving up therefore never fails the others, at
//!   the price of starting the work again.
//!
//! ## Cost
//!
//! No task is spawned and nothing is allocated per call on the uncontended
//! path: the leader hashes the key once (std's randomly keyed SipHash, as
//! keys may come from requests), takes the map's mutex twice (to claim and to
//! free the key), clones the key once, and shares its result only if a waiter
//! joined, which is when the shared slot is allocated. One mutex guards the
//! map; the computation itself runs outside it.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use docaiche_core::resilience::SingleFlight;
//! use docaiche_core::Error;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! let group: SingleFlight<String, u64> = SingleFlight::new();
//! let runs = AtomicUsize::new(0);
//! let fetch = || async {
//!     runs.fetch_add(1, Ordering::SeqCst);
//!     tokio::task::yield_now().await;
//!     Ok(42)
//! };
//! let (a, b) = tokio::join!(
//!     group.run("tenant/acme".to_owned(), fetch),
//!     group.run("tenant/acme".to_owned(), fetch),
//! );
//! assert_eq!((a?, b?), (42, 42));
//! assert_eq!(runs.load(Ordering::SeqCst), 1);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use pin_project_lite::pin_project;

use crate::error::{Error, Result};

pub mod future;
mod layer;
mod service;
#[cfg(test)]
mod tests;

pub use layer::SingleFlightLayer;
pub use service::SingleFlightService;

/// A group of keyed computations, each run at most once at a time.
///
/// Cheap to clone; clones share the group. See the [module docs](self).
pub struct SingleFlight<K, V> {
    shared: Arc<Shared<K, V>>,
}

/// Keys in flight. `None` until a waiter joins: the leader alone never
/// allocates.
type Flights<K, V> = HashMap<Hashed<K>, Option<Arc<Flight<V>>>, BuildHasherDefault<PassThrough>>;

struct Shared<K, V> {
    flights: Mutex<Flights<K, V>>,
    /// Keys may come from requests, so they are hashed with std's randomly
    /// keyed SipHash (no hash flooding), once per call: the map re-uses that
    /// hash for both the insert and the remove.
    hasher: RandomState,
}

/// A key with its hash, computed once.
#[derive(Clone)]
struct Hashed<K> {
    hash: u64,
    key: K,
}

impl<K: PartialEq> PartialEq for Hashed<K> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}

impl<K: Eq> Eq for Hashed<K> {}

impl<K> Hash for Hashed<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Hands the precomputed hash of a [`Hashed`] key to the map unchanged.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in rather than lose it.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    /// An empty group.
    #[must_use]
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                flights: Mutex::new(HashMap::default()),
                hasher: RandomState::new(),
            }),
        }
    }

    /// Run `compute` for `key`, unless a computation for `key` is already in
    /// flight, in which case wait for that one and return a clone of its
    /// result.
    ///
    /// # Errors
    ///
    /// The shared computation's error; [`Error::Internal`] when it panicked.
    ///
    /// The future borrows the group; clone the group (cheap) to move it into
    /// a task.
    pub fn run<F, Fut>(&self, key: K, compute: F) -> impl Future<Output = Result<V>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V>>,
    {
        Run::new(&*self.shared, key, FnStart(compute))
    }

    /// How many keys have a computation in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.shared.lock().len()
    }

    /// How many waiters share the computation in flight for `key`.
    #[cfg(test)]
    fn waiters(&self, key: &K) -> usize {
        let key = self.shared.hashed(key.clone());
        self.shared
            .lock()
            .get(&key)
            .and_then(Option::as_ref)
            .map_or(0, |flight| Arc::strong_count(flight) - 1)
    }
}

impl<K, V> Default for SingleFlight<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Clone for SingleFlight<K, V> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K, V> fmt::Debug for SingleFlight<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlight")
            .field("in_flight", &self.shared.lock().len())
            .finish()
    }
}

impl<K, V> Shared<K, V> {
    fn lock(&self) -> MutexGuard<'_, Flights<K, V>> {
        // The map is only inserted into and removed from under the lock,
        // never left half-updated: recover from poisoning.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Hash + Eq + Clone, V> Shared<K, V> {
    fn hashed(&self, key: K) -> Hashed<K> {
        Hashed {
            hash: self.hasher.hash_one(&key),
            key,
        }
    }

    /// Lead the computation for `key`, or join the one in flight.
    fn join(&self, key: &Hashed<K>) -> Role<V> {
        let mut flights = self.lock();
        if let Some(slot) = flights.get_mut(key) {
            let flight = Arc::clone(slot.get_or_insert_with(|| Arc::new(Flight::new())));
            drop(flights);
            let waiter = flight.register();
            return Role::Waiting(Waiter {
                flight,
                slot: waiter,
            });
        }
        flights.insert(key.clone(), None);
        Role::Leading
    }

    /// Free `key` and hand `outcome` to its waiters, if any.
    fn finish(&self, key: &Hashed<K>, outcome: impl FnOnce() -> Outcome<V>) {
        let flight = self.lock().remove(key).flatten();
        if let Some(flight) = flight {
            flight.publish(outcome());
        }
    }
}

/// What waiters receive.
enum Outcome<V> {
    Done(Result<V>),
    /// The leader was dropped: take over.
    Abandoned,
}

/// The slot a leader's waiters share.
struct Flight<V> {
    state: Mutex<FlightState<V>>,
}

enum FlightState<V> {
    /// One waker slot per waiter.
    Running(Vec<Option<Waker>>),
    Finished(Outcome<V>),
}

impl<V> Flight<V> {
    fn new() -> Self {
        Self {
            state: Mutex::new(FlightState::Running(Vec::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FlightState<V>> {
        // Plain data inside; no user code runs under this lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self) -> usize {
        match &mut *self.lock() {
            FlightState::Running(wakers) => {
                wakers.push(None);
                wakers.len() - 1
            }
            // Finished before we registered: polling will see it.
            FlightState::Finished(_) => usize::MAX,
        }
    }

    fn publish(&self, outcome: Outcome<V>) {
        let previous = std::mem::replace(&mut *self.lock(), FlightState::Finished(outcome));
        if let FlightState::Running(wakers) = previous {
            for waker in wakers.into_iter().flatten() {
                waker.wake();
            }
        }
    }
}

struct Waiter<V> {
    flight: Arc<Flight<V>>,
    slot: usize,
}

impl<V: Clone> Waiter<V> {
    /// `Ready(Some(result))` once the leader finished, `Ready(None)` if it was
    /// abandoned.
    fn poll(&self, cx: &mut Context<'_>) -> Poll<Option<Result<V>>> {
        match &mut *self.flight.lock() {
            FlightState::Running(wakers) => {
                if let Some(slot) = wakers.get_mut(self.slot) {
                    match slot {
                        Some(waker) if waker.will_wake(cx.waker()) => {}
                        _ => *slot = Some(cx.waker().clone()),
                    }
                }
                Poll::Pending
            }
            FlightState::Finished(Outcome::Done(result)) => Poll::Ready(Some(result.clone())),
            FlightState::Finished(Outcome::Abandoned) => Poll::Ready(None),
        }
    }
}

enum Role<V> {
    Idle,
    Leading,
    Waiting(Waiter<V>),
    Done,
}

/// How a caller starts its computation if it becomes the leader.
trait Start {
    /// The computation.
    type Future;

    /// Start it.
    fn start(self) -> Self::Future;
}

/// [`Start`] for the closure of [`SingleFlight::run`].
struct FnStart<F>(F);

impl<F, Fut> Start for FnStart<F>
where
    F: FnOnce() -> Fut,
{
    type Future = Fut;

    fn start(self) -> Fut {
        (self.0)()
    }
}

/// The caller's side of a run, outside the pinned computation. Its `Drop`
/// frees the key if the leader is dropped mid-computation.
struct Caller<K, V, St, G>
where
    K: Hash + Eq + Clone,
    G: Deref<Target = Shared<K, V>>,
{
    shared: G,
    key: Hashed<K>,
    start: Option<St>,
    role: Role<V>,
}

impl<K, V, St, G> Drop for Caller<K, V, St, G>
where
    K: Hash + Eq + Clone,
    G: Deref<Target = Shared<K, V>>,
{
    fn drop(&mut self) {
        if matches!(self.role, Role::Leading) {
            self.shared.finish(&self.key, || Outcome::Abandoned);
        }
    }
}

pin_project! {
    /// The state machine shared by [`SingleFlight::run`] and the service.
    struct Run<K, V, St, Fut, G>
    where
        K: Hash,
        K: Eq,
        K: Clone,
        G: Deref<Target = Shared<K, V>>,
    {
        // Declared first so that the computation is dropped before the
        // caller frees the key and wakes the waiters.
        #[pin]
        computation: Option<Fut>,
        caller: Caller<K, V, St, G>,
    }
}

impl<K, V, St, Fut, G> Run<K, V, St, Fut, G>
where
    K: Hash + Eq + Clone,
    St: Start<Future = Fut>,
    G: Deref<Target = Shared<K, V>>,
{
    fn new(shared: G, key: K, start: St) -> Self {
        let key = shared.hashed(key);
        Self {
            computation: None,
            caller: Caller {
                shared,
                key,
                start: Some(start),
                role: Role::Idle,
            },
        }
    }
}

fn panicked() -> Error {
    Error::internal("computation panicked")
}

impl<K, V, St, Fut, E, G> Future for Run<K, V, St, Fut, G>
where
    K: Hash + Eq + Clone,
    G: Deref<Target = Shared<K, V>>,
    V: Clone,
    St: Start<Future = Fut>,
    Fut: Future<Output = Result<V, E>>,
    E: Into<Error>,
{
    type Output = Result<V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let caller = &mut *this.caller;
        loop {
            match &caller.role {
                Role::Idle => match caller.shared.join(&caller.key) {
                    Role::Leading => {
                        caller.role = Role::Leading;
                        let start = caller
                            .start
                            .take()
                            .expect("a caller leads at most once: leading ends the run");
                        match catch_unwind(AssertUnwindSafe(|| start.start())) {
                            Ok(computation) => this.computation.set(Some(computation)),
                            Err(panic) => {
                                caller.role = Role::Done;
                                caller
                                    .shared
                                    .finish(&caller.key, || Outcome::Done(Err(panicked())));
                                resume_unwind(panic);
                            }
                        }
                    }
                    role => caller.role = role,
                },
                Role::Leading => {
                    let computation = this
                        .computation
                        .as_mut()
                        .as_pin_mut()
                        .expect("a leader has a computation");
                    // Catch a panic here, where we still know who leads: a
                    // task runtime drops the future only after unwinding,
                    // when it would look like a cancellation.
                    let polled = catch_unwind(AssertUnwindSafe(|| computation.poll(cx)));
                    let result = match polled {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(result)) => result.map_err(Into::into),
                        Err(panic) => {
                            caller.role = Role::Done;
                            this.computation.set(None);
                            caller
                                .shared
                                .finish(&caller.key, || Outcome::Done(Err(panicked())));
                            resume_unwind(panic);
                        }
                    };
                    caller.role = Role::Done;
                    this.computation.set(None);
                    caller
                        .shared
                        .finish(&caller.key, || Outcome::Done(result.clone()));
                    return Poll::Ready(result);
                }
                Role::Waiting(waiter) => match ready!(waiter.poll(cx)) {
                    Some(result) => {
                        caller.role = Role::Done;
                        return Poll::Ready(result);
                    }
                    // The leader was dropped: try to lead (or join whoever
                    // got there first).
                    None => caller.role = Role::Idle,
                },
                Role::Done => panic!("single-flight future polled after completion"),
            }
        }
    }
}
