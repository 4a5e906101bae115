//! Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device
//! Cookies"): after a successful password login the client gets a signed,
//! expiring token naming the account and a random device id. Presented
//! again with the same account's login, it makes the attempt *trusted*:
//! its failures count against that device alone, so an attacker who
//! hammers the account from elsewhere cannot lock its owner out of a
//! device they signed in from before.
//!
//! ```
//! use docaiche_auth::login::DeviceCookies;
//! use docaiche_core::account::AccountEmail;
//! use docaiche_core::{SecretBytes, TenantId};
//!
//! let cookies = DeviceCookies::new(&SecretBytes::from(vec![7; 32]))?;
//! let (acme, alice) = (TenantId::new("acme")?, AccountEmail::new("alice@example.com")?);
//! let cookie = cookies.issue(&acme, &alice)?;
//! assert!(cookies.verify(&acme, &alice, cookie.expose_secret()).is_some());
//! // Bound to the account: worthless for another one.
//! let bob = AccountEmail::new("bob@example.com")?;
//! assert!(cookies.verify(&acme, &bob, cookie.expose_secret()).is_none());
//! # Ok::<(), docaiche_core::Error>(())
//! ```
//!
//! The format is `v1.<device id>.<expiry, Unix seconds>.<HMAC-SHA256>`,
//! base64url without padding; the MAC covers a domain label, the tenant,
//! the normalised e-mail, the device id and the expiry, each separated by
//! a NUL (none of them can hold one). Stateless: nothing is stored, so any
//! instance sharing the key verifies it. A stolen cookie gives its thief
//! the device's own failure budget, never the account's password.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use docaiche_core::account::AccountEmail;
use docaiche_core::{Clock, Error, Result, SecretBytes, SecretString, SystemClock, TenantId};
use hmac::{KeyInit as _, Mac as _};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The label the MAC starts with, so no other MAC of the same key can pass
/// for a device cookie.
const DOMAIN: &[u8] = b"docaiche device cookie v1";

/// The longest cookie value looked at; anything longer is not ours.
const MAX_COOKIE_LEN: usize = 256;

/// Issues and verifies device cookies (OWASP, "Slow Down Online Guessing
/// Attacks with Device Cookies"): a signed, expiring token naming an account
/// and a random device id, given after a successful password login. A login
/// that presents one for its account is trusted: its failures count against
/// that device alone (see [`crate::lockout`]).
///
/// The format is `v1.<device id>.<expiry, Unix seconds>.<HMAC-SHA256>`;
/// stateless, so every instance sharing the key verifies it.
#[derive(Clone)]
pub struct DeviceCookies {
    mac: HmacSha256,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for DeviceCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCookies")
            .field("key", &"[REDACTED]")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl DeviceCookies {
    /// The conventional cookie name.
    pub const COOKIE_NAME: &'static str = "docaiche_device";

    /// How long a cookie stays valid by default: 90 days.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

    /// Cookies keyed by `key` (at least 32 bytes, secret, the same on every
    /// instance), valid for [`DeviceCookies::DEFAULT_TTL`], on the system
    /// clock.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for a key shorter than 32 bytes.
    pub fn new(key: &SecretBytes) -> Result<Self> {
        if key.len() < 32 {
            return Err(Error::misconfigured(
                "device_cookies.key",
                "must be at least 32 bytes",
            ));
        }
        let mac = HmacSha256::new_from_slice(key.expose_secret())
            .map_err(|_| Error::misconfigured("device_cookies.key", "invalid key"))?;
        Ok(Self {
            mac,
            ttl: Self::DEFAULT_TTL,
            clock: Arc::new(SystemClock::new()),
        })
    }

    /// Make cookies valid for `ttl`.
    #[must_use]
    pub const fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Read time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long a cookie stays valid.
    #[must_use]
    pub const fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A fresh cookie for a device that just signed in to `email` in
    /// `tenant`.
    ///
    /// # Errors
    /// [`Error::Internal`] if the OS random generator fails.
    pub fn issue(&self, tenant: &TenantId, email: &AccountEmail) -> Result<SecretString> {
        let id = crate::jwt::random_urlsafe::<16>()?;
        let expires = (self.clock.now() + self.ttl).unix_timestamp();
        let tag = URL_SAFE_NO_PAD.encode(self.tag(tenant, email, &id, expires));
        Ok(SecretString::from(format!("v1.{id}.{expires}.{tag}")))
    }

    /// The device id of `cookie` if it is one of ours, unexpired, for
    /// `email` in `tenant`; `None` for anything else (attacker-controlled
    /// input: never an error, never a panic).
    #[must_use]
    pub fn verify(&self, tenant: &TenantId, email: &AccountEmail, cookie: &str) -> Option<String> {
        if cookie.len() > MAX_COOKIE_LEN {
            return None;
        }
        let mut parts = cookie.split('.');
        let (Some("v1"), Some(id), Some(expires), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let expires: i64 = expires.parse().ok()?;
        if expires <= self.clock.now().unix_timestamp() {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut mac = self.mac.clone();
        Self::feed(&mut mac, tenant, email, id, expires);
        // Constant time: `verify_slice` compares with `subtle`.
        mac.verify_slice(&tag).ok()?;
        Some(id.to_owned())
    }

    fn tag(&self, tenant: &TenantId, email: &AccountEmail, id: &str, expires: i64) -> Vec<u8> {
        let mut mac = self.mac.clone();
        Self::feed(&mut mac, tenant, email, id, expires);
        mac.finalize().into_bytes().to_vec()
    }

    fn feed(mac: &mut HmacSha256, tenant: &TenantId, email: &AccountEmail, id: &str, expires: i64) {
        for part in [
            DOMAIN,
            tenant.as_str().as_bytes(),
            email.as_str().as_bytes(),
            id.as_bytes(),
            expires.to_string().as_bytes(),
        ] {
            mac.update(part);
            mac.update(&[0]);
        }
    }
}

#[cfg(test)]
mod tests {
    use docaiche_core::ManualClock;

    use super::*;

    fn cookies(clock: &ManualClock) -> DeviceCookies {
        DeviceCookies::new(&SecretBytes::from(vec![7; 32]))
            .expect("key")
            .with_ttl(Duration::from_secs(60))
            .with_clock(Arc::new(clock.clone()))
    }

    fn who() -> (TenantId, AccountEmail) {
        (
            TenantId::new("acme").expect("tenant"),
            AccountEmail::new("alice@example.com").expect("email"),
        )
    }

    #[test]
    fn a_cookie_expires() {
        let clock = ManualClock::new();
        let (tenant, email) = who();
        let cookies = cookies(&clock);
        let cookie = cookies.issue(&tenant, &email).expect("issued");
        assert!(
            cookies
                .verify(&tenant, &email, cookie.expose_secret())
                .is_some()
        );
        clock.advance(Duration::from_secs(60));
        assert!(
            cookies
                .verify(&tenant, &email, cookie.expose_secret())
                .is_none()
        );
    }

    #[test]
    fn forged_tampered_and_foreign_cookies_are_refused() {
        let clock = ManualClock::new();
        let (tenant, email) = who();
        let cookies = cookies(&clock);
        let cookie = cookies.issue(&tenant, &email).expect("issued");
        let good = cookie.expose_secret().to_owned();
        let parts: Vec<&str> = good.split('.').collect();
        let later = (clock.now().unix_timestamp() + 10_000).to_string();
        let other_key = DeviceCookies::new(&SecretBytes::from(vec![8; 32]))
            .expect("key")
            .with_clock(Arc::new(clock.clone()));
        let foreign = other_key.issue(&tenant, &email).expect("issued");
        let too_long = format!("{good}{}", "A".repeat(300));
        let globex = TenantId::new("globex").expect("tenant");
        for bad in [
            String::new(),
            "v1...".to_owned(),
            format!("v2.{}.{}.{}", parts[1], parts[2], parts[3]),
            format!("v1.{}.{later}.{}", parts[1], parts[3]),
            format!("v1.other.{}.{}", parts[2], parts[3]),
            format!("v1.{}.{}.{}", parts[1], parts[2], &parts[3][1..]),
            format!("{good}.extra"),
            foreign.expose_secret().to_owned(),
            too_long,
            "v1.\u{0}.1.\u{ff}".to_owned(),
        ] {
            assert!(cookies.verify(&tenant, &email, &bad).is_none(), "{bad:?}");
        }
        assert!(
            cookies.verify(&globex, &email, &good).is_none(),
            "another tenant"
        );
    }

    #[test]
    fn a_short_key_is_refused_and_debug_hides_the_key() {
        assert!(DeviceCookies::new(&SecretBytes::from(vec![7; 31])).is_err());
        let cookies = DeviceCookies::new(&SecretBytes::from(vec![7; 32])).expect("key");
        assert!(format!("{cookies:?}").contains("[REDACTED]"));
    }
}
