//! Legal holds: a hold suspends purging (and erasure) of what it covers.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use docaiche_core::{Error, PrincipalId, Result, TenantId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A legal hold on a tenant's data: all of it, one resource kind, one data
/// subject, or one kind of one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LegalHold {
    /// Hold id (UUIDv7).
    pub id: Uuid,
    /// The tenant whose data is held.
    pub tenant: TenantId,
    /// The data subject held, or `None` for every subject.
    pub subject: Option<PrincipalId>,
    /// The resource kind held, or `None` for every kind.
    pub resource_kind: Option<String>,
    /// Why (case or matter reference).
    pub reason: String,
    /// Who placed it.
    pub placed_by: PrincipalId,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub placed_at: OffsetDateTime,
    /// When it was released (`None` while active).
    #[serde(with = "time::serde::rfc3339::option")]
    pub released_at: Option<OffsetDateTime>,
}

impl LegalHold {
    /// A tenant-wide hold on every kind and subject; narrow it with
    /// [`LegalHold::on_subject`] and [`LegalHold::on_kind`].
    #[must_use]
    pub fn new(
        tenant: TenantId,
        reason: impl Into<String>,
        placed_by: PrincipalId,
        placed_at: OffsetDateTime,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            tenant,
            subject: None,
            resource_kind: None,
            reason: reason.into(),
            placed_by,
            placed_at,
            released_at: None,
        }
    }

    /// Hold only this subject's data.
    #[must_use]
    pub fn on_subject(mut self, subject: PrincipalId) -> Self {
        self.subject = Some(subject);
        self
    }

    /// Hold only this resource kind.
    #[must_use]
    pub fn on_kind(mut self, kind: impl Into<String>) -> Self {
        self.resource_kind = Some(kind.into());
        self
    }

    /// Whether the hold is active.
    #[must_use]
    pub const fn is_active(&self) -> bool {
        self.released_at.is_none()
    }

    /// Whether this (active) hold covers an item of `kind` in `tenant`
    /// belonging to `subject` (`None`: the item has no known subject, so
    /// only holds on every subject cover it).
    #[must_use]
    pub fn covers(&self, tenant: &TenantId, kind: &str, subject: Option<&PrincipalId>) -> bool {
        self.is_active()
            && &self.tenant == tenant
            && self.resource_kind.as_deref().is_none_or(|k| k == kind)
            && self.subject.as_ref().is_none_or(|s| Some(s) == subject)
    }

    /// Whether this (active) hold covers every item of `kind` in `tenant`.
    #[must_use]
    pub fn covers_whole_kind(&self, tenant: &TenantId, kind: &str) -> bool {
        self.subject.is_none() && self.covers(tenant, kind, None)
    }
}

/// Where legal holds are kept.
///
/// Contract: tenant-scoped like every store; `release` is idempotent and
/// keeps the first release time; released holds stay listed by `all` (the
/// record of a hold outlives it).
#[async_trait]
pub trait LegalHoldRegistry: Send + Sync + fmt::Debug + 'static {
    /// Place a hold.
    ///
    /// # Errors
    /// `Conflict` if the id exists; `Unavailable` on outage or when full.
    async fn place(&self, hold: LegalHold) -> Result<()>;

    /// Release a hold at `at`. Returns whether it exists in `tenant`.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn release(&self, tenant: &TenantId, id: &Uuid, at: OffsetDateTime) -> Result<bool>;

    /// Every hold of `tenant`, active or released, oldest first.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn all(&self, tenant: &TenantId) -> Result<Vec<LegalHold>>;

    /// The active holds of `tenant`.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn active(&self, tenant: &TenantId) -> Result<Vec<LegalHold>> {
        let mut holds = self.all(tenant).await?;
        holds.retain(LegalHold::is_active);
        Ok(holds)
    }

    /// Whether an item of `kind` belonging to `subject` is held.
    ///
    /// # Errors
    /// `Unavailable` on outage (callers must then not purge or erase).
    async fn is_held(
        &self,
        tenant: &TenantId,
        kind: &str,
        subject: Option<&PrincipalId>,
    ) -> Result<bool> {
        Ok(self
            .active(tenant)
            .await?
            .iter()
            .any(|h| h.covers(tenant, kind, subject)))
    }
}

/// Legal holds in memory, bounded (default 10 000 holds).
#[derive(Debug)]
pub struct MemoryLegalHoldRegistry {
    max_holds: usize,
    holds: Mutex<Vec<LegalHold>>,
}

impl Default for MemoryLegalHoldRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLegalHoldRegistry {
    /// Default bound on the number of holds.
    pub const DEFAULT_MAX_HOLDS: usize = 10_000;

    /// An empty registry.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            max_holds: Self::DEFAULT_MAX_HOLDS,
            holds: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<LegalHold>> {
        // Plain data: a panic elsewhere leaves it consistent.
        self.holds.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The registry holds its maximum number of holds.
#[derive(Debug)]
struct RegistryFull;

impl fmt::Display for RegistryFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("legal hold registry is full")
    }
}

impl std::error::Error for RegistryFull {}

#[async_trait]
impl LegalHoldRegistry for MemoryLegalHoldRegistry {
    async fn place(&self, hold: LegalHold) -> Result<()> {
        let mut holds = self.lock();
        if holds.iter().any(|h| h.id == hold.id) {
            return Err(Error::conflict("legal hold id exists"));
        }
        if holds.len() >= self.max_holds {
            return Err(Error::unavailable(
                "memory legal hold registry",
                RegistryFull,
            ));
        }
        holds.push(hold);
        Ok(())
    }

    async fn release(&self, tenant: &TenantId, id: &Uuid, at: OffsetDateTime) -> Result<bool> {
        let mut holds = self.lock();
        match holds
            .iter_mut()
            .find(|h| &h.tenant == tenant && &h.id == id)
        {
            Some(hold) => {
                hold.released_at.get_or_insert(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn all(&self, tenant: &TenantId) -> Result<Vec<LegalHold>> {
        Ok(self
            .lock()
            .iter()
            .filter(|h| &h.tenant == tenant)
            .cloned()
            .collect())
    }
}
