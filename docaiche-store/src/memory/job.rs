//! [`MemoryJobQueue`].

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use docaiche_core::job::{JobLease, JobQueue, JobRecord, JobState, LeaseStatus, NewJob};
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::{Clock, Error, JobId, Result, TenantId};
use time::OffsetDateTime;

use super::{capacity_exceeded, lock, page_of, parse_cursor, system_clock};

const STORE: &str = "memory job queue";

/// A job queue in memory, with leases, retries, a dead-letter state,
/// progress and cancellation.
///
/// Leases are timed by the injected clock's wall time (the lease's
/// `expires_at` is a timestamp). A lease is valid until `expires_at`, strictly:
/// once it passes, the worker's `heartbeat` answers `Lost` and its `complete`
/// or `fail` is refused, whether or not another worker has claimed the job
/// yet. A job whose lease expired on its last allowed attempt goes `Dead`
/// (`last_error` = `lease expired`) instead of being handed out again, so a
/// job that crashes its workers cannot loop forever.
///
/// Holds at most `max_jobs` jobs (default 100 000). At the bound, the oldest
/// finished (succeeded, dead or cancelled) jobs are forgotten first; if every
/// job is still queued or running, `enqueue` is refused with `Unavailable`
/// ([`CapacityExceeded`](super::CapacityExceeded)).
///
/// `claim` scans jobs in id (creation) order under one lock: each runnable
/// job goes to exactly one caller, and the scan is linear in the number of
/// jobs held, which suits the sizes a single process queues.
#[derive(Debug)]
pub struct MemoryJobQueue {
    clock: Arc<dyn Clock>,
    max_jobs: usize,
    state: Mutex<BTreeMap<JobId, Entry>>,
}

#[derive(Debug)]
struct Entry {
    job: JobRecord,
    /// The latest lease handed out (kept after it ends so that its holder
    /// learns `Cancelled` rather than `Lost`).
    lease: Option<Lease>,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    token: uuid::Uuid,
    expires_at: OffsetDateTime,
}

impl Entry {
    /// The entry if `lease` is its current, unexpired lease on a running job.
    fn held_by(&mut self, lease: &JobLease, now: OffsetDateTime) -> Option<&mut Self> {
        let current = self.lease?;
        (current.token == lease.token
            && self.job.state == JobState::Running
            && now < current.expires_at)
            .then_some(self)
    }
}

fn after(now: OffsetDateTime, by: Duration) -> OffsetDateTime {
    now.checked_add(time::Duration::try_from(by).unwrap_or(time::Duration::MAX))
        .unwrap_or(now)
}

impl MemoryJobQueue {
    /// Default bound on the number of jobs held.
    pub const DEFAULT_MAX_JOBS: usize = 100_000;

    /// An empty queue on the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self {
            clock: system_clock(),
            max_jobs: Self::DEFAULT_MAX_JOBS,
            state: Mutex::new(BTreeMap::new()),
        }
    }

    /// Read time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Set the bound on the number of jobs held.
    #[must_use]
    pub fn with_max_jobs(mut self, max_jobs: NonZeroUsize) -> Self {
        self.max_jobs = max_jobs.get();
        self
    }

    /// How many jobs are held, finished ones included.
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.state).len()
    }

    /// Whether no job is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryJobQueue {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl JobQueue for MemoryJobQueue {
    async fn enqueue(&self, tenant: &TenantId, job: NewJob) -> Result<JobRecord> {
        if job.kind.is_empty() {
            return Err(Error::invalid_input("job kind must not be empty"));
        }
        let now = self.clock.now();
        let id = JobId::new();
        let mut record = JobRecord::new(
            id,
            tenant.clone(),
            job.kind,
            job.payload,
            job.max_attempts.max(1),
            now,
        );
        record.run_after = job.run_after.unwrap_or(now);
        let mut jobs = lock(&self.state);
        while jobs.len() >= self.max_jobs {
            let finished = jobs
                .iter()
                .find(|(_, e)| e.job.state.is_terminal())
                .map(|(id, _)| *id);
            match finished {
                Some(id) => {
                    jobs.remove(&id);
                }
                None => return Err(capacity_exceeded(STORE, self.max_jobs, "unfinished jobs")),
            }
        }
        jobs.insert(
            id,
            Entry {
                job: record.clone(),
                lease: None,
            },
        );
        Ok(record)
    }

    async fn claim(&self, kinds: &[&str], lease: Duration) -> Result<Option<JobLease>> {
        let now = self.clock.now();
        let mut jobs = lock(&self.state);
        for entry in jobs.values_mut() {
            if !kinds.contains(&entry.job.kind.as_str()) {
                continue;
            }
            let runnable = match entry.job.state {
                JobState::Queued => entry.job.run_after <= now,
                JobState::Running => entry.lease.is_none_or(|l| l.expires_at <= now),
                _ => false,
            };
            if !runnable {
                continue;
            }
            if entry.job.attempts >= entry.job.max_attempts {
                // Its last attempt's lease lapsed (the worker died): dead-letter.
                entry.job.state = JobState::Dead;
                entry.job.last_error = Some("lease expired".to_owned());
                entry.job.updated_at = now;
                continue;
            }
            let mut job = entry.job.clone();
            job.state = JobState::Running;
            job.attempts += 1;
            job.updated_at = now;
            let token = uuid::Uuid::new_v4();
            let expires_at = after(now, lease);
            let granted = JobLease::new(job.clone(), token, expires_at);
            entry.job = job;
            entry.lease = Some(Lease { token, expires_at });
            return Ok(Some(granted));
        }
        Ok(None)
    }

    async fn heartbeat(
        &self,
        lease: &JobLease,
        progress: u8,
        extend: Duration,
    ) -> Result<LeaseStatus> {
        let now = self.clock.now();
        let mut jobs = lock(&self.state);
        let Some(entry) = jobs.get_mut(&lease.job.id) else {
            return Ok(LeaseStatus::Lost);
        };
        if entry.job.state == JobState::Cancelled
            && entry.lease.is_some_and(|l| l.token == lease.token)
        {
            return Ok(LeaseStatus::Cancelled);
        }
        let Some(entry) = entry.held_by(lease, now) else {
            return Ok(LeaseStatus::Lost);
        };
        entry.job.progress = progress.min(100);
        entry.lease = Some(Lease {
            token: lease.token,
            expires_at: after(now, extend),
        });
        Ok(LeaseStatus::Active)
    }

    async fn complete(&self, lease: &JobLease, result: serde_json::Value) -> Result<bool> {
        let now = self.clock.now();
        let mut jobs = lock(&self.state);
        let Some(entry) = jobs
            .get_mut(&lease.job.id)
            .and_then(|e| e.held_by(lease, now))
        else {
            return Ok(false);
        };
        entry.job.state = JobState::Succeeded;
        entry.job.progress = 100;
        entry.job.result = Some(result);
        entry.job.updated_at = now;
        Ok(true)
    }

    async fn fail(
        &self,
        lease: &JobLease,
        error: &str,
        retry_in: Option<Duration>,
    ) -> Result<Option<JobState>> {
        let now = self.clock.now();
        let mut jobs = lock(&self.state);
        let Some(entry) = jobs
            .get_mut(&lease.job.id)
            .and_then(|e| e.held_by(lease, now))
        else {
            return Ok(None);
        };
        entry.job.last_error = Some(error.to_owned());
        entry.job.updated_at = now;
        match retry_in {
            Some(delay) if entry.job.attempts < entry.job.max_attempts => {
                entry.job.state = JobState::Queued;
                entry.job.run_after = after(now, delay);
            }
            _ => entry.job.state = JobState::Dead,
        }
        Ok(Some(entry.job.state))
    }

    async fn cancel(&self, tenant: &TenantId, id: &JobId) -> Result<bool> {
        let now = self.clock.now();
        let mut jobs = lock(&self.state);
        let Some(entry) = jobs.get_mut(id).filter(|e| &e.job.tenant == tenant) else {
            return Ok(false);
        };
        if entry.job.state.is_terminal() {
            return Ok(false);
        }
        entry.job.state = JobState::Cancelled;
        entry.job.updated_at = now;
        Ok(true)
    }

    async fn get(&self, tenant: &TenantId, id: &JobId) -> Result<Option<JobRecord>> {
        let jobs = lock(&self.state);
        Ok(jobs
            .get(id)
            .filter(|e| &e.job.tenant == tenant)
            .map(|e| e.job.clone()))
    }

    async fn list(
        &self,
        tenant: &TenantId,
        state: Option<JobState>,
        page: &PageRequest,
    ) -> Result<Page<JobRecord>> {
        let after = parse_cursor(page.after.as_deref())?.map(JobId::from_uuid);
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let jobs = lock(&self.state);
        Ok(page_of(
            jobs.range((lower, Bound::Unbounded))
                .map(|(_, e)| &e.job)
                .filter(|j| &j.tenant == tenant && state.is_none_or(|s| j.state == s))
                .cloned(),
            page.limit,
            |j| *j.id.as_uuid(),
        ))
    }

    async fn retry(&self, tenant: &TenantId, id: &JobId) -> Result<bool> {
        let now = self.clock.now();
        let mut jobs = lock(&self.state);
        let Some(entry) = jobs.get_mut(id).filter(|e| &e.job.tenant == tenant) else {
            return Ok(false);
        };
        if entry.job.state != JobState::Dead {
            return Ok(false);
        }
        entry.job.state = JobState::Queued;
        entry.job.attempts = 0;
        entry.job.progress = 0;
        entry.job.run_after = now;
        entry.job.updated_at = now;
        entry.lease = None;
        Ok(true)
    }
}
