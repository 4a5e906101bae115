//! Role-based access control: roles as data, bindings scoped to a tenant,
//! deny by default, and a cross-tenant role that must be granted
//! explicitly.
//!
//! ```
//! use docaiche_auth::rbac::{RbacConfig, RolePolicy, RoleBindings};
//! use docaiche_core::{Permission, PrincipalId, TenantId};
//!
//! # fn main() -> Result<(), docaiche_core::Error> {
//! let config: RbacConfig = serde_json::from_value(serde_json::json!({
//!     "roles": {
//!         "reader": ["documents:read"],
//!         "tenant-admin": ["documents:*", "keys:manage", "admin:access"],
//!         "platform-admin": { "grants": ["*:*"], "cross_tenant": true }
//!     }
//! })).expect("valid json");
//! let policy = RolePolicy::from_config(&config)?;
//!
//! let (acme, alice) = (TenantId::new("acme")?, PrincipalId::new("alice")?);
//! let mut bindings = RoleBindings::new();
//! bindings.bind(&policy, acme.clone(), alice.clone(), "reader")?;
//!
//! let resolved = policy.resolve(&bindings, &acme, &alice);
//! assert!(resolved.permissions.allows(&Permission::DOCUMENTS_READ));
//! assert!(!resolved.permissions.allows(&Permission::DOCUMENTS_WRITE));
//! // A binding in acme means nothing in another tenant.
//! let elsewhere = policy.resolve(&bindings, &TenantId::new("globex")?, &alice);
//! assert!(elsewhere.permissions.is_empty());
//! # Ok(()) }
//! ```
//!
//! # Rules
//!
//! - Policy is data: [`RbacConfig`] maps role names to grants
//!   ([`docaiche_core::Grant`]: `resource:action`, `resource:*`, `*:*`).
//! - Deny by default: no binding, an unknown role or another tenant's
//!   binding resolves to the empty set.
//! - Cross-tenant power is never implicit. A role whose grants cover
//!   `tenants:cross` (`*:*`, `tenants:*` or the permission itself) must be
//!   declared with `cross_tenant = true`, or the configuration is refused;
//!   and such a role is bound only through
//!   [`RoleBindings::bind_cross_tenant`], never by [`RoleBindings::bind`].
//! - Resolution only turns bindings into a [`PermissionSet`]; the decision
//!   belongs to a verified [`Principal`](docaiche_core::Principal)
//!   (`require`, `authorize_tenant`), so nothing here can grant access to a
//!   caller that has not authenticated.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use docaiche_core::{Error, Grant, Permission, PermissionSet, PrincipalId, Result, Role, TenantId};
use serde::Deserialize;

/// Roles as configured: role name → grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RbacConfig {
    /// The roles, by name.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleDefinition>,
}

/// One role in [`RbacConfig`]: a list of grants, or a table naming the
/// grants and whether the role is cross-tenant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum RoleDefinition {
    /// `reader = ["documents:read"]`.
    Grants(Vec<Grant>),
    /// `platform-admin = { grants = ["*:*"], cross_tenant = true }`.
    Detailed {
        /// What the role grants.
        grants: Vec<Grant>,
        /// Whether the role may act across tenants; required (and only
        /// allowed) when its grants cover `tenants:cross`.
        #[serde(default)]
        cross_tenant: bool,
    },
}

/// Validated roles.
#[derive(Debug, Clone, Default)]
pub struct RolePolicy {
    roles: HashMap<String, (Role, bool)>,
}

/// What a principal's bindings resolve to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedRoles {
    /// The names of the roles bound in the tenant, sorted.
    pub roles: Vec<String>,
    /// The union of their grants.
    pub permissions: PermissionSet,
}

/// The grammar shared with tenant-defined roles
/// ([`docaiche_core::custom_role::is_valid_role_name`]).
fn valid_role_name(name: &str) -> bool {
    docaiche_core::custom_role::is_valid_role_name(name)
}

impl RolePolicy {
    /// Validate `config`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for an invalid role name, or a role whose
    /// grants cover `tenants:cross` without `cross_tenant = true` (or the
    /// reverse).
    pub fn from_config(config: &RbacConfig) -> Result<Self> {
        let mut roles = HashMap::new();
        for (name, definition) in &config.roles {
            if !valid_role_name(name) {
                return Err(Error::misconfigured(
                    format!("rbac.roles.{name}"),
                    "role names are 1 to 64 lowercase letters, digits, - and _",
                ));
            }
            let (grants, cross_tenant) = match definition {
                RoleDefinition::Grants(g) => (g.clone(), false),
                RoleDefinition::Detailed {
                    grants,
                    cross_tenant,
                } => (grants.clone(), *cross_tenant),
            };
            let role = Role::new(name.clone(), grants);
            let covers_cross = role.grants.allows(&Permission::TENANTS_CROSS);
            if covers_cross != cross_tenant {
                return Err(Error::misconfigured(
                    format!("rbac.roles.{name}"),
                    if covers_cross {
                        "this role grants tenants:cross; declare it with cross_tenant = true"
                    } else {
                        "cross_tenant = true but the role does not grant tenants:cross"
                    },
                ));
            }
            roles.insert(name.clone(), (role, cross_tenant));
        }
        Ok(Self { roles })
    }

    /// The role named `name`.
    #[must_use]
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name).map(|(role, _)| role)
    }

    /// Every role, sorted by name, with whether it is cross-tenant.
    pub fn roles(&self) -> impl Iterator<Item = (&Role, bool)> {
        let mut roles: Vec<(&Role, bool)> = self
            .roles
            .values()
            .map(|(role, cross)| (role, *cross))
            .collect();
        roles.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        roles.into_iter()
    }

    /// Whether `name` is a cross-tenant role.
    #[must_use]
    pub fn is_cross_tenant(&self, name: &str) -> bool {
        self.roles.get(name).is_some_and(|(_, cross)| *cross)
    }

    /// The union of the grants of `roles`; unknown names grant nothing.
    #[must_use]
    pub fn permissions_of<'a>(&self, roles: impl IntoIterator<Item = &'a str>) -> PermissionSet {
        roles
            .into_iter()
            .filter_map(|name| self.role(name))
            .flat_map(|role| role.grants.iter().cloned())
            .collect()
    }

    /// What `principal` may do in `tenant` under `bindings`. Only bindings
    /// made in `tenant` count.
    #[must_use]
    pub fn resolve(
        &self,
        bindings: &RoleBindings,
        tenant: &TenantId,
        principal: &PrincipalId,
    ) -> ResolvedRoles {
        let roles: Vec<String> = bindings
            .roles_of(tenant, principal)
            .filter(|name| self.roles.contains_key(*name))
            .map(str::to_owned)
            .collect();
        let permissions = self.permissions_of(roles.iter().map(String::as_str));
        ResolvedRoles { roles, permissions }
    }
}

/// Which principal holds which role in which tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleBindings {
    bindings: HashMap<(TenantId, PrincipalId), BTreeSet<String>>,
}

impl RoleBindings {
    /// No bindings: everyone is denied everything.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Give `principal` role `role` in `tenant`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `policy` has no such role;
    /// [`Error::Forbidden`] (naming `tenants:cross`) if it is a cross-tenant
    /// role: those are bound only with [`RoleBindings::bind_cross_tenant`].
    pub fn bind(
        &mut self,
        policy: &RolePolicy,
        tenant: TenantId,
        principal: PrincipalId,
        role: &str,
    ) -> Result<()> {
        if policy.role(role).is_none() {
            return Err(Error::invalid_input(format!("unknown role `{role}`")));
        }
        if policy.is_cross_tenant(role) {
            return Err(Error::missing_permission(Permission::TENANTS_CROSS));
        }
        self.insert(tenant, principal, role);
        Ok(())
    }

    /// Give `principal` the cross-tenant role `role` (in its home
    /// `tenant`). The explicit, separately named, grep-able way to make a
    /// platform administrator.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `role` is unknown or not a cross-tenant
    /// role.
    pub fn bind_cross_tenant(
        &mut self,
        policy: &RolePolicy,
        tenant: TenantId,
        principal: PrincipalId,
        role: &str,
    ) -> Result<()> {
        if !policy.is_cross_tenant(role) {
            return Err(Error::invalid_input(format!(
                "`{role}` is not a cross-tenant role"
            )));
        }
        self.insert(tenant, principal, role);
        Ok(())
    }

    /// Remove a binding. Returns whether it existed.
    pub fn unbind(&mut self, tenant: &TenantId, principal: &PrincipalId, role: &str) -> bool {
        let key = (tenant.clone(), principal.clone());
        let Some(roles) = self.bindings.get_mut(&key) else {
            return false;
        };
        let removed = roles.remove(role);
        if roles.is_empty() {
            self.bindings.remove(&key);
        }
        removed
    }

    /// The role names bound to `principal` in `tenant`.
    pub fn roles_of(
        &self,
        tenant: &TenantId,
        principal: &PrincipalId,
    ) -> impl Iterator<Item = &str> {
        self.bindings
            .get(&(tenant.clone(), principal.clone()))
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    fn insert(&mut self, tenant: TenantId, principal: PrincipalId, role: &str) {
        self.bindings
            .entry((tenant, principal))
            .or_default()
            .insert(role.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use docaiche_core::{AuthMethod, Principal};

    use super::*;

    fn policy() -> RolePolicy {
        let config: RbacConfig = serde_json::from_value(serde_json::json!({
            "roles": {
                "reader": ["documents:read"],
                "tenant-admin": ["documents:*", "keys:manage", "admin:access"],
                "platform-admin": { "grants": ["*:*"], "cross_tenant": true }
            }
        }))
        .expect("valid");
        RolePolicy::from_config(&config).expect("valid")
    }

    fn ids() -> (TenantId, TenantId, PrincipalId) {
        (
            TenantId::new("acme").expect("valid"),
            TenantId::new("globex").expect("valid"),
            PrincipalId::new("alice").expect("valid"),
        )
    }

    #[test]
    fn roles_are_listed_by_name_with_their_reach() {
        let policy = policy();
        let listed: Vec<(&str, bool)> = policy
            .roles()
            .map(|(role, cross)| (role.name.as_str(), cross))
            .collect();
        assert_eq!(
            listed,
            [
                ("platform-admin", true),
                ("reader", false),
                ("tenant-admin", false)
            ]
        );
        let (reader, _) = policy.roles().nth(1).expect("reader");
        assert!(reader.grants.allows(&Permission::DOCUMENTS_READ));
        assert!(!reader.grants.allows(&Permission::DOCUMENTS_WRITE));
    }

    #[test]
    fn denies_by_default() {
        let policy = policy();
        let (acme, _, alice) = ids();
        let resolved = policy.resolve(&RoleBindings::new(), &acme, &alice);
        assert!(resolved.permissions.is_empty());
        assert!(resolved.roles.is_empty());
        assert!(policy.permissions_of(["no-such-role"]).is_empty());
    }

    #[test]
    fn tenant_admin_is_not_cross_tenant() {
        let policy = policy();
        let (acme, globex, alice) = ids();
        let mut bindings = RoleBindings::new();
        bindings
            .bind(&policy, acme.clone(), alice.clone(), "tenant-admin")
            .expect("bindable");
        let resolved = policy.resolve(&bindings, &acme, &alice);
        let principal = Principal::new(alice.clone(), acme.clone(), AuthMethod::Password)
            .with_permissions(resolved.permissions);
        assert!(
            principal
                .authorize_tenant(&acme, &Permission::KEYS_MANAGE)
                .is_ok()
        );
        assert!(
            principal
                .authorize_tenant(&globex, &Permission::KEYS_MANAGE)
                .is_err()
        );
        assert!(
            policy
                .resolve(&bindings, &globex, &alice)
                .permissions
                .is_empty()
        );
    }

    #[test]
    fn cross_tenant_admin_must_be_granted_explicitly() {
        let policy = policy();
        let (acme, globex, alice) = ids();
        let mut bindings = RoleBindings::new();
        assert!(matches!(
            bindings.bind(&policy, acme.clone(), alice.clone(), "platform-admin"),
            Err(Error::Forbidden { permission: Some(ref p) }) if *p == Permission::TENANTS_CROSS
        ));
        assert!(
            policy
                .resolve(&bindings, &acme, &alice)
                .permissions
                .is_empty()
        );
        assert!(
            bindings
                .bind_cross_tenant(&policy, acme.clone(), alice.clone(), "reader")
                .is_err()
        );
        bindings
            .bind_cross_tenant(&policy, acme.clone(), alice.clone(), "platform-admin")
            .expect("explicit grant");
        let principal = Principal::new(alice.clone(), acme.clone(), AuthMethod::Password)
            .with_permissions(policy.resolve(&bindings, &acme, &alice).permissions);
        assert!(
            principal
                .authorize_tenant(&globex, &Permission::KEYS_MANAGE)
                .is_ok()
        );
    }

    #[test]
    fn refuses_implicit_cross_tenant_roles() {
        for grants in [vec!["*:*"], vec!["tenants:*"], vec!["tenants:cross"]] {
            let config: RbacConfig = serde_json::from_value(serde_json::json!({
                "roles": { "sneaky": grants }
            }))
            .expect("valid");
            assert!(RolePolicy::from_config(&config).is_err(), "{grants:?}");
        }
        let config: RbacConfig = serde_json::from_value(serde_json::json!({
            "roles": { "fake": { "grants": ["documents:read"], "cross_tenant": true } }
        }))
        .expect("valid");
        assert!(RolePolicy::from_config(&config).is_err());
        let config: RbacConfig = serde_json::from_value(serde_json::json!({
            "roles": { "Bad Name": ["documents:read"] }
        }))
        .expect("valid");
        assert!(RolePolicy::from_config(&config).is_err());
    }

    #[test]
    fn unbinding_revokes() {
        let policy = policy();
        let (acme, _, alice) = ids();
        let mut bindings = RoleBindings::new();
        bindings
            .bind(&policy, acme.clone(), alice.clone(), "reader")
            .expect("bindable");
        assert!(bindings.unbind(&acme, &alice, "reader"));
        assert!(!bindings.unbind(&acme, &alice, "reader"));
        assert!(
            policy
                .resolve(&bindings, &acme, &alice)
                .permissions
                .is_empty()
        );
    }
}
