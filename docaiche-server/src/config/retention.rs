//! `[retention]`: retention periods per resource kind, for every tenant and
//! per tenant, and the scheduled purge's settings (what they drive is
//! `crate::compliance`).

use std::collections::{BTreeMap, BTreeSet};

use docaiche_compliance::retention::{
    MAX_RETENTION_DAYS, Purger, RetentionPolicies, StaticTenants, resource,
};
use docaiche_core::{Error, TenantId};
use serde::Deserialize;

use crate::config::AuthSection;

/// The resource kinds `[retention]` accepts.
pub(crate) const KINDS: &[&str] = &[
    resource::DOCUMENTS,
    resource::AUDIT,
    resource::PRIVACY_REQUESTS,
];

/// `[retention]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RetentionSection {
    /// Run the scheduled purge.
    pub(crate) enabled: bool,
    /// Seconds between purge runs.
    pub(crate) interval_secs: u64,
    /// Items deleted per tenant and kind in one run.
    pub(crate) max_per_run: u64,
    /// Tenants the purge visits (beyond those of the tenant registry and
    /// those named in `tenants` and in `[[auth.bindings]]`).
    pub(crate) purge_tenants: Vec<String>,
    /// Resource kind → days, for every tenant.
    pub(crate) default: BTreeMap<String, u32>,
    /// Tenant → resource kind → days, overriding `default`.
    pub(crate) tenants: BTreeMap<String, BTreeMap<String, u32>>,
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 3600,
            max_per_run: Purger::DEFAULT_MAX_PER_RUN,
            purge_tenants: Vec::new(),
            default: BTreeMap::new(),
            tenants: BTreeMap::new(),
        }
    }
}

/// Bounds of `retention.interval_secs`.
const INTERVAL_SECS: (u64, u64) = (60, 7 * 24 * 3600);
/// Upper bound of `retention.max_per_run`.
const MAX_PER_RUN: u64 = 1_000_000;

impl RetentionSection {
    /// Invalid settings, as `(setting, reason)` (see `Config::validate`).
    pub(crate) fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !(INTERVAL_SECS.0..=INTERVAL_SECS.1).contains(&self.interval_secs) {
            out.push((
                "retention.interval_secs".to_owned(),
                format!(
                    "must be between {} (one minute) and {} (one week)",
                    INTERVAL_SECS.0, INTERVAL_SECS.1
                ),
            ));
        }
        if self.max_per_run == 0 || self.max_per_run > MAX_PER_RUN {
            out.push((
                "retention.max_per_run".to_owned(),
                format!("must be between 1 and {MAX_PER_RUN}"),
            ));
        }
        periods(&mut out, "retention.default", &self.default);
        for (tenant, kinds) in &self.tenants {
            if TenantId::new(tenant.as_str()).is_err() {
                out.push((
                    "retention.tenants".to_owned(),
                    format!("`{tenant}` is not a tenant id"),
                ));
                continue;
            }
            periods(&mut out, &format!("retention.tenants.{tenant}"), kinds);
        }
        for tenant in &self.purge_tenants {
            if TenantId::new(tenant.as_str()).is_err() {
                out.push((
                    "retention.purge_tenants".to_owned(),
                    format!("`{tenant}` is not a tenant id"),
                ));
            }
        }
        out
    }

    /// The policies of this section.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for what [`Self::problems`] reports.
    pub(crate) fn policies(&self) -> Result<RetentionPolicies, Error> {
        if let Some((setting, reason)) = self.problems().into_iter().next() {
            return Err(Error::misconfigured(setting, reason));
        }
        let mut policies = RetentionPolicies::new();
        for (kind, &days) in &self.default {
            policies = policies.with_default(kind.clone(), days);
        }
        for (tenant, kinds) in &self.tenants {
            let tenant = TenantId::new(tenant.as_str())
                .map_err(|_| Error::misconfigured("retention.tenants", "not a tenant id"))?;
            for (kind, &days) in kinds {
                policies = policies.with_tenant(tenant.clone(), kind.clone(), days);
            }
        }
        policies.validate()?;
        Ok(policies)
    }

    /// The configured tenants the purge visits besides the tenant
    /// registry's: `purge_tenants`, the tenants with a policy of their own
    /// and those of `[[auth.bindings]]` (the document stores cannot list
    /// their tenants). Invalid ids are skipped (validation reports them).
    pub(crate) fn purge_directory(&self, auth: &AuthSection) -> StaticTenants {
        let names: BTreeSet<&str> = self
            .purge_tenants
            .iter()
            .chain(self.tenants.keys())
            .chain(auth.bindings.iter().map(|b| &b.tenant))
            .map(String::as_str)
            .collect();
        StaticTenants::new(names.into_iter().filter_map(|t| TenantId::new(t).ok()))
    }
}

/// The problems of the periods `kinds` under `prefix`, added to `out`.
fn periods(out: &mut Vec<(String, String)>, prefix: &str, kinds: &BTreeMap<String, u32>) {
    for (kind, &days) in kinds {
        let setting = format!("{prefix}.{kind}");
        if !KINDS.contains(&kind.as_str()) {
            out.push((
                setting,
                format!("is not a resource kind; use one of {}", KINDS.join(", ")),
            ));
        } else if days == 0 || days > MAX_RETENTION_DAYS {
            out.push((setting, format!("must be 1 to {MAX_RETENTION_DAYS} days")));
        }
    }
}
