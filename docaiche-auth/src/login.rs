//! Password login: `{tenant, email, password}` in, a session out, with
//! failed-attempt tracking, transparent rehash and an audit trail.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use docaiche_auth::jwt::{Algorithm, JwtConfig, JwtIssuer, JwtKey, JwtKeySet};
//! use docaiche_auth::login::PasswordLogin;
//! use docaiche_auth::password::{PasswordConfig, PasswordService};
//! use docaiche_auth::rbac::{RbacConfig, RolePolicy};
//! use docaiche_auth::session::{MemoryRefreshTokenStore, SessionConfig, SessionManager};
//! use docaiche_core::account::AccountEmail;
//! use docaiche_core::{Clock, RequestContext, SecretBytes, SecretString, SystemClock, TenantId};
//! use docaiche_store::memory::{MemoryAccountStore, MemoryAuditSink, MemoryRevocationStore};
//!
//! let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
//! let keys = Arc::new(JwtKeySet::new(JwtKey::hmac("k1", Algorithm::HS256, &SecretBytes::from(vec![7; 32]))?)?);
//! let issuer = JwtIssuer::new(keys, JwtConfig::new("https://auth.example.com", "docaiche"), clock.clone())?;
//! let sessions = SessionManager::new(
//!     issuer,
//!     Arc::new(MemoryRefreshTokenStore::new()),
//!     Arc::new(MemoryRevocationStore::new()),
//!     SessionConfig::default(),
//!     clock,
//! )?;
//! let login = PasswordLogin::new(
//!     Arc::new(MemoryAccountStore::new()),
//!     Arc::new(PasswordService::new(PasswordConfig::default()).await?),
//!     Arc::new(sessions),
//!     RolePolicy::from_config(&RbacConfig::default())?,
//!     Arc::new(MemoryAuditSink::new()),
//! )?;
//!
//! let acme = TenantId::new("acme")?;
//! let email = AccountEmail::new("alice@example.com")?;
//! let password = SecretString::from("correct horse battery staple");
//! login.create_account(&acme, email.clone(), &password, Vec::new()).await?;
//!
//! let context = RequestContext::new();
//! let session = login.login(&acme, &email, &password, &context).await?;
//! assert_eq!(session.principal.tenant, acme);
//! // A wrong password and an unknown account fail alike.
//! let wrong = login.login(&acme, &email, &SecretString::from("guess"), &context).await;
//! let unknown = login.login(&acme, &AccountEmail::new("bob@example.com")?, &password, &context).await;
//! assert_eq!(wrong.unwrap_err().to_string(), unknown.unwrap_err().to_string());
//! # Ok::<(), docaiche_core::Error>(()) }).unwrap();
//! ```
//!
//! # Design
//!
//! - **No enumeration.** An unknown account is verified against the
//!   password service's dummy hash, a disabled one against its real hash,
//!   and both fail exactly like a wrong password:
//!   `Unauthenticated(BadCredential)`, one argon2id run each.
//! - **Failed attempts** from an untrusted client count against the account
//!   (tenant and email) and, when the request context carries one, the
//!   client address and its /24 or /64 network, in a [`FailedAuthTracker`];
//!   attempts from a device that presents a valid [`DeviceCookies`] cookie
//!   for the account count against that device only, so an attacker who
//!   locks the account out for untrusted clients never locks its owner out
//!   of a known device. Each failure is an `auth.failure` audit event, each
//!   lock that starts an `auth.lockout` one. While any subject of an
//!   attempt is locked, it is refused with `RateLimited` (429,
//!   `Retry-After`) before any hashing.
//! - **Rehash on login.** When the stored hash was made with other
//!   parameters, the fresh one is written back (a failure to write it is
//!   logged and does not fail the login).
//! - **Roles come from the account**, expanded through the [`RolePolicy`];
//!   unknown role names grant nothing and are left out of tokens, and so
//!   are cross-tenant roles, which an account row never grants (they are
//!   bound only by configuration, see [`crate::rbac`]).
//!   [`PasswordLogin::refresh`] re-reads the account, so a refresh after a
//!   demotion carries the new roles, and a disabled or deleted account's
//!   refresh fails and ends the session.
//! - **Custom roles** ([`PasswordLogin::with_custom_roles`]): an account
//!   role that is not a configured role names a role its tenant defined
//!   ([`docaiche_core::CustomRoleStore`]); it is expanded, at login and at
//!   every refresh, into its exact permissions, which the access token
//!   carries as concrete `permissions` (a custom role is never a wildcard,
//!   never `tenants:cross`). A custom role changed or deleted therefore
//!   takes effect at the next refresh. Configured names win: a custom role
//!   named like a configured role is ignored. The cost: one store read per
//!   login and refresh of an account holding a custom role.
//! - **Revocation** ([`PasswordLogin::revoke`], RFC 7009): a refresh token
//!   ends its session (its access tokens included); an access token is
//!   revoked by `jti` for the rest of its lifetime. Unknown or invalid
//!   tokens are not an error, as the RFC asks.

use std::fmt;
use std::sync::Arc;

use docaiche_core::account::{Account, AccountEmail, AccountStore};
use docaiche_core::audit::{AuditEvent, AuditOutcome};
use docaiche_core::{
    AuditSink, AuthFailure, AuthMethod, Clock, CustomRoleStore, Error, Grant, Permission,
    PermissionSet, Principal, PrincipalId, RequestContext, Result, SecretString, SystemClock,
    TenantId,
};

use crate::jwt::JwtVerifier;
use crate::lockout::{FailedAuthTracker, FailureSubject, LockoutConfig};
use crate::password::{PasswordService, PasswordVerdict};
use crate::rbac::RolePolicy;
use crate::session::{SessionManager, TokenPair};

mod device;
mod tokens;

pub use device::DeviceCookies;
pub use tokens::{AccountToken, AccountTokenClaims, AccountTokenKind, AccountTokens};

/// A successful login: the tokens and who they are for.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoginSession {
    /// The access and refresh tokens.
    pub tokens: TokenPair,
    /// The principal the tokens carry.
    pub principal: Principal,
    /// A fresh device cookie for the client (with
    /// [`PasswordLogin::with_device_cookies`]), to present on its next
    /// login to this account.
    pub device_cookie: Option<SecretString>,
}

/// A password that checked out ([`PasswordLogin::authenticate`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct CheckedPassword {
    /// The account, as read for the check.
    pub account: Account,
    /// The principal it signs in as.
    pub principal: Principal,
    /// Whether a valid device cookie vouched for the client.
    pub trusted_device: bool,
}

/// What [`PasswordLogin::revoke`] revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revoked {
    /// A refresh token's whole session.
    Session,
    /// One access token, by `jti`.
    AccessToken,
    /// Nothing: the token is unknown, invalid or expired (RFC 7009 answers
    /// success anyway).
    Nothing,
}

/// Password login, refresh and revocation; see the [module docs](self).
pub struct PasswordLogin {
    accounts: Arc<dyn AccountStore>,
    passwords: Arc<PasswordService>,
    sessions: Arc<SessionManager>,
    policy: RolePolicy,
    audit: Arc<dyn AuditSink>,
    tracker: Arc<FailedAuthTracker>,
    verifier: Option<Arc<JwtVerifier>>,
    devices: Option<DeviceCookies>,
    tokens: Option<AccountTokens>,
    custom_roles: Option<Arc<dyn CustomRoleStore>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for PasswordLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordLogin")
            .field("accounts", &self.accounts)
            .field("passwords", &self.passwords)
            .field("tracker", &self.tracker)
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

/// The exact permissions of a custom role, without `tenants:cross` (which
/// the store never holds: defence in depth).
fn exact_tenant_permissions<'a>(
    permissions: impl Iterator<Item = &'a Permission>,
) -> PermissionSet {
    permissions
        .filter(|p| **p != Permission::TENANTS_CROSS)
        .cloned()
        .map(Grant::Exact)
        .collect()
}

/// The one answer to every bad login.
fn bad_credential() -> Error {
    Error::unauthenticated(AuthFailure::BadCredential)
}

impl PasswordLogin {
    /// A login service over `accounts`, hashing with `passwords`, issuing
    /// sessions with `sessions`, expanding roles through `policy` and
    /// auditing to `audit`, with a failed-attempt tracker of default
    /// settings on the system clock (replace it with
    /// [`PasswordLogin::with_tracker`] to share one).
    ///
    /// # Errors
    /// As [`FailedAuthTracker::new`] (never, with the defaults).
    pub fn new(
        accounts: Arc<dyn AccountStore>,
        passwords: Arc<PasswordService>,
        sessions: Arc<SessionManager>,
        policy: RolePolicy,
        audit: Arc<dyn AuditSink>,
    ) -> Result<Self> {
        let tracker = FailedAuthTracker::new(LockoutConfig::default(), Arc::clone(&audit))?;
        Ok(Self {
            accounts,
            passwords,
            sessions,
            policy,
            audit,
            tracker: Arc::new(tracker),
            verifier: None,
            devices: None,
            tokens: None,
            custom_roles: None,
            clock: Arc::new(SystemClock::new()),
        })
    }

    /// Track failed attempts with `tracker` (which audits to its own sink).
    #[must_use]
    pub fn with_tracker(mut self, tracker: Arc<FailedAuthTracker>) -> Self {
        self.tracker = tracker;
        self
    }

    /// Verify access tokens presented to [`PasswordLogin::revoke`] with
    /// `verifier` (without one, only refresh tokens can be revoked).
    #[must_use]
    pub fn with_access_token_verifier(mut self, verifier: Arc<JwtVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Issue a device cookie on every successful login and trust the
    /// attempts that present a valid one for their account (see
    /// [`DeviceCookies`] and [`crate::lockout`]): their failures count
    /// against the device alone, so an attack on the account from
    /// elsewhere never locks its owner out of a known device.
    #[must_use]
    pub fn with_device_cookies(mut self, devices: DeviceCookies) -> Self {
        self.devices = Some(devices);
        self
    }

    /// Issue and redeem invitations and password-reset tokens with
    /// `tokens` ([`PasswordLogin::invite`], [`PasswordLogin::reset_token`],
    /// [`PasswordLogin::redeem`]).
    #[must_use]
    pub fn with_account_tokens(mut self, tokens: AccountTokens) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Expand account roles that are not configured roles through the
    /// tenant's custom roles in `store` (see the [module docs](self)).
    /// Without it, such names grant nothing.
    #[must_use]
    pub fn with_custom_roles(mut self, store: Arc<dyn CustomRoleStore>) -> Self {
        self.custom_roles = Some(store);
        self
    }

    /// The custom role store, if any.
    #[must_use]
    pub const fn custom_roles(&self) -> Option<&Arc<dyn CustomRoleStore>> {
        self.custom_roles.as_ref()
    }

    /// The configured roles.
    #[must_use]
    pub const fn policy(&self) -> &RolePolicy {
        &self.policy
    }

    /// Read time (account timestamps, audit events) from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The account store.
    #[must_use]
    pub fn accounts(&self) -> &Arc<dyn AccountStore> {
        &self.accounts
    }

    /// The password service.
    #[must_use]
    pub const fn passwords(&self) -> &Arc<PasswordService> {
        &self.passwords
    }

    /// The session manager.
    #[must_use]
    pub const fn sessions(&self) -> &Arc<SessionManager> {
        &self.sessions
    }

    /// Create an account with a freshly hashed `password` and a random id
    /// (`u` + 22 base64url characters).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a password the password service's
    /// [policy](crate::password::PasswordPolicy) refuses (too short, too
    /// long, or among the most common breached passwords), before anything
    /// is hashed or stored; [`Error::Conflict`] if the email exists in
    /// the tenant; the store's error.
    pub async fn create_account(
        &self,
        tenant: &TenantId,
        email: AccountEmail,
        password: &SecretString,
        roles: Vec<String>,
    ) -> Result<Account> {
        self.insert(tenant, email, password, roles, false).await
    }

    /// Create an account whose owner sets the first password with the
    /// returned invitation ([`PasswordLogin::redeem`]), valid for `ttl` and
    /// once. Until then the account holds the hash of a random password
    /// nobody knows, so it can not sign in.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] without [`PasswordLogin::with_account_tokens`];
    /// [`Error::InvalidInput`] for a `ttl` of zero or over a year;
    /// [`Error::Conflict`] if the email exists in the tenant; the store's
    /// error.
    pub async fn invite(
        &self,
        tenant: &TenantId,
        email: AccountEmail,
        roles: Vec<String>,
        ttl: std::time::Duration,
    ) -> Result<(Account, AccountToken)> {
        let tokens = self.account_tokens()?;
        let unknown = SecretString::from(crate::jwt::random_urlsafe::<32>()?);
        let account = self.insert(tenant, email, &unknown, roles, true).await?;
        let token = tokens.issue(&account, AccountTokenKind::Invitation, ttl)?;
        Ok((account, token))
    }

    /// A password-reset token for account `id` of `tenant`, valid for `ttl`
    /// and once, for the caller to hand to the account's owner; `None` if
    /// the tenant has no such account. Issuing one changes nothing: the
    /// current password keeps working until the token is redeemed.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] without [`PasswordLogin::with_account_tokens`];
    /// [`Error::InvalidInput`] for a bad `ttl`; the store's error.
    pub async fn reset_token(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        ttl: std::time::Duration,
    ) -> Result<Option<AccountToken>> {
        let tokens = self.account_tokens()?;
        match self.accounts.get(tenant, id).await? {
            Some(account) => Ok(Some(tokens.issue(
                &account,
                AccountTokenKind::PasswordReset,
                ttl,
            )?)),
            None => Ok(None),
        }
    }

    /// Set `password` on the account `token` (an invitation or a
    /// password-reset token) names, spending the token; a reset also ends
    /// every session of the account (it usually follows a lost or stolen
    /// password). Audited as `account.password_set`.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] (`BadCredential`) for a token that is
    /// malformed, forged, expired, spent, of another key, or for a disabled
    /// or deleted account, indistinguishably; [`Error::InvalidInput`] for a
    /// password the [policy](crate::password::PasswordPolicy) refuses (the
    /// token is not spent); [`Error::Misconfigured`] without
    /// [`PasswordLogin::with_account_tokens`]; `Unavailable` on outage.
    pub async fn redeem(
        &self,
        token: &str,
        password: &SecretString,
        context: &RequestContext,
    ) -> Result<Account> {
        let tokens = self.account_tokens()?;
        let claims = tokens.claims(token);
        let account = match &claims {
            Some(claims) => self.accounts.get(&claims.tenant, &claims.account).await?,
            None => None,
        };
        let (Some(claims), Some(account)) = (claims, account) else {
            return Err(bad_credential());
        };
        let event = |outcome| {
            AuditEvent::new("account.password_set", outcome, self.clock.now(), context)
                .by(account.tenant.clone(), Some(account.id.clone()))
                .with_detail("account", account.id.as_str().into())
                .with_detail("token", claims.kind.as_str().into())
        };
        if account.disabled || !tokens.verify(token, &account) {
            self.record(event(AuditOutcome::Failure).because("invalid_token"))
                .await;
            return Err(bad_credential());
        }
        // The policy is checked here, before anything is written: a refused
        // password does not spend the token.
        let hash = self.passwords.hash(password).await?;
        let swapped = self
            .accounts
            .swap_password_hash(
                &account.tenant,
                &account.id,
                &account.password_hash,
                &hash,
                self.clock.now(),
            )
            .await?;
        if !swapped {
            // Another redemption (or a password change) won the race.
            self.record(event(AuditOutcome::Failure).because("token_spent"))
                .await;
            return Err(bad_credential());
        }
        // A reset follows a lost or stolen password: end every session
        // issued until now. An invited account had none (nobody knew its
        // password), and revoking would also refuse a sign-in in the same
        // second (revocations are by issue time, in whole seconds).
        if claims.kind == AccountTokenKind::PasswordReset {
            self.sessions
                .revoke_subject(&account.tenant, &account.id)
                .await?;
        }
        self.record(event(AuditOutcome::Success)).await;
        let mut account = account;
        account.password_hash = hash;
        Ok(account)
    }

    /// Whether `actor` may give (or take away) role `name`: the role is
    /// known, tenant-scoped (cross-tenant roles are bound only in
    /// configuration, never on an account), and `actor` holds every one of
    /// its permissions — so no one can hand out more than they hold.
    ///
    /// Configured roles only; [`PasswordLogin::may_grant_in`] also knows the
    /// tenant's custom roles.
    #[must_use]
    pub fn may_grant(&self, actor: &Principal, name: &str) -> bool {
        self.policy.role(name).is_some_and(|role| {
            !self.policy.is_cross_tenant(name) && actor.permissions.contains_all(&role.grants)
        })
    }

    /// What role `name` grants an account of `tenant`: a configured,
    /// tenant-scoped role's grants, else the permissions of the tenant's
    /// custom role of that name (with [`PasswordLogin::with_custom_roles`]);
    /// `None` for an unknown name or a cross-tenant role. Configured names
    /// win over custom ones.
    ///
    /// # Errors
    /// `Unavailable` if the custom role store is down.
    pub async fn grants_of(&self, tenant: &TenantId, name: &str) -> Result<Option<PermissionSet>> {
        if let Some(role) = self.policy.role(name) {
            return Ok((!self.policy.is_cross_tenant(name)).then(|| role.grants.clone()));
        }
        let Some(store) = &self.custom_roles else {
            return Ok(None);
        };
        Ok(store
            .get(tenant, name)
            .await?
            .map(|role| exact_tenant_permissions(role.exact_permissions())))
    }

    /// Whether `actor` may give (or take away) role `name` on an account of
    /// `tenant`: [`PasswordLogin::may_grant`] for configured roles, and for
    /// the tenant's custom roles the same rule: `actor` holds every one of
    /// the role's permissions.
    ///
    /// # Errors
    /// `Unavailable` if the custom role store is down.
    pub async fn may_grant_in(
        &self,
        actor: &Principal,
        tenant: &TenantId,
        name: &str,
    ) -> Result<bool> {
        Ok(self
            .grants_of(tenant, name)
            .await?
            .is_some_and(|grants| actor.permissions.contains_all(&grants)))
    }

    fn account_tokens(&self) -> Result<&AccountTokens> {
        self.tokens.as_ref().ok_or_else(|| {
            Error::misconfigured(
                "account_tokens",
                "invitations and password resets need PasswordLogin::with_account_tokens",
            )
        })
    }

    async fn insert(
        &self,
        tenant: &TenantId,
        email: AccountEmail,
        password: &SecretString,
        roles: Vec<String>,
        invited: bool,
    ) -> Result<Account> {
        let hash = self.passwords.hash(password).await?;
        let id = PrincipalId::new(format!("u{}", crate::jwt::random_urlsafe::<16>()?))?;
        let account =
            Account::new(tenant.clone(), id, email, hash, self.clock.now()).with_roles(roles);
        self.accounts.create(&account).await?;
        self.record(
            AuditEvent::new(
                "account.create",
                AuditOutcome::Success,
                self.clock.now(),
                &RequestContext::new(),
            )
            .by(tenant.clone(), None)
            .with_detail("account", account.id.as_str().into())
            .with_detail("roles", account.roles.join(" ").into())
            .with_detail("invited", invited.into()),
        )
        .await;
        Ok(account)
    }

    /// Disable (or enable again) account `id` of `tenant`. Disabling ends
    /// every credential issued to it until now, on every instance sharing
    /// the revocation store ([`SessionManager::revoke_subject`]): access
    /// and refresh tokens alike. Returns whether the account exists.
    ///
    /// # Errors
    /// `Unavailable` if a store is down: then the account may be disabled
    /// while its tokens are not yet revoked, and the call must be retried.
    pub async fn set_disabled(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        disabled: bool,
    ) -> Result<bool> {
        let found = self
            .accounts
            .set_disabled(tenant, id, disabled, self.clock.now())
            .await?;
        if found && disabled {
            self.sessions.revoke_subject(tenant, id).await?;
        }
        Ok(found)
    }

    /// Delete account `id` of `tenant`, ending every credential issued to
    /// it as [`PasswordLogin::set_disabled`] does. Returns whether it
    /// existed.
    ///
    /// # Errors
    /// `Unavailable` if a store is down.
    pub async fn delete_account(&self, tenant: &TenantId, id: &PrincipalId) -> Result<bool> {
        // Revoke first: a failure then leaves an account whose tokens no
        // longer work, never a deleted account whose tokens still do.
        self.sessions.revoke_subject(tenant, id).await?;
        self.accounts.delete(tenant, id).await
    }

    /// The principal `account` signs in as: its known, tenant-scoped roles
    /// and their permissions, plus those of its tenant's custom roles it
    /// holds (with [`PasswordLogin::with_custom_roles`]). Login and refresh
    /// build principals with this.
    ///
    /// # Errors
    /// `Unavailable` if the custom role store is down (the login or
    /// refresh then fails closed).
    pub async fn principal_for(&self, account: &Account) -> Result<Principal> {
        let mut principal = self.principal_of(account);
        let Some(store) = &self.custom_roles else {
            return Ok(principal);
        };
        let custom: Vec<&String> = account
            .roles
            .iter()
            .filter(|name| self.policy.role(name).is_none())
            .collect();
        if custom.is_empty() {
            return Ok(principal);
        }
        let defined = store.list(&account.tenant).await?;
        for role in defined.iter().filter(|role| custom.contains(&&role.name)) {
            principal.roles.push(role.name.clone());
            for grant in exact_tenant_permissions(role.exact_permissions()).iter() {
                principal.permissions.insert(grant.clone());
            }
        }
        Ok(principal)
    }

    /// The principal `account` signs in as through its *configured* roles
    /// only: its known, tenant-scoped roles and their permissions
    /// ([`PasswordLogin::principal_for`] adds its custom roles).
    #[must_use]
    pub fn principal_of(&self, account: &Account) -> Principal {
        let roles: Vec<String> = account
            .roles
            .iter()
            .filter(|name| self.policy.role(name).is_some() && !self.policy.is_cross_tenant(name))
            .cloned()
            .collect();
        let permissions = self.policy.permissions_of(roles.iter().map(String::as_str));
        Principal::new(
            account.id.clone(),
            account.tenant.clone(),
            AuthMethod::Password,
        )
        .with_roles(roles)
        .with_permissions(permissions)
    }

    /// Check `password` for `email` in `tenant` and start a session, from
    /// an untrusted client (as [`PasswordLogin::login_from_device`] without
    /// a device cookie).
    ///
    /// # Errors
    /// As [`PasswordLogin::login_from_device`].
    pub async fn login(
        &self,
        tenant: &TenantId,
        email: &AccountEmail,
        password: &SecretString,
        context: &RequestContext,
    ) -> Result<LoginSession> {
        self.login_from_device(tenant, email, password, None, context)
            .await
    }

    /// Check `password` for `email` in `tenant` and start a session.
    ///
    /// `device_cookie` is the client's device cookie, if it sent one: when
    /// it is valid for this account (with
    /// [`PasswordLogin::with_device_cookies`]) the attempt is trusted and
    /// counts against that device only; otherwise against the account, the
    /// client address and its network.
    ///
    /// # Errors
    /// [`Error::RateLimited`] while a subject of the attempt is locked out
    /// (no password is checked);
    /// [`Error::Unauthenticated`] (`BadCredential`) for an unknown account,
    /// a wrong password or a disabled account, indistinguishably;
    /// `Unavailable` if a store is down (fail closed).
    pub async fn login_from_device(
        &self,
        tenant: &TenantId,
        email: &AccountEmail,
        password: &SecretString,
        device_cookie: Option<&str>,
        context: &RequestContext,
    ) -> Result<LoginSession> {
        let checked = self
            .authenticate(tenant, email, password, device_cookie, context)
            .await?;
        let (account, principal) = (checked.account, checked.principal);
        let tokens = self.sessions.issue(&principal).await?;
        let device_cookie = match &self.devices {
            Some(devices) => Some(devices.issue(tenant, email)?),
            None => None,
        };
        self.record(
            AuditEvent::new(
                "auth.login",
                AuditOutcome::Success,
                self.clock.now(),
                context,
            )
            .by(tenant.clone(), Some(account.id.clone()))
            .with_detail("method", "password".into())
            .with_detail("trusted_device", checked.trusted_device.into())
            .with_detail("session", tokens.session.as_str().into()),
        )
        .await;
        Ok(LoginSession {
            tokens,
            principal,
            device_cookie,
        })
    }

    /// Check `password` for `email` in `tenant` as
    /// [`PasswordLogin::login_from_device`] does (lockout, failure
    /// tracking, rehash), without starting a token session: for a front
    /// end that keeps sessions of its own (the console's
    /// [`crate::web_session`]), which audits the sign-in itself.
    ///
    /// # Errors
    /// As [`PasswordLogin::login_from_device`].
    pub async fn authenticate(
        &self,
        tenant: &TenantId,
        email: &AccountEmail,
        password: &SecretString,
        device_cookie: Option<&str>,
        context: &RequestContext,
    ) -> Result<CheckedPassword> {
        let device = self
            .devices
            .as_ref()
            .zip(device_cookie)
            .and_then(|(devices, cookie)| devices.verify(tenant, email, cookie));
        let subjects = match &device {
            Some(id) => vec![FailureSubject::device(id)],
            None => {
                let mut subjects = vec![FailureSubject::account(
                    Some(tenant.clone()),
                    email.as_str(),
                )];
                if let Some(addr) = context.client_addr {
                    subjects.extend(FailureSubject::for_client(addr));
                }
                subjects
            }
        };
        self.tracker.check(&subjects)?;

        let account = self.accounts.find_by_email(tenant, email).await?;
        let verdict = match self
            .passwords
            .verify(password, account.as_ref().map(|a| a.password_hash.as_str()))
            .await
        {
            // A password over the length limit is a wrong password too.
            Err(Error::InvalidInput { .. }) => PasswordVerdict::Invalid,
            other => other?,
        };
        let account = match (verdict, account) {
            (PasswordVerdict::Valid { rehashed }, Some(account)) if !account.disabled => {
                if let Some(hash) = rehashed {
                    self.store_rehash(&account, &hash).await;
                }
                account
            }
            (_, account) => {
                let reason = if account.as_ref().is_some_and(|a| a.disabled) {
                    "account disabled"
                } else {
                    "unknown account or wrong password"
                };
                tracing::debug!(tenant = %tenant, reason, "password login refused");
                self.tracker
                    .record_failure(&subjects, context, AuthFailure::BadCredential)
                    .await;
                return Err(bad_credential());
            }
        };
        self.tracker.record_success(&subjects);
        let principal = self.principal_for(&account).await?;
        Ok(CheckedPassword {
            account,
            principal,
            trusted_device: device.is_some(),
        })
    }

    async fn store_rehash(&self, account: &Account, hash: &str) {
        match self
            .accounts
            .swap_password_hash(
                &account.tenant,
                &account.id,
                &account.password_hash,
                hash,
                self.clock.now(),
            )
            .await
        {
            Ok(true) => tracing::info!(
                tenant = %account.tenant,
                account = %account.id,
                "password rehashed with the current parameters"
            ),
            // The password was set meanwhile (a reset redeemed): the new
            // hash must not be overwritten with one of the old password.
            Ok(false) => tracing::debug!(
                tenant = %account.tenant,
                account = %account.id,
                "password changed during the login; rehash dropped"
            ),
            Err(e) => tracing::warn!(
                tenant = %account.tenant,
                account = %account.id,
                error = %e.log_chain(),
                "password rehash not stored; it is retried at the next login"
            ),
        }
    }

    /// Exchange a refresh token for a new pair, with the account's current
    /// roles.
    ///
    /// # Errors
    /// As [`SessionManager::refresh_with`]; [`Error::Unauthenticated`]
    /// (`Revoked`) when the account was disabled or deleted, which also
    /// ends the session.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        context: &RequestContext,
    ) -> Result<TokenPair> {
        let outcome = self
            .sessions
            .refresh_with(refresh_token, |current| {
                let (tenant, id) = (current.tenant.clone(), current.id.clone());
                async move {
                    match self.accounts.get(&tenant, &id).await? {
                        Some(account) if !account.disabled => self.principal_for(&account).await,
                        _ => Err(Error::unauthenticated(AuthFailure::Revoked)),
                    }
                }
            })
            .await;
        let (outcome_kind, reason) = match &outcome {
            Ok(_) => (AuditOutcome::Success, None),
            Err(Error::Unauthenticated { reason }) => {
                (AuditOutcome::Failure, Some(reason.as_str()))
            }
            // Outages are logged by the caller, not audited as attempts.
            Err(_) => return outcome,
        };
        let mut event = AuditEvent::new("auth.refresh", outcome_kind, self.clock.now(), context);
        if let Ok(pair) = &outcome {
            event = event.with_detail("session", pair.session.as_str().into());
        }
        if let Some(tenant) = refresh_token
            .rsplit_once('.')
            .and_then(|(t, _)| TenantId::new(t).ok())
        {
            event = event.by(tenant, None);
        }
        if let Some(reason) = reason {
            event = event.because(reason);
        }
        self.record(event).await;
        outcome
    }

    /// Revoke `token` (RFC 7009): a refresh token ends its session, an
    /// access token is revoked by `jti`. `hint` (`refresh_token` or
    /// `access_token`) only changes which is tried first.
    ///
    /// # Errors
    /// `Unavailable` if a store is down. An unknown, invalid or expired
    /// token is `Ok(Revoked::Nothing)`.
    pub async fn revoke(
        &self,
        token: &str,
        hint: Option<&str>,
        context: &RequestContext,
    ) -> Result<Revoked> {
        let access_first = hint == Some("access_token");
        let revoked = if access_first {
            match self.revoke_access(token).await? {
                Revoked::Nothing => self.revoke_refresh(token).await?,
                done => done,
            }
        } else {
            match self.revoke_refresh(token).await? {
                Revoked::Nothing => self.revoke_access(token).await?,
                done => done,
            }
        };
        if revoked != Revoked::Nothing {
            let what = if revoked == Revoked::Session {
                "session"
            } else {
                "access_token"
            };
            self.record(
                AuditEvent::new(
                    "auth.revoke",
                    AuditOutcome::Success,
                    self.clock.now(),
                    context,
                )
                .with_detail("revoked", what.into()),
            )
            .await;
        }
        Ok(revoked)
    }

    async fn revoke_refresh(&self, token: &str) -> Result<Revoked> {
        match self.sessions.revoke_refresh(token).await {
            Ok(()) => Ok(Revoked::Session),
            Err(Error::Unauthenticated { .. }) => Ok(Revoked::Nothing),
            Err(e) => Err(e),
        }
    }

    async fn revoke_access(&self, token: &str) -> Result<Revoked> {
        let Some(verifier) = &self.verifier else {
            return Ok(Revoked::Nothing);
        };
        match verifier.verify(token) {
            Ok(claims) => {
                self.sessions.revoke_access(&claims).await?;
                Ok(Revoked::AccessToken)
            }
            Err(_) => Ok(Revoked::Nothing),
        }
    }

    async fn record(&self, event: AuditEvent) {
        if let Err(error) = self.audit.record(&event).await {
            tracing::warn!(
                action = %event.action,
                error = %error.log_chain(),
                "login audit event not recorded"
            );
        }
    }
}

#[cfg(test)]
mod tests;
