//! [`PgDataKeyStore`]: wrapped per-subject data keys in PostgreSQL.

use std::sync::Arc;

use docaiche_core::id::{PrincipalId, TenantId};
use docaiche_core::key_wrapper::WrappedKey;
use docaiche_core::{Error, Result};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{Scope, Shared, err};
use crate::encryption::{DataKeyStore, SubjectKey};
use crate::trace::traced;

const GET: &str = "SELECT kek_id, kek_version, ciphertext FROM data_keys \
     WHERE tenant_id = $1 AND subject_id = $2";
const INSERT: &str = "INSERT INTO data_keys (tenant_id, subject_id, kek_id, kek_version, ciphertext) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, subject_id) DO NOTHING";
const REPLACE: &str = "UPDATE data_keys SET kek_id = $3, kek_version = $4, ciphertext = $5 \
     WHERE tenant_id = $1 AND subject_id = $2 \
     AND kek_id = $6 AND kek_version = $7 AND ciphertext = $8";
const DESTROY: &str = "DELETE FROM data_keys WHERE tenant_id = $1 AND subject_id = $2";
const LIST_FIRST: &str = "SELECT tenant_id, subject_id, kek_id, kek_version, ciphertext \
     FROM data_keys ORDER BY tenant_id, subject_id LIMIT $1";
const LIST_AFTER: &str = "SELECT tenant_id, subject_id, kek_id, kek_version, ciphertext \
     FROM data_keys WHERE (tenant_id, subject_id) > ($1, $2) \
     ORDER BY tenant_id, subject_id LIMIT $3";

/// A [`DataKeyStore`] in PostgreSQL (table `data_keys`, keyed by tenant
/// and subject), from [`PgStore::data_keys`](super::PgStore::data_keys).
///
/// Every call goes to the primary, never the read replica: a key read from
/// a lagging replica could miss one created a moment ago (and the document
/// written under it would look undecryptable) or still show one that an
/// erasure destroyed.
///
/// With row-level security on, each call is scoped to its tenant; `list`,
/// which walks every tenant for the rewrap pass after a KEK rotation, reads
/// under a policy of its own that allows reading, never writing.
///
/// `destroy` deletes the row. PostgreSQL keeps the dead tuple until vacuum,
/// and WAL archives and backups keep what they captured; these hold the
/// *wrapped* key, useless without the key-encryption key, which is why the
/// KEK belongs in Vault (or a key file) and never in the database.
#[derive(Debug, Clone)]
pub struct PgDataKeyStore {
    shared: Arc<Shared>,
}

impl PgDataKeyStore {
    pub(crate) const fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

fn wrapped(row: &PgRow, offset: usize) -> Result<WrappedKey> {
    let corrupt = || Error::internal("a stored data key row is malformed");
    let kek_id: Vec<u8> = row.try_get(offset).map_err(err)?;
    let version: i64 = row.try_get(offset + 1).map_err(err)?;
    let ciphertext: Vec<u8> = row.try_get(offset + 2).map_err(err)?;
    let kek_id = String::from_utf8(kek_id).map_err(|_| corrupt())?;
    let version = u32::try_from(version).map_err(|_| corrupt())?;
    Ok(WrappedKey::new(kek_id, version, ciphertext))
}

#[async_trait::async_trait]
impl DataKeyStore for PgDataKeyStore {
    async fn get(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<Option<WrappedKey>> {
        traced!("postgresql", "data_keys", "get", async move {
            let mut conn = self.shared.write().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let row = sqlx::query(GET)
                .bind(tenant.as_str())
                .bind(subject.as_str())
                .fetch_optional(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            row.map(|row| wrapped(&row, 0)).transpose()
        })
        .await
    }

    async fn insert_if_absent(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        key: WrappedKey,
    ) -> Result<WrappedKey> {
        traced!("postgresql", "data_keys", "insert_if_absent", async move {
            let mut conn = self.shared.write().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            sqlx::query(INSERT)
                .bind(tenant.as_str())
                .bind(subject.as_str())
                .bind(key.kek_id.as_bytes())
                .bind(i64::from(key.kek_version))
                .bind(key.ciphertext.as_slice())
                .execute(ex.conn())
                .await
                .map_err(err)?;
            // A second statement, so a second snapshot (READ COMMITTED): when a
            // concurrent insert won the conflict, its committed row is visible
            // here, where a CTE in the INSERT's own snapshot would not see it.
            let row = sqlx::query(GET)
                .bind(tenant.as_str())
                .bind(subject.as_str())
                .fetch_optional(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            match row {
                Some(row) => wrapped(&row, 0),
                // Destroyed between the two statements by a concurrent erasure.
                None => Err(Error::conflict(
                    "the subject's data key was destroyed while it was being created",
                )),
            }
        })
        .await
    }

    async fn replace(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        expected: &WrappedKey,
        new: WrappedKey,
    ) -> Result<bool> {
        traced!("postgresql", "data_keys", "replace", async move {
            let mut conn = self.shared.write().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let done = sqlx::query(REPLACE)
                .bind(tenant.as_str())
                .bind(subject.as_str())
                .bind(new.kek_id.as_bytes())
                .bind(i64::from(new.kek_version))
                .bind(new.ciphertext.as_slice())
                .bind(expected.kek_id.as_bytes())
                .bind(i64::from(expected.kek_version))
                .bind(expected.ciphertext.as_slice())
                .execute(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn destroy(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<bool> {
        traced!("postgresql", "data_keys", "destroy", async move {
            let mut conn = self.shared.write().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let done = sqlx::query(DESTROY)
                .bind(tenant.as_str())
                .bind(subject.as_str())
                .execute(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn list(
        &self,
        after: Option<(&TenantId, &PrincipalId)>,
        limit: usize,
    ) -> Result<Vec<SubjectKey>> {
        traced!("postgresql", "data_keys", "list", async move {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut conn = self.shared.write().await?;
            let mut ex = self.shared.scoped(&mut conn, Scope::KeyRewrap).await?;
            let rows = match after {
                None => {
                    sqlx::query(LIST_FIRST)
                        .bind(limit)
                        .fetch_all(ex.conn())
                        .await
                }
                Some((tenant, subject)) => {
                    sqlx::query(LIST_AFTER)
                        .bind(tenant.as_str())
                        .bind(subject.as_str())
                        .bind(limit)
                        .fetch_all(ex.conn())
                        .await
                }
            }
            .map_err(err)?;
            ex.finish().await?;
            rows.iter()
                .map(|row| {
                    let tenant: String = row.try_get(0).map_err(err)?;
                    let subject: String = row.try_get(1).map_err(err)?;
                    Ok(SubjectKey::new(
                        TenantId::new(tenant)?,
                        PrincipalId::new(subject)?,
                        wrapped(row, 2)?,
                    ))
                })
                .collect()
        })
        .await
    }
}
