//! [`SqliteTenantStore`]: the tenant registry in SQLite.

use std::sync::Arc;
use std::sync::LazyLock;

use docaiche_core::page::{Page, PageRequest};
use docaiche_core::tenant::{
    StatusChange, Tenant, TenantSettings, TenantStatus, TenantStore, parse_tenant_cursor,
};
use docaiche_core::{Error, Result, TenantId};
use time::OffsetDateTime;

use super::{Shared, err};
use crate::sql::tenant::{TENANT_COLUMNS, TenantRow, settings_json, status_columns, tenant_page};
use crate::sql::{fetch_limit, is_unique_violation, micros};

const INSERT: &str = "INSERT INTO tenants (id, display_name, status, suspended_at, \
     suspension_reason, settings, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static GET: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?1"));
static LIST: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id > ?1 ORDER BY id LIMIT ?2")
});
static LIST_BY_STATUS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TENANT_COLUMNS} FROM tenants WHERE status = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
    )
});
const SET_SETTINGS: &str = "UPDATE tenants SET settings = ?2, updated_at = ?3 WHERE id = ?1";
const SET_STATUS: &str = "UPDATE tenants SET status = ?2, suspended_at = ?3, \
     suspension_reason = ?4, updated_at = ?5 WHERE id = ?1";

/// A [`TenantStore`] in SQLite (table `tenants`, keyed by id), from
/// [`SqliteStore::tenants`](super::SqliteStore::tenants).
#[derive(Debug, Clone)]
pub struct SqliteTenantStore {
    shared: Arc<Shared>,
}

impl SqliteTenantStore {
    pub(crate) const fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait::async_trait]
impl TenantStore for SqliteTenantStore {
    async fn create(&self, tenant: &Tenant) -> Result<()> {
        let settings = settings_json(&tenant.settings)?;
        let mut conn = self.shared.conn().await?;
        let inserted = sqlx::query(INSERT)
            .bind(tenant.id.as_str())
            .bind(tenant.display_name.as_bytes())
            .bind(tenant.status.as_str())
            .bind(tenant.suspended_at.map(micros))
            .bind(tenant.suspension_reason.as_deref().map(str::as_bytes))
            .bind(settings)
            .bind(micros(tenant.created_at))
            .bind(micros(tenant.updated_at))
            .execute(&mut *conn)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::conflict("tenant already exists")),
            Err(e) => Err(err(e)),
        }
    }

    async fn get(&self, id: &TenantId) -> Result<Option<Tenant>> {
        let mut conn = self.shared.conn().await?;
        let row: Option<TenantRow> = sqlx::query_as(&GET)
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(err)?;
        row.map(TenantRow::into_tenant).transpose()
    }

    async fn list(&self, status: Option<TenantStatus>, page: &PageRequest) -> Result<Page<Tenant>> {
        let after = parse_tenant_cursor(page.after.as_deref())?;
        let after = after.as_ref().map_or("", TenantId::as_str);
        let mut conn = self.shared.conn().await?;
        let rows: Vec<TenantRow> = match status {
            None => sqlx::query_as(&LIST).bind(after),
            Some(status) => sqlx::query_as(&LIST_BY_STATUS)
                .bind(status.as_str())
                .bind(after),
        }
        .bind(fetch_limit(page.limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(err)?;
        let mut items = rows
            .into_iter()
            .map(TenantRow::into_tenant)
            .collect::<Result<Vec<_>>>()?;
        Ok(tenant_page(&mut items, page.limit))
    }

    async fn update_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let settings = settings_json(settings)?;
        let mut conn = self.shared.conn().await?;
        let done = sqlx::query(SET_SETTINGS)
            .bind(id.as_str())
            .bind(settings)
            .bind(micros(at))
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_status(
        &self,
        id: &TenantId,
        change: StatusChange<'_>,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let (status, suspended_at, reason) = status_columns(change, at);
        let mut conn = self.shared.conn().await?;
        let done = sqlx::query(SET_STATUS)
            .bind(id.as_str())
            .bind(status)
            .bind(suspended_at)
            .bind(reason)
            .bind(micros(at))
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }
}
