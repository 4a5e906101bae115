//! [`MemoryRevocationStore`].

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use docaiche_core::revocation::{
    IssuedToken, TokenRevocationStore, issued_within, validate_token_id,
};
use docaiche_core::{Clock, PrincipalId, Result, TenantId};
use time::OffsetDateTime;

use super::expiry::ExpiringMap;
use super::{capacity_exceeded, lock, system_clock};
use crate::trace::traced;

const STORE: &str = "memory revocation store";

/// Revoked token ids in memory, each forgotten once its token has expired.
///
/// Bounded to `max_entries` live revocations (default 1 000 000). When full,
/// expired entries are forgotten first; if every entry is still live, the new
/// revocation is refused with `Unavailable`
/// ([`CapacityExceeded`](super::CapacityExceeded)). A live revocation is never
/// dropped to make room: that would silently re-enable a revoked token.
#[derive(Debug)]
pub struct MemoryRevocationStore {
    clock: Arc<dyn Clock>,
    max_entries: usize,
    state: Mutex<State>,
    subjects: Mutex<Subjects>,
}

/// Token id → when the revocation may be forgotten.
type State = ExpiringMap<String, (), OffsetDateTime>;

/// Subject → (when the revocation may be forgotten, revoked through).
type Subjects = ExpiringMap<(TenantId, PrincipalId), OffsetDateTime, OffsetDateTime>;

impl MemoryRevocationStore {
    /// Default bound on live revocations.
    pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

    /// An empty store on the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self {
            clock: system_clock(),
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            state: Mutex::new(State::default()),
            subjects: Mutex::new(Subjects::default()),
        }
    }

    /// Read time from `clock` (a `ManualClock` in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Set the bound on live revocations (token ids and subjects, each).
    #[must_use]
    pub fn with_max_entries(mut self, max_entries: NonZeroUsize) -> Self {
        self.max_entries = max_entries.get();
        self
    }

    /// How many revocations are remembered (expired ones may linger until
    /// the next write).
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.state).len()
    }

    /// Whether nothing is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryRevocationStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl TokenRevocationStore for MemoryRevocationStore {
    async fn revoke(&self, token_id: &str, expires_at: OffsetDateTime) -> Result<()> {
        traced!("memory", "revoked_tokens", "revoke", async move {
            validate_token_id(token_id)?;
            let now = self.clock.now();
            let mut state = lock(&self.state);
            state.forget_expired(now);
            if let Some(&(current, ())) = state.get(token_id) {
                // Idempotent; a later expiry extends, an earlier one never shortens.
                if expires_at > current {
                    state.insert(token_id.to_owned(), expires_at, ());
                }
                return Ok(());
            }
            if expires_at <= now {
                // The token is already unusable: nothing to remember.
                return Ok(());
            }
            if state.len() >= self.max_entries {
                return Err(capacity_exceeded(
                    STORE,
                    self.max_entries,
                    "live revocations",
                ));
            }
            state.insert(token_id.to_owned(), expires_at, ());
            Ok(())
        })
        .await
    }

    async fn is_revoked(&self, token_id: &str) -> Result<bool> {
        traced!("memory", "revoked_tokens", "is_revoked", async move {
            self.token_revoked(token_id)
        })
        .await
    }

    async fn revoke_subject(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        through: OffsetDateTime,
        remember_until: OffsetDateTime,
    ) -> Result<()> {
        traced!("memory", "revoked_subjects", "revoke_subject", async move {
            let now = self.clock.now();
            let key = (tenant.clone(), subject.clone());
            let mut subjects = lock(&self.subjects);
            subjects.forget_expired(now);
            if let Some(&(until, current)) = subjects.get(&key) {
                // Monotonic: each bound only ever moves later.
                subjects.insert(key, until.max(remember_until), current.max(through));
                return Ok(());
            }
            if remember_until <= now {
                return Ok(());
            }
            if subjects.len() >= self.max_entries {
                return Err(capacity_exceeded(
                    STORE,
                    self.max_entries,
                    "live subject revocations",
                ));
            }
            subjects.insert(key, remember_until, through);
            Ok(())
        })
        .await
    }

    async fn subject_revoked_through(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
    ) -> Result<Option<OffsetDateTime>> {
        traced!(
            "memory",
            "revoked_subjects",
            "subject_revoked_through",
            async move { Ok(self.revoked_through(tenant, subject)) }
        )
        .await
    }

    async fn is_token_revoked(&self, token: &IssuedToken<'_>) -> Result<bool> {
        // One span for the check, like the stores that answer it in one
        // round trip.
        traced!("memory", "revoked_tokens", "is_token_revoked", async move {
            Ok(self.token_revoked(token.token_id)?
                || self
                    .revoked_through(token.tenant, token.subject)
                    .is_some_and(|through| issued_within(token.issued_at, through)))
        })
        .await
    }
}

impl MemoryRevocationStore {
    /// [`TokenRevocationStore::is_revoked`], without its span.
    fn token_revoked(&self, token_id: &str) -> Result<bool> {
        validate_token_id(token_id)?;
        let now = self.clock.now();
        let state = lock(&self.state);
        Ok(state.get(token_id).is_some_and(|(at, ())| now < *at))
    }

    /// [`TokenRevocationStore::subject_revoked_through`], without its span.
    fn revoked_through(&self, tenant: &TenantId, subject: &PrincipalId) -> Option<OffsetDateTime> {
        let now = self.clock.now();
        let subjects = lock(&self.subjects);
        subjects
            .get(&(tenant.clone(), subject.clone()))
            .filter(|(until, _)| now < *until)
            .map(|&(_, through)| through)
    }
}
