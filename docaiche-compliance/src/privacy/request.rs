//! Data-subject requests, their legal deadlines, and where they are kept.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use docaiche_core::{Error, PrincipalId, Result, TenantId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The law a request is made under; it sets the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Regulation {
    /// EU/UK GDPR: answer within one month (Art. 12(3)), counted here as
    /// 30 days.
    Gdpr,
    /// California CCPA/CPRA: respond within 45 days (Cal. Civ. Code
    /// § 1798.130(a)(2)).
    Ccpa,
}

impl Regulation {
    /// Days from receipt to the legal deadline.
    #[must_use]
    pub const fn deadline_days(self) -> i64 {
        match self {
            Self::Gdpr => 30,
            Self::Ccpa => 45,
        }
    }

    /// Stable name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Gdpr => "gdpr",
            Self::Ccpa => "ccpa",
        }
    }
}

/// What the subject asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RequestKind {
    /// Access and portability (GDPR Art. 15 and 20; CCPA right to know):
    /// one machine-readable bundle of everything held.
    Export,
    /// Erasure (GDPR Art. 17; CCPA right to delete).
    Erase,
}

impl RequestKind {
    /// Stable name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Erase => "erase",
        }
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RequestStatus {
    /// Recorded, not started.
    Received,
    /// Being carried out.
    InProgress,
    /// Done.
    Completed,
    /// Refused (e.g. a legal hold prevents erasure); see `failure`.
    Rejected,
    /// An attempt failed (an outage); it can be retried and is still open.
    Failed,
}

impl RequestStatus {
    /// Stable name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }
}

/// One data-subject request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PrivacyRequest {
    /// Request id (UUIDv7).
    pub id: Uuid,
    /// The tenant.
    pub tenant: TenantId,
    /// The data subject. After an erasure, their pseudonym.
    pub subject: PrincipalId,
    /// Export or erase.
    pub kind: RequestKind,
    /// Which law's deadline applies.
    pub regulation: Regulation,
    /// Where it stands.
    pub status: RequestStatus,
    /// Who filed it (an operator acting for the subject, or the subject).
    pub requested_by: PrincipalId,
    /// When it was received.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The legal deadline.
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    /// When it was completed or rejected.
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    /// Why it was rejected or failed (a stable reason code).
    pub failure: Option<String>,
}

impl PrivacyRequest {
    /// A request received at `received_at`, its deadline set by the
    /// regulation.
    #[must_use]
    pub fn new(
        tenant: TenantId,
        subject: PrincipalId,
        kind: RequestKind,
        regulation: Regulation,
        requested_by: PrincipalId,
        received_at: OffsetDateTime,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            tenant,
            subject,
            kind,
            regulation,
            status: RequestStatus::Received,
            requested_by,
            received_at,
            deadline: received_at + time::Duration::days(regulation.deadline_days()),
            completed_at: None,
            failure: None,
        }
    }

    /// Whether the request still needs work (received, in progress or
    /// failed and retryable).
    #[must_use]
    pub const fn is_open(&self) -> bool {
        matches!(
            self.status,
            RequestStatus::Received | RequestStatus::InProgress | RequestStatus::Failed
        )
    }

    /// Whether it is open past its deadline at `now`.
    #[must_use]
    pub fn is_overdue(&self, now: OffsetDateTime) -> bool {
        self.is_open() && now > self.deadline
    }
}

/// Where privacy requests are kept.
///
/// Contract: tenant-scoped (a request of another tenant is `None`);
/// `insert` with an existing id is `Err(Conflict)`; `update` replaces the
/// stored request with the same tenant and id and returns whether it
/// existed; `delete` removes the request with that tenant and id and
/// returns whether it existed (idempotent: `Ok(false)` once gone, and for
/// another tenant's request); `list` is ordered by id (receipt order).
#[async_trait]
pub trait PrivacyRequestStore: Send + Sync + fmt::Debug + 'static {
    /// Store a new request.
    ///
    /// # Errors
    /// `Conflict` if the id exists; `Unavailable` on outage or when full.
    async fn insert(&self, request: &PrivacyRequest) -> Result<()>;

    /// A request of `tenant`.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn get(&self, tenant: &TenantId, id: &Uuid) -> Result<Option<PrivacyRequest>>;

    /// Replace a stored request.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn update(&self, request: &PrivacyRequest) -> Result<bool>;

    /// Every request of `tenant`, oldest first.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn list(&self, tenant: &TenantId) -> Result<Vec<PrivacyRequest>>;

    /// Delete a request of `tenant` (retention: see
    /// [`PrivacyRequestPurgeTarget`](super::PrivacyRequestPurgeTarget),
    /// which only ever deletes closed requests).
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn delete(&self, tenant: &TenantId, id: &Uuid) -> Result<bool>;
}

/// Privacy requests in memory, bounded (default 100 000).
#[derive(Debug)]
pub struct MemoryPrivacyRequestStore {
    max_requests: usize,
    requests: Mutex<Vec<PrivacyRequest>>,
}

impl Default for MemoryPrivacyRequestStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryPrivacyRequestStore {
    /// Default bound on the number of requests held.
    pub const DEFAULT_MAX_REQUESTS: usize = 100_000;

    /// An empty store.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            max_requests: Self::DEFAULT_MAX_REQUESTS,
            requests: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<PrivacyRequest>> {
        // Plain data: consistent even after a panic elsewhere.
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The memory store holds its maximum number of requests.
#[derive(Debug)]
struct StoreFull;

impl fmt::Display for StoreFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("privacy request store is full")
    }
}

impl std::error::Error for StoreFull {}

#[async_trait]
impl PrivacyRequestStore for MemoryPrivacyRequestStore {
    async fn insert(&self, request: &PrivacyRequest) -> Result<()> {
        let mut requests = self.lock();
        if requests.iter().any(|r| r.id == request.id) {
            return Err(Error::conflict("privacy request id exists"));
        }
        if requests.len() >= self.max_requests {
            return Err(Error::unavailable(
                "memory privacy request store",
                StoreFull,
            ));
        }
        requests.push(request.clone());
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, id: &Uuid) -> Result<Option<PrivacyRequest>> {
        Ok(self
            .lock()
            .iter()
            .find(|r| &r.tenant == tenant && &r.id == id)
            .cloned())
    }

    async fn update(&self, request: &PrivacyRequest) -> Result<bool> {
        let mut requests = self.lock();
        match requests
            .iter_mut()
            .find(|r| r.tenant == request.tenant && r.id == request.id)
        {
            Some(stored) => {
                *stored = request.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<PrivacyRequest>> {
        Ok(self
            .lock()
            .iter()
            .filter(|r| &r.tenant == tenant)
            .cloned()
            .collect())
    }

    async fn delete(&self, tenant: &TenantId, id: &Uuid) -> Result<bool> {
        let mut requests = self.lock();
        let before = requests.len();
        requests.retain(|r| !(&r.tenant == tenant && &r.id == id));
        Ok(requests.len() < before)
    }
}
