//! Live pool figures: what sqlx reports (size, idle) plus what we measure
//! around every acquisition (waiters, acquire latency, failures).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// A snapshot of one connection pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PoolStats {
    /// Open connections (idle and in use).
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// Tasks waiting for a connection right now.
    pub waiting: u32,
    /// The configured maximum.
    pub max_connections: u32,
    /// Successful acquisitions since start.
    pub acquired: u64,
    /// Acquisitions that failed (timeout, connection refused) since start.
    pub acquire_failures: u64,
    /// Mean time to acquire a connection, over all acquisitions.
    pub mean_acquire: Duration,
    /// Longest time to acquire a connection since start.
    pub max_acquire: Duration,
}

impl PoolStats {
    /// Connections in use.
    #[must_use]
    pub const fn in_use(&self) -> u32 {
        self.size.saturating_sub(self.idle)
    }

    /// Whether every connection is in use and someone is waiting for one.
    #[must_use]
    pub const fn is_saturated(&self) -> bool {
        self.size >= self.max_connections && self.idle == 0 && self.waiting > 0
    }
}

/// Counters updated around each acquisition.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    waiting: AtomicU32,
    acquired: AtomicU64,
    failures: AtomicU64,
    total_wait_us: AtomicU64,
    max_wait_us: AtomicU64,
}

/// Decrements the waiter count when dropped (also when the acquiring future
/// is cancelled).
pub(crate) struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Meter {
    pub(crate) fn start_wait(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(&self.waiting)
    }

    pub(crate) fn finish_wait(&self, waited: Duration, ok: bool) {
        if ok {
            let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
            self.acquired.fetch_add(1, Ordering::Relaxed);
            self.total_wait_us.fetch_add(us, Ordering::Relaxed);
            self.max_wait_us.fetch_max(us, Ordering::Relaxed);
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, size: u32, idle: u32, max_connections: u32) -> PoolStats {
        let acquired = self.acquired.load(Ordering::Relaxed);
        let total = self.total_wait_us.load(Ordering::Relaxed);
        PoolStats {
            size,
            idle,
            waiting: self.waiting.load(Ordering::Relaxed),
            max_connections,
            acquired,
            acquire_failures: self.failures.load(Ordering::Relaxed),
            mean_acquire: Duration::from_micros(total.checked_div(acquired).unwrap_or(0)),
            max_acquire: Duration::from_micros(self.max_wait_us.load(Ordering::Relaxed)),
        }
    }
}
