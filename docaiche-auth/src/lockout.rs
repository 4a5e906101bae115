//! Failed-authentication tracking: exponential back-off and soft, expiring
//! lockouts per client address, client network, account and trusted
//! device, built so that an attacker slows themselves down and never locks
//! out someone else's valid credential.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use docaiche_auth::lockout::{FailedAuthTracker, FailureSubject, LockoutConfig};
//! use docaiche_core::{AuthFailure, ManualClock, RequestContext};
//! use docaiche_store::memory::MemoryAuditSink;
//!
//! let clock = ManualClock::new();
//! let audit = Arc::new(MemoryAuditSink::new());
//! let tracker = FailedAuthTracker::new(LockoutConfig::default(), audit.clone())?
//!     .with_clock(Arc::new(clock.clone()));
//! let who = [FailureSubject::account(None, "alice@example.com")];
//!
//! for _ in 0..5 {
//!     // The first five failures are free...
//!     assert!(tracker.check(&who).is_ok());
//!     tracker.record_failure(&who, &RequestContext::new(), AuthFailure::BadCredential).await;
//! }
//! assert!(tracker.check(&who).is_ok());
//! let lock = tracker
//!     .record_failure(&who, &RequestContext::new(), AuthFailure::BadCredential)
//!     .await
//!     .expect("the sixth starts the back-off");
//! assert_eq!(lock.retry_after, Duration::from_secs(1));
//! assert!(tracker.check(&who).is_err());
//! clock.advance(Duration::from_secs(1));
//! assert!(tracker.check(&who).is_ok(), "soft: the lock expires by itself");
//! assert_eq!(audit.events_without_tenant().len(), 7, "six failures, one lockout");
//! # Ok::<(), docaiche_core::Error>(()) }).unwrap();
//! ```
//!
//! # Design
//!
//! - **A lockout slows the guesser; it never refuses a valid credential.**
//!   Failures count against where they come from (the client address and
//!   its network) and, for passwords, against the account *as seen from
//!   untrusted clients*. Bearer credentials (API keys, JWTs) are cheap to
//!   check, so the auth layer verifies them first: a valid key or token is
//!   accepted whatever its source's or its key prefix's record, and only a
//!   failure meets the lock (429 instead of 401). A key prefix is recorded
//!   on the audit event (which key is under attack) but never locks: the
//!   lookup part of a key is public, and an attacker who knows a victim's
//!   could otherwise lock the victim's valid key out on every instance.
//! - **Device cookies for passwords** (OWASP, "Slow Down Online Guessing
//!   Attacks with Device Cookies"): a browser or client that signed in to
//!   an account before presents a signed device cookie
//!   ([`crate::login::DeviceCookies`]); its attempts count against that
//!   device alone ([`FailureSubject::Device`]), so an attacker hammering
//!   the account from elsewhere locks out untrusted clients only, and the
//!   account's owner on a known device still signs in. An untrusted
//!   client's attempts count against the account, the address and the
//!   network, as before.
//! - **Back-off, not hard lockout.** After `free_attempts` consecutive
//!   failures, each further failure locks the subject for
//!   `base_delay × 2^k`, capped at `max_delay` (5 minutes by default).
//!   Locks expire on their own. Counters are forgotten after
//!   `forget_after` without failures.
//! - **At most 100 failed attempts per hour per account and per device**
//!   (OWASP ASVS 2.2.1), whatever the back-off settings: they also pass a
//!   GCRA with a burst of half the hourly budget refilled over the hour, so
//!   no sliding hour ever sees more than the budget.
//! - **Several subjects per attempt.** An attempt is refused if *any*
//!   subject is locked. A success clears the account and device counters,
//!   but not the address: otherwise an attacker holding one valid
//!   credential could reset the counter of their own address between
//!   guesses.
//! - **Bounded memory.** At most `max_entries` subjects are tracked; when
//!   full, idle entries go first, then the tenth with the oldest failure.
//! - **Time from a [`Clock`]**, so tests run on a `ManualClock`.
//! - **Audited.** Every failure is an `auth.failure` event and every lock
//!   that starts an `auth.lockout` event on the [`AuditSink`]. Attempts
//!   refused while locked are not audited one by one (they test no
//!   credential, and auditing them would let an attacker flood the trail).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use docaiche_core::audit::{AuditEvent, AuditOutcome};
use docaiche_core::{
    AuditSink, AuthFailure, Clock, Error, RequestContext, Result, SystemClock, TenantId,
};
use serde::Deserialize;

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureSubject {
    /// An account (login name or principal id), optionally within a tenant.
    Account {
        /// The tenant, when known.
        tenant: Option<TenantId>,
        /// The account name as presented (at most 256 bytes kept).
        account: String,
    },
    /// One client address.
    ClientAddr(IpAddr),
    /// A client network: the address with its last 8 (IPv4) or 64 (IPv6)
    /// bits cleared.
    Network(IpAddr),
    /// The public prefix of a presented API key (type prefix and lookup
    /// id): named on the `auth.failure` audit event, never counted or
    /// locked (the lookup id is public; see the [module docs](self)).
    KeyPrefix(String),
    /// A client device that signed in to an account before, by the id its
    /// device cookie carries ([`crate::login::DeviceCookies`]).
    Device(String),
}

/// Which kind of [`FailureSubject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubjectKind {
    /// [`FailureSubject::Account`].
    Account,
    /// [`FailureSubject::ClientAddr`].
    ClientAddr,
    /// [`FailureSubject::Network`].
    Network,
    /// [`FailureSubject::KeyPrefix`].
    KeyPrefix,
    /// [`FailureSubject::Device`].
    Device,
}

impl SubjectKind {
    /// Stable snake-case name, for logs and audit details.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::ClientAddr => "client_addr",
            Self::Network => "network",
            Self::KeyPrefix => "key_prefix",
            Self::Device => "device",
        }
    }
}

const MAX_SUBJECT_LEN: usize = 256;

fn truncate(s: &str) -> String {
    let mut end = s.len().min(MAX_SUBJECT_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl FailureSubject {
    /// An account, its name truncated to 256 bytes.
    #[must_use]
    pub fn account(tenant: Option<TenantId>, account: &str) -> Self {
        Self::Account {
            tenant,
            account: truncate(account),
        }
    }

    /// An API-key prefix (see [`crate::api_key::public_prefix`]), truncated
    /// to 256 bytes.
    #[must_use]
    pub fn key_prefix(prefix: &str) -> Self {
        Self::KeyPrefix(truncate(prefix))
    }

    /// A trusted device, by its device-cookie id (truncated to 256 bytes).
    #[must_use]
    pub fn device(id: &str) -> Self {
        Self::Device(truncate(id))
    }

    /// The client address and its network (/24 or /64). IPv4-mapped IPv6
    /// addresses count as IPv4.
    #[must_use]
    pub fn for_client(addr: IpAddr) -> [Self; 2] {
        let addr = addr.to_canonical();
        let network = match addr {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        };
        [Self::ClientAddr(addr), Self::Network(network)]
    }

    /// The kind.
    #[must_use]
    pub const fn kind(&self) -> SubjectKind {
        match self {
            Self::Account { .. } => SubjectKind::Account,
            Self::ClientAddr(_) => SubjectKind::ClientAddr,
            Self::Network(_) => SubjectKind::Network,
            Self::KeyPrefix(_) => SubjectKind::KeyPrefix,
            Self::Device(_) => SubjectKind::Device,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Account { account, .. } => account.clone(),
            Self::ClientAddr(a) => a.to_string(),
            Self::Network(n) => match n {
                IpAddr::V4(_) => format!("{n}/24"),
                IpAddr::V6(_) => format!("{n}/64"),
            },
            Self::KeyPrefix(p) | Self::Device(p) => p.clone(),
        }
    }

    const fn has_hourly_cap(&self) -> bool {
        matches!(self, Self::Account { .. } | Self::Device(_))
    }

    const fn cleared_by_success(&self) -> bool {
        matches!(self, Self::Account { .. } | Self::Device(_))
    }

    /// Whether failures are counted against this subject (and it can be
    /// locked): every kind but the public key prefix.
    #[must_use]
    pub const fn can_lock(&self) -> bool {
        !matches!(self, Self::KeyPrefix(_))
    }
}

/// Back-off settings for one kind of subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BackoffPolicy {
    /// Consecutive failures allowed before the back-off starts.
    pub free_attempts: u32,
    /// The first lock's duration, in milliseconds; each further failure
    /// doubles it.
    pub base_delay_ms: u64,
    /// The longest lock, in seconds: the most an attacker can hold a
    /// victim's account locked after their last attempt.
    pub max_delay_secs: u64,
}

impl BackoffPolicy {
    /// A policy.
    #[must_use]
    pub const fn new(free_attempts: u32, base_delay_ms: u64, max_delay_secs: u64) -> Self {
        Self {
            free_attempts,
            base_delay_ms,
            max_delay_secs,
        }
    }

    fn delay_after(&self, failures: u32) -> Duration {
        let Some(excess) = failures.checked_sub(self.free_attempts).filter(|&e| e > 0) else {
            return Duration::ZERO;
        };
        let max = Duration::from_secs(self.max_delay_secs);
        let factor = 1u64.checked_shl(excess - 1).unwrap_or(u64::MAX);
        Duration::from_millis(self.base_delay_ms.saturating_mul(factor)).min(max)
    }
}

/// Settings of a [`FailedAuthTracker`], deserializable from configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LockoutConfig {
    /// Per account (default: 5 free, 1 s doubling to 5 min).
    pub account: BackoffPolicy,
    /// Per client address (default: 10 free, 1 s doubling to 5 min).
    pub client_addr: BackoffPolicy,
    /// Per client network (default: 50 free, 1 s doubling to 5 min).
    pub network: BackoffPolicy,
    /// Per trusted device (default: 5 free, 1 s doubling to 5 min).
    pub device: BackoffPolicy,
    /// Hard cap on failed attempts per sliding hour per account and per
    /// device: 2 to 100 (default 100, OWASP ASVS 2.2.1).
    pub max_failures_per_hour: u32,
    /// Forget a subject's failures after this long without one, in seconds
    /// (default 3600).
    pub forget_after_secs: u64,
    /// How many subjects are tracked at most (default 100 000).
    pub max_entries: usize,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            account: BackoffPolicy::new(5, 1000, 300),
            client_addr: BackoffPolicy::new(10, 1000, 300),
            network: BackoffPolicy::new(50, 1000, 300),
            device: BackoffPolicy::new(5, 1000, 300),
            max_failures_per_hour: 100,
            forget_after_secs: 3600,
            max_entries: 100_000,
        }
    }
}

impl LockoutConfig {
    const fn policy(&self, kind: SubjectKind) -> &BackoffPolicy {
        match kind {
            SubjectKind::Account => &self.account,
            SubjectKind::ClientAddr => &self.client_addr,
            SubjectKind::Network => &self.network,
            // Never consulted: a key prefix is not counted.
            SubjectKind::Device | SubjectKind::KeyPrefix => &self.device,
        }
    }
}

/// An attempt refused because a subject is locked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lockout {
    /// Which kind of subject is locked.
    pub kind: SubjectKind,
    /// How long until the lock expires.
    pub retry_after: Duration,
}

impl From<Lockout> for Error {
    /// A lockout answers like a rate limit: 429 with `Retry-After`, so a
    /// legitimate client knows when to come back.
    fn from(lockout: Lockout) -> Self {
        Self::RateLimited {
            retry_after: lockout.retry_after,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Duration,
    locked_until: Duration,
    /// GCRA theoretical arrival time of the hourly cap.
    tat: Duration,
}

/// Counts failed authentications and decides back-off; see the
/// [module docs](self).
pub struct FailedAuthTracker {
    config: LockoutConfig,
    clock: Arc<dyn Clock>,
    audit: Arc<dyn AuditSink>,
    /// Hourly cap as a GCRA: burst and emission interval.
    burst: u32,
    emission: Duration,
    entries: Mutex<HashMap<FailureSubject, Entry>>,
}

impl FailedAuthTracker {
    /// A tracker reporting to `audit`, on the system clock.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if `max_failures_per_hour` is not within
    /// 2..=100, `max_entries` is 0 or `forget_after_secs` is shorter than
    /// an hour (the hourly cap would be forgotten).
    pub fn new(config: LockoutConfig, audit: Arc<dyn AuditSink>) -> Result<Self> {
        let per_hour = config.max_failures_per_hour;
        if !(2..=100).contains(&per_hour) {
            return Err(Error::misconfigured(
                "lockout.max_failures_per_hour",
                "must be 2 to 100 (OWASP ASVS 2.2.1)",
            ));
        }
        if config.max_entries == 0 {
            return Err(Error::misconfigured(
                "lockout.max_entries",
                "must be at least 1",
            ));
        }
        if config.forget_after_secs < 3600 {
            return Err(Error::misconfigured(
                "lockout.forget_after_secs",
                "must be at least 3600 so the hourly cap holds",
            ));
        }
        // Any window of one hour admits at most burst + hour / emission
        // = burst + (per_hour - burst) = per_hour failures.
        let burst = per_hour.div_ceil(2);
        let emission = Duration::from_secs(3600) / (per_hour - burst);
        Ok(Self {
            config,
            clock: Arc::new(SystemClock::new()),
            audit,
            burst,
            emission,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// Read time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The settings.
    #[must_use]
    pub const fn config(&self) -> &LockoutConfig {
        &self.config
    }

    /// How many subjects are tracked.
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    /// Whether an attempt by `subjects` may go ahead.
    ///
    /// # Errors
    /// The longest [`Lockout`] among the subjects, if any is locked.
    pub fn check(&self, subjects: &[FailureSubject]) -> Result<(), Lockout> {
        let entries = self.lock();
        if entries.is_empty() {
            // Nothing has failed lately: the common case, without hashing.
            return Ok(());
        }
        let now = self.clock.monotonic();
        let longest = subjects
            .iter()
            .filter_map(|s| {
                let entry = entries.get(s)?;
                let until = self.lock_end(s, entry, now)?;
                Some(Lockout {
                    kind: s.kind(),
                    retry_after: until - now,
                })
            })
            .max_by_key(|l| l.retry_after);
        longest.map_or(Ok(()), Err)
    }

    /// Count a failed attempt against every subject and audit it. Returns
    /// the longest lock now in force, if any.
    pub async fn record_failure(
        &self,
        subjects: &[FailureSubject],
        context: &RequestContext,
        reason: AuthFailure,
    ) -> Option<Lockout> {
        let now = self.clock.monotonic();
        let forget_after = Duration::from_secs(self.config.forget_after_secs);
        let mut started = Vec::new();
        let mut longest: Option<Lockout> = None;
        {
            let mut entries = self.lock();
            for subject in subjects.iter().filter(|s| s.can_lock()) {
                if !entries.contains_key(subject) && entries.len() >= self.config.max_entries {
                    self.make_room(&mut entries, now);
                }
                let entry = entries.entry(subject.clone()).or_insert(Entry {
                    failures: 0,
                    last_failure: now,
                    locked_until: Duration::ZERO,
                    tat: now,
                });
                if now.saturating_sub(entry.last_failure) >= forget_after {
                    *entry = Entry {
                        failures: 0,
                        last_failure: now,
                        locked_until: Duration::ZERO,
                        tat: now,
                    };
                }
                let was_locked = self.lock_end(subject, entry, now).is_some();
                entry.failures = entry.failures.saturating_add(1);
                entry.last_failure = now;
                let delay = self
                    .config
                    .policy(subject.kind())
                    .delay_after(entry.failures);
                if !delay.is_zero() {
                    entry.locked_until = entry.locked_until.max(now + delay);
                }
                if subject.has_hourly_cap() {
                    entry.tat = entry.tat.max(now) + self.emission;
                }
                if let Some(until) = self.lock_end(subject, entry, now) {
                    let lockout = Lockout {
                        kind: subject.kind(),
                        retry_after: until - now,
                    };
                    if !was_locked {
                        started.push((subject.clone(), lockout.clone()));
                    }
                    if longest
                        .as_ref()
                        .is_none_or(|l| l.retry_after < lockout.retry_after)
                    {
                        longest = Some(lockout);
                    }
                }
            }
        }
        self.audit_failure(subjects, context, reason, &started)
            .await;
        longest
    }

    /// Whether no subject has a failure on record: then [`check`](Self::check)
    /// passes and [`record_success`](Self::record_success) has nothing to
    /// clear, whatever the subjects, so a caller may skip building them.
    #[must_use]
    pub fn is_quiet(&self) -> bool {
        self.lock().is_empty()
    }

    /// A successful authentication: clears the account and device counters
    /// among `subjects` (never the address or network ones).
    pub fn record_success(&self, subjects: &[FailureSubject]) {
        let mut entries = self.lock();
        if entries.is_empty() {
            return;
        }
        for subject in subjects.iter().filter(|s| s.cleared_by_success()) {
            entries.remove(subject);
        }
    }

    /// When the lock on `subject` ends, if it is locked at `now`.
    fn lock_end(&self, subject: &FailureSubject, entry: &Entry, now: Duration) -> Option<Duration> {
        let mut until = entry.locked_until;
        if subject.has_hourly_cap() {
            // Another failure is admitted once tat - now <= (burst - 1) * T.
            let allowance = self.emission * (self.burst - 1);
            until = until.max(entry.tat.saturating_sub(allowance));
        }
        (until > now).then_some(until)
    }

    fn make_room(&self, entries: &mut HashMap<FailureSubject, Entry>, now: Duration) {
        let forget_after = Duration::from_secs(self.config.forget_after_secs);
        entries.retain(|s, e| {
            now.saturating_sub(e.last_failure) < forget_after || self.lock_end(s, e, now).is_some()
        });
        if entries.len() < self.config.max_entries {
            return;
        }
        let mut ages: Vec<Duration> = entries.values().map(|e| e.last_failure).collect();
        let cut = (ages.len() / 10).max(1);
        let (_, threshold, _) = ages.select_nth_unstable(cut - 1);
        let threshold = *threshold;
        let mut removed = 0;
        entries.retain(|_, e| {
            if removed < cut && e.last_failure <= threshold {
                removed += 1;
                false
            } else {
                true
            }
        });
    }

    async fn audit_failure(
        &self,
        subjects: &[FailureSubject],
        context: &RequestContext,
        reason: AuthFailure,
        started: &[(FailureSubject, Lockout)],
    ) {
        let at = self.clock.now();
        let tenant = subjects.iter().find_map(|s| match s {
            FailureSubject::Account { tenant, .. } => tenant.clone(),
            _ => None,
        });
        let scoped = |event: AuditEvent| match &tenant {
            Some(t) => event.by(t.clone(), None),
            None => event,
        };
        let described: serde_json::Map<String, serde_json::Value> = subjects
            .iter()
            .map(|s| (s.kind().as_str().to_owned(), s.describe().into()))
            .collect();
        let failure = scoped(
            AuditEvent::new("auth.failure", AuditOutcome::Failure, at, context)
                .because(reason.as_str())
                .with_detail("subjects", described.into()),
        );
        self.record(&failure).await;
        for (subject, lockout) in started {
            let event = scoped(
                AuditEvent::new("auth.lockout", AuditOutcome::Denied, at, context)
                    .because(AuthFailure::LockedOut.as_str())
                    .with_detail("subject_kind", subject.kind().as_str().into())
                    .with_detail("subject", subject.describe().into())
                    .with_detail(
                        "retry_after_ms",
                        u64::try_from(lockout.retry_after.as_millis())
                            .unwrap_or(u64::MAX)
                            .into(),
                    ),
            );
            self.record(&event).await;
        }
    }

    async fn record(&self, event: &AuditEvent) {
        if let Err(error) = self.audit.record(event).await {
            tracing::warn!(
                action = %event.action,
                error = %error.log_chain(),
                "failed-authentication audit event not recorded"
            );
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<FailureSubject, Entry>> {
        // Plain counters: recover from poisoning rather than fail every login.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for FailedAuthTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailedAuthTracker")
            .field("config", &self.config)
            .field("tracked", &self.tracked())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_slash_24_and_slash_64() {
        let [_, net] = FailureSubject::for_client("192.0.2.77".parse().expect("ip"));
        assert_eq!(
            net,
            FailureSubject::Network("192.0.2.0".parse().expect("ip"))
        );
        let [_, net] = FailureSubject::for_client("2001:db8:1:2:3:4:5:6".parse().expect("ip"));
        assert_eq!(
            net,
            FailureSubject::Network("2001:db8:1:2::".parse().expect("ip"))
        );
        let [addr, _] = FailureSubject::for_client("::ffff:192.0.2.1".parse().expect("ip"));
        assert_eq!(
            addr,
            FailureSubject::ClientAddr("192.0.2.1".parse().expect("ip"))
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let policy = BackoffPolicy::new(2, 1000, 10);
        let delays: Vec<u64> = (1..=8).map(|n| policy.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [0, 0, 1, 2, 4, 8, 10, 10]);
        assert_eq!(policy.delay_after(u32::MAX), Duration::from_secs(10));
    }
}
