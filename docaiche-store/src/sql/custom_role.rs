//! The `custom_roles` row shared by the SQLite and PostgreSQL custom role
//! adapters.

use docaiche_core::custom_role::{CustomRole, MAX_CUSTOM_ROLE_PERMISSIONS};
use docaiche_core::{Error, PermissionSet, Result, TenantId};

use super::{from_micros, to_json};

/// The columns of `custom_roles`, in [`CustomRoleRow`] order.
pub(crate) const CUSTOM_ROLE_COLUMNS: &str =
    "tenant_id, name, permissions, description, created_at, updated_at";

/// One `custom_roles` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CustomRoleRow {
    tenant_id: String,
    name: String,
    permissions: String,
    description: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl CustomRoleRow {
    /// The role, or `Internal` for a row no adapter writes.
    pub(crate) fn into_role(self) -> Result<CustomRole> {
        let tenant = TenantId::new(self.tenant_id)
            .map_err(|e| Error::internal_with("stored tenant id is invalid", e))?;
        let permissions =
            PermissionSet::from_json_bounded(&self.permissions, MAX_CUSTOM_ROLE_PERMISSIONS)
                .map_err(|e| Error::internal_with("stored role permissions are invalid", e))?;
        let mut role = CustomRole::new(tenant, self.name, [], from_micros(self.created_at)?)
            .map_err(|e| Error::internal_with("stored custom role is invalid", e))?
            .with_description(self.description);
        role.permissions = permissions;
        role.updated_at = from_micros(self.updated_at)?;
        role.validate()
            .map_err(|e| Error::internal_with("stored custom role is invalid", e))?;
        Ok(role)
    }
}

/// The `permissions` column of `role`.
pub(crate) fn permissions_json(role: &CustomRole) -> Result<String> {
    to_json(&role.permissions)
}

/// The refusal of a creation past the bound.
pub(crate) fn too_many() -> Error {
    Error::conflict(format!(
        "a tenant defines at most {} custom roles",
        docaiche_core::custom_role::MAX_CUSTOM_ROLES
    ))
}
