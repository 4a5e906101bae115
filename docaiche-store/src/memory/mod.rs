//! In-memory reference backends for every store trait of `docaiche-core`.
//!
//! These are real implementations, not mocks: bounded, correct under
//! concurrency, driven by an injected [`Clock`], and run through the same
//! conformance suite as the database adapters. They suit tests, single-process
//! deployments and examples. They keep nothing across restarts.
//!
//! | type | trait | bound | when full |
//! |---|---|---|---|
//! | [`MemoryAccountStore`] | [`AccountStore`](docaiche_core::AccountStore) | accounts | refuses (`Unavailable`) |
//! | [`MemoryCustomRoleStore`] | [`CustomRoleStore`](docaiche_core::CustomRoleStore) | roles per tenant (`MAX_CUSTOM_ROLES`) | refuses a new role (`Conflict`, the contract's bound) |
//! | [`MemoryMfaStore`] | [`MfaStore`](docaiche_core::MfaStore) | enrolments | refuses (`Unavailable`) |
//! | [`MemoryApiKeyStore`] | [`ApiKeyStore`](docaiche_core::ApiKeyStore) | records | refuses (`Unavailable`) |
//! | [`MemoryRevocationStore`] | [`TokenRevocationStore`](docaiche_core::TokenRevocationStore) | live entries | forgets expired entries, then refuses |
//! | [`MemoryDocumentStore`] | [`DocumentStore`](docaiche_core::DocumentStore) | total bytes | refuses |
//! | [`MemoryCacheStore`] | [`CacheStore`](docaiche_core::CacheStore) | entries | forgets expired, then evicts the entry closest to expiry |
//! | [`MemoryJobQueue`] | [`JobQueue`](docaiche_core::JobQueue) | jobs | forgets the oldest finished jobs, then refuses |
//! | [`MemoryUsageStore`] | [`UsageStore`](docaiche_core::UsageStore) | rows (minute, hour, day) | refuses the batch (the flusher retries it) |
//! | [`MemoryWebSessionStore`] | [`WebSessionStore`](docaiche_core::WebSessionStore) | sessions | refuses (`Unavailable`) |
//! | [`MemoryAuditSink`] | [`AuditSink`](docaiche_core::AuditSink) | events | refuses: never drops an event |
//!
//! A refusal is `Error::Unavailable` whose source is a [`CapacityExceeded`]:
//! the error callers already fail closed on, with a message naming the bound.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use docaiche_core::health::StaticHealthCheck;
use docaiche_core::{Clock, Error, Result, SystemClock};

mod account;
mod api_key;
mod audit;
mod cache;
mod custom_role;
mod document;
mod expiry;
mod job;
mod mfa;
mod revocation;
mod tenant;
mod usage;
mod web_session;

pub use account::MemoryAccountStore;
pub use api_key::MemoryApiKeyStore;
pub use audit::MemoryAuditSink;
pub use cache::MemoryCacheStore;
pub use custom_role::MemoryCustomRoleStore;
pub use document::MemoryDocumentStore;
pub use job::MemoryJobQueue;
pub use mfa::MemoryMfaStore;
pub use revocation::MemoryRevocationStore;
pub use tenant::MemoryTenantStore;
pub use usage::MemoryUsageStore;
pub use web_session::MemoryWebSessionStore;

/// A memory store reached its configured bound and refused to grow.
///
/// Carried as the source of an [`Error::Unavailable`]; the message names the
/// store and the bound so the operator knows which setting to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CapacityExceeded {
    /// Which store (`memory api key store`, …).
    pub store: &'static str,
    /// The bound that was reached.
    pub limit: u64,
    /// What the bound counts (`records`, `bytes`, …).
    pub unit: &'static str,
}

impl fmt::Display for CapacityExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is full: limit is {} {}",
            self.store, self.limit, self.unit
        )
    }
}

impl std::error::Error for CapacityExceeded {}

pub(crate) fn capacity_exceeded(store: &'static str, limit: usize, unit: &'static str) -> Error {
    Error::unavailable(
        store,
        CapacityExceeded {
            store,
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
            unit,
        },
    )
}

/// A health check for an in-memory store: always up (there is nothing to
/// probe). Register one per store so the readiness report lists it.
#[must_use]
pub fn health_check(name: &'static str) -> StaticHealthCheck {
    StaticHealthCheck::up(name)
}

pub(crate) fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock::new())
}

/// Lock a store's state. The state is only mutated through methods that
/// leave it consistent before any point that could panic, so a poisoned lock
/// (a panic in another thread) still guards consistent data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Parse a keyset cursor: the UUID of the last item of the previous page.
pub(crate) fn parse_cursor(after: Option<&str>) -> Result<Option<uuid::Uuid>> {
    after
        .map(|c| {
            uuid::Uuid::parse_str(c).map_err(|_| Error::invalid_input("malformed page cursor"))
        })
        .transpose()
}

/// Cut one page out of an id-ordered iterator of items strictly after the cursor.
pub(crate) fn page_of<T>(
    items: impl Iterator<Item = T>,
    limit: u32,
    id_of: impl Fn(&T) -> uuid::Uuid,
) -> docaiche_core::page::Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut items: Vec<T> = items.take(limit.saturating_add(1)).collect();
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| id_of(last).to_string())
    } else {
        None
    };
    docaiche_core::page::Page::new(items, next)
}

#[cfg(test)]
mod tests;
