//! The backend conformance suite: one async function per `docaiche-core`
//! trait that runs the trait's whole written contract against any
//! implementation, ours or yours.
//!
//! Each `run_*` function takes the backend as an `Arc<dyn Trait>` and a
//! [`Harness`], runs every case, and panics on the first broken promise with
//! a message naming the trait and the case, like an `assert!`:
//!
//! ```text
//! conformance ApiKeyStore / tenant_isolation: get from another tenant must be None
//! ```
//!
//! | function | trait |
//! |---|---|
//! | [`run_account_store`] | [`AccountStore`](docaiche_core::AccountStore) |
//! | [`run_custom_role_store`] | [`CustomRoleStore`](docaiche_core::CustomRoleStore) |
//! | [`run_mfa_store`] | [`MfaStore`](docaiche_core::MfaStore) |
//! | [`run_api_key_store`] | [`ApiKeyStore`](docaiche_core::ApiKeyStore) |
//! | [`run_revocation_store`] | [`TokenRevocationStore`](docaiche_core::TokenRevocationStore) |
//! | [`run_document_store`] | [`DocumentStore`](docaiche_core::DocumentStore) |
//! | [`run_cache_store`] | [`CacheStore`](docaiche_core::CacheStore) |
//! | [`run_invalidation_bus`] | [`InvalidationBus`](docaiche_core::InvalidationBus) |
//! | [`run_job_queue`] | [`JobQueue`](docaiche_core::JobQueue) |
//! | [`run_audit_sink`], [`run_audit_sink_with_read_back`] | [`AuditSink`](docaiche_core::AuditSink) |
//! | [`run_secret_provider`] | [`SecretProvider`](docaiche_core::SecretProvider) |
//! | [`run_key_wrapper`], [`run_key_wrapper_rotation`] | [`KeyWrapper`](docaiche_core::KeyWrapper) |
//! | [`run_tenant_store`] | [`TenantStore`](docaiche_core::TenantStore) |
//! | [`run_usage_store`] | [`UsageStore`](docaiche_core::UsageStore) |
//! | [`run_web_session_store`] | [`WebSessionStore`](docaiche_core::WebSessionStore) |
//! | [`run_data_key_store`] | [`DataKeyStore`](crate::encryption::DataKeyStore) |
//!
//! ## Testing your own backend
//!
//! Add `docaiche-store = { version = "…", features = ["conformance"] }` to
//! your dev-dependencies and write one test per trait:
//!
//! ```no_run
//! use std::sync::Arc;
//! use docaiche_store::conformance::{self, Harness};
//! # use docaiche_store::memory::MemoryApiKeyStore as DynamoApiKeyStore;
//! # async fn connect() -> DynamoApiKeyStore { DynamoApiKeyStore::new() }
//!
//! #[tokio::test(flavor = "multi_thread")]
//! async fn my_dynamo_store_conforms() {
//!     let store = connect().await; // your ApiKeyStore
//!     conformance::run_api_key_store(Arc::new(store), &Harness::real_time()).await;
//! }
//! ```
//!
//! ## Shared servers and parallel runs
//!
//! Every case creates its own fresh tenants, ids, lookup ids, cache keys and
//! job kinds with a random UUID suffix, and only ever reads what it wrote,
//! so the suite runs against a shared PostgreSQL, Redis or Vault, in
//! parallel with other runs, without cleaning up first. (It does leave its
//! rows behind; point it at a test database.)
//!
//! ## Time
//!
//! Cases about expiry (cache TTLs, revocation windows, job leases and retry
//! delays) need time to pass. Pick one:
//!
//! - [`Harness::with_manual_clock`]: the backend was built with that
//!   [`ManualClock`], and the suite advances it. Instant and exact (memory
//!   backends, or any backend that reads time through a `Clock`).
//! - [`Harness::real_time`]: the backend uses real time (a database or Redis
//!   server's clock); the suite waits, at most about 2 s per case, with
//!   1-second TTLs and leases.
//! - [`Harness::without_time`]: skip the time-dependent cases.
//!
//! ## Concurrency
//!
//! The concurrency cases spawn tasks with `tokio::spawn`, so run the suite in
//! a tokio runtime; a multi-threaded one (`flavor = "multi_thread"`) makes
//! those cases meaningful.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use docaiche_core::{Clock, Error, ErrorCode, ManualClock, TenantId};
use time::OffsetDateTime;

mod account;
mod api_key;
mod audit;
mod cache;
mod custom_role;
mod data_keys;
mod document;
mod invalidation;
mod job;
mod key_wrapper;
mod mfa;
mod revocation;
mod secret;
mod tenant;
mod usage;
mod web_session;

pub use account::run_account_store;
pub use api_key::run_api_key_store;
pub use audit::{AuditReadBack, run_audit_sink, run_audit_sink_with_read_back};
pub use cache::run_cache_store;
pub use custom_role::run_custom_role_store;
pub use data_keys::run_data_key_store;
pub use document::run_document_store;
pub use invalidation::run_invalidation_bus;
pub use job::run_job_queue;
pub use key_wrapper::{KeyRotation, run_key_wrapper, run_key_wrapper_rotation};
pub use mfa::run_mfa_store;
pub use revocation::run_revocation_store;
pub use secret::run_secret_provider;
pub use tenant::run_tenant_store;
pub use usage::run_usage_store;
pub use web_session::run_web_session_store;

/// Strings that break naive SQL, shell, JSON, path or key handling. Every
/// stored string field of every trait must give them back unchanged.
/// (`NUL` is added by [`Harness::hostile_strings`] unless disabled.)
pub const HOSTILE_STRINGS: &[&str] = &[
    "'; DROP TABLE api_keys; --",
    "\" OR \"1\"=\"1",
    "/* comment */ SELECT 1",
    "-- trailing comment",
    "back\\slash \\x00 \\n",
    "%_ LIKE wildcards %",
    "$1 ? :name @p0",
    "{\"json\": [true, null]}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "ünïcödé ẞ ℌ Ω 中文 العربية",
    "emoji 🔐🦀👩‍👩‍👧",
    "bidi \u{202e}override\u{202c} zero\u{200b}width",
    "line\nbreak\r\ttab",
    "  surrounding spaces  ",
    "",
];

/// How the suite makes time pass for expiry cases.
#[derive(Clone)]
enum Time {
    Manual(ManualClock),
    Real(docaiche_core::SystemClock),
    Untimed(docaiche_core::SystemClock),
}

/// How the suite drives a backend: who controls time, and which inputs the
/// backend's storage can represent.
#[derive(Clone)]
pub struct Harness {
    time: Time,
    nul_in_strings: bool,
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = match &self.time {
            Time::Manual(_) => "manual clock",
            Time::Real(_) => "real time",
            Time::Untimed(_) => "time-dependent cases skipped",
        };
        f.debug_struct("Harness")
            .field("time", &time)
            .field("nul_in_strings", &self.nul_in_strings)
            .finish()
    }
}

impl Harness {
    /// The backend reads time from `clock` (a clone of it); the suite
    /// advances it.
    #[must_use]
    pub fn with_manual_clock(clock: ManualClock) -> Self {
        Self {
            time: Time::Manual(clock),
            nul_in_strings: true,
        }
    }

    /// The backend uses real time; expiry cases wait (at most about 2 s each).
    #[must_use]
    pub fn real_time() -> Self {
        Self {
            time: Time::Real(docaiche_core::SystemClock::new()),
            nul_in_strings: true,
        }
    }

    /// Skip every case that needs time to pass.
    #[must_use]
    pub fn without_time() -> Self {
        Self {
            time: Time::Untimed(docaiche_core::SystemClock::new()),
            nul_in_strings: true,
        }
    }

    /// Leave `NUL` out of the hostile strings, for backends whose text type
    /// cannot hold it (PostgreSQL `text`). Such a backend must still refuse
    /// `NUL` with an error rather than truncate; that is not checked here.
    #[must_use]
    pub fn without_nul_in_strings(mut self) -> Self {
        self.nul_in_strings = false;
        self
    }

    /// The current time, as the backend sees it.
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        match &self.time {
            Time::Manual(clock) => clock.now(),
            Time::Real(clock) | Time::Untimed(clock) => clock.now(),
        }
    }

    /// [`Harness::now`] truncated to whole seconds, so it survives storage
    /// with coarser timestamps unchanged.
    #[must_use]
    pub fn now_seconds(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.now().unix_timestamp())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// A fresh tenant no other run uses.
    #[must_use]
    pub fn tenant(&self) -> TenantId {
        TenantId::new(format!("conformance-{}", uuid::Uuid::new_v4().simple()))
            .unwrap_or_else(|e| panic!("conformance harness: tenant id: {e}"))
    }

    /// A fresh string `<label>-<uuid>` no other run uses.
    #[must_use]
    pub fn unique(&self, label: &str) -> String {
        format!("{label}-{}", uuid::Uuid::new_v4().simple())
    }

    /// The hostile strings this backend must round-trip.
    #[must_use]
    pub fn hostile_strings(&self) -> Vec<String> {
        let mut all: Vec<String> = HOSTILE_STRINGS.iter().map(|s| (*s).to_owned()).collect();
        if self.nul_in_strings {
            all.push("nul \0 inside".to_owned());
        }
        all
    }

    /// Whether expiry cases run.
    #[must_use]
    pub fn can_pass_time(&self) -> bool {
        !matches!(self.time, Time::Untimed(_))
    }

    /// Let `duration` pass: advance the manual clock or wait.
    async fn pass(&self, duration: Duration) {
        match &self.time {
            Time::Manual(clock) => clock.advance(duration),
            Time::Real(clock) => clock.sleep(duration).await,
            Time::Untimed(_) => {}
        }
    }

    /// Whether time is a manual clock (exact boundaries can be checked).
    fn is_manual(&self) -> bool {
        matches!(self.time, Time::Manual(_))
    }
}

/// One named case of one trait's suite: every check panics naming both.
#[derive(Debug, Clone, Copy)]
struct Case {
    suite: &'static str,
    name: &'static str,
}

impl Case {
    const fn new(suite: &'static str, name: &'static str) -> Self {
        Self { suite, name }
    }

    #[track_caller]
    fn fail(self, message: impl fmt::Display) -> ! {
        panic!("conformance {} / {}: {message}", self.suite, self.name)
    }

    /// The value, or a failure naming the call.
    #[track_caller]
    fn ok<T>(self, result: Result<T, Error>, what: &str) -> T {
        match result {
            Ok(value) => value,
            Err(e) => self.fail(format_args!("{what} failed: {}", e.log_chain())),
        }
    }

    /// Require `result` to be an error with `code`.
    #[track_caller]
    fn err<T: fmt::Debug>(self, result: Result<T, Error>, code: ErrorCode, what: &str) -> Error {
        match result {
            Err(e) if e.code() == code => e,
            Err(e) => self.fail(format_args!(
                "{what}: expected {code}, got {}",
                e.log_chain()
            )),
            Ok(v) => self.fail(format_args!("{what}: expected {code}, got Ok({v:?})")),
        }
    }

    #[track_caller]
    fn check(self, condition: bool, message: impl fmt::Display) {
        if !condition {
            self.fail(message);
        }
    }

    #[track_caller]
    fn eq<T: PartialEq + fmt::Debug>(self, actual: &T, expected: &T, what: &str) {
        if actual != expected {
            self.fail(format_args!(
                "{what}: expected {expected:?}, got {actual:?}"
            ));
        }
    }
}

/// Run `n` copies of a task concurrently (spawned, so a multi-threaded
/// runtime runs them in parallel) and collect their outputs in spawn order.
async fn concurrently<F, Fut, T>(case: Case, n: usize, task: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let run = task(i);
            tokio::spawn(async move {
                barrier.wait().await;
                run.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for handle in handles {
        match handle.await {
            Ok(value) => out.push(value),
            Err(e) => case.fail(format_args!("a concurrent task panicked: {e}")),
        }
    }
    out
}

/// Walk every page of a listing, failing if it does not terminate.
async fn walk<T, F, Fut>(case: Case, limit: u32, mut fetch: F) -> Vec<T>
where
    F: FnMut(docaiche_core::page::PageRequest) -> Fut,
    Fut: Future<Output = Result<docaiche_core::page::Page<T>, Error>>,
{
    let mut all = Vec::new();
    let mut after = None;
    for _ in 0..1000 {
        let request = case.ok(
            docaiche_core::page::PageRequest::new(after, limit),
            "page request",
        );
        let page = case.ok(fetch(request).await, "list");
        case.check(
            page.items.len() <= usize::try_from(limit).unwrap_or(usize::MAX),
            "a page must hold at most `limit` items",
        );
        let done = page.next.is_none();
        all.extend(page.items);
        if done {
            return all;
        }
        after = page.next;
    }
    case.fail("walking the pages did not terminate")
}

/// A cursor no store issues.
const BOGUS_CURSOR: &str = "!!not a cursor!! ' OR 1=1 --";
