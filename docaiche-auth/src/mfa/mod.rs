//! A TOTP second factor: RFC 6238 codes from an authenticator app, with
//! single-use recovery codes, enrolled and verified through an
//! [`MfaStore`](docaiche_core::MfaStore) shared by every instance.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use docaiche_auth::api_key::Peppers;
//! use docaiche_auth::mfa::{Algorithm, Digits, Mfa, MfaError, MfaKeys, Totp, Verified};
//! use docaiche_core::{Clock, ManualClock, PrincipalId, SecretBytes, TenantId};
//! use docaiche_store::memory::MemoryMfaStore;
//!
//! let clock = ManualClock::new();
//! // The keys come from the server pepper (a SecretProvider in production).
//! let peppers = Peppers::new(1, [(1, SecretBytes::new(vec![7; 32]))])?;
//! let mfa = Mfa::new(Arc::new(MemoryMfaStore::new()), MfaKeys::from_peppers(&peppers), "DocAIche")?
//!     .with_clock(Arc::new(clock.clone()));
//! let (acme, alice) = (TenantId::new("acme")?, PrincipalId::new("alice")?);
//!
//! // Enrol: the QR code (the URI) and the recovery codes are shown once.
//! let enrolled = mfa.enroll(&acme, &alice, "alice@example.com").await?;
//! assert!(enrolled.provisioning_uri.expose_secret().starts_with("otpauth://totp/DocAIche:alice%40example.com?secret="));
//! assert_eq!(enrolled.recovery_codes.len(), 10);
//!
//! // Alice's app computes codes from the secret; the first one confirms the enrolment.
//! let app = Totp::from_base32(enrolled.secret.expose_secret(), Algorithm::Sha1, Digits::Six)?;
//! mfa.confirm(&acme, &alice, app.code_at(clock.now()).expose_secret()).await?;
//!
//! // At her next sign-in, thirty seconds later: a new code passes, once.
//! clock.advance(Duration::from_secs(30));
//! let code = app.code_at(clock.now());
//! assert!(matches!(mfa.verify(&acme, &alice, code.expose_secret()).await?, Verified::Totp { .. }));
//! let replay = mfa.verify(&acme, &alice, code.expose_secret()).await;
//! assert!(matches!(replay, Err(MfaError::Replayed { .. })));
//!
//! // Phone lost: a recovery code, once.
//! let recovery = enrolled.recovery_codes.iter().next().expect("ten codes").to_display_form();
//! let used = mfa.verify(&acme, &alice, recovery.expose_secret()).await?;
//! assert_eq!(used, Verified::RecoveryCode { remaining: 9 });
//! assert!(matches!(mfa.verify(&acme, &alice, recovery.expose_secret()).await, Err(MfaError::RecoveryCodeRefused)));
//!
//! // An administrator resets it.
//! assert!(mfa.disable(&acme, &alice).await?);
//! assert!(matches!(mfa.verify(&acme, &alice, "123456").await, Err(MfaError::NotEnrolled)));
//! # Ok::<(), docaiche_core::Error>(()) }).unwrap();
//! ```
//!
//! # Pieces
//!
//! | item | what |
//! |---|---|
//! | [`hotp()`] | RFC 4226 HOTP with HMAC-SHA1 (default), SHA-256 or SHA-512, 6 or 8 digits |
//! | [`Totp`] | RFC 6238 over 30-second steps: codes, and verification within ±1 step returning the matched step, a step at or before the last accepted one refused as [`MfaError::Replayed`], comparisons in constant time; a fresh 160-bit secret from the OS generator |
//! | [`provisioning_uri`] | the `otpauth://totp/Issuer:label?secret=…` URI (Key Uri Format), issuer and label percent-encoded, the secret base32 without padding |
//! | [`RecoveryCode`] | 12 symbols of Crockford base32 (60 bits), shown as `xxxx-xxxx-xxxx`, forgiving input |
//! | [`MfaKeys`] | AES-256-GCM sealing of secrets bound to tenant and account, HMAC-SHA-256 of recovery codes, both keyed from the pepper |
//! | [`Mfa`] | the service: [`enroll`](Mfa::enroll), [`confirm`](Mfa::confirm), [`verify`](Mfa::verify), [`disable`](Mfa::disable) |
//!
//! # What the store sees
//!
//! Only a sealed secret (encrypted and authenticated, with the tenant and
//! account as associated data: a row copied onto another account does not
//! open), the last accepted time step, and the recovery codes' keyed
//! hashes. A database leak alone yields no secret and cannot check a
//! guessed recovery code; the pepper lives in the secret provider, not in
//! the database.
//!
//! # Replay
//!
//! RFC 6238 section 5.2: a verifier must not accept a code a second time.
//! Every accepted code's step becomes the enrolment's last step through
//! [`MfaStore::accept_step`](docaiche_core::MfaStore::accept_step), a
//! compare-and-set that succeeds only for a step greater than the stored
//! one, so of two instances racing with one code exactly one accepts it.
//! The cost: after a code is used, the codes of earlier steps in the window
//! are refused too (at most 30 seconds' worth).
//!
//! # Guessing: the caller throttles
//!
//! A six-digit code with a ±1 window is guessed with probability 3 in a
//! million per attempt. This module counts nothing: run every attempt
//! through a throttle such as
//! [`FailedAuthTracker`](crate::lockout::FailedAuthTracker) keyed by the
//! account (it caps an account at 100 failures an hour, which keeps the
//! odds of a guess near 1 in 3 300 an hour), recording a failure for each
//! error where [`MfaError::is_refused_code`] holds.
//!
//! # What this module does not do
//!
//! It decides nothing about *who* must use a second factor (a tenant's
//! policy for its administrators, the platform's for its own) and serves
//! no pages: the console does both, with [`Mfa::enrolment`] telling it
//! whether an account is enrolled.

mod error;
pub mod hotp;
pub mod keys;
pub mod provisioning;
pub mod recovery;
mod service;
pub mod totp;

pub use error::MfaError;
pub use hotp::{Algorithm, Digits, hotp};
pub use keys::{MfaKeys, RECOVERY_KEY_LABEL, SEAL_KEY_LABEL};
pub use provisioning::{MAX_ACCOUNT_LABEL_LEN, MAX_ISSUER_LEN, provisioning_uri};
pub use recovery::{
    DEFAULT_RECOVERY_CODES, MAX_RECOVERY_CODE_INPUT_LEN, RECOVERY_CODE_BITS, RECOVERY_CODE_SYMBOLS,
    RecoveryCode, RecoveryCodes,
};
pub use service::{Enrolled, Mfa, Verified};
pub use totp::{
    GENERATED_SECRET_LEN, MAX_BASE32_LEN, MAX_SECRET_LEN, MIN_SECRET_LEN, STEP_SECONDS, Totp,
    WINDOW, parse_code,
};

#[cfg(test)]
mod tests;
