//! The SQL adapters against their baseline, the in-memory reference
//! backends, in the same groups: what a round trip through sqlx and the
//! database costs per operation.
//!
//! `cargo bench -p docaiche-store --features sqlite,postgres --bench sql`
//! (PostgreSQL joins in when `DOCAICHE_TEST_POSTGRES_URL` is set; it runs in a
//! schema of its own, dropped at the end).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use docaiche_core::document::NewDocument;
use docaiche_core::job::NewJob;
use docaiche_core::{DocumentStore, JobQueue, PrincipalId, TenantId};
use docaiche_store::memory::{MemoryDocumentStore, MemoryJobQueue};
use docaiche_store::sqlite::{SqliteConfig, SqliteStore};

struct Backend {
    name: &'static str,
    documents: Arc<dyn DocumentStore>,
    jobs: Arc<dyn JobQueue>,
}

struct Cleanup {
    #[cfg(feature = "postgres")]
    postgres: Option<(sqlx::PgPool, String)>,
    sqlite_file: std::path::PathBuf,
}

async fn backends() -> (Vec<Backend>, Cleanup) {
    let mut all = vec![Backend {
        name: "memory (baseline)",
        documents: Arc::new(MemoryDocumentStore::new()),
        jobs: Arc::new(MemoryJobQueue::new()),
    }];
    let memory = SqliteStore::connect(&SqliteConfig::in_memory())
        .await
        .unwrap();
    all.push(Backend {
        name: "sqlite in memory",
        documents: Arc::new(memory.documents()),
        jobs: Arc::new(memory.jobs()),
    });
    let sqlite_file =
        std::env::temp_dir().join(format!("docaiche-bench-{}.db", uuid::Uuid::new_v4()));
    let file = SqliteStore::connect(&SqliteConfig::file(sqlite_file.to_string_lossy()))
        .await
        .unwrap();
    all.push(Backend {
        name: "sqlite file",
        documents: Arc::new(file.documents()),
        jobs: Arc::new(file.jobs()),
    });
    #[cfg(feature = "postgres")]
    let postgres = match std::env::var("DOCAICHE_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => {
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
            all.push(Backend {
                name: "postgres",
                documents: Arc::new(store.documents()),
                jobs: Arc::new(store.jobs()),
            });
            Some((admin, schema))
        }
        _ => None,
    };
    (
        all,
        Cleanup {
            #[cfg(feature = "postgres")]
            postgres,
            sqlite_file,
        },
    )
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (backends, cleanup) = runtime.block_on(backends());
    let tenant = TenantId::new("bench").unwrap();
    let owner = PrincipalId::new("alice").unwrap();
    let content = Bytes::from(vec![7_u8; 16 * 1024]);

    let mut group = c.benchmark_group("document_put_get_delete_16KiB");
    group.throughput(Throughput::Elements(1));
    for backend in &backends {
        group.bench_function(BenchmarkId::from_parameter(backend.name), |b| {
            b.to_async(&runtime).iter(|| async {
                let doc = NewDocument::new(owner.clone(), "application/pdf", "ab", content.clone());
                let meta = backend.documents.put(&tenant, doc).await.unwrap();
                let got = backend.documents.get(&tenant, &meta.id).await.unwrap();
                assert!(got.is_some());
                backend.documents.delete(&tenant, &meta.id).await.unwrap()
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("job_enqueue_claim_complete");
    group.throughput(Throughput::Elements(1));
    for backend in &backends {
        group.bench_function(BenchmarkId::from_parameter(backend.name), |b| {
            b.to_async(&runtime).iter(|| async {
                backend
                    .jobs
                    .enqueue(&tenant, NewJob::new("bench", serde_json::json!({"n": 1})))
                    .await
                    .unwrap();
                let lease = backend
                    .jobs
                    .claim(&["bench"], Duration::from_secs(60))
                    .await
                    .unwrap()
                    .unwrap();
                backend
                    .jobs
                    .complete(&lease, serde_json::json!(1))
                    .await
                    .unwrap()
            });
        });
    }
    group.finish();

    drop(backends);
    runtime.block_on(async move {
        #[cfg(feature = "postgres")]
        if let Some((admin, schema)) = cleanup.postgres {
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut path = cleanup.sqlite_file.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
