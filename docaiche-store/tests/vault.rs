//! The Vault adapters against a real OpenBao server on loopback (suite
//! `vault-store`).
//!
//! `DOCAICHE_TEST_VAULT_ADDR` and `DOCAICHE_TEST_VAULT_TOKEN` (the root token
//! of a `bao server -dev`) name the server; `./scripts/test.sh` starts one and
//! sets them. A missing server skips loudly, or fails under `CI=true` /
//! `DOCAICHE_REQUIRE_BACKENDS=1` (see `report`). Every test uses its own KV
//! prefix, Transit key, policy and AppRole role, so the tests run in parallel
//! on one server. The sealed-server test starts (and seals) a dev server of
//! its own, with the `bao` binary on `PATH` (or `DOCAICHE_TEST_BAO_BIN`);
//! the shared server is never sealed.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/backends/report.rs"]
mod report;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use docaiche_core::health::{HealthCheck, HealthStatus};
use docaiche_core::key_wrapper::KeyWrapper;
use docaiche_core::resilience::{CircuitBreaker, CircuitState};
use docaiche_core::secret_provider::SecretProvider;
use docaiche_core::{Error, ErrorCode, ManualClock, Result};
use docaiche_store::conformance::{self, Harness};
use docaiche_store::vault::{
    TransitKeyWrapper, VaultAuth, VaultClient, VaultConfig, VaultSecretProvider,
};
use serde_json::json;

const SUITE: &str = "vault-store";
const ADDR_VAR: &str = "DOCAICHE_TEST_VAULT_ADDR";
const TOKEN_VAR: &str = "DOCAICHE_TEST_VAULT_TOKEN";

// --- helpers ------------------------------------------------------------------

/// The shared server: address and root token, or `None` (reported skipped).
fn server() -> Option<Server> {
    let addr = report::require_backend(SUITE, ADDR_VAR)?;
    let root = report::require_backend(SUITE, TOKEN_VAR)?;
    Some(Server { addr, root })
}

struct Server {
    addr: String,
    root: String,
}

impl Server {
    fn config(&self) -> VaultConfig {
        VaultConfig::new(&self.addr, VaultAuth::token(self.root.as_str().into()))
    }

    fn root(&self) -> VaultClient {
        VaultClient::new(self.config()).unwrap()
    }

    fn ran(&self, what: &str) {
        report::mark_ran(SUITE, &format!("OpenBao at {} ({what})", self.addr));
    }
}

fn unique(label: &str) -> String {
    format!("{label}-{}", uuid::Uuid::new_v4().simple())
}

fn code<T: std::fmt::Debug>(result: Result<T>) -> ErrorCode {
    result.unwrap_err().code()
}

/// Enable a secrets engine or auth method, tolerating "already enabled".
async fn enable(root: &VaultClient, path: &str, body: serde_json::Value) {
    match root.write_json(path, &body).await {
        Ok(_) => {}
        Err(e) if e.log_chain().contains("already in use") => {}
        Err(e) => panic!("enabling {path}: {}", e.log_chain()),
    }
}

async fn enable_transit(root: &VaultClient) {
    enable(root, "sys/mounts/transit", json!({"type": "transit"})).await;
}

async fn enable_approle(root: &VaultClient) {
    enable(root, "sys/auth/approle", json!({"type": "approle"})).await;
}

/// Write a KV v2 secret (retrying while a fresh mount finishes its upgrade);
/// returns its version.
async fn kv_put(root: &VaultClient, mount: &str, path: &str, fields: serde_json::Value) -> u64 {
    let started = Instant::now();
    loop {
        match root
            .write_json(&format!("{mount}/data/{path}"), &json!({ "data": fields }))
            .await
        {
            Ok(Some(answer)) => return answer["data"]["version"].as_u64().unwrap(),
            Ok(None) => panic!("kv write answered without a version"),
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("kv write {path}: {}", e.log_chain()),
        }
    }
}

/// A policy allowing `read` on `<mount>/data/<prefix>/*`.
async fn read_policy(root: &VaultClient, mount: &str, prefix: &str) -> String {
    let name = unique("docaiche-read");
    let policy = format!(r#"path "{mount}/data/{prefix}/*" {{ capabilities = ["read"] }}"#);
    root.write_json(
        &format!("sys/policies/acl/{name}"),
        &json!({ "policy": policy }),
    )
    .await
    .unwrap();
    name
}

fn provider(config: VaultConfig) -> VaultSecretProvider {
    VaultSecretProvider::new(VaultClient::new(config).unwrap())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// --- KV v2 --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_reads_the_latest_and_a_specific_version() {
    let Some(server) = server() else { return };
    let root = server.root();
    let prefix = unique("kv-versions");
    assert_eq!(
        kv_put(
            &root,
            "secret",
            &format!("{prefix}/db/password"),
            json!({"value": "alpha-value-1"})
        )
        .await,
        1
    );
    assert_eq!(
        kv_put(
            &root,
            "secret",
            &format!("{prefix}/db/password"),
            json!({"value": "bravo-value-2", "note": 7})
        )
        .await,
        2
    );
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/no-field"),
        json!({"other": "x"}),
    )
    .await;
    let kv = provider(
        server
            .config()
            .with_kv_prefix(&prefix)
            .with_cache_ttl(Duration::ZERO),
    );

    let latest = kv.get("db/password").await.unwrap().unwrap();
    assert_eq!(latest.value.expose_secret(), b"bravo-value-2");
    assert_eq!(latest.version, Some(2));
    let first = kv.get_version("db/password", 1).await.unwrap().unwrap();
    assert_eq!(first.value.expose_secret(), b"alpha-value-1");
    assert_eq!(first.version, Some(1));
    assert!(kv.get_version("db/password", 99).await.unwrap().is_none());
    assert_eq!(
        code(kv.get_version("db/password", 0).await),
        ErrorCode::InvalidInput
    );
    assert!(kv.get("db/absent").await.unwrap().is_none());
    assert_eq!(code(kv.get("../sys/seal").await), ErrorCode::InvalidInput);
    // Present but without the configured field: an error, not a fall-through.
    let err = kv.get("no-field").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(err.to_string().contains("no string field `value`"), "{err}");

    // A deleted version reads as absent.
    root.write_json(
        &format!("secret/delete/{prefix}/db/password"),
        &json!({"versions": [1]}),
    )
    .await
    .unwrap();
    assert!(kv.get_version("db/password", 1).await.unwrap().is_none());
    assert!(kv.get("db/password").await.unwrap().is_some());
    server.ran("kv versions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_cache_serves_the_old_value_until_its_ttl_then_refreshes() {
    let Some(server) = server() else { return };
    let root = server.root();
    let prefix = unique("kv-cache");
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/api/pepper"),
        json!({"value": "old-pepper"}),
    )
    .await;
    let clock = ManualClock::new();
    let client = VaultClient::with_clock(
        server
            .config()
            .with_kv_prefix(&prefix)
            .with_cache_ttl(Duration::from_secs(60)),
        Arc::new(clock.clone()),
    )
    .unwrap();
    let kv = VaultSecretProvider::new(client.clone());

    let first = kv.get("api/pepper").await.unwrap().unwrap();
    assert_eq!(first.value.expose_secret(), b"old-pepper");
    let after_first = client.stats().requests;

    kv_put(
        &root,
        "secret",
        &format!("{prefix}/api/pepper"),
        json!({"value": "new-pepper"}),
    )
    .await;
    clock.advance(Duration::from_secs(59));
    for _ in 0..5 {
        let cached = kv.get("api/pepper").await.unwrap().unwrap();
        assert_eq!(
            cached.value.expose_secret(),
            b"old-pepper",
            "served from the cache"
        );
    }
    assert_eq!(
        client.stats().requests,
        after_first,
        "cache hits send nothing"
    );

    clock.advance(Duration::from_secs(1));
    let refreshed = kv.get("api/pepper").await.unwrap().unwrap();
    assert_eq!(refreshed.value.expose_secret(), b"new-pepper");
    assert_eq!(refreshed.version, Some(2));
    assert_eq!(client.stats().requests, after_first + 1, "one refresh");

    kv.clear_cache();
    kv.get("api/pepper").await.unwrap();
    assert_eq!(client.stats().requests, after_first + 2);
    server.ran("kv cache");
}

#[tokio::test(flavor = "current_thread")]
async fn kv_stale_value_is_served_while_a_refresh_is_in_flight() {
    let Some(server) = server() else { return };
    let root = server.root();
    let prefix = unique("kv-stale");
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/k"),
        json!({"value": "value-one"}),
    )
    .await;
    let clock = ManualClock::new();
    let client = VaultClient::with_clock(
        server
            .config()
            .with_kv_prefix(&prefix)
            .with_cache_ttl(Duration::from_secs(10))
            .with_cache_max_stale(Duration::from_secs(30)),
        Arc::new(clock.clone()),
    )
    .unwrap();
    let kv = VaultSecretProvider::new(client.clone());
    kv.get("k").await.unwrap();
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/k"),
        json!({"value": "value-two"}),
    )
    .await;
    clock.advance(Duration::from_secs(11));
    let before = client.stats().requests;

    // `join!` polls the first read first: it starts the refresh and waits
    // on Vault; the second arrives during that refresh and is answered from
    // the cache at once.
    let (refresher, concurrent) = tokio::join!(kv.get("k"), kv.get("k"));
    assert_eq!(
        refresher.unwrap().unwrap().value.expose_secret(),
        b"value-two"
    );
    assert_eq!(
        concurrent.unwrap().unwrap().value.expose_secret(),
        b"value-one"
    );
    assert_eq!(client.stats().requests, before + 1);

    // Past TTL + max stale, nobody is served the old value.
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/k"),
        json!({"value": "value-three"}),
    )
    .await;
    clock.advance(Duration::from_secs(41));
    let (a, b) = tokio::join!(kv.get("k"), kv.get("k"));
    assert_eq!(a.unwrap().unwrap().value.expose_secret(), b"value-three");
    assert_eq!(b.unwrap().unwrap().value.expose_secret(), b"value-three");
    assert_eq!(
        client.stats().requests,
        before + 2,
        "the two shared one request"
    );
    server.ran("kv stale-while-refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_concurrent_misses_share_one_request() {
    let Some(server) = server() else { return };
    let root = server.root();
    let prefix = unique("kv-flight");
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/hot"),
        json!({"value": "hot-value"}),
    )
    .await;
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/warm"),
        json!({"value": "warm-value"}),
    )
    .await;
    let client = VaultClient::new(server.config().with_kv_prefix(&prefix)).unwrap();
    let kv = VaultSecretProvider::new(client.clone());
    kv.get("warm").await.unwrap(); // logs in first
    let before = client.stats().requests;

    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (kv, barrier) = (kv.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                kv.get("hot").await
            })
        })
        .collect();
    for task in tasks {
        let value = task.await.unwrap().unwrap().unwrap();
        assert_eq!(value.value.expose_secret(), b"hot-value");
    }
    assert_eq!(
        client.stats().requests,
        before + 1,
        "32 misses, one request"
    );
    server.ran("kv single-flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_reads_from_a_nested_mount_path() {
    let Some(server) = server() else { return };
    let root = server.root();
    let mount = format!("{}/kv", unique("team"));
    enable(
        &root,
        &format!("sys/mounts/{mount}"),
        json!({"type": "kv", "options": {"version": "2"}}),
    )
    .await;
    kv_put(
        &root,
        &mount,
        "apps/docaiche/jwt/key",
        json!({"secret": "nested-value"}),
    )
    .await;
    let kv = provider(
        server
            .config()
            .with_kv_mount(&mount)
            .with_kv_prefix("apps/docaiche")
            .with_kv_field("secret"),
    );
    let got = kv.get("jwt/key").await.unwrap().unwrap();
    assert_eq!(got.value.expose_secret(), b"nested-value");
    assert!(kv.describe().contains(&mount));
    root.write_json(&format!("sys/mounts/{mount}"), &json!({}))
        .await
        .ok();
    server.ran("kv nested mount");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_reads_inside_a_namespace() {
    let Some(server) = server() else { return };
    let root = server.root();
    let namespace = unique("ns");
    root.write_json(&format!("sys/namespaces/{namespace}"), &json!({}))
        .await
        .unwrap();
    let in_namespace = VaultClient::new(server.config().with_namespace(&namespace)).unwrap();
    enable(
        &in_namespace,
        "sys/mounts/kv",
        json!({"type": "kv", "options": {"version": "2"}}),
    )
    .await;
    kv_put(
        &in_namespace,
        "kv",
        "app/key",
        json!({"value": "namespaced-value"}),
    )
    .await;

    let kv = provider(
        server
            .config()
            .with_namespace(&namespace)
            .with_kv_mount("kv"),
    );
    let got = kv.get("app/key").await.unwrap().unwrap();
    assert_eq!(got.value.expose_secret(), b"namespaced-value");
    // A mount path where nothing is mounted: a configuration error, not an
    // absent secret (a chain must not fall through on a typo).
    let outside = provider(server.config().with_kv_mount(unique("nothing-here")));
    let err = outside.get("app/key").await.unwrap_err();
    assert!(
        matches!(&err, Error::Misconfigured { setting, .. } if setting == "vault.kv_mount"),
        "{err:?}"
    );
    server.ran("kv namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_conformance() {
    let Some(server) = server() else { return };
    let root = server.root();
    let prefix = unique("kv-conformance");
    let known: &[(&str, &[u8])] = &[
        ("jwt/signing-key", b"conformance-signing-key-0123"),
        ("api-key/pepper", b"conformance-pepper-4567"),
        ("db.password", b"p@ss w0rd \"quoted\" {json} \\ back"),
    ];
    for (name, value) in known {
        kv_put(
            &root,
            "secret",
            &format!("{prefix}/{name}"),
            json!({ "value": std::str::from_utf8(value).unwrap() }),
        )
        .await;
    }
    let kv = provider(server.config().with_kv_prefix(&prefix));
    conformance::run_secret_provider(Arc::new(kv), known, &Harness::real_time()).await;
    server.ran("SecretProvider conformance");
}

// --- authentication -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_logs_in_and_a_wrong_secret_id_is_refused() {
    let Some(server) = server() else { return };
    let root = server.root();
    enable_approle(&root).await;
    let prefix = unique("approle");
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/svc/key"),
        json!({"value": "approle-value"}),
    )
    .await;
    kv_put(
        &root,
        "secret",
        &format!("{}/forbidden", unique("other")),
        json!({"value": "x"}),
    )
    .await;
    let policy = read_policy(&root, "secret", &prefix).await;
    let role = unique("role");
    root.write_json(
        &format!("auth/approle/role/{role}"),
        &json!({"token_policies": [policy], "token_ttl": "60s", "token_max_ttl": "120s"}),
    )
    .await
    .unwrap();
    let role_id = root
        .read_json(&format!("auth/approle/role/{role}/role-id"))
        .await
        .unwrap()
        .unwrap()["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = root
        .write_json(&format!("auth/approle/role/{role}/secret-id"), &json!({}))
        .await
        .unwrap()
        .unwrap()["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let config = |secret: &str| {
        VaultConfig::new(
            &server.addr,
            VaultAuth::approle(role_id.as_str().into(), secret.into()),
        )
        .with_kv_prefix(&prefix)
    };
    let client = VaultClient::new(config(&secret_id)).unwrap();
    let kv = VaultSecretProvider::new(client.clone());
    let got = kv.get("svc/key").await.unwrap().unwrap();
    assert_eq!(got.value.expose_secret(), b"approle-value");
    assert_eq!(client.stats().logins, 1);
    assert!(!format!("{client:?} {kv:?}").contains(&secret_id));

    // The policy does not cover other paths: a clear permission error.
    let outside = VaultSecretProvider::new(
        VaultClient::new(
            VaultConfig::new(
                &server.addr,
                VaultAuth::approle(role_id.as_str().into(), secret_id.as_str().into()),
            )
            .with_kv_prefix("elsewhere"),
        )
        .unwrap(),
    );
    let err = outside.get("anything").await.unwrap_err();
    assert!(
        matches!(&err, Error::Misconfigured { setting, reason } if setting == "vault.auth" && reason.contains("permission denied")),
        "{err:?}"
    );

    // A wrong secret_id: refused, typed, and not echoed.
    let wrong = "00000000-wrong-secret-id";
    let kv = provider(config(wrong));
    let err = kv.get("svc/key").await.unwrap_err();
    assert!(
        matches!(&err, Error::Misconfigured { setting, .. } if setting == "vault.auth.secret_id"),
        "{err:?}"
    );
    assert!(!err.log_chain().contains(wrong));
    server.ran("approle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_ttl_token_is_renewed_before_it_expires() {
    let Some(server) = server() else { return };
    let root = server.root();
    let prefix = unique("renew");
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/k"),
        json!({"value": "renewed-value"}),
    )
    .await;
    let policy = read_policy(&root, "secret", &prefix).await;
    let create = || async {
        root.write_json(
            "auth/token/create",
            &json!({"policies": [policy], "ttl": "4s", "explicit_max_ttl": "120s"}),
        )
        .await
        .unwrap()
        .unwrap()["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let used = create().await;
    let unused = create().await;
    let client = VaultClient::new(
        VaultConfig::new(&server.addr, VaultAuth::token(used.as_str().into()))
            .with_kv_prefix(&prefix)
            .with_cache_ttl(Duration::ZERO),
    )
    .unwrap();
    let kv = VaultSecretProvider::new(client.clone());

    // Over twice the token's TTL.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(8500) {
        let got = kv
            .get("k")
            .await
            .unwrap_or_else(|e| panic!("read at {:?}: {}", started.elapsed(), e.log_chain()));
        assert_eq!(got.unwrap().value.expose_secret(), b"renewed-value");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(client.stats().renewals >= 2, "{:?}", client.stats());

    // The same kind of token, never renewed, has expired by now.
    let stale = provider(
        VaultConfig::new(&server.addr, VaultAuth::token(unused.as_str().into()))
            .with_kv_prefix(&prefix),
    );
    let err = stale.get("k").await.unwrap_err();
    assert!(
        matches!(&err, Error::Misconfigured { setting, .. } if setting == "vault.auth.token"),
        "{err:?}"
    );
    assert!(!err.log_chain().contains(&unused));
    server.ran("token renewal");
}

// --- Transit --------------------------------------------------------------------

async fn transit_key(server: &Server, label: &str) -> TransitKeyWrapper {
    let root = server.root();
    enable_transit(&root).await;
    let wrapper = TransitKeyWrapper::new(root, unique(label)).unwrap();
    let info = wrapper.ensure_key().await.unwrap();
    assert!(info.derived);
    assert_eq!(info.latest_version, 1);
    wrapper
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transit_wraps_rotates_retires_and_rewraps() {
    let Some(server) = server() else { return };
    let wrapper = transit_key(&server, "docs").await;
    let ctx = b"tenant=acme;purpose=documents";

    let v1 = wrapper.generate_data_key(ctx).await.unwrap();
    assert_eq!(v1.plaintext.len(), 32);
    assert_eq!(v1.wrapped.kek_id, wrapper.key_name());
    assert_eq!(v1.wrapped.kek_version, 1);
    assert!(v1.wrapped.ciphertext.starts_with(b"vault:v1:"));
    let back = wrapper.unwrap_key(&v1.wrapped, ctx).await.unwrap();
    assert!(back.eq_secret(&v1.plaintext));
    assert_eq!(
        code(wrapper.unwrap_key(&v1.wrapped, b"tenant=evil").await),
        ErrorCode::Internal
    );

    assert_eq!(wrapper.rotate().await.unwrap(), 2);
    let v2 = wrapper.generate_data_key(ctx).await.unwrap();
    assert_eq!(v2.wrapped.kek_version, 2);
    assert!(v2.wrapped.ciphertext.starts_with(b"vault:v2:"));
    let old = wrapper.unwrap_key(&v1.wrapped, ctx).await.unwrap();
    assert!(
        old.eq_secret(&v1.plaintext),
        "v1 still unwraps after rotation"
    );

    let moved = wrapper.rewrap(&v1.wrapped, ctx).await.unwrap();
    assert_eq!(moved.kek_version, 2);
    assert!(moved.ciphertext.starts_with(b"vault:v2:"));
    assert_ne!(moved.ciphertext, v1.wrapped.ciphertext);

    wrapper.set_min_decryption_version(2).await.unwrap();
    let info = wrapper.key_info().await.unwrap();
    assert_eq!((info.latest_version, info.min_decryption_version), (2, 2));
    let err = wrapper.unwrap_key(&v1.wrapped, ctx).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(
        err.to_string()
            .contains("below the transit key's minimum decryption version"),
        "{err}"
    );
    assert_eq!(
        code(wrapper.rewrap(&v1.wrapped, ctx).await),
        ErrorCode::Internal
    );
    let again = wrapper.unwrap_key(&moved, ctx).await.unwrap();
    assert!(
        again.eq_secret(&v1.plaintext),
        "the rewrapped key is the same data key"
    );
    server.ran("transit rotation");
}

/// Encryption at rest with Transit as the KEK: after a Transit rotation,
/// `rewrap_all` moves every subject key to the new version, the old version
/// can be retired, and every document stays readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_documents_stay_readable_across_a_transit_rotation_and_rewrap() {
    use bytes::Bytes;
    use docaiche_core::document::{DocumentStore, NewDocument};
    use docaiche_core::{PrincipalId, TenantId};
    use docaiche_store::encryption::{DataKeyStore, EncryptedDocumentStore, MemoryDataKeyStore};
    use docaiche_store::memory::MemoryDocumentStore;

    let Some(server) = server() else { return };
    let wrapper = Arc::new(transit_key(&server, "at-rest").await);
    let keys = Arc::new(MemoryDataKeyStore::new());
    let store = EncryptedDocumentStore::new(
        Arc::new(MemoryDocumentStore::new()),
        keys.clone(),
        wrapper.clone(),
    );
    let tenant = TenantId::new("acme").unwrap();
    let mut ids = Vec::new();
    for owner in ["alice", "bob", "carol"] {
        let document = NewDocument::new(
            PrincipalId::new(owner).unwrap(),
            "application/pdf",
            "00",
            Bytes::from(format!("{owner}'s document")),
        );
        ids.push((owner, store.put(&tenant, document).await.unwrap().id));
    }
    let before = keys.list(None, 10).await.unwrap();
    assert!(
        before
            .iter()
            .all(|k| k.wrapped.ciphertext.starts_with(b"vault:v1:"))
    );

    assert_eq!(wrapper.rotate().await.unwrap(), 2);
    let report = store.rewrap_all().await.unwrap();
    assert_eq!(report.rewrapped, 3);
    let after = keys.list(None, 10).await.unwrap();
    assert!(
        after
            .iter()
            .all(|k| k.wrapped.ciphertext.starts_with(b"vault:v2:"))
    );

    wrapper.set_min_decryption_version(2).await.unwrap();
    for (owner, id) in &ids {
        let back = store.get(&tenant, id).await.unwrap().unwrap();
        assert_eq!(back.content, Bytes::from(format!("{owner}'s document")));
    }
    // Crypto-shredding with Transit: the subject's wrapped key is gone.
    assert!(
        store
            .destroy_subject_key(&tenant, &PrincipalId::new("bob").unwrap())
            .await
            .unwrap()
    );
    assert_eq!(
        code(store.get(&tenant, &ids[1].1).await),
        ErrorCode::Internal
    );
    server.ran("encryption at rest over transit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transit_refuses_keys_that_cannot_bind_a_context() {
    let Some(server) = server() else { return };
    let root = server.root();
    enable_transit(&root).await;
    let plain = unique("not-derived");
    root.write_json(
        &format!("transit/keys/{plain}"),
        &json!({"type": "aes256-gcm96"}),
    )
    .await
    .unwrap();
    let err = TransitKeyWrapper::connect(root.clone(), plain.as_str())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Misconfigured, "{err}");
    // Vault would ignore the context for such a key: the wrapper refuses to
    // use it at all, even when built without `connect`.
    let unchecked = TransitKeyWrapper::new(root.clone(), plain).unwrap();
    let err = unchecked.generate_data_key(b"tenant=a").await.unwrap_err();
    assert!(
        matches!(&err, Error::Misconfigured { reason, .. } if reason.contains("derived=true")),
        "{err:?}"
    );
    let err = TransitKeyWrapper::connect(root.clone(), unique("missing"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Misconfigured, "{err}");
    let missing = TransitKeyWrapper::new(root, unique("missing")).unwrap();
    assert_eq!(
        code(missing.generate_data_key(b"x").await),
        ErrorCode::Misconfigured
    );
    server.ran("transit key checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transit_conformance() {
    let Some(server) = server() else { return };
    let wrapper = transit_key(&server, "conformance").await;
    conformance::run_key_wrapper(Arc::new(wrapper), &Harness::real_time()).await;
    let rotating = transit_key(&server, "conformance-rotation").await;
    conformance::run_key_wrapper_rotation(
        Arc::new(rotating.clone()),
        &rotating,
        &Harness::real_time(),
    )
    .await;
    server.ran("KeyWrapper conformance");
}

// --- outages, health, Debug -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_unavailable_within_the_timeout() {
    let Some(server) = server() else { return };
    let closed = format!("http://127.0.0.1:{}", free_port());
    let config = VaultConfig::new(&closed, VaultAuth::token("hvs.unreachable".into()))
        .with_request_timeout(Duration::from_secs(2));
    let client = VaultClient::new(config).unwrap();
    let kv = VaultSecretProvider::new(client.clone());
    let wrapper = TransitKeyWrapper::new(client.clone(), "any").unwrap();

    let started = Instant::now();
    assert_eq!(code(kv.get("jwt/key").await), ErrorCode::Unavailable);
    assert_eq!(
        code(wrapper.generate_data_key(b"ctx").await),
        ErrorCode::Unavailable
    );
    let health = client.check().await;
    assert_eq!(health.status, HealthStatus::Down);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let live = server.root().check().await;
    assert_eq!(live.status, HealthStatus::Up, "{live:?}");
    server.ran("outages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_circuit_breaker_stops_calling_a_server_that_is_down() {
    let Some(server) = server() else { return };
    let breaker = CircuitBreaker::builder("vault")
        .count_window(4)
        .minimum_calls(2)
        .wait_in_open(Duration::from_secs(60))
        .build()
        .unwrap();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let client = VaultClient::new(VaultConfig::new(&closed, VaultAuth::token("hvs.x".into())))
        .unwrap()
        .with_circuit_breaker(breaker.clone());
    let kv = VaultSecretProvider::new(client.clone());
    assert_eq!(code(kv.get("a").await), ErrorCode::Unavailable);
    assert_eq!(code(kv.get("a").await), ErrorCode::Unavailable);
    let sent = client.stats().requests;
    assert_eq!(code(kv.get("a").await), ErrorCode::CircuitOpen);
    assert_eq!(
        client.stats().requests,
        sent,
        "an open circuit sends nothing"
    );
    // The health probe still looks.
    assert_eq!(client.check().await.status, HealthStatus::Down);
    assert_eq!(client.stats().requests, sent + 1);

    // Refused wrapped keys are not outages: they never open the circuit.
    let breaker = CircuitBreaker::builder("vault")
        .count_window(4)
        .minimum_calls(2)
        .build()
        .unwrap();
    let wrapper = transit_key(&server, "breaker").await;
    let guarded = TransitKeyWrapper::new(
        server.root().with_circuit_breaker(breaker.clone()),
        wrapper.key_name(),
    )
    .unwrap();
    let key = guarded.generate_data_key(b"ctx").await.unwrap();
    for _ in 0..6 {
        assert_eq!(
            code(guarded.unwrap_key(&key.wrapped, b"other").await),
            ErrorCode::Internal
        );
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    server.ran("circuit breaker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_responses_are_refused() {
    let Some(server) = server() else { return };
    let root = server.root();
    let prefix = unique("big");
    let big = "x".repeat(8 * 1024);
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/big"),
        json!({"value": big}),
    )
    .await;
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/small"),
        json!({"value": "small"}),
    )
    .await;
    let mut config = server.config().with_kv_prefix(&prefix);
    config.max_response_bytes = 4096;
    let kv = provider(config);
    assert!(kv.get("small").await.unwrap().is_some());
    let err = kv.get("big").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(err.to_string().contains("max_response_bytes"), "{err}");
    server.ran("response cap");
}

/// An AppRole role whose tokens may read `secret/data/<prefix>/*`; its
/// role_id and a fresh secret_id.
async fn approle(
    root: &VaultClient,
    prefix: &str,
    settings: serde_json::Value,
) -> (String, String) {
    enable_approle(root).await;
    let policy = read_policy(root, "secret", prefix).await;
    let role = unique("role");
    let mut body = settings;
    body["token_policies"] = json!([policy]);
    root.write_json(&format!("auth/approle/role/{role}"), &body)
        .await
        .unwrap();
    let role_id = root
        .read_json(&format!("auth/approle/role/{role}/role-id"))
        .await
        .unwrap()
        .unwrap()["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = root
        .write_json(&format!("auth/approle/role/{role}/secret-id"), &json!({}))
        .await
        .unwrap()
        .unwrap()["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (role_id, secret_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_logs_in_again_when_vault_refuses_its_token() {
    let Some(server) = server() else { return };
    let root = server.root();
    let prefix = unique("approle-uses");
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/k"),
        json!({"value": "uses-value"}),
    )
    .await;
    // Each token is good for two requests, then Vault refuses it (403).
    let (role_id, secret_id) = approle(&root, &prefix, json!({"token_num_uses": 2})).await;
    let client = VaultClient::new(
        VaultConfig::new(
            &server.addr,
            VaultAuth::approle(role_id.as_str().into(), secret_id.as_str().into()),
        )
        .with_kv_prefix(&prefix)
        .with_cache_ttl(Duration::ZERO),
    )
    .unwrap();
    let kv = VaultSecretProvider::new(client.clone());
    for _ in 0..5 {
        let got = kv.get("k").await.unwrap().unwrap();
        assert_eq!(got.value.expose_secret(), b"uses-value");
    }
    assert_eq!(client.stats().logins, 3, "{:?}", client.stats());
    server.ran("approle re-login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_token_is_replaced_when_it_nears_its_max_ttl() {
    let Some(server) = server() else { return };
    let root = server.root();
    let prefix = unique("approle-max");
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/k"),
        json!({"value": "max-value"}),
    )
    .await;
    let (role_id, secret_id) = approle(
        &root,
        &prefix,
        json!({"token_ttl": "3s", "token_max_ttl": "4s"}),
    )
    .await;
    let client = VaultClient::new(
        VaultConfig::new(
            &server.addr,
            VaultAuth::approle(role_id.as_str().into(), secret_id.as_str().into()),
        )
        .with_kv_prefix(&prefix)
        .with_cache_ttl(Duration::ZERO),
    )
    .unwrap();
    let kv = VaultSecretProvider::new(client.clone());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        let got = kv
            .get("k")
            .await
            .unwrap_or_else(|e| panic!("read at {:?}: {}", started.elapsed(), e.log_chain()));
        assert_eq!(got.unwrap().value.expose_secret(), b"max-value");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats = client.stats();
    assert!(stats.renewals >= 1 && stats.logins >= 2, "{stats:?}");
    server.ran("approle max ttl");
}

/// A dev server of our own, killed on drop.
struct OwnServer(Child);

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_server_is_unavailable_and_down() {
    let Some(server) = server() else { return };
    let bao = std::env::var("DOCAICHE_TEST_BAO_BIN").unwrap_or_else(|_| "bao".to_owned());
    let port = free_port();
    let token = unique("root");
    let child = Command::new(&bao)
        .args([
            "server",
            "-dev",
            "-dev-no-store-token",
            &format!("-dev-listen-address=127.0.0.1:{port}"),
        ])
        .env("BAO_DEV_ROOT_TOKEN_ID", &token)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(child) => OwnServer(child),
        Err(e) => {
            let reason = format!("cannot start `{bao}` for the sealed-server test: {e}");
            assert!(!report::backends_required(), "{reason}");
            eprintln!("SKIPPED {SUITE} sealed server: {reason}");
            return;
        }
    };
    let addr = format!("http://127.0.0.1:{port}");
    let config = VaultConfig::new(&addr, VaultAuth::token(token.as_str().into()))
        .with_request_timeout(Duration::from_secs(2));
    let own = VaultClient::new(config.clone()).unwrap();
    let started = Instant::now();
    while own.check().await.status != HealthStatus::Up {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "own dev server never came up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kv_put(&own, "secret", "sealed/k", json!({"value": "before-seal"})).await;
    own.write_json("sys/seal", &json!({})).await.unwrap();

    let client = VaultClient::new(config).unwrap();
    let kv = VaultSecretProvider::new(client.clone());
    let started = Instant::now();
    let err = kv.get("sealed/k").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable, "{}", err.log_chain());
    assert!(err.is_retryable() && err.is_dependency_failure());
    let health = client.check().await;
    assert_eq!(health.status, HealthStatus::Down);
    assert_eq!(health.detail.as_deref(), Some("sealed"));
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(child);
    server.ran("sealed server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_never_shows_a_credential_or_key() {
    let Some(server) = server() else { return };
    let token = "hvs.debug-canary-token-1234";
    let config = VaultConfig::new(&server.addr, VaultAuth::token(token.into()));
    let client = VaultClient::new(config.clone()).unwrap();
    let kv = VaultSecretProvider::new(client.clone());
    let wrapper = TransitKeyWrapper::new(client.clone(), "k").unwrap();
    let approle = VaultConfig::new(
        &server.addr,
        VaultAuth::approle("role-canary-5678".into(), "secret-canary-9012".into()),
    );
    let approle_client = VaultClient::new(approle.clone()).unwrap();
    let printed = format!(
        "{config:?} {config:#?} {client:?} {client:#?} {kv:?} {kv:#?} {wrapper:?} \
         {approle:?} {approle_client:?} {approle_client:#?}"
    );
    for canary in [
        token,
        "role-canary-5678",
        "secret-canary-9012",
        &server.root,
    ] {
        assert!(!printed.contains(canary), "{canary} in {printed}");
    }
    // A refused token is not echoed by the error either.
    let err = kv.get("x").await.unwrap_err();
    assert!(!err.log_chain().contains(token) && !format!("{err:?}").contains(token));

    // Nor is a data key.
    let real = transit_key(&server, "debug").await;
    let key = real.generate_data_key(b"ctx").await.unwrap();
    let hex: String = key
        .plaintext
        .expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let printed = format!("{key:?} {real:?}");
    assert!(!printed.contains(&hex));
    server.ran("debug redaction");
}

#[path = "../../tests/common/spans.rs"]
mod spans;

#[tokio::test]
async fn kv_reads_and_transit_calls_run_in_client_spans() {
    let Some(server) = server() else { return };
    let root = server.root();
    let prefix = unique("kv-spans");
    kv_put(
        &root,
        "secret",
        &format!("{prefix}/token"),
        json!({"value": "span-value"}),
    )
    .await;
    let wrapper = transit_key(&server, "spans").await;
    let (spans, _guard) = spans::capture();

    let kv = provider(server.config().with_kv_prefix(&prefix));
    assert!(kv.get("token").await.unwrap().is_some());
    assert!(kv.get("token").await.unwrap().is_some(), "from the cache");
    let read = spans.one("get kv");
    assert_eq!(read.field("otel.kind"), Some("client"));
    assert_eq!(read.field("db.system.name"), Some("vault"));
    assert_eq!(read.field("db.collection.name"), Some("kv"));
    let unmounted = provider(server.config().with_kv_mount(unique("nowhere")));
    assert!(unmounted.get("token").await.is_err());
    assert_eq!(
        spans.named("get kv")[1].field("error.type"),
        Some("misconfigured")
    );

    let ctx = b"tenant=acme";
    let key = wrapper.generate_data_key(ctx).await.unwrap();
    wrapper.unwrap_key(&key.wrapped, ctx).await.unwrap();
    assert!(
        wrapper
            .unwrap_key(&key.wrapped, b"tenant=evil")
            .await
            .is_err()
    );
    let generated = spans.one("generate_data_key transit");
    assert_eq!(generated.field("db.system.name"), Some("vault"));
    let unwraps = spans.named("unwrap_key transit");
    assert_eq!(unwraps.len(), 2, "{:#?}", spans.all());
    assert_eq!(unwraps[0].field("error.type"), None);
    assert_eq!(unwraps[1].field("error.type"), Some("internal"));
    server.ran("kv and transit spans");
}
