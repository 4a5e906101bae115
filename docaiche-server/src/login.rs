//! Password accounts: the server's login service ([`Login`], built on
//! `docaiche-auth`'s [`PasswordLogin`] on first use) that the token
//! endpoints ([`crate::routes::auth`]) answer with, and the
//! `bootstrap-admin` subcommand that creates the first account.

use std::io::Read;
use std::sync::Arc;

use docaiche_auth::jwt::JwtVerifier;
use docaiche_auth::lockout::FailedAuthTracker;
use docaiche_auth::login::{AccountTokens, DeviceCookies, PasswordLogin};
use docaiche_auth::password::{PasswordConfig, PasswordService};
use docaiche_auth::session::{MemoryRefreshTokenStore, SessionConfig, SessionManager};
use docaiche_core::account::AccountEmail;
use docaiche_core::{Error, SecretString, TenantId};
use tokio::sync::OnceCell;

use crate::auth::AuthServices;
use crate::config::{AuthSection, Config, EnvLookup};

/// Shortest password `bootstrap-admin` (and any account creation) accepts.
pub(crate) const MIN_PASSWORD_CHARS: usize = 12;

/// Longest password read from standard input, in bytes.
const MAX_STDIN_BYTES: u64 = 4096;

/// The password settings of the server: `docaiche-auth`'s defaults (OWASP
/// argon2id, the common breached passwords refused) with at least
/// [`MIN_PASSWORD_CHARS`].
fn password_config() -> PasswordConfig {
    let mut config = PasswordConfig::default();
    config.min_chars = MIN_PASSWORD_CHARS;
    config
}

/// The login service of the server, built on first use: the password
/// service computes a dummy hash when it starts, which takes an argon2id
/// run the synchronous start-up path cannot wait for.
#[derive(Debug)]
pub(crate) struct Login {
    parts: Parts,
    password_config: PasswordConfig,
    service: OnceCell<Arc<PasswordLogin>>,
}

/// What the login service is made of.
#[derive(Debug, Clone)]
struct Parts {
    accounts: Arc<dyn docaiche_core::AccountStore>,
    custom_roles: Arc<dyn docaiche_core::CustomRoleStore>,
    audit: Arc<dyn docaiche_core::AuditSink>,
    sessions: Arc<SessionManager>,
    verifier: Arc<JwtVerifier>,
    tracker: Arc<FailedAuthTracker>,
    devices: DeviceCookies,
    tokens: AccountTokens,
    policy: docaiche_auth::rbac::RolePolicy,
    clock: Arc<dyn docaiche_core::Clock>,
    bootstrap_role: String,
}

impl Login {
    /// The login service over `services`' stores, keys, roles and clock,
    /// with `auth`'s lockout settings. Refresh tokens are kept in memory:
    /// a restart ends every session (access tokens stay valid until they
    /// expire).
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for settings `Config::validate` also
    /// refuses.
    pub(crate) fn new(auth: &AuthSection, services: &AuthServices) -> Result<Self, Error> {
        let clock = Arc::clone(&services.clock);
        let stores = &services.stores;
        let sessions = SessionManager::new(
            services.issuer.clone(),
            Arc::new(MemoryRefreshTokenStore::new().with_clock(Arc::clone(&clock))),
            Arc::clone(&stores.revocations),
            SessionConfig::default(),
            Arc::clone(&clock),
        )?;
        let verifier = JwtVerifier::new(
            Arc::clone(&services.jwt_keys),
            auth.jwt_config(),
            Arc::clone(&clock),
        )?;
        let tracker = FailedAuthTracker::new(auth.lockout.clone(), Arc::clone(&stores.audit))?
            .with_clock(Arc::clone(&clock));
        let devices = DeviceCookies::new(&services.device_key)?.with_clock(Arc::clone(&clock));
        let tokens =
            AccountTokens::new(&services.account_token_key)?.with_clock(Arc::clone(&clock));
        let password_config = password_config();
        Ok(Self {
            parts: Parts {
                accounts: Arc::clone(&stores.accounts),
                custom_roles: Arc::clone(&stores.custom_roles),
                audit: Arc::clone(&stores.audit),
                sessions: Arc::new(sessions),
                verifier: Arc::new(verifier),
                tracker: Arc::new(tracker),
                devices,
                tokens,
                policy: services.policy.clone(),
                clock,
                bootstrap_role: services.bootstrap_role.clone(),
            },
            password_config,
            service: OnceCell::new(),
        })
    }

    /// Hash with `config` instead of the OWASP defaults (tests: cheaper
    /// parameters). `min_chars` is kept at [`MIN_PASSWORD_CHARS`].
    #[cfg(test)]
    pub(crate) fn with_password_config(mut self, mut config: PasswordConfig) -> Self {
        config.min_chars = MIN_PASSWORD_CHARS;
        self.password_config = config;
        self
    }

    /// The login service, started on first use.
    ///
    /// # Errors
    /// As [`PasswordService::new`] and [`PasswordLogin::new`].
    pub(crate) async fn service(&self) -> Result<&Arc<PasswordLogin>, Error> {
        self.service
            .get_or_try_init(|| async {
                let parts = self.parts.clone();
                let passwords = PasswordService::new(self.password_config.clone()).await?;
                let login = PasswordLogin::new(
                    parts.accounts,
                    Arc::new(passwords),
                    parts.sessions,
                    parts.policy,
                    parts.audit,
                )?
                .with_tracker(parts.tracker)
                .with_device_cookies(parts.devices)
                .with_account_tokens(parts.tokens)
                .with_custom_roles(parts.custom_roles)
                .with_access_token_verifier(parts.verifier)
                .with_clock(parts.clock);
                Ok(Arc::new(login))
            })
            .await
    }

    /// The failure tracker of the password login, which also throttles the
    /// console's second-factor codes (so one lockout policy, one
    /// `auth.failure` trail, covers both factors).
    pub(crate) fn tracker(&self) -> &Arc<FailedAuthTracker> {
        &self.parts.tracker
    }

    /// The role `bootstrap-admin` gives the first account.
    pub(crate) fn bootstrap_role(&self) -> &str {
        &self.parts.bootstrap_role
    }
}

/// `bootstrap-admin --tenant T --email E [--config PATH]`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct BootstrapAdminArgs {
    /// The tenant of the account.
    pub(crate) tenant: String,
    /// The account's email.
    pub(crate) email: String,
}

/// Read the password from `input`: everything up to 4 KiB, without the
/// final line break, refused early (before any store is opened) when the
/// password service's policy would refuse it: too short, or among the most
/// common breached passwords.
fn read_password(mut input: impl Read) -> Result<SecretString, Error> {
    let mut raw = Vec::new();
    input
        .by_ref()
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| Error::internal_with("cannot read the password from standard input", e))?;
    if u64::try_from(raw.len()).unwrap_or(u64::MAX) > MAX_STDIN_BYTES {
        return Err(Error::invalid_input(
            "the password must be at most 4096 bytes",
        ));
    }
    let mut text =
        String::from_utf8(raw).map_err(|_| Error::invalid_input("the password must be UTF-8"))?;
    for ending in ["\r\n", "\n"] {
        if text.ends_with(ending) {
            text.truncate(text.len() - ending.len());
            break;
        }
    }
    let password = SecretString::from(text);
    password_config().policy()?.check(&password)?;
    Ok(password)
}

/// `bootstrap-admin`: create the first account of a tenant, bound to
/// `auth.bootstrap_role`, in the configured store, with the password read
/// from `input`; prints the account id on stdout.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad tenant, email or password;
/// [`Error::Conflict`] if the email already has an account in the tenant;
/// the store's error.
pub(crate) async fn bootstrap_admin(
    config: &Config,
    args: &BootstrapAdminArgs,
    env: EnvLookup<'_>,
    input: impl Read,
) -> Result<docaiche_core::account::Account, Error> {
    let tenant = TenantId::new(&args.tenant)?;
    let email = AccountEmail::new(&args.email)?;
    let password = read_password(input)?;
    crate::storage::prepare_data_dir(&config.storage.data_dir)
        .map_err(|e| Error::misconfigured("storage.data_dir", e.to_string()))?;
    // A guest of the audit trail: it runs beside the server.
    let (auth, _) = crate::state::open_auth_as(config, env, crate::audit::TrailRole::Guest).await?;
    let login = Login::new(&config.auth, &auth)?;
    create_admin(&login, &tenant, email, &password).await
}

/// Create the bootstrap account with `login`.
async fn create_admin(
    login: &Login,
    tenant: &TenantId,
    email: AccountEmail,
    password: &SecretString,
) -> Result<docaiche_core::account::Account, Error> {
    let role = login.bootstrap_role().to_owned();
    let service = login.service().await?;
    let account = service
        .create_account(tenant, email, password, vec![role.clone()])
        .await
        .map_err(|e| match e {
            Error::Conflict { .. } => {
                Error::conflict("an account with this email already exists in the tenant")
            }
            other => other,
        })?;
    tracing::info!(
        tenant = %account.tenant,
        account = %account.id,
        role = %role,
        "bootstrap admin account created"
    );
    Ok(account)
}

#[cfg(test)]
mod tests;
