//! [`SqliteUsageStore`].

use std::sync::Arc;

use docaiche_core::usage::{
    Bucket, KeyUsage, RetentionReport, TopBy, TopQuery, UsageBatch, UsageFilter, UsagePoint,
    UsageQuery, UsageRetention, UsageStore, from_unix,
};
use docaiche_core::{ApiKeyId, Result, TenantId};
use sqlx::{Connection, Row};
use time::OffsetDateTime;

use super::{Shared, err};
use crate::sql::micros;
use crate::sql::usage::{
    ACCOUNT_COLUMN, KEY_COLUMN, TENANT_COLUMN, ceil_seconds, counts, point, series_sql, table,
    top_slots, top_sql,
};

const SQL_PARAM: &str = "?";

fn sum(column: &str) -> String {
    format!("SUM({column})")
}

fn upsert(bucket: Bucket) -> String {
    format!(
        "INSERT INTO {} (tenant_id, bucket_start, key_id, account, route_class, allowed, \
         rate_limited, denied, invalid_credential) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (tenant_id, bucket_start, key_id, account, route_class) DO UPDATE SET \
         allowed = allowed + excluded.allowed, rate_limited = rate_limited + excluded.rate_limited, \
         denied = denied + excluded.denied, \
         invalid_credential = invalid_credential + excluded.invalid_credential",
        table(bucket)
    )
}

/// A [`UsageStore`] in SQLite (tables `usage_minute`, `usage_hour`,
/// `usage_day` and `usage_batches`), from
/// [`SqliteStore::usage`](super::SqliteStore::usage).
///
/// A batch is one `BEGIN IMMEDIATE` transaction: its id, then one upsert
/// per rolled-up row and bucket size.
#[derive(Debug, Clone)]
pub struct SqliteUsageStore {
    shared: Arc<Shared>,
}

impl SqliteUsageStore {
    pub(crate) const fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait::async_trait]
impl UsageStore for SqliteUsageStore {
    async fn record_batch(&self, batch: &UsageBatch) -> Result<bool> {
        batch.validate()?;
        let mut conn = self.shared.conn().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        let fresh =
            sqlx::query("INSERT OR IGNORE INTO usage_batches (id, created_at) VALUES (?1, ?2)")
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
            let sql = upsert(bucket);
            for row in batch.rollup(bucket) {
                sqlx::query(&sql)
                    .bind(row.tenant.as_str())
                    .bind(row.start.unix_timestamp())
                    .bind(
                        row.subject
                            .key()
                            .map_or(uuid::Uuid::nil(), |k| *k.as_uuid()),
                    )
                    .bind(row.subject.account().map_or("", |a| a.as_str()))
                    .bind(row.route_class.as_str())
                    .bind(crate::sql::signed(row.counts.allowed))
                    .bind(crate::sql::signed(row.counts.rate_limited))
                    .bind(crate::sql::signed(row.counts.denied))
                    .bind(crate::sql::signed(row.counts.invalid_credential))
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
            }
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
        let sql = series_sql(SQL_PARAM, sum, query.bucket, column);
        let mut q = sqlx::query(&sql).bind(tenant.as_str());
        q = match &query.filter {
            UsageFilter::Account(account) => q.bind(account.as_str()),
            UsageFilter::Key(key) => q.bind(*key.as_uuid()),
            UsageFilter::Tenant => q.bind(tenant.as_str()),
            _ => return Ok(Vec::new()),
        };
        let mut conn = self.shared.conn().await?;
        let rows = q
            .bind(ceil_seconds(query.from))
            .bind(ceil_seconds(query.to))
            .bind(query.route_class.as_ref().map(|r| r.as_str()))
            .fetch_all(&mut *conn)
            .await
            .map_err(err)?;
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
        let sql = top_sql(SQL_PARAM, sum, query.by == TopBy::RateLimited);
        let mut q = sqlx::query(&sql).bind(tenant.as_str());
        for (from, to) in top_slots(query.from, query.to) {
            q = q.bind(from).bind(to);
        }
        let mut conn = self.shared.conn().await?;
        let rows = q
            .bind(uuid::Uuid::nil())
            .bind(i64::from(query.n))
            .fetch_all(&mut *conn)
            .await
            .map_err(err)?;
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
        let mut conn = self.shared.conn().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        let mut dropped = [0_u64; 3];
        for (i, bucket) in Bucket::ALL.into_iter().enumerate() {
            dropped[i] = sqlx::query(&format!(
                "DELETE FROM {} WHERE bucket_start < ?1",
                table(bucket)
            ))
            .bind(retention.cutoff(bucket, now))
            .execute(&mut *tx)
            .await
            .map_err(err)?
            .rows_affected();
        }
        let batches = sqlx::query("DELETE FROM usage_batches WHERE created_at < ?1")
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
