//! The [`MfaStore`] contract: second-factor (TOTP) enrolments of accounts,
//! with their single-use recovery codes.
//!
//! The store keeps what `docaiche-auth`'s `mfa` module computes and never
//! looks inside it: the TOTP secret arrives *sealed* (encrypted and
//! authenticated for one tenant and account, its parameters included) and
//! recovery codes arrive as keyed hashes. What the store owns is the state
//! machine and its races: an enrolment is pending until a first valid code
//! confirms it, each accepted time step must be greater than the last (a
//! compare-and-set, so a code is accepted once even when two instances race
//! with it), and each recovery code is used once.
//!
//! ```
//! use docaiche_core::mfa::{MfaState, NewMfaEnrolment};
//! use docaiche_core::{PrincipalId, TenantId};
//! use time::OffsetDateTime;
//!
//! # fn main() -> docaiche_core::Result<()> {
//! let enrolment = NewMfaEnrolment::new(
//!     TenantId::new("acme")?,
//!     PrincipalId::new("alice")?,
//!     vec![1; 60], // sealed by docaiche-auth, opaque here
//!     vec![vec![7; 32], vec![8; 32]],
//!     OffsetDateTime::UNIX_EPOCH,
//! )?;
//! // Nothing secret prints, not even the ciphertext.
//! assert!(!format!("{enrolment:?}").contains("[1, 1"));
//! assert_eq!(MfaState::Pending.as_str(), "pending");
//! // Two identical recovery-code hashes are a bug in the caller.
//! let acme = TenantId::new("acme")?;
//! let bob = PrincipalId::new("bob")?;
//! let at = OffsetDateTime::UNIX_EPOCH;
//! assert!(NewMfaEnrolment::new(acme, bob, vec![1; 60], vec![vec![7; 32]; 2], at).is_err());
//! # Ok(()) }
//! ```

use std::fmt;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::id::{PrincipalId, TenantId};

/// Most recovery codes one enrolment holds.
pub const MAX_RECOVERY_CODES: usize = 20;

/// Shortest accepted recovery-code hash, in bytes (128 bits).
pub const MIN_RECOVERY_CODE_HASH_LEN: usize = 16;

/// Longest accepted recovery-code hash, in bytes (a SHA-512 output).
pub const MAX_RECOVERY_CODE_HASH_LEN: usize = 64;

/// Longest accepted sealed secret, in bytes (a 64-byte secret sealed with
/// its parameters, nonce and tag fits several times over).
pub const MAX_SEALED_SECRET_LEN: usize = 512;

/// The greatest time step a store must hold: SQL stores keep steps as
/// signed 64-bit integers. (A 30-second step reaches it in about 8.8 × 10¹²
/// years.)
pub const MAX_STEP: u64 = u64::MAX >> 1;

/// Where an enrolment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MfaState {
    /// Enrolled but not yet proven: the account holder has been shown the
    /// secret, and no code made with it has been accepted yet. A pending
    /// enrolment does not protect the account and may be replaced.
    Pending,
    /// Confirmed by a first valid code: the second factor is required.
    Active,
}

impl MfaState {
    /// `pending` or `active`: the stored spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
        }
    }

    /// The state stored as `value`, if it is one.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            _ => None,
        }
    }
}

impl fmt::Display for MfaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new, pending enrolment, as [`MfaStore::begin`] stores it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewMfaEnrolment {
    /// Owning tenant.
    pub tenant: TenantId,
    /// The account the second factor belongs to.
    pub account: PrincipalId,
    /// The TOTP secret, sealed for this tenant and account (opaque to the
    /// store; 1 to [`MAX_SEALED_SECRET_LEN`] bytes).
    pub sealed_secret: Vec<u8>,
    /// Keyed hashes of the recovery codes: at most [`MAX_RECOVERY_CODES`],
    /// each [`MIN_RECOVERY_CODE_HASH_LEN`] to
    /// [`MAX_RECOVERY_CODE_HASH_LEN`] bytes, all distinct.
    pub recovery_codes: Vec<Vec<u8>>,
    /// When the enrolment began.
    pub created_at: OffsetDateTime,
}

impl NewMfaEnrolment {
    /// A pending enrolment.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] as [`NewMfaEnrolment::validate`].
    pub fn new(
        tenant: TenantId,
        account: PrincipalId,
        sealed_secret: Vec<u8>,
        recovery_codes: Vec<Vec<u8>>,
        created_at: OffsetDateTime,
    ) -> Result<Self> {
        let enrolment = Self {
            tenant,
            account,
            sealed_secret,
            recovery_codes,
            created_at,
        };
        enrolment.validate()?;
        Ok(enrolment)
    }

    /// Check the bounds of the field docs. Stores call this before writing.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty or oversized sealed secret, too
    /// many recovery codes, a hash of the wrong length or a repeated hash.
    pub fn validate(&self) -> Result<()> {
        validate_sealed_secret(&self.sealed_secret)?;
        if self.recovery_codes.len() > MAX_RECOVERY_CODES {
            return Err(Error::invalid_input(format!(
                "an enrolment holds at most {MAX_RECOVERY_CODES} recovery codes"
            )));
        }
        for (i, hash) in self.recovery_codes.iter().enumerate() {
            validate_recovery_code_hash(hash)?;
            if self.recovery_codes[..i].contains(hash) {
                return Err(Error::invalid_input(
                    "recovery code hashes must be distinct",
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for NewMfaEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMfaEnrolment")
            .field("tenant", &self.tenant)
            .field("account", &self.account)
            .field("sealed_secret", &Sealed(self.sealed_secret.len()))
            .field("recovery_codes", &self.recovery_codes.len())
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// An enrolment as a store holds it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MfaEnrolment {
    /// Owning tenant.
    pub tenant: TenantId,
    /// The account the second factor belongs to.
    pub account: PrincipalId,
    /// The sealed TOTP secret, as given to [`MfaStore::begin`]. Also the
    /// enrolment's identity in the compare-and-set calls: a new enrolment
    /// of the same account has another one.
    pub sealed_secret: Vec<u8>,
    /// Pending or active.
    pub state: MfaState,
    /// The greatest time step accepted so far (`None` until confirmed).
    pub last_step: Option<u64>,
    /// How many recovery codes are still unused.
    pub recovery_codes_remaining: usize,
    /// When the enrolment began.
    pub created_at: OffsetDateTime,
    /// When a first valid code confirmed it.
    pub confirmed_at: Option<OffsetDateTime>,
}

impl MfaEnrolment {
    /// The pending enrolment `new` becomes once stored.
    #[must_use]
    pub fn pending(new: &NewMfaEnrolment) -> Self {
        Self {
            tenant: new.tenant.clone(),
            account: new.account.clone(),
            sealed_secret: new.sealed_secret.clone(),
            state: MfaState::Pending,
            last_step: None,
            recovery_codes_remaining: new.recovery_codes.len(),
            created_at: new.created_at,
            confirmed_at: None,
        }
    }

    /// Whether the second factor is in force (confirmed).
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.state == MfaState::Active
    }
}

impl fmt::Debug for MfaEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaEnrolment")
            .field("tenant", &self.tenant)
            .field("account", &self.account)
            .field("sealed_secret", &Sealed(self.sealed_secret.len()))
            .field("state", &self.state)
            .field("last_step", &self.last_step)
            .field("recovery_codes_remaining", &self.recovery_codes_remaining)
            .field("created_at", &self.created_at)
            .field("confirmed_at", &self.confirmed_at)
            .finish()
    }
}

/// How `Debug` shows a sealed secret: its length only.
struct Sealed(usize);

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[sealed, {} bytes]", self.0)
    }
}

/// Check a sealed secret's length (1 to [`MAX_SEALED_SECRET_LEN`] bytes).
///
/// # Errors
/// [`Error::InvalidInput`] otherwise.
pub fn validate_sealed_secret(sealed: &[u8]) -> Result<()> {
    if sealed.is_empty() || sealed.len() > MAX_SEALED_SECRET_LEN {
        return Err(Error::invalid_input(format!(
            "a sealed secret is 1 to {MAX_SEALED_SECRET_LEN} bytes"
        )));
    }
    Ok(())
}

/// Check a recovery-code hash's length ([`MIN_RECOVERY_CODE_HASH_LEN`] to
/// [`MAX_RECOVERY_CODE_HASH_LEN`] bytes).
///
/// # Errors
/// [`Error::InvalidInput`] otherwise.
pub fn validate_recovery_code_hash(hash: &[u8]) -> Result<()> {
    if !(MIN_RECOVERY_CODE_HASH_LEN..=MAX_RECOVERY_CODE_HASH_LEN).contains(&hash.len()) {
        return Err(Error::invalid_input(format!(
            "a recovery code hash is {MIN_RECOVERY_CODE_HASH_LEN} to \
             {MAX_RECOVERY_CODE_HASH_LEN} bytes"
        )));
    }
    Ok(())
}

/// Check a time step (at most [`MAX_STEP`]).
///
/// # Errors
/// [`Error::InvalidInput`] otherwise.
pub fn validate_step(step: u64) -> Result<()> {
    if step > MAX_STEP {
        return Err(Error::invalid_input(format!(
            "a time step is at most {MAX_STEP}"
        )));
    }
    Ok(())
}

/// Persistence of second-factor enrolments, one per (tenant, account).
///
/// Contract:
/// - Every method is scoped by the tenant given: another tenant's
///   enrolment is invisible (`None`, `false`), never an error that reveals
///   it exists. The same account id in two tenants has two enrolments.
/// - The sealed secret and the recovery-code hashes are opaque bytes,
///   stored and compared exactly. They come from the server, but the codes
///   they are checked against come from whoever is signing in: a hash that
///   matches nothing is `Ok(false)`, never an error. Inputs outside the
///   bounds of [`NewMfaEnrolment::validate`], [`validate_sealed_secret`],
///   [`validate_recovery_code_hash`] and [`validate_step`] are
///   `InvalidInput` and change nothing; nothing panics.
/// - [`MfaStore::begin`] stores a pending enrolment, replacing a pending
///   one of the same account together with all its recovery codes; it
///   refuses with `Conflict` (changing nothing) while the account has an
///   active enrolment, which only [`MfaStore::delete`] removes.
/// - The compare-and-set calls ([`MfaStore::confirm`],
///   [`MfaStore::accept_step`], [`MfaStore::use_recovery_code`]) are
///   atomic: of any number of concurrent calls that could each succeed
///   alone, on any number of instances sharing the store, exactly the ones
///   a serial order allows succeed — in particular, one of several calls
///   with the same step, or with the same recovery code. A call whose
///   condition does not hold returns `Ok(false)` and changes nothing.
/// - `confirm` and `accept_step` name the enrolment by its sealed secret,
///   so a call prepared against an enrolment that was since deleted or
///   replaced does nothing.
/// - Reads see every write that returned before them (enrolments are not
///   served from a lagging replica): a confirmation must see the pending
///   enrolment just begun.
/// - Timestamps may come back truncated to the microsecond.
/// - An outage is `Err(Unavailable)`; callers fail closed (a sign-in that
///   needs a second factor is then refused).
#[async_trait::async_trait]
pub trait MfaStore: Send + Sync + fmt::Debug + 'static {
    /// Store `enrolment` as pending, replacing a pending enrolment of the
    /// same account (and its recovery codes).
    ///
    /// # Errors
    /// `InvalidInput` for an enrolment [`NewMfaEnrolment::validate`]
    /// refuses; `Conflict` if the account has an active enrolment;
    /// `Unavailable` on outage.
    async fn begin(&self, enrolment: &NewMfaEnrolment) -> Result<()>;

    /// The enrolment of `account` in `tenant`, with its count of unused
    /// recovery codes.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn get(&self, tenant: &TenantId, account: &PrincipalId) -> Result<Option<MfaEnrolment>>;

    /// Make the enrolment active, if it is pending and its sealed secret is
    /// `sealed_secret`: its last step becomes `step` and its confirmation
    /// time `at`. Returns whether it did.
    ///
    /// # Errors
    /// `InvalidInput` for a sealed secret or step out of bounds;
    /// `Unavailable` on outage.
    async fn confirm(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        sealed_secret: &[u8],
        step: u64,
        at: OffsetDateTime,
    ) -> Result<bool>;

    /// Accept time step `step`, if the enrolment is active, its sealed
    /// secret is `sealed_secret` and `step` is greater than its last
    /// accepted step, which becomes `step`. Returns whether it did: `false`
    /// for a replayed code.
    ///
    /// # Errors
    /// `InvalidInput` for a sealed secret or step out of bounds;
    /// `Unavailable` on outage.
    async fn accept_step(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        sealed_secret: &[u8],
        step: u64,
    ) -> Result<bool>;

    /// Use the recovery code whose hash is `code_hash`, if the enrolment is
    /// active and the code is unused; it stays used (its time `at`).
    /// Returns whether it did.
    ///
    /// # Errors
    /// `InvalidInput` for a hash out of bounds; `Unavailable` on outage.
    async fn use_recovery_code(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        code_hash: &[u8],
        at: OffsetDateTime,
    ) -> Result<bool>;

    /// Delete the enrolment and its recovery codes (an administrator's
    /// reset, or the holder turning the second factor off). Returns whether
    /// there was one. Idempotent.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn delete(&self, tenant: &TenantId, account: &PrincipalId) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(codes: Vec<Vec<u8>>, sealed: Vec<u8>) -> Result<NewMfaEnrolment> {
        NewMfaEnrolment::new(
            TenantId::new("acme").expect("tenant"),
            PrincipalId::new("alice").expect("account"),
            sealed,
            codes,
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn bounds_are_checked() {
        assert!(new(vec![vec![1; 32]], vec![1; 40]).is_ok());
        assert!(new(vec![], vec![1; 40]).is_ok(), "no recovery codes");
        assert!(new(vec![], vec![]).is_err(), "empty sealed secret");
        assert!(new(vec![], vec![1; MAX_SEALED_SECRET_LEN + 1]).is_err());
        assert!(new(vec![vec![1; 15]], vec![1; 40]).is_err(), "short hash");
        assert!(new(vec![vec![1; 65]], vec![1; 40]).is_err(), "long hash");
        let many = (0..=MAX_RECOVERY_CODES)
            .map(|i| vec![u8::try_from(i).expect("small"); 32])
            .collect();
        assert!(new(many, vec![1; 40]).is_err(), "too many codes");
        assert!(validate_step(MAX_STEP).is_ok());
        assert!(validate_step(MAX_STEP + 1).is_err());
    }

    #[test]
    fn states_round_trip() {
        for state in [MfaState::Pending, MfaState::Active] {
            assert_eq!(MfaState::parse(state.as_str()), Some(state));
        }
        assert_eq!(MfaState::parse("Active"), None);
    }

    #[test]
    fn debug_shows_no_secret_bytes() {
        let enrolment = new(vec![vec![0xAB; 32]], vec![0xCD; 40]).expect("valid");
        let printed = format!("{enrolment:?} {:?}", MfaEnrolment::pending(&enrolment));
        assert!(
            !printed.contains("171") && !printed.contains("205"),
            "{printed}"
        );
        assert!(printed.contains("[sealed, 40 bytes]"));
    }
}
