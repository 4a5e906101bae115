//! The [`TokenRevocationStore`] contract: revoked token ids until they
//! expire, and revoked subjects: every credential of a principal issued up
//! to an instant (erasure, a disabled or deleted account).

use std::fmt;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::id::{PrincipalId, TenantId};

/// Longest token id (`jti`, refresh-token family id) a store must accept.
pub const MAX_TOKEN_ID_LEN: usize = 128;

/// Whether `value` is 1 to `max_len` printable ASCII bytes (no whitespace,
/// no control characters): the rule for opaque ids that reach a backend's
/// keys or channels.
pub(crate) fn is_printable_ascii(value: &str, max_len: usize) -> bool {
    !value.is_empty() && value.len() <= max_len && value.bytes().all(|b| b.is_ascii_graphic())
}

/// Check a token id against [`MAX_TOKEN_ID_LEN`] and the printable-ASCII rule.
///
/// # Errors
/// [`Error::InvalidInput`] if it is empty, too long or not printable ASCII.
pub fn validate_token_id(token_id: &str) -> Result<()> {
    if !is_printable_ascii(token_id, MAX_TOKEN_ID_LEN) {
        return Err(Error::invalid_input(
            "token id must be 1 to 128 printable ASCII bytes",
        ));
    }
    Ok(())
}

/// A token as a verifier sees it, for [`TokenRevocationStore::is_token_revoked`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct IssuedToken<'a> {
    /// Its id (`jti`).
    pub token_id: &'a str,
    /// The tenant of its subject.
    pub tenant: &'a TenantId,
    /// Its subject (`sub`).
    pub subject: &'a PrincipalId,
    /// When it was issued (`iat`).
    pub issued_at: OffsetDateTime,
}

impl<'a> IssuedToken<'a> {
    /// A token `token_id` of `subject` in `tenant`, issued at `issued_at`.
    #[must_use]
    pub const fn new(
        token_id: &'a str,
        tenant: &'a TenantId,
        subject: &'a PrincipalId,
        issued_at: OffsetDateTime,
    ) -> Self {
        Self {
            token_id,
            tenant,
            subject,
            issued_at,
        }
    }
}

/// Whether a credential issued at `issued_at` falls under a subject
/// revocation up to `revoked_through`: issued at or before it, compared in
/// whole seconds (a JWT's `iat` has no fraction, so a token issued in the
/// same second as the revocation is refused too).
#[must_use]
pub fn issued_within(issued_at: OffsetDateTime, revoked_through: OffsetDateTime) -> bool {
    issued_at.unix_timestamp() <= revoked_through.unix_timestamp()
}

/// A set of revoked token ids, each remembered until the token would have
/// expired anyway, and of revoked subjects.
///
/// Contract:
/// - Token ids are globally unique (random), so this store is not
///   tenant-scoped. Ids are attacker-influenced: validate with
///   [`validate_token_id`] and treat them as opaque bytes.
/// - `revoke` is idempotent; revoking again with a later expiry extends it,
///   with an earlier one changes nothing (a revocation is never shortened).
/// - `is_revoked` must answer `true` for every revoked id until its
///   `expires_at`; afterwards the store may forget it.
/// - An outage is `Err(Unavailable)`. Callers fail closed on it: a token
///   whose revocation cannot be checked is not accepted.
/// - **Subjects.** [`revoke_subject`](Self::revoke_subject) ends every
///   credential of a principal issued at or before an instant (see
///   [`issued_within`]), on every instance that shares the store: erasure,
///   a disabled or deleted account. It is tenant-scoped (principal ids are
///   unique only within their tenant), idempotent, and monotonic like
///   `revoke`: a later instant or a later `remember_until` extends it, an
///   earlier one changes nothing. It is remembered until `remember_until`,
///   which callers set past the longest lifetime of any credential issued
///   before it.
#[async_trait::async_trait]
pub trait TokenRevocationStore: Send + Sync + fmt::Debug + 'static {
    /// Revoke `token_id` until `expires_at`.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid id; `Unavailable` on outage.
    async fn revoke(&self, token_id: &str, expires_at: OffsetDateTime) -> Result<()>;

    /// Whether `token_id` is revoked.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid id; `Unavailable` on outage.
    async fn is_revoked(&self, token_id: &str) -> Result<bool>;

    /// Revoke every credential of `subject` in `tenant` issued at or before
    /// `through`, and remember it until `remember_until`.
    ///
    /// # Errors
    /// `Unavailable` on outage (the caller must not report the subject's
    /// credentials as ended).
    async fn revoke_subject(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        through: OffsetDateTime,
        remember_until: OffsetDateTime,
    ) -> Result<()>;

    /// The instant through which `subject`'s credentials are revoked, if a
    /// subject revocation is remembered.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn subject_revoked_through(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
    ) -> Result<Option<OffsetDateTime>>;

    /// Whether `token` is revoked, by its id or by its subject. Stores that
    /// can answer both in one round trip override this.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid id; `Unavailable` on outage.
    async fn is_token_revoked(&self, token: &IssuedToken<'_>) -> Result<bool> {
        if self.is_revoked(token.token_id).await? {
            return Ok(true);
        }
        Ok(self
            .subject_revoked_through(token.tenant, token.subject)
            .await?
            .is_some_and(|through| issued_within(token.issued_at, through)))
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::issued_within;

    #[test]
    fn a_credential_issued_in_the_revocations_second_is_revoked() {
        let through = datetime!(2026-12-07 10:00:00.700 UTC);
        assert!(issued_within(datetime!(2026-12-07 10:00:00 UTC), through));
        assert!(issued_within(datetime!(2026-12-07 09:59:59 UTC), through));
        assert!(!issued_within(datetime!(2026-12-07 10:00:01 UTC), through));
    }
}
