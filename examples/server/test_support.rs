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
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
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
    state: &crate::app::AppState,
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
    state: &crate::app::AppState,
    tenant: &str,
    grants: &[&str],
) -> String {
    api_key(state, tenant, None, "test", grants).await
}
