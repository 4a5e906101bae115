//! The authenticated caller.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::id::{ApiKeyId, PrincipalId, TenantId};
use crate::permission::{Permission, PermissionSet};

/// How a principal proved who it is. Recorded on the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// A JWT issued by this service, verified with the key named by `kid`.
    Jwt {
        /// The verifying key's id.
        kid: String,
    },
    /// A JWT from an external OIDC issuer.
    Oidc {
        /// The issuer URL.
        issuer: String,
    },
    /// An API key.
    ApiKey {
        /// The key's record id (never the key).
        key_id: ApiKeyId,
    },
    /// Email and password (only at the token endpoint).
    Password,
    /// An in-process caller (a background job, a bootstrap command).
    Internal,
}

/// Who is calling: identity, tenant, roles, effective permissions, how they
/// authenticated and until when.
///
/// A `Principal` is produced only by an [`crate::Authenticator`] after
/// verification; handlers receive it from request extensions. Its checks are
/// deny-by-default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Principal {
    /// The principal's id, unique within its tenant.
    pub id: PrincipalId,
    /// The tenant the principal belongs to.
    pub tenant: TenantId,
    /// Names of the roles the effective permissions were derived from.
    pub roles: Vec<String>,
    /// Effective permissions (already expanded from roles and scopes).
    pub permissions: PermissionSet,
    /// How the principal authenticated.
    pub auth_method: AuthMethod,
    /// When the authentication stops being valid, if it expires.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl Principal {
    /// A principal with no roles and no permissions, that never expires.
    #[must_use]
    pub fn new(id: PrincipalId, tenant: TenantId, auth_method: AuthMethod) -> Self {
        Self {
            id,
            tenant,
            roles: Vec::new(),
            permissions: PermissionSet::new(),
            auth_method,
            expires_at: None,
        }
    }

    /// The authenticated principal in request `extensions`: the
    /// `Arc<Principal>` an authentication layer shares (DocAIche's
    /// `AuthLayer` does), or a plain `Principal` an integrator's own layer
    /// put there. Every layer and handler that reads the caller goes
    /// through this one lookup.
    #[must_use]
    pub fn from_extensions(extensions: &http::Extensions) -> Option<&Self> {
        extensions
            .get::<Self>()
            .or_else(|| extensions.get::<std::sync::Arc<Self>>().map(|p| &**p))
    }

    /// Set the effective permissions.
    #[must_use]
    pub fn with_permissions(mut self, permissions: PermissionSet) -> Self {
        self.permissions = permissions;
        self
    }

    /// Set the role names.
    #[must_use]
    pub fn with_roles(mut self, roles: Vec<String>) -> Self {
        self.roles = roles;
        self
    }

    /// Set the expiry.
    #[must_use]
    pub fn with_expiry(mut self, expires_at: OffsetDateTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Whether the principal holds `permission`.
    #[must_use]
    pub fn has_permission(&self, permission: &Permission) -> bool {
        self.permissions.allows(permission)
    }

    /// Require `permission`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] naming the permission if it is not held.
    pub fn require(&self, permission: &Permission) -> Result<()> {
        if self.has_permission(permission) {
            Ok(())
        } else {
            Err(Error::missing_permission(permission.clone()))
        }
    }

    /// Require `permission` on data of `tenant`: the principal's own tenant,
    /// or any tenant if it also holds [`Permission::TENANTS_CROSS`].
    ///
    /// # Errors
    /// [`Error::Forbidden`] if the permission is missing, or if `tenant` is
    /// another tenant and the cross-tenant permission is missing.
    pub fn authorize_tenant(&self, tenant: &TenantId, permission: &Permission) -> Result<()> {
        self.require(permission)?;
        if &self.tenant == tenant {
            return Ok(());
        }
        self.require(&Permission::TENANTS_CROSS)
    }

    /// Whether the principal's authentication has expired at `now`.
    #[must_use]
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::Grant;

    fn principal(tenant: &str, grants: &[&str]) -> Principal {
        Principal::new(
            PrincipalId::new("alice").expect("valid"),
            TenantId::new(tenant).expect("valid"),
            AuthMethod::Password,
        )
        .with_permissions(
            grants
                .iter()
                .map(|g| Grant::parse(g).expect("valid"))
                .collect(),
        )
    }

    #[test]
    fn the_caller_is_found_shared_or_plain() {
        let mut extensions = http::Extensions::new();
        assert!(Principal::from_extensions(&extensions).is_none());
        extensions.insert(std::sync::Arc::new(principal("acme", &[])));
        let found = Principal::from_extensions(&extensions).expect("shared");
        assert_eq!(found.tenant.as_str(), "acme");
        // A plain principal (an integrator's layer) is looked at first.
        extensions.insert(principal("globex", &[]));
        let found = Principal::from_extensions(&extensions).expect("plain");
        assert_eq!(found.tenant.as_str(), "globex");
    }

    #[test]
    fn denies_by_default() {
        let p = principal("acme", &[]);
        assert!(matches!(
            p.require(&Permission::ADMIN_ACCESS),
            Err(Error::Forbidden { permission: Some(ref perm) }) if *perm == Permission::ADMIN_ACCESS
        ));
    }

    #[test]
    fn cross_tenant_access_needs_the_explicit_permission() {
        let acme = TenantId::new("acme").expect("valid");
        let globex = TenantId::new("globex").expect("valid");
        let reader = principal("acme", &["documents:read"]);
        assert!(
            reader
                .authorize_tenant(&acme, &Permission::DOCUMENTS_READ)
                .is_ok()
        );
        assert!(
            reader
                .authorize_tenant(&globex, &Permission::DOCUMENTS_READ)
                .is_err()
        );

        let tenant_admin = principal("acme", &["documents:*", "admin:access"]);
        assert!(
            tenant_admin
                .authorize_tenant(&globex, &Permission::DOCUMENTS_READ)
                .is_err()
        );

        let platform = principal("acme", &["documents:read", "tenants:cross"]);
        assert!(
            platform
                .authorize_tenant(&globex, &Permission::DOCUMENTS_READ)
                .is_ok()
        );
        assert!(
            platform
                .authorize_tenant(&globex, &Permission::DOCUMENTS_WRITE)
                .is_err()
        );
    }

    #[test]
    fn expiry_is_inclusive() {
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        let p = principal("acme", &[]).with_expiry(at);
        assert!(!p.is_expired_at(at - time::Duration::seconds(1)));
        assert!(p.is_expired_at(at));
    }
}
