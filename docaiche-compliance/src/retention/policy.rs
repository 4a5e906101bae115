//! Retention periods per tenant and resource kind.

use std::collections::BTreeMap;

use docaiche_core::{Error, Result, TenantId};
use serde::{Deserialize, Serialize};

/// The longest retention period accepted, in days (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// How long each kind of resource is kept, by default and per tenant, in
/// days. Reads from configuration:
///
/// ```
/// use docaiche_compliance::retention::{RetentionPolicies, resource};
/// use docaiche_core::TenantId;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let policies: RetentionPolicies = serde_json::from_str(r#"{
///     "default": { "documents": 90, "audit": 365 },
///     "tenants": { "acme": { "documents": 30 } }
/// }"#)?;
/// policies.validate()?;
/// let acme = TenantId::new("acme")?;
/// let globex = TenantId::new("globex")?;
/// assert_eq!(policies.days(&acme, resource::DOCUMENTS), Some(30));
/// assert_eq!(policies.days(&acme, resource::AUDIT), Some(365));
/// assert_eq!(policies.days(&globex, resource::DOCUMENTS), Some(90));
/// assert_eq!(policies.days(&globex, "exports"), None); // kept until deleted
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RetentionPolicies {
    /// Resource kind → days, for every tenant without its own entry.
    #[serde(default)]
    pub default: BTreeMap<String, u32>,
    /// Tenant → resource kind → days, overriding `default` kind by kind.
    #[serde(default)]
    pub tenants: BTreeMap<TenantId, BTreeMap<String, u32>>,
}

impl RetentionPolicies {
    /// No policy: nothing expires.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep `kind` for `days` in every tenant without its own policy.
    #[must_use]
    pub fn with_default(mut self, kind: impl Into<String>, days: u32) -> Self {
        self.default.insert(kind.into(), days);
        self
    }

    /// Keep `kind` for `days` in `tenant`.
    #[must_use]
    pub fn with_tenant(mut self, tenant: TenantId, kind: impl Into<String>, days: u32) -> Self {
        self.tenants
            .entry(tenant)
            .or_default()
            .insert(kind.into(), days);
        self
    }

    /// The retention period of `kind` in `tenant`, in days; `None` when no
    /// policy applies (kept until deleted).
    #[must_use]
    pub fn days(&self, tenant: &TenantId, kind: &str) -> Option<u32> {
        self.tenants
            .get(tenant)
            .and_then(|kinds| kinds.get(kind))
            .or_else(|| self.default.get(kind))
            .copied()
    }

    /// Every period of `tenant`, kind → days: its own policy over the
    /// defaults, kind by kind (what [`Self::days`] answers for each kind).
    #[must_use]
    pub fn tenant_periods(&self, tenant: &TenantId) -> BTreeMap<String, u32> {
        let mut periods = self.default.clone();
        if let Some(own) = self.tenants.get(tenant) {
            periods.extend(own.iter().map(|(kind, &days)| (kind.clone(), days)));
        }
        periods
    }

    /// Every resource kind that has a policy somewhere.
    #[must_use]
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self
            .default
            .keys()
            .chain(self.tenants.values().flat_map(BTreeMap::keys))
            .map(String::as_str)
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }

    /// Check every period.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for a period of 0 days or above
    /// [`MAX_RETENTION_DAYS`], or an empty resource kind.
    pub fn validate(&self) -> Result<()> {
        let all = self
            .default
            .iter()
            .chain(self.tenants.values().flat_map(BTreeMap::iter));
        for (kind, &days) in all {
            if kind.is_empty() {
                return Err(Error::misconfigured(
                    "retention",
                    "resource kind must not be empty",
                ));
            }
            if days == 0 || days > MAX_RETENTION_DAYS {
                return Err(Error::misconfigured(
                    "retention",
                    format!("retention of `{kind}` must be 1 to {MAX_RETENTION_DAYS} days"),
                ));
            }
        }
        Ok(())
    }
}
