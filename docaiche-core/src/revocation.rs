//! The [`TokenRevocationStore`] contract: revoked token ids until they expire.

use std::fmt;

use time::OffsetDateTime;

use crate::error::{Error, Result};

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

/// A set of revoked token ids, each remembered until the token would have
/// expired anyway.
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
}
