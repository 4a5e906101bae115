//! Account tokens: the invitation an administrator hands a new account's
//! owner, and the password-reset token, both redeemed once by setting a
//! password ([`PasswordLogin::redeem`](crate::login::PasswordLogin::redeem)).
//!
//! ```
//! use std::time::Duration;
//! use docaiche_auth::login::{AccountTokenKind, AccountTokens};
//! use docaiche_core::account::{Account, AccountEmail};
//! use docaiche_core::{PrincipalId, SecretBytes, TenantId};
//! use time::OffsetDateTime;
//!
//! let tokens = AccountTokens::new(&SecretBytes::from(vec![7; 32]))?;
//! let mut bob = Account::new(
//!     TenantId::new("acme")?,
//!     PrincipalId::new("bob")?,
//!     AccountEmail::new("bob@example.com")?,
//!     "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
//!     OffsetDateTime::UNIX_EPOCH,
//! );
//! let issued = tokens.issue(&bob, AccountTokenKind::Invitation, Duration::from_secs(3600))?;
//! let token = issued.token.expose_secret();
//! // Anyone can read whom a token names; only the key's holder can make one.
//! let claims = tokens.claims(token).expect("well formed");
//! assert_eq!(claims.account, bob.id);
//! assert!(tokens.verify(token, &bob));
//! // Bound to the password hash at issue: once a password is set, it is spent.
//! bob.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3".into();
//! assert!(!tokens.verify(token, &bob));
//! # Ok::<(), docaiche_core::Error>(())
//! ```
//!
//! The format is `v1.<kind>.<tenant>.<account>.<expiry, Unix
//! seconds>.<HMAC-SHA256>`, the tenant and account base64url-encoded (ids
//! may hold dots), the MAC base64url without padding. The MAC covers a
//! domain label, the kind, the tenant, the account id, the expiry and the
//! account's password hash *at issue*, each followed by a NUL (none can
//! hold one). Stateless, so any instance sharing the key verifies it, and
//! still single use: setting a password changes the hash, which spends
//! every token issued before, and the store's compare-and-swap
//! ([`AccountStore::swap_password_hash`]) lets only one of two racing
//! redemptions through.
//!
//! [`AccountStore::swap_password_hash`]: docaiche_core::AccountStore::swap_password_hash

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use docaiche_core::account::Account;
use docaiche_core::{
    Clock, Error, PrincipalId, Result, SecretBytes, SecretString, SystemClock, TenantId,
};
use hmac::{KeyInit as _, Mac as _};
use time::OffsetDateTime;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The label the MAC starts with, so no other MAC of the same key can pass
/// for an account token.
const DOMAIN: &[u8] = b"docaiche account token v1";

/// What an account token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AccountTokenKind {
    /// The first password of an invited account.
    Invitation,
    /// A new password for an account whose owner lost theirs.
    PasswordReset,
}

impl AccountTokenKind {
    /// `invitation` or `password_reset`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::PasswordReset => "password_reset",
        }
    }

    /// The token segment: `i` or `r`.
    const fn segment(self) -> &'static str {
        match self {
            Self::Invitation => "i",
            Self::PasswordReset => "r",
        }
    }

    fn from_segment(segment: &str) -> Option<Self> {
        match segment {
            "i" => Some(Self::Invitation),
            "r" => Some(Self::PasswordReset),
            _ => None,
        }
    }
}

/// A freshly issued token and when it expires. `Debug` hides the token.
#[derive(Debug)]
#[non_exhaustive]
pub struct AccountToken {
    /// The token, for the caller to hand on (never stored).
    pub token: SecretString,
    /// What it is for.
    pub kind: AccountTokenKind,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

/// What a well-formed token says, before its MAC is checked: only a hint of
/// which account to load. Never trust it without [`AccountTokens::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccountTokenClaims {
    /// What it is for.
    pub kind: AccountTokenKind,
    /// The account's tenant.
    pub tenant: TenantId,
    /// The account.
    pub account: PrincipalId,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

/// Issues and verifies account tokens (invitations and password resets):
/// stateless, single use, bound to the account's password hash.
#[derive(Clone)]
pub struct AccountTokens {
    mac: HmacSha256,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for AccountTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountTokens")
            .field("key", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl AccountTokens {
    /// The longest token looked at; anything longer is not ours.
    pub const MAX_LEN: usize = 512;

    /// How long an invitation is valid by default: 7 days.
    pub const DEFAULT_INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

    /// How long a password-reset token is valid by default: 1 hour (OWASP's
    /// Forgot Password Cheat Sheet asks for a short life).
    pub const DEFAULT_RESET_TTL: Duration = Duration::from_secs(3600);

    /// Tokens keyed by `key` (at least 32 bytes, secret, the same on every
    /// instance), on the system clock.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for a key shorter than 32 bytes.
    pub fn new(key: &SecretBytes) -> Result<Self> {
        if key.len() < 32 {
            return Err(Error::misconfigured(
                "account_tokens.key",
                "must be at least 32 bytes",
            ));
        }
        let mac = HmacSha256::new_from_slice(key.expose_secret())
            .map_err(|_| Error::misconfigured("account_tokens.key", "invalid key"))?;
        Ok(Self {
            mac,
            clock: Arc::new(SystemClock::new()),
        })
    }

    /// Read time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A token of `kind` for `account`, valid for `ttl` or until the
    /// account's password hash changes, whichever comes first.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a `ttl` of zero or over a year.
    pub fn issue(
        &self,
        account: &Account,
        kind: AccountTokenKind,
        ttl: Duration,
    ) -> Result<AccountToken> {
        if ttl.is_zero() || ttl > Duration::from_secs(366 * 24 * 3600) {
            return Err(Error::invalid_input(
                "an account token lives between 1 second and a year",
            ));
        }
        let expires_at = (self.clock.now() + ttl)
            .replace_nanosecond(0)
            .map_err(|e| {
                Error::internal_with("the expiry of an account token is out of range", e)
            })?;
        let expires = expires_at.unix_timestamp();
        let tag = URL_SAFE_NO_PAD.encode(self.tag(
            kind,
            &account.tenant,
            &account.id,
            expires,
            &account.password_hash,
        ));
        let token = format!(
            "v1.{}.{}.{}.{expires}.{tag}",
            kind.segment(),
            URL_SAFE_NO_PAD.encode(account.tenant.as_str()),
            URL_SAFE_NO_PAD.encode(account.id.as_str()),
        );
        Ok(AccountToken {
            token: SecretString::from(token),
            kind,
            expires_at,
        })
    }

    /// Whom a well-formed token names, whatever its MAC or expiry: `None`
    /// for anything that is not shaped like one of ours (attacker-controlled
    /// input: never an error, never a panic).
    #[must_use]
    pub fn claims(&self, token: &str) -> Option<AccountTokenClaims> {
        Self::parse(token).map(|(claims, _)| claims)
    }

    /// Whether `token` is one of ours, unexpired, for `account` as it is
    /// now (its tenant, id and current password hash).
    #[must_use]
    pub fn verify(&self, token: &str, account: &Account) -> bool {
        let Some((claims, tag)) = Self::parse(token) else {
            return false;
        };
        if claims.tenant != account.tenant
            || claims.account != account.id
            || claims.expires_at <= self.clock.now()
        {
            return false;
        }
        let mut mac = self.mac.clone();
        Self::feed(
            &mut mac,
            claims.kind,
            &claims.tenant,
            &claims.account,
            claims.expires_at.unix_timestamp(),
            &account.password_hash,
        );
        // Constant time: `verify_slice` compares with `subtle`.
        mac.verify_slice(&tag).is_ok()
    }

    fn parse(token: &str) -> Option<(AccountTokenClaims, Vec<u8>)> {
        if token.len() > Self::MAX_LEN {
            return None;
        }
        let mut parts = token.split('.');
        let (Some("v1"), Some(kind), Some(tenant), Some(account), Some(expires), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let text = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
        };
        let claims = AccountTokenClaims {
            kind: AccountTokenKind::from_segment(kind)?,
            tenant: TenantId::new(text(tenant)?).ok()?,
            account: PrincipalId::new(text(account)?).ok()?,
            expires_at: OffsetDateTime::from_unix_timestamp(expires.parse().ok()?).ok()?,
        };
        Some((claims, URL_SAFE_NO_PAD.decode(tag).ok()?))
    }

    fn tag(
        &self,
        kind: AccountTokenKind,
        tenant: &TenantId,
        account: &PrincipalId,
        expires: i64,
        password_hash: &str,
    ) -> Vec<u8> {
        let mut mac = self.mac.clone();
        Self::feed(&mut mac, kind, tenant, account, expires, password_hash);
        mac.finalize().into_bytes().to_vec()
    }

    fn feed(
        mac: &mut HmacSha256,
        kind: AccountTokenKind,
        tenant: &TenantId,
        account: &PrincipalId,
        expires: i64,
        password_hash: &str,
    ) {
        for part in [
            DOMAIN,
            kind.segment().as_bytes(),
            tenant.as_str().as_bytes(),
            account.as_str().as_bytes(),
            expires.to_string().as_bytes(),
            password_hash.as_bytes(),
        ] {
            mac.update(part);
            mac.update(&[0]);
        }
    }
}

#[cfg(test)]
mod tests {
    use docaiche_core::ManualClock;
    use docaiche_core::account::AccountEmail;

    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

    fn tokens(clock: &ManualClock) -> AccountTokens {
        AccountTokens::new(&SecretBytes::from(vec![7; 32]))
            .expect("key")
            .with_clock(Arc::new(clock.clone()))
    }

    fn account(tenant: &str, id: &str) -> Account {
        Account::new(
            TenantId::new(tenant).expect("tenant"),
            PrincipalId::new(id).expect("id"),
            AccountEmail::new("bob@example.com").expect("email"),
            HASH,
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn a_token_expires_and_is_spent_by_a_new_password() {
        let clock = ManualClock::new();
        let tokens = tokens(&clock);
        let bob = account("acme", "u.bob");
        let issued = tokens
            .issue(&bob, AccountTokenKind::Invitation, Duration::from_secs(60))
            .expect("issued");
        let token = issued.token.expose_secret();
        assert!(tokens.verify(token, &bob));
        let claims = tokens.claims(token).expect("claims");
        assert_eq!(claims.kind, AccountTokenKind::Invitation);
        assert_eq!(claims.account.as_str(), "u.bob", "ids with dots survive");
        assert_eq!(claims.expires_at, issued.expires_at);

        let mut changed = bob.clone();
        changed.password_hash.push('x');
        assert!(!tokens.verify(token, &changed), "spent by a new hash");

        clock.advance(Duration::from_secs(60));
        assert!(!tokens.verify(token, &bob), "expired");
        assert!(
            tokens
                .issue(&bob, AccountTokenKind::PasswordReset, Duration::ZERO)
                .is_err()
        );
    }

    #[test]
    fn forged_tampered_and_foreign_tokens_are_refused() {
        let clock = ManualClock::new();
        let tokens = tokens(&clock);
        let bob = account("acme", "bob");
        let good = tokens
            .issue(
                &bob,
                AccountTokenKind::PasswordReset,
                Duration::from_secs(600),
            )
            .expect("issued")
            .token
            .expose_secret()
            .to_owned();
        let parts: Vec<&str> = good.split('.').collect();
        let later = (clock.now().unix_timestamp() + 10_000).to_string();
        let foreign = AccountTokens::new(&SecretBytes::from(vec![8; 32]))
            .expect("key")
            .with_clock(Arc::new(clock.clone()))
            .issue(
                &bob,
                AccountTokenKind::PasswordReset,
                Duration::from_secs(600),
            )
            .expect("issued");
        let alice = URL_SAFE_NO_PAD.encode("alice");
        let swapped_kind = format!("v1.i.{}.{}.{}.{}", parts[2], parts[3], parts[4], parts[5]);
        for bad in [
            String::new(),
            "v1.....".to_owned(),
            good.replacen("v1", "v2", 1),
            format!("v1.r.{}.{}.{later}.{}", parts[2], parts[3], parts[5]),
            format!("v1.r.{}.{alice}.{}.{}", parts[2], parts[4], parts[5]),
            format!(
                "v1.r.{}.{}.{}.{}",
                parts[2],
                parts[3],
                parts[4],
                &parts[5][1..]
            ),
            swapped_kind,
            format!("{good}.extra"),
            foreign.token.expose_secret().to_owned(),
            format!("{good}{}", "A".repeat(AccountTokens::MAX_LEN)),
            "v1.r.\u{0}.\u{ff}.1.x".to_owned(),
            "v1.r.YWNtZQ.Ym9i.99999999999999999999.x".to_owned(),
        ] {
            assert!(!tokens.verify(&bad, &bob), "{bad:?}");
        }
        assert!(
            !tokens.verify(&good, &account("globex", "bob")),
            "another tenant"
        );
        assert!(
            !tokens.verify(&good, &account("acme", "carol")),
            "another account"
        );
    }

    #[test]
    fn a_short_key_is_refused_and_debug_hides_key_and_token() {
        assert!(AccountTokens::new(&SecretBytes::from(vec![7; 31])).is_err());
        let clock = ManualClock::new();
        let tokens = tokens(&clock);
        assert!(format!("{tokens:?}").contains("[REDACTED]"));
        let issued = tokens
            .issue(
                &account("acme", "bob"),
                AccountTokenKind::Invitation,
                Duration::from_secs(60),
            )
            .expect("issued");
        assert!(!format!("{issued:?}").contains(issued.token.expose_secret()));
    }
}
