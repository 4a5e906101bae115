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
//! The content is random bytes, as incompressible as a real PDF's
//! compressed streams and as the ciphertext: a constant pattern would let a
//! storage layer that compresses or deduplicates flatter the plain store.
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
    let mut random = vec![0_u8; SIZE];
    random.fill_with(|| fastrand::u8(..));
    let content = Bytes::from(random);
    let mut group = c.benchmark_group("document_1mib_put_get_delete");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    for (name, store) in &stores {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&runtime).iter(|| {
                let document =
                    NewDocument::new(owner.clone(), "application/pdf", "00", content.clone());
                let (store, tenant) = (Arc::clone(store), tenant.clone());
                async move {
                    let meta = store.put(&tenant, document).await.unwrap();
                    let back = store.get(&tenant, &meta.id).await.unwrap().unwrap();
                    assert_eq!(back.content.len(), SIZE);
                    store.delete(&tenant, &meta.id).await.unwrap();
                }
            });
        });
    }
    group.finish();

    // Paired: ratio of medians, plain and encrypted alternating.
    let round = |store: &Arc<dyn DocumentStore>| {
        let document = NewDocument::new(owner.clone(), "application/pdf", "00", content.clone());
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
        for (name, encrypted) in stores.iter().filter(|(n, _)| n.starts_with(&format!("{base}+"))) {
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

criterion_group!(benches, encryption);
criterion_main!(benches);
