//! The `mfa_enrolments` row shared by the SQLite and PostgreSQL second
//! factor adapters, and the checks both make before a statement.

use docaiche_core::mfa::{MfaEnrolment, MfaState, validate_sealed_secret, validate_step};
use docaiche_core::{Error, PrincipalId, Result};

use super::{from_micros, opt_time, tenant};

/// The columns of an enrolment with its unused recovery codes, in
/// [`MfaRow`] order, over `mfa_enrolments e`. The count is a subquery on
/// the recovery codes' primary key.
pub(crate) const MFA_COLUMNS: &str = "e.tenant_id, e.account_id, e.sealed_secret, e.state, \
     e.last_step, e.created_at, e.confirmed_at, \
     (SELECT COUNT(*) FROM mfa_recovery_codes c WHERE c.tenant_id = e.tenant_id \
     AND c.account_id = e.account_id AND c.used_at IS NULL) AS remaining";

/// One enrolment row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct MfaRow {
    tenant_id: String,
    account_id: String,
    sealed_secret: Vec<u8>,
    state: String,
    last_step: Option<i64>,
    created_at: i64,
    confirmed_at: Option<i64>,
    remaining: i64,
}

impl MfaRow {
    /// The enrolment, or `Internal` for a row no adapter writes.
    pub(crate) fn into_enrolment(self) -> Result<MfaEnrolment> {
        let corrupt = |what: &'static str| Error::internal(what);
        let account = PrincipalId::new(self.account_id)
            .map_err(|e| Error::internal_with("stored account id is invalid", e))?;
        let state =
            MfaState::parse(&self.state).ok_or_else(|| corrupt("stored mfa state is invalid"))?;
        let last_step = self
            .last_step
            .map(u64::try_from)
            .transpose()
            .map_err(|_| corrupt("stored mfa step is negative"))?;
        let remaining = usize::try_from(self.remaining)
            .map_err(|_| corrupt("stored recovery code count is invalid"))?;
        let mut enrolment = MfaEnrolment::pending(
            &docaiche_core::mfa::NewMfaEnrolment::new(
                tenant(self.tenant_id)?,
                account,
                self.sealed_secret,
                Vec::new(),
                from_micros(self.created_at)?,
            )
            .map_err(|e| Error::internal_with("stored mfa enrolment is invalid", e))?,
        );
        enrolment.state = state;
        enrolment.last_step = last_step;
        enrolment.recovery_codes_remaining = remaining;
        enrolment.confirmed_at = opt_time(self.confirmed_at)?;
        Ok(enrolment)
    }
}

/// Check a compare-and-set's sealed secret and step; the step as stored.
pub(crate) fn checked_step(sealed_secret: &[u8], step: u64) -> Result<i64> {
    validate_sealed_secret(sealed_secret)?;
    validate_step(step)?;
    i64::try_from(step).map_err(|_| Error::invalid_input("a time step is out of range"))
}

/// The refusal of `begin` over an active enrolment.
pub(crate) fn already_active() -> Error {
    Error::conflict("the account has an active second factor")
}
