//! [`Mfa`]: enrolment, confirmation, verification and reset of a TOTP
//! second factor over an [`MfaStore`].

use std::fmt;
use std::sync::Arc;

use docaiche_core::mfa::{MAX_RECOVERY_CODES, MfaEnrolment, MfaState, NewMfaEnrolment};
use docaiche_core::{
    Clock, Error, ErrorCode, MfaStore, PrincipalId, Result, SecretString, SystemClock, TenantId,
};

use super::error::MfaError;
use super::hotp::{Algorithm, Digits};
use super::keys::MfaKeys;
use super::provisioning::{MAX_ISSUER_LEN, provisioning_uri, validate_label};
use super::recovery::{DEFAULT_RECOVERY_CODES, RecoveryCode, RecoveryCodes};
use super::totp::{Totp, parse_code};

/// What [`Mfa::enroll`] hands the account holder, once: nothing here is
/// stored in the clear, so it cannot be shown again. `Debug` shows none of
/// it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Enrolled {
    /// The `otpauth://totp/…` URI, to show as a QR code.
    pub provisioning_uri: SecretString,
    /// The secret in base32, for typing into an app that cannot scan.
    pub secret: SecretString,
    /// The recovery codes, to write down.
    pub recovery_codes: RecoveryCodes,
}

/// How a second factor was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verified {
    /// A TOTP code of this time step (now the last accepted one).
    Totp {
        /// The step the code belonged to.
        step: u64,
    },
    /// A recovery code, now spent.
    RecoveryCode {
        /// How many unused recovery codes are left (worth telling the
        /// holder when it runs low).
        remaining: usize,
    },
}

/// A TOTP second factor for accounts: enrol, confirm, verify, reset.
///
/// Secrets are sealed for their account with [`MfaKeys`] before they reach
/// the store; recovery codes are stored as keyed hashes; each accepted code
/// advances the enrolment's last step through the store's compare-and-set,
/// so a code is accepted once, across instances. See the [module
/// docs](super) for an example and for what the caller must add
/// (throttling guesses).
#[derive(Clone)]
pub struct Mfa {
    store: Arc<dyn MfaStore>,
    keys: MfaKeys,
    issuer: String,
    algorithm: Algorithm,
    digits: Digits,
    recovery_codes: usize,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Mfa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mfa")
            .field("store", &self.store)
            .field("keys", &self.keys)
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("recovery_codes", &self.recovery_codes)
            .finish_non_exhaustive()
    }
}

impl Mfa {
    /// A second factor over `store`, sealing with `keys`, named `issuer`
    /// in authenticator apps (the service's name), on the system clock,
    /// with HMAC-SHA1, six digits and [`DEFAULT_RECOVERY_CODES`] recovery
    /// codes (what every app supports).
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for an issuer that is empty, longer than
    /// [`MAX_ISSUER_LEN`] bytes or holds control characters.
    pub fn new(store: Arc<dyn MfaStore>, keys: MfaKeys, issuer: impl Into<String>) -> Result<Self> {
        let issuer = issuer.into();
        validate_label("issuer", &issuer, MAX_ISSUER_LEN).map_err(|_| {
            Error::misconfigured(
                "mfa.issuer",
                format!("must be 1 to {MAX_ISSUER_LEN} bytes without control characters"),
            )
        })?;
        Ok(Self {
            store,
            keys,
            issuer: issuer.trim().to_owned(),
            algorithm: Algorithm::default(),
            digits: Digits::default(),
            recovery_codes: DEFAULT_RECOVERY_CODES,
            clock: Arc::new(SystemClock::new()),
        })
    }

    /// Read time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Use `algorithm` for new enrolments (existing ones keep theirs).
    #[must_use]
    pub const fn with_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Use `digits` for new enrolments (existing ones keep theirs).
    #[must_use]
    pub const fn with_digits(mut self, digits: Digits) -> Self {
        self.digits = digits;
        self
    }

    /// Give new enrolments `count` recovery codes.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for more than [`MAX_RECOVERY_CODES`].
    pub fn with_recovery_codes(mut self, count: usize) -> Result<Self> {
        if count > MAX_RECOVERY_CODES {
            return Err(Error::misconfigured(
                "mfa.recovery_codes",
                format!("must be at most {MAX_RECOVERY_CODES}"),
            ));
        }
        self.recovery_codes = count;
        Ok(self)
    }

    /// Begin an enrolment of `account` in `tenant`, shown in apps as
    /// `label` (its email, say): a fresh secret and recovery codes, stored
    /// pending until [`Mfa::confirm`]. Starting again while pending
    /// replaces the pending enrolment (the earlier QR code stops working).
    ///
    /// # Errors
    /// [`MfaError::AlreadyActive`] if the account has an active second
    /// factor; [`MfaError::Failed`] with `InvalidInput` for a bad label, or
    /// the store's error.
    pub async fn enroll(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        label: &str,
    ) -> Result<Enrolled, MfaError> {
        if self
            .store
            .get(tenant, account)
            .await?
            .is_some_and(|e| e.is_active())
        {
            return Err(MfaError::AlreadyActive);
        }
        let totp = Totp::generate(self.algorithm, self.digits)?;
        let uri = provisioning_uri(&totp, &self.issuer, label)?;
        let sealed = self.keys.seal(tenant, account, &totp)?;
        let codes = RecoveryCodes::generate(self.recovery_codes)?;
        let hashes = codes
            .iter()
            .map(|code| self.keys.recovery_code_hash(&sealed, tenant, account, code))
            .collect::<Result<Vec<_>, MfaError>>()?;
        let enrolment = NewMfaEnrolment::new(
            tenant.clone(),
            account.clone(),
            sealed,
            hashes,
            self.clock.now(),
        )?;
        match self.store.begin(&enrolment).await {
            Ok(()) => Ok(Enrolled {
                provisioning_uri: uri,
                secret: totp.to_base32(),
                recovery_codes: codes,
            }),
            // Confirmed by a concurrent call since the check above.
            Err(e) if e.code() == ErrorCode::Conflict => Err(MfaError::AlreadyActive),
            Err(e) => Err(e.into()),
        }
    }

    /// Confirm a pending enrolment with the first code the holder's app
    /// shows: proof that the secret arrived. The enrolment becomes active
    /// and the code's step the last accepted one. Returns that step.
    ///
    /// # Errors
    /// [`MfaError::NotEnrolled`], [`MfaError::AlreadyActive`]; the code's
    /// refusals as [`Totp::verify`] ([`MfaError::Replayed`] also when a
    /// concurrent confirmation took the same code);
    /// [`MfaError::Unsealable`]; the store's error.
    pub async fn confirm(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        code: &str,
    ) -> Result<u64, MfaError> {
        let enrolment = self.enrolment_of(tenant, account).await?;
        if enrolment.state != MfaState::Pending {
            return Err(MfaError::AlreadyActive);
        }
        let totp = self.keys.open(tenant, account, &enrolment.sealed_secret)?;
        let now = self.clock.now();
        let step = totp.verify(code, now, enrolment.last_step)?;
        if self
            .store
            .confirm(tenant, account, &enrolment.sealed_secret, step, now)
            .await?
        {
            Ok(step)
        } else {
            Err(self.lost_race(&enrolment, step).await)
        }
    }

    /// Verify a sign-in's second factor: a TOTP code (6 or 8 digits, spaces
    /// ignored) or, failing that shape, a recovery code. Each is accepted
    /// once.
    ///
    /// # Errors
    /// [`MfaError::NotEnrolled`], [`MfaError::NotConfirmed`];
    /// [`MfaError::Malformed`], [`MfaError::WrongCode`],
    /// [`MfaError::Replayed`] (the code or a later one was accepted before,
    /// here or on another instance), [`MfaError::RecoveryCodeRefused`];
    /// [`MfaError::Unsealable`]; the store's error.
    pub async fn verify(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        input: &str,
    ) -> Result<Verified, MfaError> {
        let enrolment = self.enrolment_of(tenant, account).await?;
        if enrolment.state != MfaState::Active {
            return Err(MfaError::NotConfirmed);
        }
        let now = self.clock.now();
        let totp_shaped = [Digits::Six, Digits::Eight]
            .into_iter()
            .any(|digits| parse_code(input, digits).is_some());
        if totp_shaped {
            let totp = self.keys.open(tenant, account, &enrolment.sealed_secret)?;
            let step = totp.verify(input, now, enrolment.last_step)?;
            return if self
                .store
                .accept_step(tenant, account, &enrolment.sealed_secret, step)
                .await?
            {
                Ok(Verified::Totp { step })
            } else {
                Err(self.lost_race(&enrolment, step).await)
            };
        }
        let code = RecoveryCode::parse(input).ok_or(MfaError::Malformed)?;
        let hash =
            self.keys
                .recovery_code_hash(&enrolment.sealed_secret, tenant, account, &code)?;
        if self
            .store
            .use_recovery_code(tenant, account, &hash, now)
            .await?
        {
            Ok(Verified::RecoveryCode {
                remaining: enrolment.recovery_codes_remaining.saturating_sub(1),
            })
        } else {
            Err(MfaError::RecoveryCodeRefused)
        }
    }

    /// The account's enrolment (state, last step, recovery codes left),
    /// if any: whether a sign-in needs a second factor, for instance.
    ///
    /// # Errors
    /// The store's error.
    pub async fn enrolment(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
    ) -> Result<Option<MfaEnrolment>, MfaError> {
        Ok(self.store.get(tenant, account).await?)
    }

    /// Remove the account's second factor and its recovery codes (an
    /// administrator's reset after a lost phone, or the holder turning it
    /// off after a fresh verification). Returns whether there was one.
    ///
    /// # Errors
    /// The store's error.
    pub async fn disable(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
    ) -> Result<bool, MfaError> {
        Ok(self.store.delete(tenant, account).await?)
    }

    async fn enrolment_of(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
    ) -> Result<MfaEnrolment, MfaError> {
        self.store
            .get(tenant, account)
            .await?
            .ok_or(MfaError::NotEnrolled)
    }

    /// Why a compare-and-set on `enrolment` failed: the same enrolment
    /// moved past `step` (a concurrent use of the same code), or it was
    /// deleted or replaced meanwhile.
    async fn lost_race(&self, enrolment: &MfaEnrolment, step: u64) -> MfaError {
        match self.store.get(&enrolment.tenant, &enrolment.account).await {
            Ok(Some(now)) if now.sealed_secret == enrolment.sealed_secret => {
                MfaError::Replayed { step }
            }
            Ok(_) => MfaError::NotEnrolled,
            Err(e) => e.into(),
        }
    }
}
