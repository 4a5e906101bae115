//! The [`AccountStore`] contract: password accounts (email, password hash,
//! roles) of each tenant.
//!
//! ```
//! use docaiche_core::account::{Account, AccountEmail};
//! use docaiche_core::{PrincipalId, TenantId};
//! use time::OffsetDateTime;
//!
//! # fn main() -> docaiche_core::Result<()> {
//! // Emails are compared in their normalised, lowercase form.
//! let email = AccountEmail::new("  Alice@Example.COM ")?;
//! assert_eq!(email.as_str(), "alice@example.com");
//! assert!(AccountEmail::new("not an email").is_err());
//!
//! let account = Account::new(
//!     TenantId::new("acme")?,
//!     PrincipalId::new("alice")?,
//!     email,
//!     "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
//!     OffsetDateTime::UNIX_EPOCH,
//! )
//! .with_roles(vec!["tenant-admin".into()]);
//! // The hash never prints.
//! assert!(!format!("{account:?}").contains("argon2id"));
//! # Ok(()) }
//! ```

use std::fmt;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::id::{PrincipalId, TenantId};
use crate::page::{Page, PageRequest};

/// Longest accepted email address, in bytes (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// A login email, normalised: surrounding whitespace trimmed, lowercased.
///
/// Validation is deliberately loose (emails are not parsed by a full RFC
/// 5322 grammar): 3 to [`MAX_EMAIL_LEN`] bytes, no whitespace or control
/// characters, an `@` with something on both sides. Quotes, `%`, `_`,
/// `;` and other SQL or shell metacharacters are valid and must be stored
/// and matched exactly.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountEmail(String);

impl AccountEmail {
    /// Normalise and validate `value`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless it looks like an email (see the type
    /// docs).
    pub fn new(value: impl AsRef<str>) -> Result<Self> {
        let normalised = value.as_ref().trim().to_lowercase();
        if normalised.len() < 3 || normalised.len() > MAX_EMAIL_LEN {
            return Err(Error::invalid_input(format!(
                "email must be 3 to {MAX_EMAIL_LEN} bytes"
            )));
        }
        if normalised
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::invalid_input(
                "email must not contain whitespace or control characters",
            ));
        }
        match normalised.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                Ok(Self(normalised))
            }
            _ => Err(Error::invalid_input(
                "email must have the form local@domain",
            )),
        }
    }

    /// The normalised address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccountEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountEmail({:?})", self.0)
    }
}

impl fmt::Display for AccountEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password account of one tenant.
///
/// The password is kept only as a PHC string (`$argon2id$…`, computed by
/// `docaiche-auth`'s password service); `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Account {
    /// Owning tenant.
    pub tenant: TenantId,
    /// The principal the account signs in as, unique within the tenant.
    pub id: PrincipalId,
    /// Login email, unique within the tenant.
    pub email: AccountEmail,
    /// The password's PHC hash string.
    pub password_hash: String,
    /// Names of the roles the account holds in its tenant.
    pub roles: Vec<String>,
    /// A disabled account cannot sign in or refresh its sessions.
    pub disabled: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change (password, roles, disabled).
    pub updated_at: OffsetDateTime,
}

impl Account {
    /// An enabled account without roles, created (and updated) at `at`.
    #[must_use]
    pub fn new(
        tenant: TenantId,
        id: PrincipalId,
        email: AccountEmail,
        password_hash: impl Into<String>,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            tenant,
            id,
            email,
            password_hash: password_hash.into(),
            roles: Vec::new(),
            disabled: false,
            created_at: at,
            updated_at: at,
        }
    }

    /// Set the roles.
    #[must_use]
    pub fn with_roles(mut self, roles: Vec<String>) -> Self {
        self.roles = roles;
        self
    }

    /// Set whether the account is disabled.
    #[must_use]
    pub const fn with_disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("tenant", &self.tenant)
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"[REDACTED]")
            .field("roles", &self.roles)
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// Persistence of password accounts.
///
/// Contract:
/// - Every method is scoped by the caller's tenant: an account of another
///   tenant is invisible (`None`, `false`, absent from lists), never an
///   error that reveals it exists. The same email may exist in several
///   tenants, as different accounts.
/// - `(tenant, id)` and `(tenant, email)` are unique: creating a duplicate
///   is `Err(Error::Conflict)` and changes nothing, also when two creates
///   race.
/// - Emails arrive normalised ([`AccountEmail`]) but are otherwise
///   attacker-chosen (the login endpoint looks them up before any
///   authentication): quotes, `%`, `_` and other metacharacters are matched
///   exactly, never as patterns. An unknown email is `Ok(None)`.
/// - Updates return whether the account exists in the tenant; they set
///   `updated_at` to the time given and are idempotent.
/// - Lists are ordered by `id`; the page cursor is the last id of the page.
/// - Timestamps may come back truncated to the microsecond.
/// - An outage is `Err(Unavailable)`; logins then fail closed.
#[async_trait::async_trait]
pub trait AccountStore: Send + Sync + fmt::Debug + 'static {
    /// Store a new account.
    ///
    /// # Errors
    /// [`Error::Conflict`] if the id or the email exists in the tenant;
    /// `Unavailable` on outage.
    async fn create(&self, account: &Account) -> Result<()>;

    /// The account of `tenant` with this id.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn get(&self, tenant: &TenantId, id: &PrincipalId) -> Result<Option<Account>>;

    /// The account of `tenant` with this email.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn find_by_email(
        &self,
        tenant: &TenantId,
        email: &AccountEmail,
    ) -> Result<Option<Account>>;

    /// Replace the password hash (a password change, or a rehash on login
    /// after the hashing parameters changed).
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn update_password_hash(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        password_hash: &str,
        at: OffsetDateTime,
    ) -> Result<bool>;

    /// Replace the password hash only if it is still `expected`: a
    /// compare-and-swap, so that a single-use token bound to the current
    /// hash (an invitation, a password reset) can be redeemed once even
    /// when two redemptions race. Returns whether the account exists in the
    /// tenant *and* its hash was `expected`; otherwise nothing changes.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn swap_password_hash(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        expected: &str,
        password_hash: &str,
        at: OffsetDateTime,
    ) -> Result<bool>;

    /// Replace the roles.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn set_roles(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        roles: &[String],
        at: OffsetDateTime,
    ) -> Result<bool>;

    /// Disable (or enable again) the account.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn set_disabled(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        disabled: bool,
        at: OffsetDateTime,
    ) -> Result<bool>;

    /// The tenant's accounts, ordered by id.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed cursor; `Unavailable` on outage.
    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Account>>;

    /// Delete the account. Returns whether it existed in the tenant.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn delete(&self, tenant: &TenantId, id: &PrincipalId) -> Result<bool>;
}

/// Parse an account page cursor (the last id of the previous page).
///
/// # Errors
/// [`Error::InvalidInput`] if it is not a valid principal id.
pub fn parse_account_cursor(after: Option<&str>) -> Result<Option<PrincipalId>> {
    after
        .map(|c| PrincipalId::new(c).map_err(|_| Error::invalid_input("malformed page cursor")))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_loosely_validated() {
        let ok = AccountEmail::new(" O'Brien+Tag@Example.ORG\n").expect("valid");
        assert_eq!(ok.as_str(), "o'brien+tag@example.org");
        for metachar in [
            "a'--@x.y",
            "\"quoted\"@x.y",
            "100%_off@x.y",
            "a;drop@x.y",
            "a@b@c",
        ] {
            assert!(AccountEmail::new(metachar).is_ok(), "{metachar}");
        }
        for bad in [
            "",
            "@",
            "a@",
            "@b",
            "no-at",
            "a b@c.d",
            "a\0@b.c",
            "a\u{7}@b.c",
        ] {
            assert!(AccountEmail::new(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@x.y", "a".repeat(MAX_EMAIL_LEN));
        assert!(AccountEmail::new(long).is_err());
    }

    #[test]
    fn cursors_are_principal_ids() {
        assert_eq!(parse_account_cursor(None).expect("none"), None);
        assert!(parse_account_cursor(Some("u123")).expect("ok").is_some());
        assert!(parse_account_cursor(Some("' OR 1=1 --")).is_err());
    }
}
