//! Password hashing with argon2id: OWASP parameters, PHC strings,
//! transparent rehash, hashing off the async runtime, and the same work
//! for unknown accounts as for known ones.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
//! use docaiche_auth::password::{PasswordConfig, PasswordService, PasswordVerdict};
//! use docaiche_core::SecretString;
//!
//! let passwords = PasswordService::new(PasswordConfig::default()).await?;
//! let stored = passwords.hash(&SecretString::from("correct horse battery staple")).await?;
//! assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
//!
//! let verdict = passwords
//!     .verify(&SecretString::from("correct horse battery staple"), Some(&stored))
//!     .await?;
//! assert!(matches!(verdict, PasswordVerdict::Valid { rehashed: None }));
//!
//! // An unknown account: `None` costs one argon2id verification too.
//! let verdict = passwords.verify(&SecretString::from("guess"), None).await?;
//! assert!(matches!(verdict, PasswordVerdict::Invalid));
//! # Ok::<(), docaiche_core::Error>(()) }).unwrap();
//! ```
//!
//! # Design
//!
//! - **argon2id** (the `argon2` crate, RustCrypto) with OWASP's second
//!   recommended setting by default: m = 19 MiB, t = 2, p = 1. Hashes are
//!   PHC strings carrying their own parameters and salt (16 bytes from the
//!   OS RNG), so parameters can change without a migration.
//! - **Transparent rehash.** When a stored hash was made with other
//!   parameters (or another algorithm or version), a successful
//!   [`PasswordService::verify`] returns a fresh hash to store:
//!   [`PasswordVerdict::Valid`] `{ rehashed: Some(..) }`.
//! - **Off the async runtime.** Each hash runs on tokio's blocking pool via
//!   `spawn_blocking`, at most one per CPU core at a time (a semaphore), so
//!   a burst of logins queues instead of starving every other request of
//!   worker threads, and memory use stays at cores × m.
//! - **No account enumeration by timing.** Call `verify` with `None` when
//!   the account does not exist: it verifies against a dummy hash made once
//!   at start-up with the same parameters, so both paths do the same work.
//! - **A policy for new passwords** ([`PasswordPolicy`], from the config).
//!   [`PasswordService::hash`] refuses a password shorter than `min_chars`
//!   (default 12) or on the bundled list of the 49,233 most common breached
//!   passwords (compared without whitespace, ASCII case-insensitively; see
//!   [`policy`]), so every path that sets a password applies it.
//!   Passwords longer than `max_bytes` are refused before any hashing (at
//!   set and at login), which stops hash-flooding with megabyte passwords.
//!   Existing passwords are not checked again at login: a policy change
//!   applies from the next password set.

pub mod policy;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use docaiche_core::secret::SecretString;
use docaiche_core::{Error, Result};
use serde::Deserialize;
use tokio::sync::Semaphore;

pub use self::policy::{PasswordPolicy, PasswordRejection, is_common_password};

/// Password hashing settings, deserializable from configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PasswordConfig {
    /// argon2id memory cost in KiB (default 19 456 = 19 MiB).
    pub memory_kib: u32,
    /// argon2id iterations (default 2).
    pub iterations: u32,
    /// argon2id lanes (default 1).
    pub parallelism: u32,
    /// Shortest password accepted when setting one, in characters
    /// (default 12).
    pub min_chars: usize,
    /// Longest password accepted, in bytes (default 1024): refused before
    /// hashing, at set and at login.
    pub max_bytes: usize,
    /// Refuse, when setting a password, those on the bundled list of the
    /// most common breached passwords (default `true`; see [`policy`]).
    /// Turning it off weakens the policy.
    pub reject_common: bool,
    /// How many hashes may run at once (default: the number of CPU cores).
    pub max_concurrent: Option<usize>,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
            min_chars: PasswordPolicy::DEFAULT_MIN_CHARS,
            max_bytes: PasswordPolicy::DEFAULT_MAX_BYTES,
            reject_common: true,
            max_concurrent: None,
        }
    }
}

impl PasswordConfig {
    /// The policy for new passwords these settings describe.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for inconsistent lengths, as
    /// [`PasswordPolicy::new`].
    pub fn policy(&self) -> Result<PasswordPolicy> {
        let policy = PasswordPolicy::new(self.min_chars, self.max_bytes)?;
        Ok(if self.reject_common {
            policy
        } else {
            policy.allowing_common_passwords()
        })
    }
}

/// The outcome of [`PasswordService::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordVerdict {
    /// The password matches.
    Valid {
        /// A new PHC string to store in place of the old one, when the old
        /// one was made with other parameters.
        rehashed: Option<String>,
    },
    /// The password does not match, or the account does not exist.
    Invalid,
}

impl PasswordVerdict {
    /// Whether the password matched.
    #[must_use]
    pub const fn is_valid(&self) -> bool {
        matches!(self, Self::Valid { .. })
    }
}

/// Hashes and verifies passwords; see the [module docs](self). Cheap to
/// share behind an `Arc`.
pub struct PasswordService {
    config: PasswordConfig,
    policy: PasswordPolicy,
    params: Params,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
    operations: Arc<AtomicU64>,
}

impl PasswordService {
    /// A service with `config`. Computes the dummy hash used for unknown
    /// accounts (one argon2id run, off the runtime).
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for parameters argon2 rejects, weaker than
    /// the OWASP minimum (m < 7 MiB or t < 1), or inconsistent lengths.
    pub async fn new(config: PasswordConfig) -> Result<Self> {
        if config.memory_kib < 7 * 1024 {
            return Err(Error::misconfigured(
                "password.memory_kib",
                "must be at least 7168 (OWASP minimum for argon2id)",
            ));
        }
        let policy = config.policy()?;
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| Error::misconfigured("password", format!("invalid argon2 parameters: {e}")))?;
        let permits = config
            .max_concurrent
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
            .max(1);
        let mut service = Self {
            config,
            policy,
            params,
            permits: Arc::new(Semaphore::new(permits)),
            dummy_hash: Arc::from(""),
            operations: Arc::new(AtomicU64::new(0)),
        };
        let dummy = service
            .run_blocking(SecretString::from("docaiche dummy password"), Job::Hash)
            .await?;
        service.dummy_hash = Arc::from(dummy.unwrap_or_default());
        Ok(service)
    }

    /// The settings.
    #[must_use]
    pub const fn config(&self) -> &PasswordConfig {
        &self.config
    }

    /// The policy [`hash`](Self::hash) applies to new passwords: call its
    /// [`check`](PasswordPolicy::check) to refuse one before other work
    /// (such as reading a store).
    #[must_use]
    pub const fn policy(&self) -> &PasswordPolicy {
        &self.policy
    }

    /// How many argon2id computations (hashes and verifications) this
    /// service has run, the start-up dummy hash included. For metrics, and
    /// for tests that check unknown accounts cost the same.
    #[must_use]
    pub fn hash_operations(&self) -> u64 {
        self.operations.load(Ordering::Relaxed)
    }

    /// Hash a new password to a PHC string, once it meets the
    /// [policy](Self::policy).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if it is shorter than `min_chars` characters,
    /// longer than `max_bytes` bytes or (unless `reject_common` is off) on
    /// the list of the most common breached passwords, with a message that
    /// says which and never holds the password; [`Error::Internal`] if
    /// hashing fails.
    pub async fn hash(&self, password: &SecretString) -> Result<String> {
        self.policy.check(password)?;
        let hash = self.run_blocking(password.clone(), Job::Hash).await?;
        hash.ok_or_else(|| Error::internal("argon2id produced no hash"))
    }

    /// Verify `password` against `stored` (a PHC string), or against the
    /// dummy hash when the account does not exist (`None`), doing the same
    /// work either way.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the password is longer than `max_bytes`
    /// (checked before hashing, for known and unknown accounts alike);
    /// [`Error::Internal`] if `stored` is not a valid PHC string.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<PasswordVerdict> {
        self.policy.check_max(password)?;
        let (phc, known): (Arc<str>, bool) = match stored {
            Some(s) => (Arc::from(s), true),
            None => (Arc::clone(&self.dummy_hash), false),
        };
        let matched = self
            .run_blocking(password.clone(), Job::Verify(Arc::clone(&phc)))
            .await?
            .is_some();
        if !(matched && known) {
            return Ok(PasswordVerdict::Invalid);
        }
        if !self.needs_rehash(&phc) {
            return Ok(PasswordVerdict::Valid { rehashed: None });
        }
        let rehashed = self.run_blocking(password.clone(), Job::Hash).await?;
        Ok(PasswordVerdict::Valid { rehashed })
    }

    /// Whether `stored` was made with other settings than the current ones
    /// (algorithm, version, m, t, p or output length).
    #[must_use]
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(hash) = PasswordHash::new(stored) else {
            return true;
        };
        if hash.algorithm != Algorithm::Argon2id.ident()
            || hash.version != Some(Version::V0x13.into())
        {
            return true;
        }
        Params::try_from(&hash).map_or(true, |p| {
            p.m_cost() != self.params.m_cost()
                || p.t_cost() != self.params.t_cost()
                || p.p_cost() != self.params.p_cost()
                || p.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)
                    != Params::DEFAULT_OUTPUT_LEN
        })
    }

    /// Run one argon2id job on the blocking pool, at most `max_concurrent`
    /// at a time. `Some(phc)` for a hash; `Some("")` or `None` for a
    /// verification that matched or did not.
    async fn run_blocking(&self, password: SecretString, job: Job) -> Result<Option<String>> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("password hashing semaphore closed"))?;
        let params = self.params.clone();
        let operations = Arc::clone(&self.operations);
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            operations.fetch_add(1, Ordering::Relaxed);
            let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            let secret = password.expose_secret().as_bytes();
            match job {
                Job::Hash => argon2
                    .hash_password(secret)
                    .map(|h| Some(h.to_string()))
                    .map_err(|e| Error::internal(format!("argon2id hashing failed: {e}"))),
                Job::Verify(phc) => {
                    let parsed = PasswordHash::new(&phc).map_err(|e| {
                        Error::internal(format!("stored password hash is invalid: {e}"))
                    })?;
                    // The parameters of the stored hash are used, not ours.
                    Ok(argon2
                        .verify_password(secret, &parsed)
                        .is_ok()
                        .then(String::new))
                }
            }
        });
        task.await
            .map_err(|e| Error::internal(format!("password hashing task failed: {e}")))?
    }
}

enum Job {
    Hash,
    Verify(Arc<str>),
}

impl fmt::Debug for PasswordService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordService")
            .field("config", &self.config)
            .field("available_permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}
