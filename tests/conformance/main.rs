//! The backend conformance suite, run against every in-memory reference
//! backend (each on a `ManualClock`, so expiry cases are instant and exact).
//!
//! Adapters for PostgreSQL, Redis and Vault run the same `run_*` functions
//! from `tests/backends` against real servers.

use std::sync::Arc;

use docaiche_core::secret_provider::{SecretProvider, SecretValue};
use docaiche_core::{Error, ErrorCode, ManualClock, SecretBytes, SecretString};
use docaiche_store::LocalKeyWrapper;
use docaiche_store::conformance::{self, Harness};
use docaiche_store::memory::{
    MemoryAccountStore, MemoryApiKeyStore, MemoryAuditSink, MemoryCacheStore,
    MemoryCustomRoleStore, MemoryDocumentStore, MemoryJobQueue, MemoryMfaStore,
    MemoryRevocationStore, MemoryTenantStore, MemoryWebSessionStore,
};
use docaiche_store::secret::{
    EnvSecretProvider, FileSecretProvider, MemorySecretProvider, SecretChain,
};

fn manual() -> (ManualClock, Harness) {
    let clock = ManualClock::new();
    (clock.clone(), Harness::with_manual_clock(clock))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_api_key_store_conforms() {
    let (_, harness) = manual();
    conformance::run_api_key_store(Arc::new(MemoryApiKeyStore::new()), &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_account_store_conforms() {
    let (_, harness) = manual();
    conformance::run_account_store(Arc::new(MemoryAccountStore::new()), &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_custom_role_store_conforms() {
    let (_, harness) = manual();
    conformance::run_custom_role_store(Arc::new(MemoryCustomRoleStore::new()), &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_mfa_store_conforms() {
    let (_, harness) = manual();
    conformance::run_mfa_store(Arc::new(MemoryMfaStore::new()), &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_web_session_store_conforms() {
    let (_, harness) = manual();
    conformance::run_web_session_store(Arc::new(MemoryWebSessionStore::new()), &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_tenant_store_conforms() {
    let (_, harness) = manual();
    conformance::run_tenant_store(Arc::new(MemoryTenantStore::new()), &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_revocation_store_conforms() {
    let (clock, harness) = manual();
    let store = MemoryRevocationStore::new().with_clock(Arc::new(clock));
    conformance::run_revocation_store(Arc::new(store), &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_document_store_conforms() {
    let (clock, harness) = manual();
    let store = MemoryDocumentStore::new().with_clock(Arc::new(clock));
    conformance::run_document_store(Arc::new(store), &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_invalidation_bus_conforms() {
    let (_, harness) = manual();
    let bus = docaiche_core::invalidation::LocalInvalidationBus::new();
    conformance::run_invalidation_bus(Arc::new(bus), &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_cache_store_conforms() {
    let (clock, harness) = manual();
    let store = MemoryCacheStore::new().with_clock(Arc::new(clock));
    conformance::run_cache_store(Arc::new(store), &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_job_queue_conforms() {
    let (clock, harness) = manual();
    let queue = MemoryJobQueue::new().with_clock(Arc::new(clock));
    conformance::run_job_queue(Arc::new(queue), &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_audit_sink_conforms() {
    let (_, harness) = manual();
    let sink = Arc::new(MemoryAuditSink::new());
    conformance::run_audit_sink_with_read_back(sink.clone(), &*sink, &harness).await;
    conformance::run_audit_sink(sink, &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_data_key_store_conforms() {
    let (_, harness) = manual();
    let store = docaiche_store::encryption::MemoryDataKeyStore::new();
    conformance::run_data_key_store(Arc::new(store), &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_key_wrapper_conforms() {
    let (_, harness) = manual();
    conformance::run_key_wrapper(Arc::new(LocalKeyWrapper::generate()), &harness).await;
    let wrapper = Arc::new(LocalKeyWrapper::generate().with_kek_id("documents"));
    conformance::run_key_wrapper_rotation(wrapper.clone(), &*wrapper, &harness).await;
    // Still conforming after rotation and retirement of version 1.
    conformance::run_key_wrapper(wrapper, &harness).await;
}

const KNOWN: &[(&str, &[u8])] = &[
    ("jwt/signing-key", b"correct horse battery staple"),
    ("api-key/pepper", b"pepper \x00\xff\x01 bytes"),
    ("db.password", b"p@ss'; DROP TABLE--"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_secret_provider_conforms() {
    let (_, harness) = manual();
    let provider = MemorySecretProvider::new();
    for (name, value) in KNOWN {
        provider
            .insert(name, SecretBytes::from(value.to_vec()))
            .expect("valid secret name");
    }
    conformance::run_secret_provider(Arc::new(provider), KNOWN, &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn env_secret_provider_conforms() {
    let (_, harness) = manual();
    let vars = KNOWN.iter().filter_map(|(name, value)| {
        // Environment variables hold text: only the UTF-8 values apply.
        let text = String::from_utf8(value.to_vec()).ok()?;
        let var = EnvSecretProvider::new()
            .variable_name(name)
            .expect("valid secret name");
        Some((var, SecretString::from(text)))
    });
    let provider = EnvSecretProvider::from_vars(vars);
    let known: Vec<(&str, &[u8])> = KNOWN
        .iter()
        .copied()
        .filter(|(_, v)| std::str::from_utf8(v).is_ok())
        .collect();
    conformance::run_secret_provider(Arc::new(provider), &known, &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_secret_provider_conforms() {
    let (_, harness) = manual();
    let dir = TempDir::new();
    for (name, value) in KNOWN {
        let path = dir.0.join(name);
        std::fs::create_dir_all(path.parent().expect("a file path has a parent"))
            .expect("create secret dir");
        std::fs::write(&path, value).expect("write secret file");
    }
    let provider = FileSecretProvider::new(&dir.0).expect("the temporary directory exists");
    conformance::run_secret_provider(Arc::new(provider), KNOWN, &harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secret_chain_conforms() {
    let (_, harness) = manual();
    let first = MemorySecretProvider::new();
    let second = MemorySecretProvider::new();
    for (i, (name, value)) in KNOWN.iter().enumerate() {
        let target = if i % 2 == 0 { &first } else { &second };
        target
            .insert(name, SecretBytes::from(value.to_vec()))
            .expect("valid secret name");
    }
    let chain = SecretChain::new(vec![Arc::new(first), Arc::new(second)]);
    conformance::run_secret_provider(Arc::new(chain), KNOWN, &harness).await;
}

/// A provider that is down.
#[derive(Debug)]
struct Down;

#[async_trait::async_trait]
impl SecretProvider for Down {
    fn describe(&self) -> String {
        "down".to_owned()
    }

    async fn get(&self, _name: &str) -> docaiche_core::Result<Option<SecretValue>> {
        Err(Error::unavailable(
            "vault",
            std::io::Error::other("connection refused"),
        ))
    }
}

#[tokio::test]
async fn secret_chain_first_some_wins_and_an_error_stops_it() {
    let primary = MemorySecretProvider::new()
        .with_secret("jwt/signing-key", SecretBytes::from(b"primary".to_vec()))
        .expect("valid name");
    let fallback = MemorySecretProvider::new()
        .with_secret("jwt/signing-key", SecretBytes::from(b"fallback".to_vec()))
        .expect("valid name")
        .with_secret("only/fallback", SecretBytes::from(b"fb".to_vec()))
        .expect("valid name");
    let primary: Arc<dyn SecretProvider> = Arc::new(primary);
    let fallback: Arc<dyn SecretProvider> = Arc::new(fallback);

    let chain = SecretChain::new(vec![primary.clone(), fallback.clone()]);
    let got = chain
        .get("jwt/signing-key")
        .await
        .expect("chain answers")
        .expect("present");
    assert_eq!(
        got.value.expose_secret(),
        b"primary",
        "the first provider with Some wins"
    );
    let got = chain
        .get("only/fallback")
        .await
        .expect("chain answers")
        .expect("present");
    assert_eq!(
        got.value.expose_secret(),
        b"fb",
        "a None falls through to the next provider"
    );
    assert!(chain.get("nowhere").await.expect("chain answers").is_none());
    assert_eq!(chain.describe(), "chain(memory, memory)");

    // A provider that is down stops the chain: never fall back to a weaker secret.
    let chain = SecretChain::new(vec![Arc::new(Down), fallback.clone()]);
    let err = chain
        .get("jwt/signing-key")
        .await
        .expect_err("the outage propagates");
    assert_eq!(err.code(), ErrorCode::Unavailable);
    // ...even when an earlier provider answered None for that name.
    let chain = SecretChain::new(vec![primary, Arc::new(Down), fallback]);
    let err = chain
        .get("only/fallback")
        .await
        .expect_err("the outage propagates");
    assert_eq!(err.code(), ErrorCode::Unavailable);
    let got = chain
        .get("jwt/signing-key")
        .await
        .expect("answered before the broken provider");
    assert!(got.is_some());
}

/// A temporary directory removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        let path =
            std::env::temp_dir().join(Harness::without_time().unique("docaiche-conformance"));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path an integrator with a real server takes: real time, short waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_backends_conform_in_real_time() {
    let harness = Harness::real_time();
    tokio::join!(
        conformance::run_revocation_store(Arc::new(MemoryRevocationStore::new()), &harness),
        conformance::run_cache_store(Arc::new(MemoryCacheStore::new()), &harness),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_job_queue_conforms_in_real_time() {
    conformance::run_job_queue(Arc::new(MemoryJobQueue::new()), &Harness::real_time()).await;
}
