//! [`ReadThrough`]: a cache in front of an expensive computation, without
//! stampedes — one computation per key per process on a miss, and
//! probabilistic early refresh so a hot key's expiry does not send every
//! instance to the computation at once.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use docaiche_core::cache::CacheKey;
//! use docaiche_store::memory::MemoryCacheStore;
//! use docaiche_store::read_through::ReadThrough;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> docaiche_core::Result<()> {
//! let cache = ReadThrough::new(Arc::new(MemoryCacheStore::new()));
//! let key = CacheKey::new("jwks", "https://issuer.example")?;
//! let ttl = Duration::from_secs(600);
//! let first = cache.get_or_load(&key, ttl, || async { Ok(Bytes::from_static(b"keys")) }).await?;
//! // A hit: the loader is not called.
//! let again = cache.get_or_load(&key, ttl, || async { unreachable!() }).await?;
//! assert_eq!(first, again);
//! # Ok(()) }
//! ```
//!
//! ## How a stampede is avoided
//!
//! * **Within a process**, concurrent misses for one key share one
//!   computation ([`SingleFlight`]): the first caller computes, the others
//!   wait for its result (or its error, which is not cached).
//! * **Across processes**, the *XFetch* rule of Vattani, Chierichetti and
//!   Lowenstein ("Optimal Probabilistic Cache Stampede Prevention", VLDB
//!   2015): each read of an entry recomputes it early with a probability
//!   that grows as its expiry nears, scaled by how long the computation took
//!   (`delta`, stored with the value) — recompute when
//!   `delta × beta × −ln(rand) ≥ ttl_remaining`. One reader usually
//!   refreshes a hot key shortly before it expires, and the others keep
//!   reading the old value meanwhile. `beta` (default 1) trades earlier
//!   refreshes for fewer simultaneous ones; 0 turns early refresh off.
//!
//! ## Failures
//!
//! The cache is an optimisation: a cache that fails (Redis down) is read as
//! a miss and written on a best-effort basis, with a `warn` log, so the
//! caller still gets the computed value. The computation's own error is
//! returned and never cached.
//!
//! ## Stored format
//!
//! Each value is stored behind a 5-byte header: a format byte (`1`) and the
//! computation's duration in milliseconds (big-endian `u32`). A value
//! without a valid header (written by someone else) is treated as a miss.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use docaiche_core::cache::{CacheKey, CacheStore};
use docaiche_core::clock::{Clock, SystemClock};
use docaiche_core::error::Result;
use docaiche_core::resilience::SingleFlight;

/// The format byte of stored values.
const FORMAT: u8 = 1;
/// Header length: the format byte and the delta.
const HEADER: usize = 5;

/// A read-through cache over any [`CacheStore`]; see the [module docs](self).
pub struct ReadThrough {
    cache: Arc<dyn CacheStore>,
    flights: SingleFlight<CacheKey, Bytes>,
    beta: f64,
    clock: Arc<dyn Clock>,
    random: Box<dyn Fn() -> f64 + Send + Sync>,
}

impl ReadThrough {
    /// A read-through cache over `cache`, with `beta` = 1.
    #[must_use]
    pub fn new(cache: Arc<dyn CacheStore>) -> Self {
        Self {
            cache,
            flights: SingleFlight::new(),
            beta: 1.0,
            clock: Arc::new(SystemClock::new()),
            random: Box::new(fastrand::f64),
        }
    }

    /// The early-refresh factor (default 1; 0 disables early refresh).
    /// Negative or non-finite values are treated as 0.
    #[must_use]
    pub fn with_beta(mut self, beta: f64) -> Self {
        self.beta = if beta.is_finite() && beta > 0.0 {
            beta
        } else {
            0.0
        };
        self
    }

    /// Measure computations on `clock` (a manual clock in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Draw XFetch's uniform random number in `[0, 1)` from `random`
    /// (for deterministic tests; the default is `fastrand::f64`).
    #[must_use]
    pub fn with_random(mut self, random: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        self.random = Box::new(random);
        self
    }

    /// The cached value of `key`, or `load`'s result, which is then cached
    /// for `ttl`. `load` runs at most once at a time per key in this process,
    /// and early (before expiry) with XFetch's probability.
    ///
    /// # Errors
    /// `load`'s error (never the cache's: a failing cache is a miss).
    pub async fn get_or_load<F, Fut>(&self, key: &CacheKey, ttl: Duration, load: F) -> Result<Bytes>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes>>,
    {
        match self.cache.get(key).await {
            Ok(Some(entry)) => {
                if let Some((delta, value)) = decode(&entry.value)
                    && !self.refresh_early(delta, entry.ttl_remaining)
                {
                    return Ok(value);
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%key, error = %error.log_chain(), "cache read failed; computing");
            }
        }
        self.flights
            .run(key.clone(), || self.load_and_store(key, ttl, load))
            .await
    }

    /// XFetch: whether to recompute now an entry that took `delta` to
    /// compute and has `remaining` to live.
    fn refresh_early(&self, delta: Duration, remaining: Duration) -> bool {
        if self.beta == 0.0 || delta.is_zero() {
            return false;
        }
        // 1 − U is in (0, 1], so its logarithm is finite and ≤ 0.
        let draw = 1.0 - (self.random)().clamp(0.0, 1.0 - f64::EPSILON);
        let gap = delta.as_secs_f64() * self.beta * -draw.ln();
        gap >= remaining.as_secs_f64()
    }

    async fn load_and_store<F, Fut>(&self, key: &CacheKey, ttl: Duration, load: F) -> Result<Bytes>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes>>,
    {
        let started = self.clock.monotonic();
        let value = load().await?;
        let delta = self.clock.monotonic().saturating_sub(started);
        if let Err(error) = self.cache.set(key, encode(delta, &value), ttl).await {
            tracing::warn!(%key, error = %error.log_chain(), "cache write failed");
        }
        Ok(value)
    }
}

fn encode(delta: Duration, value: &Bytes) -> Bytes {
    let millis = u32::try_from(delta.as_millis()).unwrap_or(u32::MAX);
    let mut out = BytesMut::with_capacity(HEADER + value.len());
    out.put_u8(FORMAT);
    out.put_u32(millis);
    out.put_slice(value);
    out.freeze()
}

fn decode(stored: &Bytes) -> Option<(Duration, Bytes)> {
    let header = stored.get(..HEADER)?;
    if header[0] != FORMAT {
        return None;
    }
    let millis = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    Some((
        Duration::from_millis(u64::from(millis)),
        stored.slice(HEADER..),
    ))
}

impl fmt::Debug for ReadThrough {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadThrough")
            .field("cache", &self.cache)
            .field("beta", &self.beta)
            .field("in_flight", &self.flights.in_flight())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use docaiche_core::Error;
    use docaiche_core::clock::ManualClock;

    use super::*;
    use crate::memory::MemoryCacheStore;

    fn key() -> CacheKey {
        CacheKey::new("test", "hot").expect("valid key")
    }

    const TTL: Duration = Duration::from_secs(60);

    fn setup(beta: f64, draw: f64) -> (ReadThrough, ManualClock, Arc<MemoryCacheStore>) {
        let clock = ManualClock::new();
        let store = Arc::new(MemoryCacheStore::new().with_clock(Arc::new(clock.clone())));
        let cache = ReadThrough::new(store.clone())
            .with_beta(beta)
            .with_clock(Arc::new(clock.clone()))
            .with_random(move || draw);
        (cache, clock, store)
    }

    #[tokio::test]
    async fn a_miss_loads_once_and_a_hit_does_not_load() {
        let (cache, _clock, _store) = setup(1.0, 0.5);
        let loads = AtomicUsize::new(0);
        for _ in 0..3 {
            let value = cache
                .get_or_load(&key(), TTL, || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok(Bytes::from_static(b"v"))
                })
                .await
                .expect("value");
            assert_eq!(value, Bytes::from_static(b"v"));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_load() {
        let k = key();
        let (cache, _clock, _store) = setup(0.0, 0.5);
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(Bytes::from_static(b"v"))
        };
        let results =
            futures_util::future::join_all((0..16).map(|_| cache.get_or_load(&k, TTL, load))).await;
        assert!(results.iter().all(|r| r.as_ref().is_ok_and(|v| v == "v")));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_are_returned_and_not_cached() {
        let (cache, _clock, _store) = setup(0.0, 0.5);
        let failed = cache
            .get_or_load(&key(), TTL, || async {
                Err(Error::unavailable("issuer", std::io::Error::other("down")))
            })
            .await;
        assert!(
            matches!(failed, Err(Error::Unavailable { .. })),
            "{failed:?}"
        );
        let value = cache
            .get_or_load(&key(), TTL, || async { Ok(Bytes::from_static(b"v")) })
            .await;
        assert_eq!(value.expect("value"), Bytes::from_static(b"v"));
    }

    /// XFetch with delta = 2 s, beta = 1 and a draw whose −ln(1 − u) = 1:
    /// refresh once the remaining TTL is at most 2 s, not before.
    #[tokio::test]
    async fn a_hot_key_is_refreshed_early_once_its_expiry_is_within_the_gap() {
        let draw = 1.0 - (-1.0_f64).exp();
        let (cache, clock, _store) = setup(1.0, draw);
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            clock.advance(Duration::from_secs(2));
            Ok(Bytes::from(format!("v{}", loads.load(Ordering::SeqCst))))
        };
        assert_eq!(
            cache.get_or_load(&key(), TTL, load).await.expect("value"),
            Bytes::from_static(b"v1")
        );
        // The entry was stored when the load ended: 60 s to live.
        clock.advance(Duration::from_secs(57));
        assert_eq!(
            cache.get_or_load(&key(), TTL, load).await.expect("value"),
            Bytes::from_static(b"v1")
        );
        clock.advance(Duration::from_secs(1) + Duration::from_millis(1));
        assert_eq!(
            cache.get_or_load(&key(), TTL, load).await.expect("value"),
            Bytes::from_static(b"v2"),
            "refreshed before expiry"
        );
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn beta_zero_never_refreshes_early() {
        let (cache, clock, _store) = setup(0.0, 0.999_999);
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            clock.advance(Duration::from_secs(30));
            Ok(Bytes::from_static(b"v"))
        };
        cache.get_or_load(&key(), TTL, load).await.expect("value");
        clock.advance(Duration::from_secs(59));
        cache.get_or_load(&key(), TTL, load).await.expect("value");
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_foreign_value_is_a_miss() {
        let (cache, _clock, store) = setup(0.0, 0.5);
        store
            .set(&key(), Bytes::from_static(b"\x07not ours"), TTL)
            .await
            .expect("set");
        let value = cache
            .get_or_load(&key(), TTL, || async { Ok(Bytes::from_static(b"ours")) })
            .await;
        assert_eq!(value.expect("value"), Bytes::from_static(b"ours"));
    }
}
