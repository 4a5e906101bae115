//! The [`JobQueue`] contract: durable background jobs with leases, retries,
//! a dead-letter state, progress and cancellation.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Result;
use crate::id::{JobId, TenantId};
use crate::page::{Page, PageRequest};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobState {
    /// Waiting to be claimed (possibly not before `run_after`).
    Queued,
    /// Claimed by a worker holding a lease.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Failed on its last allowed attempt: the dead-letter state.
    Dead,
    /// Cancelled by a client.
    Cancelled,
}

impl JobState {
    /// Every state, in the order of a job's life.
    pub const ALL: [Self; 5] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Dead,
        Self::Cancelled,
    ];

    /// The state named `name` (its [`as_str`](Self::as_str)), if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// Whether the job will not change state again.
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Dead | Self::Cancelled)
    }

    /// The snake-case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewJob {
    /// What kind of work (`extract`, `rewrap`, `purge`); workers claim by kind.
    pub kind: String,
    /// Input for the worker.
    pub payload: serde_json::Value,
    /// Attempts before the job goes dead (≥ 1).
    pub max_attempts: u32,
    /// Not before this time.
    pub run_after: Option<OffsetDateTime>,
}

impl NewJob {
    /// A job of `kind` with `payload`, 3 attempts, runnable now.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            max_attempts: 3,
            run_after: None,
        }
    }

    /// Set the number of attempts (clamped to at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobRecord {
    /// Id.
    pub id: JobId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// Kind.
    pub kind: String,
    /// Input.
    pub payload: serde_json::Value,
    /// Current state.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Progress, 0–100.
    pub progress: u8,
    /// Output of a succeeded job.
    pub result: Option<serde_json::Value>,
    /// Message of the last failure (operator-facing, no secrets).
    pub last_error: Option<String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last state change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Earliest time it may be claimed.
    #[serde(with = "time::serde::rfc3339")]
    pub run_after: OffsetDateTime,
}

impl JobRecord {
    /// A freshly queued job: no attempts, no progress, runnable at `created_at`.
    #[must_use]
    pub const fn new(
        id: JobId,
        tenant: TenantId,
        kind: String,
        payload: serde_json::Value,
        max_attempts: u32,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            tenant,
            kind,
            payload,
            state: JobState::Queued,
            attempts: 0,
            max_attempts,
            progress: 0,
            result: None,
            last_error: None,
            created_at,
            updated_at: created_at,
            run_after: created_at,
        }
    }
}

/// A worker's claim on a running job. The token proves ownership: once a
/// lease expires and another worker claims the job, the old token is void.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobLease {
    /// The job as claimed (state `Running`, `attempts` already incremented).
    pub job: JobRecord,
    /// Ownership token.
    pub token: uuid::Uuid,
    /// When the lease lapses unless extended by `heartbeat`.
    pub expires_at: OffsetDateTime,
}

impl JobLease {
    /// A lease on `job` proven by `token`, lapsing at `expires_at`.
    #[must_use]
    pub const fn new(job: JobRecord, token: uuid::Uuid, expires_at: OffsetDateTime) -> Self {
        Self {
            job,
            token,
            expires_at,
        }
    }
}

/// What a worker learns when it reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseStatus {
    /// Keep going; the lease was extended.
    Active,
    /// The job was cancelled: stop and drop the lease.
    Cancelled,
    /// The lease is no longer ours (expired and reclaimed, or finished).
    Lost,
}

/// A durable job queue.
///
/// Contract:
/// - Client-facing methods (`enqueue`, `get`, `cancel`) take the caller's
///   tenant. Worker methods (`claim` and those taking a lease) are not
///   tenant-scoped: workers serve every tenant; the lease's job names it.
/// - `claim` hands each runnable job to exactly one worker at a time, even
///   with several processes sharing one database (`FOR UPDATE SKIP LOCKED`
///   in PostgreSQL). A job whose lease expired is runnable again.
/// - Lease-taking methods check the token and do nothing if it is stale
///   (returning [`LeaseStatus::Lost`], `Ok(false)` or `Ok(None)`), so a slow
///   worker cannot overwrite the result of the one that took over. A lease is
///   stale once its `expires_at` has passed, whether or not another worker
///   has claimed the job yet.
/// - A job whose lease lapses on its last allowed attempt goes
///   [`JobState::Dead`] instead of being offered again.
/// - `fail` with `retry_in` re-queues while attempts remain; otherwise the
///   job goes [`JobState::Dead`].
/// - `cancel` only affects non-terminal jobs and is safe to repeat: the
///   first call returns `true`, later ones change nothing and return `false`.
/// - `retry` only affects dead jobs, likewise: the job is queued again with
///   no attempts spent, and claimable at once.
/// - `list` sees only the tenant's jobs, oldest first, filtered by state.
#[async_trait::async_trait]
pub trait JobQueue: Send + Sync + fmt::Debug + 'static {
    /// Enqueue a job for `tenant`.
    ///
    /// # Errors
    /// `InvalidInput` for an empty kind; `Unavailable` on outage.
    async fn enqueue(&self, tenant: &TenantId, job: NewJob) -> Result<JobRecord>;

    /// Claim the oldest runnable job of one of `kinds`, leasing it for `lease`.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn claim(&self, kinds: &[&str], lease: Duration) -> Result<Option<JobLease>>;

    /// Report progress (0–100) and extend the lease by `extend`.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn heartbeat(
        &self,
        lease: &JobLease,
        progress: u8,
        extend: Duration,
    ) -> Result<LeaseStatus>;

    /// Finish successfully with `result`. Returns whether the lease was valid.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn complete(&self, lease: &JobLease, result: serde_json::Value) -> Result<bool>;

    /// Record a failure; re-queue after `retry_in` if attempts remain and
    /// `retry_in` is `Some`, else dead-letter. Returns the new state, or
    /// `None` if the lease was stale.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn fail(
        &self,
        lease: &JobLease,
        error: &str,
        retry_in: Option<Duration>,
    ) -> Result<Option<JobState>>;

    /// Cancel a non-terminal job of `tenant`. Returns whether it is now
    /// cancelled (false if missing, another tenant's, or already terminal).
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn cancel(&self, tenant: &TenantId, id: &JobId) -> Result<bool>;

    /// A job of `tenant`.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn get(&self, tenant: &TenantId, id: &JobId) -> Result<Option<JobRecord>>;

    /// `tenant`'s jobs, in `state` when given, ordered by id (oldest
    /// first; ids are UUIDv7), a page at a time.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed cursor; `Unavailable` on outage.
    async fn list(
        &self,
        tenant: &TenantId,
        state: Option<JobState>,
        page: &PageRequest,
    ) -> Result<Page<JobRecord>>;

    /// Queue a [`JobState::Dead`] job of `tenant` again, runnable at once
    /// with its attempts reset to zero (its `last_error` stays until the
    /// next attempt ends). Returns whether it was dead: false if missing,
    /// another tenant's, or in any other state, and safe to repeat.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn retry(&self, tenant: &TenantId, id: &JobId) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_round_trip_and_match_serde() {
        for state in JobState::ALL {
            assert_eq!(JobState::from_name(state.as_str()), Some(state));
            let json = serde_json::to_value(state).expect("serializes");
            assert_eq!(json, state.as_str());
        }
        for unknown in ["", "Queued", "dead ", "zombie"] {
            assert_eq!(JobState::from_name(unknown), None, "{unknown:?}");
        }
    }
}
