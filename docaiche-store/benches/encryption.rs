//! What encryption at rest costs: 1 MiB documents `put` + `get` + `delete`
//! through each store, plain (the baseline) and wrapped in
//! `EncryptedDocumentStore` (AES-256-GCM, a per-subject data key under a
//! `LocalKeyWrapper`), in the same group. Target: ≤ 10 % on SQLite and
//! PostgreSQL. The memory pair shows the cipher's own cost against a store
//! that does almost nothing. `+encryption` keeps the data keys in memory
//! (the cipher and the key handling); `+encryption+keys` keeps them in the
//! same database as the documents, as a deployment does (one more indexed
//! read per call, the unwrap served by the key cache).
//!
//! The content is fresh random bytes for every document (made outside the
//! timing), as incompressible as a real PDF's compressed streams and as
//! unique as the ciphertext: the same pattern written again and again would
//! let a storage layer that compresses, caches or deduplicates flatter the
//! plain store.
//!
//! After the criterion group, a paired run alternates plain and encrypted
//! calls on each store (ABBA order, 120 rounds) and prints the ratio of the
//! medians: on a shared machine, load drifting between two criterion
//! benchmarks moves their ratio by more than the cost measured, and the
//! pairing cancels that drift.
//!
//! `cargo bench -p docaiche-store --features sqlite,postgres --bench encryption`
//! (PostgreSQL joins in when `DOCAICHE_TEST_POSTGRES_URL` is set, in a schema
//! of its own dropped at the end).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use docaiche_core::document::NewDocument;
use docaiche_core::{DocumentStore, PrincipalId, TenantId};
use docaiche_store::encryption::{DataKeyStore, EncryptedDocumentStore, MemoryDataKeyStore};
use docaiche_store::key_wrapper::LocalKeyWrapper;
use docaiche_store::memory::MemoryDocumentStore;
use docaiche_store::sqlite::{SqliteConfig, SqliteStore};

const SIZE: usize = 1 << 20;

fn encrypted(inner: Arc<dyn DocumentStore>) -> Arc<dyn DocumentStore> {
    encrypted_with(inner, Arc::new(MemoryDataKeyStore::new()))
}

fn encrypted_with(
    inner: Arc<dyn DocumentStore>,
    keys: Arc<dyn DataKeyStore>,
) -> Arc<dyn DocumentStore> {
    Arc::new(EncryptedDocumentStore::new(
        inner,
        keys,
        Arc::new(LocalKeyWrapper::generate()),
    ))
}

fn encryption(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sqlite_file =
        std::env::temp_dir().join(format!("docaiche-bench-enc-{}.db", uuid::Uuid::new_v4()));
    let mut stores: Vec<(&str, Arc<dyn DocumentStore>)> = Vec::new();
    let mut cleanup = None;
    runtime.block_on(async {
        let memory: Arc<dyn DocumentStore> = Arc::new(MemoryDocumentStore::new());
        stores.push(("memory", memory.clone()));
        stores.push(("memory+encryption", encrypted(memory)));
        let file = SqliteStore::connect(&SqliteConfig::file(sqlite_file.to_string_lossy()))
            .await
            .unwrap();
        let sqlite: Arc<dyn DocumentStore> = Arc::new(file.documents());
        stores.push(("sqlite_file", sqlite.clone()));
        stores.push(("sqlite_file+encryption", encrypted(sqlite.clone())));
        stores.push((
            "sqlite_file+encryption+keys",
            encrypted_with(sqlite, Arc::new(file.data_keys())),
        ));
        #[cfg(feature = "postgres")]
        if let Ok(url) = std::env::var("DOCAICHE_TEST_POSTGRES_URL")
            && !url.trim().is_empty()
        {
            let admin = sqlx::PgPool::connect(&url).await.unwrap();
            let schema = format!("docaiche_bench_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&admin)
                .await
                .unwrap();
            let mut config = docaiche_store::postgres::PgConfig::new(url);
            config.schema = Some(schema.clone());
            let store = docaiche_store::postgres::PgStore::connect(&config)
                .await
                .unwrap();
            let postgres: Arc<dyn DocumentStore> = Arc::new(store.documents());
            stores.push(("postgres", postgres.clone()));
            stores.push(("postgres+encryption", encrypted(postgres.clone())));
            stores.push((
                "postgres+encryption+keys",
                encrypted_with(postgres, Arc::new(store.data_keys())),
            ));
            cleanup = Some((admin, schema));
        }
    });

    let tenant = TenantId::new("bench").unwrap();
    let owner = PrincipalId::new("alice").unwrap();
    // New bytes for every document, outside the timing: the ciphertext is
    // new every time (fresh nonce), so writing the same plaintext again
    // would let any caching or deduplicating layer under the database
    // favour the plain store.
    let fresh = || {
        let mut random = vec![0_u8; SIZE];
        fastrand::fill(&mut random);
        Bytes::from(random)
    };
    let mut group = c.benchmark_group("document_1mib_put_get_delete");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    for (name, store) in &stores {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&runtime).iter_batched(
                || NewDocument::new(owner.clone(), "application/pdf", "00", fresh()),
                |document| {
                    let (store, tenant) = (Arc::clone(store), tenant.clone());
                    async move {
                        let meta = store.put(&tenant, document).await.unwrap();
                        let back = store.get(&tenant, &meta.id).await.unwrap().unwrap();
                        assert_eq!(back.content.len(), SIZE);
                        store.delete(&tenant, &meta.id).await.unwrap();
                    }
                },
                criterion::BatchSize::PerIteration,
            );
        });
    }
    group.finish();

    // Paired: ratio of medians, plain and encrypted alternating.
    let round = |store: &Arc<dyn DocumentStore>| {
        let document = NewDocument::new(owner.clone(), "application/pdf", "00", fresh());
        let (store, tenant) = (Arc::clone(store), tenant.clone());
        let started = Instant::now();
        runtime.block_on(async move {
            let meta = store.put(&tenant, document).await.unwrap();
            let back = store.get(&tenant, &meta.id).await.unwrap().unwrap();
            assert_eq!(back.content.len(), SIZE);
            store.delete(&tenant, &meta.id).await.unwrap();
        });
        started.elapsed()
    };
    let median = |mut times: Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let plain_stores: Vec<_> = stores.iter().filter(|(n, _)| !n.contains('+')).collect();
    for (base, plain) in plain_stores {
        for (name, encrypted) in stores
            .iter()
            .filter(|(n, _)| n.starts_with(&format!("{base}+")))
        {
            let (mut p, mut e) = (Vec::new(), Vec::new());
            for i in 0..120 {
                if i % 2 == 0 {
                    p.push(round(plain));
                    e.push(round(encrypted));
                } else {
                    e.push(round(encrypted));
                    p.push(round(plain));
                }
            }
            let (p, e) = (median(p), median(e));
            println!(
                "paired {name} / {base}: {:.3} (medians {p:?} / {e:?})",
                e.as_secs_f64() / p.as_secs_f64()
            );
        }
    }
    if let Some((admin, schema)) = cleanup {
        runtime.block_on(async {
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
        });
    }
    let _ = std::fs::remove_file(&sqlite_file);
}

/// The two AES-256-GCM implementations in the dependency tree, sealing and
/// opening 1 MiB in place (what `EncryptedDocumentStore` does per `put` and
/// `get`), against a plain copy of the megabyte: why the documents' cipher
/// is ring's and the small key wraps may stay on `aes-gcm`.
fn cipher(c: &mut Criterion) {
    use aes_gcm::aead::{AeadInPlace, KeyInit};

    let key = [7_u8; 32];
    let nonce = [9_u8; 12];
    let mut buffer = vec![0_u8; SIZE];
    fastrand::fill(&mut buffer);
    let mut group = c.benchmark_group("aes256gcm_1mib_seal_open");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function(BenchmarkId::from_parameter("copy"), |b| {
        let mut out = vec![0_u8; SIZE];
        b.iter(|| {
            out.copy_from_slice(&buffer);
            std::hint::black_box(&out);
        });
    });
    group.bench_function(BenchmarkId::from_parameter("aes-gcm"), |b| {
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();
        let nonce = aes_gcm::Nonce::from_slice(&nonce);
        b.iter(|| {
            let tag = cipher
                .encrypt_in_place_detached(nonce, b"aad", &mut buffer)
                .unwrap();
            cipher
                .decrypt_in_place_detached(nonce, b"aad", &mut buffer, &tag)
                .unwrap();
        });
    });
    group.bench_function(BenchmarkId::from_parameter("ring"), |b| {
        use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
        let cipher = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
        let mut sealed = buffer.clone();
        b.iter(|| {
            sealed.truncate(SIZE);
            cipher
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(b"aad"),
                    &mut sealed,
                )
                .unwrap();
            cipher
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(b"aad"),
                    &mut sealed,
                )
                .unwrap();
        });
    });
    group.finish();
}

criterion_group!(benches, cipher, encryption);
criterion_main!(benches);
