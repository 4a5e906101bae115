//! The [`TenantStore`] contract: the platform's registry of tenants, their
//! status (active or suspended) and their per-tenant settings (rate-limit
//! overrides, retention, storage quotas).
//!
//! ```
//! use docaiche_core::tenant::{Tenant, TenantQuotas, TenantSettings, TenantStatus};
//! use docaiche_core::TenantId;
//! use time::OffsetDateTime;
//!
//! # fn main() -> docaiche_core::Result<()> {
//! let settings = TenantSettings::default().with_quotas(
//!     TenantQuotas::default()
//!         .with_max_documents(Some(10_000))
//!         .with_max_storage_bytes(Some(5 << 30)),
//! );
//! settings.validate()?;
//! let acme = Tenant::new(TenantId::new("acme")?, "Acme Corp", OffsetDateTime::UNIX_EPOCH)
//!     .with_settings(settings);
//! assert_eq!(acme.status, TenantStatus::Active);
//! assert!(!acme.is_suspended());
//! # Ok(()) }
//! ```
//!
//! A tenant the registry does not hold is not refused: tenants existed
//! before the registry (their keys and accounts name them), so an unknown
//! tenant is *active, with default settings*. Registering a tenant is what
//! makes it suspendable and gives it settings.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, FieldError, Result};
use crate::id::{ApiKeyId, TenantId};
use crate::page::{Page, PageRequest};

/// Longest accepted display name, in bytes.
pub const MAX_DISPLAY_NAME_LEN: usize = 200;
/// Longest accepted suspension reason, in characters once trimmed.
pub const MAX_SUSPENSION_REASON_LEN: usize = 500;
/// Most per-key rate-limit overrides one tenant may hold.
pub const MAX_KEY_RATE_LIMITS: usize = 1_000;
/// Longest retention override, in days (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// Whether a tenant may use the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TenantStatus {
    /// Requests are served.
    Active,
    /// Every request of the tenant's principals (API keys, sessions) is
    /// refused, until a platform administrator resumes it.
    Suspended,
}

impl TenantStatus {
    /// Every status.
    pub const ALL: [Self; 2] = [Self::Active, Self::Suspended];

    /// The stable snake-case name (`active`, `suspended`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    /// The status named `name` ([`Self::as_str`]'s inverse).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rate limit replacing the configured one: `requests` per
/// `period_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimitOverride {
    /// Requests allowed per period (also the burst).
    pub requests: NonZeroU32,
    /// The period, in seconds.
    pub period_secs: NonZeroU32,
}

impl RateLimitOverride {
    /// `requests` per `period_secs` seconds.
    #[must_use]
    pub const fn new(requests: NonZeroU32, period_secs: NonZeroU32) -> Self {
        Self {
            requests,
            period_secs,
        }
    }
}

/// Per-tenant storage quotas; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantQuotas {
    /// Most bytes of stored documents (the uploaded bytes).
    pub max_storage_bytes: Option<u64>,
    /// Most stored documents.
    pub max_documents: Option<u64>,
}

impl TenantQuotas {
    /// Set the storage quota, in bytes.
    #[must_use]
    pub const fn with_max_storage_bytes(mut self, bytes: Option<u64>) -> Self {
        self.max_storage_bytes = bytes;
        self
    }

    /// Set the document quota.
    #[must_use]
    pub const fn with_max_documents(mut self, documents: Option<u64>) -> Self {
        self.max_documents = documents;
        self
    }
}

/// The settings of one tenant; every field's default leaves the server's
/// configuration in force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantSettings {
    /// Replaces the configured per-tenant rate limit.
    pub rate_limit: Option<RateLimitOverride>,
    /// Replace the configured per-key rate limit, for these keys of the
    /// tenant (at most [`MAX_KEY_RATE_LIMITS`]).
    pub key_rate_limits: BTreeMap<ApiKeyId, RateLimitOverride>,
    /// Replaces the configured document retention, in days (1 to
    /// [`MAX_RETENTION_DAYS`]): the period after which the tenant's
    /// documents are purged. It takes precedence over the configured
    /// periods (the tenant's own, then the default) because it is the later
    /// decision, made for this tenant by a platform administrator; `None`
    /// leaves the configured period in force. `docaiche-compliance`'s
    /// `TenantStoreRetention` applies it at every purge run (the bundled
    /// server does, from the next run after a change); legal holds still
    /// keep what they cover.
    pub retention_days: Option<u32>,
    /// Storage quotas, enforced at upload.
    pub quotas: TenantQuotas,
    /// Whether the tenant's administrators (accounts holding
    /// `accounts:manage` or `admin:access`) must pass a TOTP second factor
    /// to sign in to the console: one without an active enrolment is
    /// signed in only as far as the enrolment page. Platform
    /// administrators need one whatever this says. Absent from settings
    /// stored before it existed: `false`.
    pub require_admin_mfa: bool,
}

impl TenantSettings {
    /// Set the quotas.
    #[must_use]
    pub const fn with_quotas(mut self, quotas: TenantQuotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// Set the per-tenant rate-limit override.
    #[must_use]
    pub const fn with_rate_limit(mut self, rate_limit: Option<RateLimitOverride>) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// Set the retention override.
    #[must_use]
    pub const fn with_retention_days(mut self, days: Option<u32>) -> Self {
        self.retention_days = days;
        self
    }

    /// Require (or not) a second factor of the tenant's administrators.
    #[must_use]
    pub const fn with_require_admin_mfa(mut self, required: bool) -> Self {
        self.require_admin_mfa = required;
        self
    }

    /// Check the bounds a deserializer cannot express.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming each field out of bounds.
    pub fn validate(&self) -> Result<()> {
        let mut fields = Vec::new();
        if self.key_rate_limits.len() > MAX_KEY_RATE_LIMITS {
            fields.push(FieldError::new(
                "/key_rate_limits",
                format!("at most {MAX_KEY_RATE_LIMITS} keys"),
            ));
        }
        if let Some(days) = self.retention_days
            && !(1..=MAX_RETENTION_DAYS).contains(&days)
        {
            fields.push(FieldError::new(
                "/retention_days",
                format!("must be 1 to {MAX_RETENTION_DAYS}"),
            ));
        }
        if fields.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid_fields("tenant settings are invalid", fields))
        }
    }
}

/// A tenant of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tenant {
    /// Its id (the `tenant` of its keys, accounts and documents).
    pub id: TenantId,
    /// A human name (see [`validate_display_name`]).
    pub display_name: String,
    /// Active or suspended.
    pub status: TenantStatus,
    /// When it was suspended (`Some` exactly while suspended).
    pub suspended_at: Option<OffsetDateTime>,
    /// Why it was suspended (`Some` exactly while suspended; platform
    /// operators' text, never shown to the tenant's principals).
    pub suspension_reason: Option<String>,
    /// Its settings.
    pub settings: TenantSettings,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change (settings or status).
    pub updated_at: OffsetDateTime,
}

impl Tenant {
    /// An active tenant with default settings, created (and updated) at
    /// `at`.
    #[must_use]
    pub fn new(id: TenantId, display_name: impl Into<String>, at: OffsetDateTime) -> Self {
        Self {
            id,
            display_name: display_name.into(),
            status: TenantStatus::Active,
            suspended_at: None,
            suspension_reason: None,
            settings: TenantSettings::default(),
            created_at: at,
            updated_at: at,
        }
    }

    /// Set the settings.
    #[must_use]
    pub fn with_settings(mut self, settings: TenantSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Suspended since `at` because of `reason`.
    #[must_use]
    pub fn suspended(mut self, reason: impl Into<String>, at: OffsetDateTime) -> Self {
        self.status = TenantStatus::Suspended;
        self.suspended_at = Some(at);
        self.suspension_reason = Some(reason.into());
        self
    }

    /// Whether the tenant is suspended.
    #[must_use]
    pub fn is_suspended(&self) -> bool {
        self.status == TenantStatus::Suspended
    }
}

/// Check a display name: once trimmed, 1 to [`MAX_DISPLAY_NAME_LEN`]
/// characters, none a control character (the rule of API key names, so
/// an OpenAPI pattern can state it exactly).
///
/// # Errors
/// [`Error::InvalidInput`] otherwise.
pub fn validate_display_name(name: &str) -> Result<()> {
    if !trimmed_text_within(name, MAX_DISPLAY_NAME_LEN) {
        return Err(Error::invalid_fields(
            "tenant display name is invalid",
            vec![FieldError::new(
                "/display_name",
                format!(
                    "must be 1 to {MAX_DISPLAY_NAME_LEN} characters once trimmed, \
                     without control characters"
                ),
            )],
        ));
    }
    Ok(())
}

/// Whether `text`, trimmed, is 1 to `max` characters without a control
/// character (display names, suspension reasons).
#[must_use]
pub fn trimmed_text_within(text: &str, max: usize) -> bool {
    let trimmed = text.trim();
    !trimmed.is_empty() && trimmed.chars().count() <= max && !trimmed.chars().any(char::is_control)
}

/// A status change for [`TenantStore::set_status`].
///
/// Exhaustive on purpose: every store must handle each change, so a new
/// one is a breaking change of the contract anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum StatusChange<'a> {
    /// Suspend, for this reason.
    Suspend {
        /// Why (at most [`MAX_SUSPENSION_REASON_LEN`] characters).
        reason: &'a str,
    },
    /// Resume: active again, the suspension time and reason cleared.
    Resume,
}

/// The platform's tenant registry.
///
/// Contract:
/// - This is a *platform* store: it is not scoped by a caller's tenant.
///   Callers (the `/v1/tenants` routes) must have checked the caller holds
///   the cross-tenant permission before any call, except [`get`] by the
///   request path's suspension check, which reads the caller's own tenant.
/// - `id` is unique: creating a duplicate is `Err(Error::Conflict)` and
///   changes nothing, also when two creates race.
/// - Display names and suspension reasons are operator-chosen text and must
///   round-trip exactly (quotes, `%`, `_`, NUL where the backend can hold
///   it), never interpreted.
/// - Updates return whether the tenant exists; they set `updated_at` to the
///   time given. They are idempotent: suspending a suspended tenant again
///   replaces its time and reason; resuming an active tenant changes
///   nothing but `updated_at`.
/// - `list` is ordered by id (byte order); the page cursor is the last id
///   of the page; the status filter applies before paging.
/// - Timestamps may come back truncated to the microsecond.
/// - An outage is `Err(Unavailable)`. [`get`] is on every request's path
///   (behind a cache): it must be one indexed read.
///
/// [`get`]: TenantStore::get
#[async_trait::async_trait]
pub trait TenantStore: Send + Sync + fmt::Debug + 'static {
    /// Register a new tenant.
    ///
    /// # Errors
    /// [`Error::Conflict`] if the id exists; `Unavailable` on outage.
    async fn create(&self, tenant: &Tenant) -> Result<()>;

    /// The tenant with this id.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn get(&self, id: &TenantId) -> Result<Option<Tenant>>;

    /// Tenants ordered by id, only those in `status` when given.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed cursor; `Unavailable` on outage.
    async fn list(&self, status: Option<TenantStatus>, page: &PageRequest) -> Result<Page<Tenant>>;

    /// Replace the settings. Returns whether the tenant exists.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn update_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
        at: OffsetDateTime,
    ) -> Result<bool>;

    /// Suspend or resume. Returns whether the tenant exists.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn set_status(
        &self,
        id: &TenantId,
        change: StatusChange<'_>,
        at: OffsetDateTime,
    ) -> Result<bool>;
}

/// Parse a tenant page cursor (the last id of the previous page).
///
/// # Errors
/// [`Error::InvalidInput`] if it is not a valid tenant id.
pub fn parse_tenant_cursor(after: Option<&str>) -> Result<Option<TenantId>> {
    after
        .map(|c| TenantId::new(c).map_err(|_| Error::invalid_input("malformed page cursor")))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_their_names() {
        for status in TenantStatus::ALL {
            assert_eq!(TenantStatus::from_name(status.as_str()), Some(status));
        }
        assert_eq!(TenantStatus::from_name("Active"), None);
    }

    #[test]
    fn settings_refuse_zero_limits_unknown_fields_and_bad_retention() {
        assert!(
            serde_json::from_str::<TenantSettings>(
                r#"{"rate_limit":{"requests":0,"period_secs":1}}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<TenantSettings>(r#"{"quota":{}}"#).is_err());
        let settings: TenantSettings = serde_json::from_str(
            r#"{"retention_days":0,"key_rate_limits":{"0190c2a8-5f1e-7c3a-8b4d-2e6f7a8b9c0d":{"requests":5,"period_secs":60}}}"#,
        )
        .expect("parses");
        assert_eq!(settings.key_rate_limits.len(), 1);
        let err = settings.validate().expect_err("retention 0");
        assert!(
            matches!(err, Error::InvalidInput { ref fields, .. } if fields[0].pointer == "/retention_days")
        );
        assert!(TenantSettings::default().validate().is_ok());
    }

    #[test]
    fn display_names_must_not_be_blank_or_long() {
        assert!(validate_display_name("Acme ' OR 1=1").is_ok());
        assert!(validate_display_name("  ").is_err());
        assert!(validate_display_name(&"x".repeat(MAX_DISPLAY_NAME_LEN + 1)).is_err());
        assert!(
            validate_display_name(&"é".repeat(MAX_DISPLAY_NAME_LEN)).is_ok(),
            "characters"
        );
        assert!(validate_display_name(" \tAcme\n").is_ok(), "trimmed");
        assert!(validate_display_name("Ac\u{7}me").is_err(), "control");
    }

    #[test]
    fn cursors_are_tenant_ids() {
        assert!(parse_tenant_cursor(Some("acme")).expect("ok").is_some());
        assert!(parse_tenant_cursor(Some("' OR 1=1 --")).is_err());
    }
}
