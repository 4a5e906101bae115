//! API key verification and the auth layer, each against its baseline.
//!
//! - `api_key_verify`: [`ApiKeyService::verify`] on a warm cache (parse,
//!   CRC32, cache lookup, HMAC-SHA-256 with the pepper's precomputed pads,
//!   constant-time compare, expiry, last-used note) against a bare
//!   HMAC-SHA-256 of the key (key schedule included, as a naive
//!   implementation would do per request).
//! - `auth_layer`: one request through `AuthLayer` (API key header,
//!   failure tracker on) against the same inner service with no layer.
//! - `password_policy`: [`PasswordPolicy::check`] of a listed password
//!   (disguised by case and spaces), a passphrase that is not listed, and a
//!   1024-byte password, against the bare character count every policy does
//!   anyway. The list is parsed before measuring.
//!
//! Run with `cargo bench -p docaiche-auth --bench keys`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use docaiche_auth::api_key::{ApiKeyService, NewApiKey, Peppers};
use docaiche_auth::layer::AuthLayer;
use docaiche_auth::lockout::{FailedAuthTracker, LockoutConfig};
use docaiche_auth::password::PasswordPolicy;
use docaiche_auth::password::policy::common_password_count;
use docaiche_core::{
    AuthMethod, Permission, Principal, PrincipalId, SecretBytes, SecretString, TenantId,
};
use docaiche_store::memory::{MemoryApiKeyStore, MemoryAuditSink};
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, Response};
use sha2::Sha256;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

const PEPPER: [u8; 32] = [7; 32];

fn setup(rt: &tokio::runtime::Runtime) -> (Arc<ApiKeyService>, String) {
    let peppers = Peppers::new(1, [(1, SecretBytes::new(PEPPER.to_vec()))]).unwrap();
    let keys = Arc::new(ApiKeyService::new(
        Arc::new(MemoryApiKeyStore::new()),
        peppers,
    ));
    let acme = TenantId::new("acme").unwrap();
    let admin = Principal::new(
        PrincipalId::new("alice").unwrap(),
        acme.clone(),
        AuthMethod::Password,
    )
    .with_permissions(
        [Permission::KEYS_MANAGE, Permission::DOCUMENTS_READ]
            .into_iter()
            .collect(),
    );
    let scopes = [Permission::DOCUMENTS_READ].into_iter().collect();
    let key = rt
        .block_on(keys.create(&admin, NewApiKey::new(acme, "bench").with_scopes(scopes)))
        .unwrap()
        .key
        .expose_secret()
        .clone();
    rt.block_on(keys.verify(&key)).unwrap(); // warm the cache
    (keys, key)
}

fn api_key_verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (keys, key) = setup(&rt);
    let mut group = c.benchmark_group("api_key_verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline_bare_hmac_sha256", |b| {
        b.iter(|| {
            let mut mac = Hmac::<Sha256>::new_from_slice(black_box(&PEPPER)).unwrap();
            mac.update(black_box(key.as_bytes()));
            black_box(mac.finalize())
        });
    });
    group.bench_function("service_verify_warm_cache", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(keys.verify(black_box(&key)).await.unwrap()) });
    });
    group.finish();
}

fn request(key: &str) -> Request<String> {
    let mut request = Request::builder()
        .uri("/documents")
        .header("x-api-key", key)
        .body(String::new())
        .unwrap();
    request
        .extensions_mut()
        .insert(SocketAddr::from(([192, 0, 2, 7], 40_000)));
    request
}

async fn handler(_: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(Response::new(String::from("ok")))
}

fn auth_layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (keys, key) = setup(&rt);
    let tracker = Arc::new(
        FailedAuthTracker::new(LockoutConfig::default(), Arc::new(MemoryAuditSink::new())).unwrap(),
    );
    let bare = service_fn(handler);
    let layered = ServiceBuilder::new()
        .layer(AuthLayer::new(keys).with_failure_tracker(tracker))
        .service(service_fn(handler));

    let mut group = c.benchmark_group("auth_layer");
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline_no_layer", |b| {
        b.to_async(&rt).iter(|| {
            let mut service = bare;
            let request = request(&key);
            async move {
                let response = service.ready().await.unwrap().call(request).await.unwrap();
                black_box(response)
            }
        });
    });
    group.bench_function("auth_layer_api_key", |b| {
        b.to_async(&rt).iter(|| {
            let mut service = layered.clone();
            let request = request(&key);
            async move {
                let response = service.ready().await.unwrap().call(request).await.unwrap();
                assert_eq!(response.status(), 200);
                black_box(response)
            }
        });
    });
    group.finish();
}

fn password_policy(c: &mut Criterion) {
    let policy = PasswordPolicy::default();
    assert!(
        common_password_count() > 0,
        "parse the list before measuring"
    );
    let mut group = c.benchmark_group("password_policy");
    group.throughput(Throughput::Elements(1));
    for (name, password) in [
        ("listed_disguised", "Password 1234".to_owned()),
        ("passphrase", "vivid otter lantern quarry".to_owned()),
        ("max_bytes", "x".repeat(1024)),
    ] {
        let password = SecretString::from(password);
        group.bench_function(format!("baseline_char_count/{name}"), |b| {
            b.iter(|| black_box(black_box(password.expose_secret()).chars().count()));
        });
        group.bench_function(format!("check/{name}"), |b| {
            b.iter(|| black_box(policy.check(black_box(&password))));
        });
    }
    group.finish();
}

criterion_group!(benches, api_key_verify, auth_layer, password_policy);
criterion_main!(benches);
