//! [`PgCustomRoleStore`]: tenant-defined roles in PostgreSQL.

use std::sync::Arc;
use std::sync::LazyLock;

use docaiche_core::custom_role::{
    CustomRole, CustomRoleStore, MAX_CUSTOM_ROLES, is_valid_role_name,
};
use docaiche_core::{Result, TenantId};
use sqlx::Connection;

use super::{Scope, Shared, err, set_scope};
use crate::sql::custom_role::{CUSTOM_ROLE_COLUMNS, CustomRoleRow, permissions_json, too_many};
use crate::sql::micros;

/// Serialize the creations of one tenant (transaction-scoped).
const LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('docaiche.custom_roles:' || $1, 0))";
const EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM custom_roles WHERE tenant_id = $1 AND name = $2)";
const COUNT: &str = "SELECT COUNT(*) FROM custom_roles WHERE tenant_id = $1";
/// Create, or replace all but `created_at`.
const UPSERT: &str = "INSERT INTO custom_roles (tenant_id, name, permissions, description, \
     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (tenant_id, name) DO UPDATE SET permissions = excluded.permissions, \
     description = excluded.description, updated_at = excluded.updated_at";
static GET: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {CUSTOM_ROLE_COLUMNS} FROM custom_roles WHERE tenant_id = $1 AND name = $2")
});
static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {CUSTOM_ROLE_COLUMNS} FROM custom_roles WHERE tenant_id = $1 \
         ORDER BY name LIMIT $2"
    )
});
const DELETE: &str = "DELETE FROM custom_roles WHERE tenant_id = $1 AND name = $2";

/// A [`CustomRoleStore`] in PostgreSQL (table `custom_roles`, keyed by
/// tenant and name, under the `custom_roles_tenant` row-level security
/// policy when it is on), from
/// [`PgStore::custom_roles`](super::PgStore::custom_roles).
///
/// `put` runs in one transaction holding a per-tenant advisory lock
/// (existence, count, upsert), so the per-tenant bound holds when
/// creations race, across instances.
#[derive(Debug, Clone)]
pub struct PgCustomRoleStore {
    shared: Arc<Shared>,
}

impl PgCustomRoleStore {
    pub(crate) const fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait::async_trait]
impl CustomRoleStore for PgCustomRoleStore {
    async fn put(&self, role: &CustomRole) -> Result<bool> {
        role.validate()?;
        let permissions = permissions_json(role)?;
        let tenant = role.tenant.as_str();
        let mut conn = self.shared.write().await?;
        let mut tx = conn.begin().await.map_err(err)?;
        if self.shared.rls {
            set_scope(&mut tx, Scope::Tenant(tenant)).await?;
        }
        sqlx::query(LOCK)
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        let exists: bool = sqlx::query_scalar(EXISTS)
            .bind(tenant)
            .bind(role.name.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        if !exists {
            let count: i64 = sqlx::query_scalar(COUNT)
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await
                .map_err(err)?;
            if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_CUSTOM_ROLES {
                return Err(too_many());
            }
        }
        sqlx::query(UPSERT)
            .bind(tenant)
            .bind(role.name.as_str())
            .bind(permissions)
            .bind(role.description.as_deref())
            .bind(micros(role.created_at))
            .bind(micros(role.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(!exists)
    }

    async fn get(&self, tenant: &TenantId, name: &str) -> Result<Option<CustomRole>> {
        // No stored role has an invalid name; and PostgreSQL `text` refuses NUL.
        if !is_valid_role_name(name) {
            return Ok(None);
        }
        let mut conn = self.shared.read().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let row: Option<CustomRoleRow> = sqlx::query_as(&GET)
            .bind(tenant.as_str())
            .bind(name)
            .fetch_optional(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        row.map(CustomRoleRow::into_role).transpose()
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<CustomRole>> {
        let mut conn = self.shared.read().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let rows: Vec<CustomRoleRow> = sqlx::query_as(&LIST)
            .bind(tenant.as_str())
            .bind(i64::try_from(MAX_CUSTOM_ROLES).unwrap_or(i64::MAX))
            .fetch_all(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        rows.into_iter().map(CustomRoleRow::into_role).collect()
    }

    async fn delete(&self, tenant: &TenantId, name: &str) -> Result<bool> {
        if !is_valid_role_name(name) {
            return Ok(false);
        }
        let mut conn = self.shared.write().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let done = sqlx::query(DELETE)
            .bind(tenant.as_str())
            .bind(name)
            .execute(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        Ok(done.rows_affected() > 0)
    }
}
