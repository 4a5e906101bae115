//! [`MfaError`]: why a second factor was refused, or what failed.

use docaiche_core::{AuthFailure, Error};

/// Why a second-factor operation did not succeed.
///
/// The refusals (`Malformed`, `WrongCode`, `Replayed`,
/// `RecoveryCodeRefused`) are what an attacker guessing codes sees, and
/// what an account holder mistyping sees: tell the client only "the code
/// was not accepted" (the [`Error`] they convert into says just that) and
/// keep [`MfaError::as_str`] for the log and the audit trail.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MfaError {
    /// The input is neither a code of the enrolment's length nor a
    /// recovery code. A typo, or a probe.
    #[error("the code is malformed")]
    Malformed,
    /// The code matches none of the time steps in the window (the current
    /// one and one either side). A typo, a clock far off, or a guess.
    #[error("the code is wrong")]
    WrongCode,
    /// The code is right but its time step is not after the last step
    /// accepted: it was used before (or a later one was). A double submit,
    /// or a replay of an observed code: an attack when it is not the
    /// holder's own double click.
    #[error("the code was already used")]
    Replayed {
        /// The step the code belongs to.
        step: u64,
    },
    /// The recovery code is unknown or already used. A typo, a reused
    /// code, or a guess.
    #[error("the recovery code is unknown or already used")]
    RecoveryCodeRefused,
    /// The account has no enrolment (or it was deleted meanwhile).
    #[error("no second factor is enrolled")]
    NotEnrolled,
    /// The enrolment is pending: confirm it with a first code before it
    /// can verify sign-ins.
    #[error("the second factor is not confirmed yet")]
    NotConfirmed,
    /// The account already has an active second factor: delete it (an
    /// administrator's reset) before enrolling again.
    #[error("a second factor is already active")]
    AlreadyActive,
    /// The stored secret does not open for this tenant and account under
    /// the configured keys: the row was copied from another account or
    /// altered (an attack on the database), or the key version that sealed
    /// it is no longer configured (an operator mistake).
    #[error("the stored second-factor secret cannot be opened")]
    Unsealable,
    /// The store, the random generator or the configuration failed.
    #[error(transparent)]
    Failed(#[from] Error),
}

impl MfaError {
    /// A stable snake-case name for logs, metrics and audit records.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::WrongCode => "wrong_code",
            Self::Replayed { .. } => "replayed",
            Self::RecoveryCodeRefused => "recovery_code_refused",
            Self::NotEnrolled => "not_enrolled",
            Self::NotConfirmed => "not_confirmed",
            Self::AlreadyActive => "already_active",
            Self::Unsealable => "unsealable",
            Self::Failed(_) => "failed",
        }
    }

    /// Whether this is a refusal of the code presented (as opposed to a
    /// state of the enrolment or a failure): what a guess-throttle such as
    /// [`FailedAuthTracker`](crate::lockout::FailedAuthTracker) counts.
    #[must_use]
    pub const fn is_refused_code(&self) -> bool {
        matches!(
            self,
            Self::Malformed | Self::WrongCode | Self::Replayed { .. } | Self::RecoveryCodeRefused
        )
    }
}

impl From<MfaError> for Error {
    /// Refused codes become `Unauthenticated` (one generic answer), states
    /// `NotFound` or `Conflict`, an unopenable secret `Internal`.
    fn from(error: MfaError) -> Self {
        match error {
            MfaError::Malformed => Self::unauthenticated(AuthFailure::Malformed),
            MfaError::WrongCode | MfaError::RecoveryCodeRefused => {
                Self::unauthenticated(AuthFailure::BadCredential)
            }
            MfaError::Replayed { .. } => Self::unauthenticated(AuthFailure::Revoked),
            MfaError::NotEnrolled => Self::not_found("mfa_enrolment"),
            MfaError::NotConfirmed => Self::conflict("the second factor is not confirmed yet"),
            MfaError::AlreadyActive => Self::conflict("a second factor is already active"),
            MfaError::Unsealable => {
                Self::internal("the stored second-factor secret cannot be opened")
            }
            MfaError::Failed(error) => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use docaiche_core::ErrorCode;

    use super::*;

    #[test]
    fn refusals_are_one_generic_401() {
        for refusal in [
            MfaError::Malformed,
            MfaError::WrongCode,
            MfaError::Replayed { step: 1 },
            MfaError::RecoveryCodeRefused,
        ] {
            assert!(refusal.is_refused_code());
            assert_eq!(Error::from(refusal).code(), ErrorCode::Unauthenticated);
        }
        assert!(!MfaError::NotEnrolled.is_refused_code());
        assert_eq!(
            Error::from(MfaError::AlreadyActive).code(),
            ErrorCode::Conflict
        );
        assert_eq!(
            Error::from(MfaError::Unsealable).code(),
            ErrorCode::Internal
        );
    }

    #[test]
    fn messages_are_lowercase_without_trailing_period() {
        for e in [
            MfaError::Malformed,
            MfaError::WrongCode,
            MfaError::Replayed { step: 9 },
            MfaError::RecoveryCodeRefused,
            MfaError::NotEnrolled,
            MfaError::NotConfirmed,
            MfaError::AlreadyActive,
            MfaError::Unsealable,
        ] {
            let m = e.to_string();
            assert!(m.starts_with(|c: char| c.is_lowercase()), "{m}");
            assert!(!m.ends_with('.'), "{m}");
        }
    }
}
