//! The [`CustomRoleStore`] contract: roles a tenant defines for itself,
//! each a named set of exact permissions.
//!
//! Platform roles (wildcards, cross-tenant power) stay in configuration;
//! a custom role holds only concrete permissions, never
//! [`Permission::TENANTS_CROSS`], so it can be expanded into the concrete
//! `permissions` claim of a token without ever becoming a wildcard.
//!
//! ```
//! use docaiche_core::custom_role::CustomRole;
//! use docaiche_core::{Permission, TenantId};
//! use time::OffsetDateTime;
//!
//! # fn main() -> docaiche_core::Result<()> {
//! let editor = CustomRole::new(
//!     TenantId::new("acme")?,
//!     "editor",
//!     [Permission::DOCUMENTS_READ, Permission::DOCUMENTS_WRITE],
//!     OffsetDateTime::UNIX_EPOCH,
//! )?;
//! assert_eq!(editor.permissions.len(), 2);
//! // Names follow the grammar of configured roles; tenants:cross is never custom.
//! let acme = TenantId::new("acme")?;
//! let at = OffsetDateTime::UNIX_EPOCH;
//! assert!(CustomRole::new(acme.clone(), "Bad Name", [Permission::JOBS_READ], at).is_err());
//! assert!(CustomRole::new(acme, "crosser", [Permission::TENANTS_CROSS], at).is_err());
//! # Ok(()) }
//! ```

use std::fmt;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::id::TenantId;
use crate::permission::{Grant, Permission, PermissionSet};

/// Most custom roles one tenant may define.
pub const MAX_CUSTOM_ROLES: usize = 100;

/// Most permissions one custom role may hold.
pub const MAX_CUSTOM_ROLE_PERMISSIONS: usize = crate::permission::MAX_SCOPES;

/// Longest role name, in bytes.
pub const MAX_ROLE_NAME_LEN: usize = 64;

/// Longest custom role description, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 500;

/// Whether `name` is a valid role name: 1 to [`MAX_ROLE_NAME_LEN`] bytes of
/// lowercase ASCII letters, digits, `-` and `_`, starting with a letter.
/// Configured roles and custom roles share this grammar.
#[must_use]
pub fn is_valid_role_name(name: &str) -> bool {
    (1..=MAX_ROLE_NAME_LEN).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A role defined by a tenant: a name and the exact permissions it grants.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CustomRole {
    /// Owning tenant.
    pub tenant: TenantId,
    /// The role's name, unique within the tenant ([`is_valid_role_name`]).
    pub name: String,
    /// What it grants: exact permissions only ([`Grant::Exact`]), never
    /// [`Permission::TENANTS_CROSS`], at most
    /// [`MAX_CUSTOM_ROLE_PERMISSIONS`].
    pub permissions: PermissionSet,
    /// What the role is for, at most [`MAX_DESCRIPTION_LEN`] bytes without
    /// control characters.
    pub description: Option<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl CustomRole {
    /// A role of `tenant` named `name` granting `permissions`, created (and
    /// updated) at `at`, without a description.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] as [`CustomRole::validate`].
    pub fn new(
        tenant: TenantId,
        name: impl Into<String>,
        permissions: impl IntoIterator<Item = Permission>,
        at: OffsetDateTime,
    ) -> Result<Self> {
        let role = Self {
            tenant,
            name: name.into(),
            permissions: permissions.into_iter().collect(),
            description: None,
            created_at: at,
            updated_at: at,
        };
        role.validate()?;
        Ok(role)
    }

    /// Set the description (checked by [`CustomRole::validate`], which
    /// stores call).
    #[must_use]
    pub fn with_description(mut self, description: Option<String>) -> Self {
        self.description = description;
        self
    }

    /// The permissions, as concrete [`Permission`]s.
    pub fn exact_permissions(&self) -> impl Iterator<Item = &Permission> {
        self.permissions.iter().filter_map(|grant| match grant {
            Grant::Exact(permission) => Some(permission),
            _ => None,
        })
    }

    /// Check the invariants of the type docs. Stores call this before
    /// writing, so that no invalid role is ever stored.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an invalid name, a wildcard grant,
    /// `tenants:cross`, too many permissions, or a description too long or
    /// holding control characters. Messages never quote the input.
    pub fn validate(&self) -> Result<()> {
        if !is_valid_role_name(&self.name) {
            return Err(Error::invalid_input(format!(
                "role names are 1 to {MAX_ROLE_NAME_LEN} lowercase letters, digits, - and _, \
                 starting with a letter"
            )));
        }
        if self.permissions.len() > MAX_CUSTOM_ROLE_PERMISSIONS {
            return Err(Error::invalid_input(format!(
                "a custom role holds at most {MAX_CUSTOM_ROLE_PERMISSIONS} permissions"
            )));
        }
        for grant in self.permissions.iter() {
            match grant {
                Grant::Exact(p) if *p == Permission::TENANTS_CROSS => {
                    return Err(Error::invalid_input(
                        "a custom role cannot grant tenants:cross",
                    ));
                }
                Grant::Exact(_) => {}
                _ => {
                    return Err(Error::invalid_input(
                        "a custom role holds exact permissions only, not wildcards",
                    ));
                }
            }
        }
        if let Some(description) = &self.description
            && (description.len() > MAX_DESCRIPTION_LEN
                || description.chars().any(char::is_control))
        {
            return Err(Error::invalid_input(format!(
                "a description is at most {MAX_DESCRIPTION_LEN} bytes without control characters"
            )));
        }
        Ok(())
    }
}

impl fmt::Debug for CustomRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomRole")
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("permissions", &self.permissions)
            .field("description", &self.description)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// Persistence of tenant-defined roles.
///
/// Contract:
/// - Every method is scoped by the tenant given: a role of another tenant
///   is invisible (`None`, `false`, absent from lists), never an error
///   that reveals it exists. Two tenants may each have a role of the same
///   name.
/// - Names are attacker-chosen (they arrive from request paths and
///   bodies): a lookup by a name that is not a valid role name is
///   `Ok(None)` / `Ok(false)`, never an error or a panic; quotes, `%`, `_`
///   and other metacharacters are matched exactly, never as patterns.
/// - [`CustomRoleStore::put`] stores only roles that pass
///   [`CustomRole::validate`] (else `InvalidInput`, nothing written). It
///   creates or replaces the role `(tenant, name)` and returns whether it
///   created it; a replacement keeps the stored `created_at` and takes the
///   new `updated_at`, permissions and description. It is idempotent.
/// - Capacity: at most [`MAX_CUSTOM_ROLES`] roles per tenant; creating one
///   more is `Err(Conflict)` and changes nothing (replacing an existing
///   role is always allowed), also when creations race.
/// - [`CustomRoleStore::list`] returns every role of the tenant (at most
///   [`MAX_CUSTOM_ROLES`]), ordered by name (bytewise).
/// - Timestamps may come back truncated to the microsecond.
/// - An outage is `Err(Unavailable)`; callers fail closed (a login then
///   fails rather than issue a token without its custom roles' checks).
#[async_trait::async_trait]
pub trait CustomRoleStore: Send + Sync + fmt::Debug + 'static {
    /// Create or replace `role`; `true` when it was created.
    ///
    /// # Errors
    /// `InvalidInput` for a role [`CustomRole::validate`] refuses;
    /// `Conflict` when the tenant already has [`MAX_CUSTOM_ROLES`] roles;
    /// `Unavailable` on outage.
    async fn put(&self, role: &CustomRole) -> Result<bool>;

    /// The role of `tenant` named `name`.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn get(&self, tenant: &TenantId, name: &str) -> Result<Option<CustomRole>>;

    /// Every role of `tenant`, ordered by name.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn list(&self, tenant: &TenantId) -> Result<Vec<CustomRole>>;

    /// Delete the role. Returns whether it existed in the tenant.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn delete(&self, tenant: &TenantId, name: &str) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_follow_the_configured_grammar() {
        for ok in ["reader", "a", "tenant-admin", "x_1", &"a".repeat(64)] {
            assert!(is_valid_role_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Reader",
            "1st",
            "-x",
            "a b",
            "a'--",
            "a%",
            "é",
            &"a".repeat(65),
        ] {
            assert!(!is_valid_role_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn only_exact_tenant_scoped_permissions_are_valid() {
        let acme = TenantId::new("acme").expect("tenant");
        let at = OffsetDateTime::UNIX_EPOCH;
        let mut role =
            CustomRole::new(acme.clone(), "editor", [Permission::DOCUMENTS_READ], at).expect("ok");
        role.permissions
            .insert(Grant::parse("documents:*").expect("grant"));
        assert!(role.validate().is_err(), "wildcard");
        role.permissions = [Grant::Everything].into_iter().collect();
        assert!(role.validate().is_err(), "everything");
        assert!(CustomRole::new(acme.clone(), "x", [Permission::TENANTS_CROSS], at).is_err());
        let described = CustomRole::new(acme, "x", [], at)
            .expect("empty is fine")
            .with_description(Some("line\nbreak".into()));
        assert!(described.validate().is_err(), "control characters");
    }
}
