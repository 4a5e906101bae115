//! Compliance reports: one [`ComplianceReport`] as JSON (serde) and as a
//! readable, self-contained HTML page.
//!
//! The report does not fetch anything itself: a [`ComplianceReportBuilder`]
//! takes the pieces (audit events of the period, the chain verification
//! result, retention policies, holds and the last purge, privacy requests,
//! API key records, secret ages) so the same code serves any backend.
//!
//! ```
//! use docaiche_compliance::report::{ChainStatus, ComplianceReport};
//! use docaiche_core::{Clock, ManualClock};
//!
//! let clock = ManualClock::new();
//! let report = ComplianceReport::builder(clock.now())
//!     .chain_status(ChainStatus::Verified { events: 0 })
//!     .secret("jwt_signing_key", clock.now() - time::Duration::days(200), 90)
//!     .build();
//! assert!(report.keys.secrets[0].overdue);
//! let html = report.to_html();
//! assert!(html.starts_with("<!DOCTYPE html>"));
//! let json = serde_json::to_string(&report).expect("serialisable");
//! assert!(json.contains("\"jwt_signing_key\""));
//! ```
//!
//! Every value that reaches the HTML page is escaped (tenant ids, key
//! names, reasons are user-controlled); the page has no script and no
//! external resource.

mod html;

use std::collections::BTreeMap;

use docaiche_core::api_key::ApiKeyRecord;
use docaiche_core::audit::{AuditEvent, AuditOutcome};
use docaiche_core::{ApiKeyId, TenantId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::privacy::{PrivacyRequest, Regulation, RequestKind, RequestStatus};
use crate::retention::{LegalHold, PurgeReport, RetentionPolicies};

/// Audit actions a deployment is expected to record; the report shows
/// which of them appeared in the period.
pub const EXPECTED_ACTIONS: &[&str] = &[
    "auth.login",
    "api_key.create",
    "api_key.revoke",
    "document.create",
    "document.delete",
    "privacy.request",
    "privacy.export",
    "privacy.erase",
    "retention.purge",
];

/// A compliance report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ComplianceReport {
    /// When it was generated.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The tenant it covers (`None`: the whole deployment).
    pub tenant: Option<TenantId>,
    /// Audit coverage and chain status.
    pub audit: AuditSection,
    /// Retention status.
    pub retention: RetentionSection,
    /// Data-subject requests.
    pub privacy: PrivacySection,
    /// Key and secret ages.
    pub keys: KeysSection,
    /// Failed logins and lockouts.
    pub auth: AuthSection,
}

/// Whether the audit trail's hash chain verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChainStatus {
    /// Verification was not run for this report.
    NotChecked,
    /// Every link verified.
    Verified {
        /// Events verified.
        events: u64,
    },
    /// The chain is broken: tampering or loss.
    Broken {
        /// First sequence number that failed, if known.
        at_sequence: Option<u64>,
        /// What failed.
        detail: String,
    },
}

/// Audit coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditSection {
    /// Events in the period.
    pub events_total: u64,
    /// Events per action.
    pub events_by_action: BTreeMap<String, u64>,
    /// Expected actions never seen in the period.
    pub missing_actions: Vec<String>,
    /// Chain verification.
    pub chain: ChainStatus,
}

/// Retention status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetentionSection {
    /// The policies in force.
    pub policies: RetentionPolicies,
    /// Active legal holds.
    pub active_holds: Vec<LegalHold>,
    /// The last purge run, if any.
    pub last_purge: Option<PurgeReport>,
}

/// One open data-subject request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OpenRequest {
    /// Request id.
    pub id: Uuid,
    /// Tenant.
    pub tenant: TenantId,
    /// Export or erase.
    pub kind: RequestKind,
    /// Regulation.
    pub regulation: Regulation,
    /// Status.
    pub status: RequestStatus,
    /// Received.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// Legal deadline.
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    /// Whole days until the deadline (negative when overdue).
    pub days_left: i64,
    /// Past its deadline.
    pub overdue: bool,
}

/// Data-subject requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PrivacySection {
    /// Open requests, nearest deadline first.
    pub open: Vec<OpenRequest>,
    /// Requests completed.
    pub completed: u64,
    /// Requests rejected.
    pub rejected: u64,
    /// Open requests past their deadline.
    pub overdue: u64,
}

/// The age of one API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyAge {
    /// Record id.
    pub id: ApiKeyId,
    /// Tenant.
    pub tenant: TenantId,
    /// Label.
    pub name: String,
    /// Days since creation.
    pub age_days: i64,
    /// Days since last use, if ever used.
    pub idle_days: Option<i64>,
    /// Older than the rotation period.
    pub rotation_due: bool,
}

/// The age of one secret (signing key, pepper, KEK …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SecretAge {
    /// The secret's name (never its value).
    pub name: String,
    /// Days since it was created or last rotated.
    pub age_days: i64,
    /// The rotation period.
    pub max_age_days: i64,
    /// Past its rotation period.
    pub overdue: bool,
}

/// Key and secret ages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeysSection {
    /// Rotation period applied to API keys, in days.
    pub api_key_rotation_days: i64,
    /// Usable (unrevoked, unexpired) API keys, oldest first.
    pub api_keys: Vec<KeyAge>,
    /// Secrets.
    pub secrets: Vec<SecretAge>,
}

/// Authentication figures from the audit events of the period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthSection {
    /// Successful logins.
    pub successful_logins: u64,
    /// Failed logins (`auth.*` events with outcome failure).
    pub failed_logins: u64,
    /// Refusals because of a lockout (reason `locked_out`).
    pub lockouts: u64,
    /// Failed logins per reason.
    pub failures_by_reason: BTreeMap<String, u64>,
}

impl ComplianceReport {
    /// A builder for a report generated at `now`.
    pub fn builder(now: OffsetDateTime) -> ComplianceReportBuilder {
        ComplianceReportBuilder::new(now)
    }

    /// The report as a self-contained HTML page (every value escaped).
    #[must_use]
    pub fn to_html(&self) -> String {
        html::render(self)
    }

    /// Whether anything needs attention: a broken chain, an overdue
    /// request, a key or secret due for rotation, an expected action never
    /// audited, or a failed purge.
    #[must_use]
    pub fn needs_attention(&self) -> bool {
        matches!(self.audit.chain, ChainStatus::Broken { .. })
            || self.privacy.overdue > 0
            || self.keys.api_keys.iter().any(|k| k.rotation_due)
            || self.keys.secrets.iter().any(|s| s.overdue)
            || !self.audit.missing_actions.is_empty()
            || self
                .retention
                .last_purge
                .as_ref()
                .is_some_and(|p| !p.failures.is_empty())
    }
}

/// Builds a [`ComplianceReport`] from its pieces.
#[derive(Debug, Clone)]
#[must_use]
pub struct ComplianceReportBuilder {
    report: ComplianceReport,
}

impl ComplianceReportBuilder {
    /// An empty report at `now`; API keys rotate after 90 days by default.
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            report: ComplianceReport {
                generated_at: now,
                tenant: None,
                audit: AuditSection {
                    events_total: 0,
                    events_by_action: BTreeMap::new(),
                    missing_actions: EXPECTED_ACTIONS.iter().map(|&a| a.to_owned()).collect(),
                    chain: ChainStatus::NotChecked,
                },
                retention: RetentionSection {
                    policies: RetentionPolicies::new(),
                    active_holds: Vec::new(),
                    last_purge: None,
                },
                privacy: PrivacySection::default(),
                keys: KeysSection {
                    api_key_rotation_days: 90,
                    ..KeysSection::default()
                },
                auth: AuthSection::default(),
            },
        }
    }

    /// Limit the report to a tenant.
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.report.tenant = Some(tenant);
        self
    }

    /// The audit events of the period: action counts, coverage of
    /// [`EXPECTED_ACTIONS`], login and lockout figures.
    pub fn audit_events<'a>(mut self, events: impl IntoIterator<Item = &'a AuditEvent>) -> Self {
        let audit = &mut self.report.audit;
        let auth = &mut self.report.auth;
        for event in events {
            audit.events_total += 1;
            *audit
                .events_by_action
                .entry(event.action.clone())
                .or_default() += 1;
            if event.action.starts_with("auth.") {
                let reason = event.reason.as_deref().unwrap_or("unspecified");
                match event.outcome {
                    AuditOutcome::Success if event.action == "auth.login" => {
                        auth.successful_logins += 1;
                    }
                    AuditOutcome::Failure => {
                        auth.failed_logins += 1;
                        *auth
                            .failures_by_reason
                            .entry(reason.to_owned())
                            .or_default() += 1;
                    }
                    _ => {}
                }
                if reason == "locked_out" {
                    auth.lockouts += 1;
                }
            }
        }
        let seen = &audit.events_by_action;
        audit.missing_actions.retain(|a| !seen.contains_key(a));
        self
    }

    /// The result of verifying the audit chain.
    pub fn chain_status(mut self, status: ChainStatus) -> Self {
        self.report.audit.chain = status;
        self
    }

    /// Retention policies, legal holds (released ones are left out) and
    /// the last purge report.
    pub fn retention(
        mut self,
        policies: RetentionPolicies,
        holds: impl IntoIterator<Item = LegalHold>,
        last_purge: Option<PurgeReport>,
    ) -> Self {
        self.report.retention = RetentionSection {
            policies,
            active_holds: holds.into_iter().filter(LegalHold::is_active).collect(),
            last_purge,
        };
        self
    }

    /// Privacy requests: open ones with their deadlines, counts of the rest.
    pub fn privacy_requests<'a>(
        mut self,
        requests: impl IntoIterator<Item = &'a PrivacyRequest>,
    ) -> Self {
        let now = self.report.generated_at;
        let privacy = &mut self.report.privacy;
        for request in requests {
            match request.status {
                RequestStatus::Completed => privacy.completed += 1,
                RequestStatus::Rejected => privacy.rejected += 1,
                _ => {}
            }
            if request.is_open() {
                let overdue = request.is_overdue(now);
                privacy.overdue += u64::from(overdue);
                privacy.open.push(OpenRequest {
                    id: request.id,
                    tenant: request.tenant.clone(),
                    kind: request.kind,
                    regulation: request.regulation,
                    status: request.status,
                    received_at: request.received_at,
                    deadline: request.deadline,
                    days_left: (request.deadline - now).whole_days(),
                    overdue,
                });
            }
        }
        privacy.open.sort_by_key(|r| r.deadline);
        self
    }

    /// Set the API key rotation period (days).
    pub fn api_key_rotation_days(mut self, days: i64) -> Self {
        self.report.keys.api_key_rotation_days = days;
        self
    }

    /// API key records: the usable ones with their ages.
    pub fn api_keys<'a>(mut self, records: impl IntoIterator<Item = &'a ApiKeyRecord>) -> Self {
        let now = self.report.generated_at;
        let rotation = self.report.keys.api_key_rotation_days;
        for record in records.into_iter().filter(|r| r.is_usable_at(now)) {
            let age_days = (now - record.created_at).whole_days();
            self.report.keys.api_keys.push(KeyAge {
                id: record.id,
                tenant: record.tenant.clone(),
                name: record.name.clone(),
                age_days,
                idle_days: record.last_used_at.map(|at| (now - at).whole_days()),
                rotation_due: age_days > rotation,
            });
        }
        self.report
            .keys
            .api_keys
            .sort_by_key(|k| std::cmp::Reverse(k.age_days));
        self
    }

    /// A secret created or last rotated at `rotated_at`, to be rotated
    /// every `max_age_days`.
    pub fn secret(
        mut self,
        name: impl Into<String>,
        rotated_at: OffsetDateTime,
        max_age_days: i64,
    ) -> Self {
        let age_days = (self.report.generated_at - rotated_at).whole_days();
        self.report.keys.secrets.push(SecretAge {
            name: name.into(),
            age_days,
            max_age_days,
            overdue: age_days > max_age_days,
        });
        self
    }

    /// The report.
    #[must_use]
    pub fn build(self) -> ComplianceReport {
        self.report
    }
}

#[cfg(test)]
mod tests;
