//! [`MemoryWebSessionStore`]: browser sessions in process memory.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use docaiche_core::web_session::{WebSession, WebSessionKey, WebSessionStore};
use docaiche_core::{Error, PrincipalId, Result, TenantId};
use time::OffsetDateTime;

use super::{capacity_exceeded, lock};

/// Sessions in this process's memory, at most a bounded number: for one
/// instance and for tests. Several instances need a shared store.
#[derive(Debug)]
pub struct MemoryWebSessionStore {
    sessions: Mutex<HashMap<WebSessionKey, WebSession>>,
    limit: usize,
}

impl Default for MemoryWebSessionStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryWebSessionStore {
    /// The default bound: 100,000 sessions.
    pub const DEFAULT_LIMIT: usize = 100_000;

    /// An empty store of [`Self::DEFAULT_LIMIT`] sessions.
    #[must_use]
    pub fn new() -> Self {
        Self::with_limit(Self::DEFAULT_LIMIT)
    }

    /// An empty store refusing new sessions beyond `limit`.
    #[must_use]
    pub fn with_limit(limit: usize) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<WebSessionKey, WebSession>> {
        lock(&self.sessions)
    }
}

#[async_trait]
impl WebSessionStore for MemoryWebSessionStore {
    async fn insert(&self, session: &WebSession) -> Result<()> {
        let mut sessions = self.lock();
        if sessions.contains_key(&session.key) {
            return Err(Error::conflict("web session"));
        }
        if sessions.len() >= self.limit {
            return Err(capacity_exceeded(
                "memory web session store",
                self.limit,
                "sessions",
            ));
        }
        sessions.insert(session.key, session.clone());
        Ok(())
    }

    async fn get(&self, key: &WebSessionKey) -> Result<Option<WebSession>> {
        Ok(self.lock().get(key).cloned())
    }

    async fn touch(&self, key: &WebSessionKey, at: OffsetDateTime) -> Result<bool> {
        Ok(self.lock().get_mut(key).is_some_and(|session| {
            session.last_seen_at = session.last_seen_at.max(at);
            true
        }))
    }

    async fn remove(&self, key: &WebSessionKey) -> Result<bool> {
        Ok(self.lock().remove(key).is_some())
    }

    async fn remove_subject(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<u64> {
        let mut sessions = self.lock();
        let before = sessions.len();
        sessions.retain(|_, s| !(s.tenant == *tenant && s.subject == *subject));
        Ok((before - sessions.len()) as u64)
    }

    async fn purge(
        &self,
        idle_before: OffsetDateTime,
        created_before: OffsetDateTime,
    ) -> Result<u64> {
        let mut sessions = self.lock();
        let before = sessions.len();
        sessions.retain(|_, s| s.last_seen_at >= idle_before && s.created_at >= created_before);
        Ok((before - sessions.len()) as u64)
    }
}
