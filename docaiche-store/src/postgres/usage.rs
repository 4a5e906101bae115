//! [`PgUsageStore`].

use std::sync::Arc;

use docaiche_core::usage::{
    Bucket, KeyUsage, RetentionReport, TopBy, TopQuery, UsageBatch, UsageFilter, UsagePoint,
    UsageQuery, UsageRetention, UsageStore, from_unix,
};
use docaiche_core::{ApiKeyId, Result, TenantId};
use sqlx::{Connection, Row};
use time::OffsetDateTime;

use super::{Scope, Shared, err, set_scope};
use crate::sql::usage::{
    ACCOUNT_COLUMN, KEY_COLUMN, TENANT_COLUMN, ceil_seconds, counts, point, series_sql, table,
    top_parts, top_sql, top_sql_parts,
};
use crate::sql::{micros, signed};

const SQL_PARAM: &str = "$";

fn sum(column: &str) -> String {
    format!("SUM({column})::BIGINT")
}

/// The top-N statement (see [`queries::usage_top`](super::queries::usage_top)).
pub(crate) fn top_statement(rate_limited: bool) -> String {
    top_sql(SQL_PARAM, sum, rate_limited)
}

/// The series statement (see
/// [`queries::usage_series`](super::queries::usage_series)).
pub(crate) fn series_statement(bucket: Bucket, column: &str) -> String {
    series_sql(SQL_PARAM, sum, bucket, column)
}

fn upsert(bucket: Bucket) -> String {
    let table = table(bucket);
    format!(
        "INSERT INTO {table} AS u (tenant_id, bucket_start, key_id, account, route_class, \
         allowed, rate_limited, denied, invalid_credential) \
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], \
         $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[]) \
         ON CONFLICT (tenant_id, bucket_start, key_id, account, route_class) DO UPDATE SET \
         allowed = u.allowed + EXCLUDED.allowed, \
         rate_limited = u.rate_limited + EXCLUDED.rate_limited, \
         denied = u.denied + EXCLUDED.denied, \
         invalid_credential = u.invalid_credential + EXCLUDED.invalid_credential"
    )
}

/// A [`UsageStore`] in PostgreSQL (tables `usage_minute`, `usage_hour`,
/// `usage_day` and `usage_batches`), from
/// [`PgStore::usage`](super::PgStore::usage).
///
/// A batch is one transaction: its id (`ON CONFLICT DO NOTHING`: a second
/// writer of the same batch waits for the first and then applies nothing),
/// then one `INSERT … SELECT FROM UNNEST(…) ON CONFLICT DO UPDATE` per
/// bucket size, rows in key order so concurrent flushers lock rows in the
/// same order. Top-N is one statement over day rows and the hour and
/// minute rows of the range's ends (see
/// [`covering_spans`](docaiche_core::usage::covering_spans)), where a
/// ragged end day is read as its day row minus the rest of the day when
/// that is fewer rows (22 hours: the day minus 2 hour rows; the rest of
/// the start day must then still be retained), each read by
/// the primary key's `(tenant_id, bucket_start, …)` prefix, which carries
/// the counters (an index-only scan), and planned for its actual range on
/// every call (not a cached generic plan).
///
/// Under row-level security, reads are scoped to the caller's tenant;
/// `record_batch` and `apply_retention` (the flusher and the maintenance
/// job, across tenants) open `docaiche.usage_writer`.
#[derive(Debug, Clone)]
pub struct PgUsageStore {
    shared: Arc<Shared>,
}

impl PgUsageStore {
    pub(crate) const fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait::async_trait]
impl UsageStore for PgUsageStore {
    async fn record_batch(&self, batch: &UsageBatch) -> Result<bool> {
        batch.validate()?;
        let mut conn = self.shared.write().await?;
        let mut tx = conn.begin().await.map_err(err)?;
        if self.shared.rls {
            set_scope(&mut tx, Scope::UsageWriter).await?;
        }
        let fresh = sqlx::query(
            "INSERT INTO usage_batches (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(batch.id)
        .bind(micros(batch.created_at))
        .execute(&mut *tx)
        .await
        .map_err(err)?
        .rows_affected()
            > 0;
        if !fresh {
            return Ok(false); // dropping `tx` rolls back
        }
        for bucket in Bucket::ALL {
            let rows = batch.rollup(bucket);
            if rows.is_empty() {
                continue;
            }
            let mut tenants = Vec::with_capacity(rows.len());
            let mut starts = Vec::with_capacity(rows.len());
            let mut keys = Vec::with_capacity(rows.len());
            let mut accounts = Vec::with_capacity(rows.len());
            let mut routes = Vec::with_capacity(rows.len());
            let mut c = [const { Vec::new() }; 4];
            for row in &rows {
                tenants.push(row.tenant.as_str());
                starts.push(row.start.unix_timestamp());
                keys.push(
                    row.subject
                        .key()
                        .map_or(uuid::Uuid::nil(), |k| *k.as_uuid()),
                );
                accounts.push(row.subject.account().map_or("", |a| a.as_str()));
                routes.push(row.route_class.as_str());
                c[0].push(signed(row.counts.allowed));
                c[1].push(signed(row.counts.rate_limited));
                c[2].push(signed(row.counts.denied));
                c[3].push(signed(row.counts.invalid_credential));
            }
            let [a, l, d, i] = c;
            sqlx::query(&upsert(bucket))
                .bind(tenants)
                .bind(starts)
                .bind(keys)
                .bind(accounts)
                .bind(routes)
                .bind(a)
                .bind(l)
                .bind(d)
                .bind(i)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(true)
    }

    async fn series(&self, tenant: &TenantId, query: &UsageQuery) -> Result<Vec<UsagePoint>> {
        let column = match &query.filter {
            UsageFilter::Account(_) => ACCOUNT_COLUMN,
            UsageFilter::Tenant => TENANT_COLUMN,
            _ => KEY_COLUMN,
        };
        let sql = series_statement(query.bucket, column);
        let mut q = sqlx::query(&sql).bind(tenant.as_str());
        q = match &query.filter {
            UsageFilter::Account(account) => q.bind(account.as_str()),
            UsageFilter::Key(key) => q.bind(*key.as_uuid()),
            UsageFilter::Tenant => q.bind(tenant.as_str()),
            _ => return Ok(Vec::new()),
        };
        let q = q
            .bind(ceil_seconds(query.from))
            .bind(ceil_seconds(query.to))
            .bind(query.route_class.as_ref().map(|r| r.as_str()));
        let mut conn = self.shared.read().await?;
        let mut exec = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let rows = q.fetch_all(exec.conn()).await.map_err(err)?;
        exec.finish().await?;
        rows.into_iter()
            .map(|row| {
                let c = counts(
                    row.try_get(2).map_err(err)?,
                    row.try_get(3).map_err(err)?,
                    row.try_get(4).map_err(err)?,
                    row.try_get(5).map_err(err)?,
                )?;
                point(
                    row.try_get(0).map_err(err)?,
                    row.try_get(1).map_err(err)?,
                    c,
                )
            })
            .collect()
    }

    async fn top_keys(&self, tenant: &TenantId, query: &TopQuery) -> Result<Vec<KeyUsage>> {
        // The range's ragged edges read as whole days minus the rest of
        // the day where that is fewer rows (`top_parts`).
        let parts = top_parts(query.from, query.to);
        let sql = top_sql_parts(SQL_PARAM, sum, query.by == TopBy::RateLimited, &parts);
        // Not a cached prepared statement: after five runs PostgreSQL may
        // keep a generic plan, costed blind to the range, which reads 30
        // days of day rows by the primary key (one heap fetch a row, no
        // parallel scan): 2-3x slower than a plan for the actual range.
        // Planning each call costs well under a millisecond.
        let mut q = sqlx::query(&sql).persistent(false).bind(tenant.as_str());
        for part in &parts {
            q = q.bind(part.from).bind(part.to);
        }
        let q = q.bind(uuid::Uuid::nil()).bind(i64::from(query.n));
        let mut conn = self.shared.read().await?;
        let mut exec = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let rows = q.fetch_all(exec.conn()).await.map_err(err)?;
        exec.finish().await?;
        rows.into_iter()
            .map(|row| {
                let key: uuid::Uuid = row.try_get(0).map_err(err)?;
                let c = counts(
                    row.try_get(1).map_err(err)?,
                    row.try_get(2).map_err(err)?,
                    row.try_get(3).map_err(err)?,
                    row.try_get(4).map_err(err)?,
                )?;
                Ok(KeyUsage::new(ApiKeyId::from_uuid(key), c))
            })
            .collect()
    }

    async fn apply_retention(
        &self,
        now: OffsetDateTime,
        retention: &UsageRetention,
    ) -> Result<RetentionReport> {
        let mut conn = self.shared.write().await?;
        let mut tx = conn.begin().await.map_err(err)?;
        if self.shared.rls {
            set_scope(&mut tx, Scope::UsageWriter).await?;
        }
        let mut dropped = [0_u64; 3];
        for (i, bucket) in Bucket::ALL.into_iter().enumerate() {
            dropped[i] = sqlx::query(&format!(
                "DELETE FROM {} WHERE bucket_start < $1",
                table(bucket)
            ))
            .bind(retention.cutoff(bucket, now))
            .execute(&mut *tx)
            .await
            .map_err(err)?
            .rows_affected();
        }
        let batches = sqlx::query("DELETE FROM usage_batches WHERE created_at < $1")
            .bind(micros(from_unix(retention.cutoff(Bucket::Minute, now))))
            .execute(&mut *tx)
            .await
            .map_err(err)?
            .rows_affected();
        tx.commit().await.map_err(err)?;
        let mut report = RetentionReport::default();
        report.minute_rows = dropped[0];
        report.hour_rows = dropped[1];
        report.day_rows = dropped[2];
        report.batches = batches;
        Ok(report)
    }
}
