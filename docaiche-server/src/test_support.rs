//! Helpers shared by the server's unit tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the directories of concurrently running tests.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temporary directory, removed on drop.
#[derive(Debug)]
pub(crate) struct TestDir(PathBuf);

impl TestDir {
    /// Create `docaiche-server-<label>-<pid>-<n>`.
    pub(crate) fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "docaiche-server-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create a test directory");
        Self(path)
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        // Best effort: a leftover temp directory is not worth a panic in drop.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The bytes of `name` from the shared PDF corpus, which lives outside
/// the repository: `$DOCAICHE_PDF_CORPUS` (holding `pdf/`), else
/// `../shared/corpus` beside the checkout, else `/work/shared/corpus` (the
/// same rule as docaiche-extract's fidelity test).
pub(crate) fn corpus_pdf(name: &str) -> Vec<u8> {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let root = std::env::var_os("DOCAICHE_PDF_CORPUS").map_or_else(
        || {
            if beside.is_dir() {
                beside
            } else {
                PathBuf::from("/work/shared/corpus")
            }
        },
        PathBuf::from,
    );
    let path = root.join("pdf").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An audit sink that refuses every write (a disk that refuses every write),
/// for the fail-closed tests.
#[derive(Debug)]
pub(crate) struct Unwritable;

#[async_trait::async_trait]
impl docaiche_core::AuditSink for Unwritable {
    async fn record(
        &self,
        _event: &docaiche_core::audit::AuditEvent,
    ) -> docaiche_core::Result<docaiche_core::audit::AuditReceipt> {
        Err(docaiche_core::Error::unavailable(
            "test audit sink",
            std::io::Error::other("read-only file system"),
        ))
    }
}

/// An API key of `tenant` holding exactly `grants`, made by an internal
/// principal `maker` (who also holds `keys:manage`); it acts as `principal`
/// when given, else as `maker`.
pub(crate) async fn api_key(
    state: &crate::state::AppState,
    tenant: &str,
    principal: Option<&str>,
    name: &str,
    grants: &[&str],
) -> String {
    use docaiche_auth::api_key::NewApiKey;
    use docaiche_core::{AuthMethod, Grant, PermissionSet, Principal, PrincipalId, TenantId};
    let tenant = TenantId::new(tenant).expect("tenant");
    let set: PermissionSet = grants
        .iter()
        .map(|g| Grant::parse(g).expect("grant"))
        .collect();
    let maker = Principal::new(
        PrincipalId::new("maker").expect("id"),
        tenant.clone(),
        AuthMethod::Internal,
    )
    .with_permissions(
        set.iter()
            .cloned()
            .chain([Grant::parse("keys:manage").expect("grant")])
            .collect(),
    );
    let mut new = NewApiKey::new(tenant, name).with_scopes(set);
    if let Some(principal) = principal {
        new = new.acting_as(PrincipalId::new(principal).expect("principal"));
    }
    let created = state.auth.api_keys.create(&maker, new).await.expect("key");
    created.key.expose_secret().to_owned()
}

/// An API key of `tenant` holding exactly `grants`, acting as `maker`.
pub(crate) async fn key_with(
    state: &crate::state::AppState,
    tenant: &str,
    grants: &[&str],
) -> String {
    api_key(state, tenant, None, "test", grants).await
}

/// Make `dispatch` this thread's default while the guard lives, with every
/// callsite's cached interest right for it: what a test that captures spans
/// or events installs its subscriber with.
///
/// `tracing` caches each callsite's interest process-wide, and while only
/// one dispatcher is registered it computes that interest from the default
/// of whichever thread reaches the callsite first (tracing-core's
/// `Rebuilder::JustOne`). Under the parallel test harness, a sibling test
/// without a subscriber reaching `request_span` first cached "never", and
/// the capturing test then saw no span at all (one CI run failed so).
/// The [`Anchor`] is a second dispatcher that lives for the whole process
/// and answers "sometimes" for every callsite, so no callsite is cached as
/// "never" and each one asks its own thread's subscriber; the rebuild after
/// installing mends a callsite cached before the anchor existed.
pub(crate) fn capture_with(dispatch: &tracing::Dispatch) -> tracing::dispatcher::DefaultGuard {
    static ANCHOR: std::sync::LazyLock<tracing::Dispatch> =
        std::sync::LazyLock::new(|| tracing::Dispatch::new(Anchor));
    std::sync::LazyLock::force(&ANCHOR);
    let guard = tracing::dispatcher::set_default(dispatch);
    tracing::callsite::rebuild_interest_cache();
    guard
}

/// A subscriber that records nothing and asks for every callsite to be
/// checked each time (see [`capture_with`]).
struct Anchor;

impl tracing::Subscriber for Anchor {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        // No hint: the process's maximum level stays at TRACE while the
        // anchor lives. A hint of OFF let a rebuild on another thread, which
        // read the list of subscribers just before a capture joined it,
        // store a maximum without the capture's level after the capture's
        // own rebuild: every span macro then returned early and a capture
        // saw nothing (a CI run lost a whole request's spans that way).
        None
    }

    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// A plain-HTTP reqwest client for tests over real sockets, its
/// connections coming from `from` when given (any 127.0.0.0/8 address is
/// another client address on Linux's loopback). reqwest is built without a
/// default TLS provider, and its builder wants one even for `http:`:
/// rustls on ring, trusting nothing.
pub(crate) fn plain_http_client(from: Option<std::net::IpAddr>) -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .local_address(from)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

mod tests {
    use super::capture_with;

    #[test]
    fn a_callsite_first_reached_without_a_subscriber_still_reaches_a_capture() {
        fn span() -> tracing::Span {
            tracing::info_span!("reached first elsewhere")
        }
        let _guard = capture_with(&tracing::Dispatch::new(tracing_subscriber::registry()));
        // Another thread, with no subscriber, registers the callsite first.
        std::thread::spawn(|| drop(span())).join().expect("thread");
        assert!(!span().is_disabled(), "the capture still sees the span");
    }
}
