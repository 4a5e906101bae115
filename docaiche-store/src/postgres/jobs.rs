//! The [`JobQueue`] adapter in PostgreSQL. The SQL lives in [`super::queries`].

use std::sync::Arc;
use std::time::Duration;

use docaiche_core::job::{JobLease, JobQueue, JobRecord, JobState, LeaseStatus, NewJob};
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::{Error, JobId, Result, TenantId};

use super::queries as q;
use super::{Scope, Shared, err};
use crate::sql::{
    JobRow, LEASE_LOST, after, cursor_or_start, fetch_limit, job_state, micros, page_of,
    parse_cursor, to_json, truncate,
};

adapter!(
    /// [`JobQueue`] in PostgreSQL (table `jobs`), shared safely by several
    /// processes: `claim` locks its row with `FOR UPDATE SKIP LOCKED`.
    PgJobQueue
);

#[async_trait::async_trait]
impl JobQueue for PgJobQueue {
    async fn enqueue(&self, tenant: &TenantId, job: NewJob) -> Result<JobRecord> {
        if job.kind.is_empty() {
            return Err(Error::invalid_input("job kind must not be empty"));
        }
        let now = truncate(self.shared.clock.now());
        let mut record = JobRecord::new(
            JobId::new(),
            tenant.clone(),
            job.kind,
            job.payload,
            job.max_attempts.max(1),
            now,
        );
        record.run_after = job.run_after.map_or(now, truncate);
        let payload = to_json(&record.payload)?;
        let mut conn = self.shared.write().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        sqlx::query(&q::JOB_INSERT)
            .bind(tenant.as_str())
            .bind(record.id.as_uuid())
            .bind(record.kind.as_bytes())
            .bind(payload)
            .bind(i64::from(record.max_attempts))
            .bind(micros(now))
            .bind(micros(record.run_after))
            .execute(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        Ok(record)
    }

    async fn claim(&self, kinds: &[&str], lease: Duration) -> Result<Option<JobLease>> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let kinds: Vec<Vec<u8>> = kinds.iter().map(|k| k.as_bytes().to_vec()).collect();
        let now = truncate(self.shared.clock.now());
        let expires = micros(after(now, lease));
        let now = micros(now);
        let mut conn = self.shared.write().await?;
        let mut ex = self.shared.scoped(&mut conn, Scope::Worker).await?;
        // A job whose last allowed attempt's lease lapsed is dead, not
        // offered again.
        sqlx::query(q::JOB_DEAD_LETTER)
            .bind(&kinds)
            .bind(now)
            .bind(LEASE_LOST.as_bytes())
            .execute(ex.conn())
            .await
            .map_err(err)?;
        let row: Option<JobRow> = sqlx::query_as(&q::JOB_CLAIM)
            .bind(&kinds)
            .bind(now)
            .bind(uuid::Uuid::new_v4())
            .bind(expires)
            .fetch_optional(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        row.map(JobRow::into_lease).transpose()
    }

    async fn heartbeat(
        &self,
        lease: &JobLease,
        progress: u8,
        extend: Duration,
    ) -> Result<LeaseStatus> {
        let now = truncate(self.shared.clock.now());
        let tenant = lease.job.tenant.as_str();
        let mut conn = self.shared.write().await?;
        let mut ex = self.shared.scoped(&mut conn, Scope::Tenant(tenant)).await?;
        let done = sqlx::query(q::JOB_HEARTBEAT)
            .bind(tenant)
            .bind(lease.job.id.as_uuid())
            .bind(lease.token)
            .bind(i64::from(progress.min(100)))
            .bind(micros(after(now, extend)))
            .bind(micros(now))
            .execute(ex.conn())
            .await
            .map_err(err)?;
        let status = if done.rows_affected() > 0 {
            LeaseStatus::Active
        } else {
            let cancelled: Option<i64> = sqlx::query_scalar(q::JOB_LEASE_CANCELLED)
                .bind(tenant)
                .bind(lease.job.id.as_uuid())
                .bind(lease.token)
                .fetch_optional(ex.conn())
                .await
                .map_err(err)?;
            if cancelled.is_some() {
                LeaseStatus::Cancelled
            } else {
                LeaseStatus::Lost
            }
        };
        ex.finish().await?;
        Ok(status)
    }

    async fn complete(&self, lease: &JobLease, result: serde_json::Value) -> Result<bool> {
        let now = micros(self.shared.clock.now());
        let result = to_json(&result)?;
        let tenant = lease.job.tenant.as_str();
        let mut conn = self.shared.write().await?;
        let mut ex = self.shared.scoped(&mut conn, Scope::Tenant(tenant)).await?;
        let done = sqlx::query(q::JOB_COMPLETE)
            .bind(tenant)
            .bind(lease.job.id.as_uuid())
            .bind(lease.token)
            .bind(result)
            .bind(now)
            .execute(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn fail(
        &self,
        lease: &JobLease,
        error: &str,
        retry_in: Option<Duration>,
    ) -> Result<Option<JobState>> {
        let now = truncate(self.shared.clock.now());
        let retry_at = retry_in.map(|d| micros(after(now, d)));
        let tenant = lease.job.tenant.as_str();
        let mut conn = self.shared.write().await?;
        let mut ex = self.shared.scoped(&mut conn, Scope::Tenant(tenant)).await?;
        let state: Option<String> = sqlx::query_scalar(q::JOB_FAIL)
            .bind(tenant)
            .bind(lease.job.id.as_uuid())
            .bind(lease.token)
            .bind(error.as_bytes())
            .bind(micros(now))
            .bind(retry_at)
            .fetch_optional(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        state.as_deref().map(job_state).transpose()
    }

    async fn cancel(&self, tenant: &TenantId, id: &JobId) -> Result<bool> {
        let now = micros(self.shared.clock.now());
        let mut conn = self.shared.write().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let done = sqlx::query(q::JOB_CANCEL)
            .bind(tenant.as_str())
            .bind(id.as_uuid())
            .bind(now)
            .execute(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn get(&self, tenant: &TenantId, id: &JobId) -> Result<Option<JobRecord>> {
        let mut conn = self.shared.read().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let row: Option<JobRow> = sqlx::query_as(&q::JOB_GET)
            .bind(tenant.as_str())
            .bind(id.as_uuid())
            .fetch_optional(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        row.map(JobRow::into_record).transpose()
    }

    async fn list(
        &self,
        tenant: &TenantId,
        state: Option<JobState>,
        page: &PageRequest,
    ) -> Result<Page<JobRecord>> {
        let after = cursor_or_start(parse_cursor(page.after.as_deref())?);
        let mut conn = self.shared.read().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let rows: Vec<JobRow> = match state {
            None => {
                sqlx::query_as(&q::JOB_LIST)
                    .bind(tenant.as_str())
                    .bind(after)
                    .bind(fetch_limit(page.limit))
                    .fetch_all(ex.conn())
                    .await
            }
            Some(state) => {
                sqlx::query_as(&q::JOB_LIST_IN_STATE)
                    .bind(tenant.as_str())
                    .bind(state.as_str())
                    .bind(after)
                    .bind(fetch_limit(page.limit))
                    .fetch_all(ex.conn())
                    .await
            }
        }
        .map_err(err)?;
        ex.finish().await?;
        let items = rows
            .into_iter()
            .map(JobRow::into_record)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, page.limit, |j| *j.id.as_uuid()))
    }

    async fn retry(&self, tenant: &TenantId, id: &JobId) -> Result<bool> {
        let now = micros(self.shared.clock.now());
        let mut conn = self.shared.write().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let done = sqlx::query(q::JOB_RETRY)
            .bind(tenant.as_str())
            .bind(id.as_uuid())
            .bind(now)
            .execute(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        Ok(done.rows_affected() > 0)
    }
}
