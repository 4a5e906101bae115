//! The `tenants` row shared by the SQLite and PostgreSQL tenant adapters.

use docaiche_core::page::Page;
use docaiche_core::tenant::{StatusChange, Tenant, TenantSettings, TenantStatus};
use docaiche_core::{Error, Result};
use time::OffsetDateTime;

use super::{from_micros, micros, opt_time, tenant, to_json, utf8};

/// The columns of `tenants`, in [`TenantRow`] order.
pub(crate) const TENANT_COLUMNS: &str =
    "id, display_name, status, suspended_at, suspension_reason, settings, created_at, updated_at";

/// One `tenants` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TenantRow {
    id: String,
    display_name: Vec<u8>,
    status: String,
    suspended_at: Option<i64>,
    suspension_reason: Option<Vec<u8>>,
    settings: String,
    created_at: i64,
    updated_at: i64,
}

impl TenantRow {
    /// The tenant, or `Internal` for a row no adapter writes.
    pub(crate) fn into_tenant(self) -> Result<Tenant> {
        let status = TenantStatus::from_name(&self.status)
            .ok_or_else(|| Error::internal("stored tenant status is invalid"))?;
        let settings: TenantSettings = serde_json::from_str(&self.settings)
            .map_err(|e| Error::internal_with("stored tenant settings are invalid", e))?;
        let mut t = Tenant::new(
            tenant(self.id)?,
            utf8(self.display_name, "stored display name is not utf-8")?,
            from_micros(self.created_at)?,
        )
        .with_settings(settings);
        t.status = status;
        t.suspended_at = opt_time(self.suspended_at)?;
        t.suspension_reason = self
            .suspension_reason
            .map(|r| utf8(r, "stored suspension reason is not utf-8"))
            .transpose()?;
        t.updated_at = from_micros(self.updated_at)?;
        Ok(t)
    }
}

/// The settings column.
pub(crate) fn settings_json(settings: &TenantSettings) -> Result<String> {
    to_json(settings)
}

/// The `status`, `suspended_at` and `suspension_reason` a change writes.
pub(crate) fn status_columns(
    change: StatusChange<'_>,
    at: OffsetDateTime,
) -> (&'static str, Option<i64>, Option<Vec<u8>>) {
    match change {
        StatusChange::Suspend { reason } => (
            TenantStatus::Suspended.as_str(),
            Some(micros(at)),
            Some(reason.as_bytes().to_vec()),
        ),
        StatusChange::Resume => (TenantStatus::Active.as_str(), None, None),
    }
}

/// One page from rows fetched with `fetch_limit`, the cursor the last id.
pub(crate) fn tenant_page(items: &mut Vec<Tenant>, limit: u32) -> Page<Tenant> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|t| t.id.to_string())
    } else {
        None
    };
    Page::new(std::mem::take(items), next)
}
