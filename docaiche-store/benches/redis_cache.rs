//! Cache hit latency: `RedisCacheStore::get` (value and remaining TTL in one
//! pipelined round trip) against the baseline, a raw `GET` of the same key
//! on a `redis` `ConnectionManager`, in the same group; plus the
//! `ReadThrough` hit path on top.
//!
//! `DOCAICHE_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench -p docaiche-store --features redis --bench redis_cache`
//! (`./scripts/test.sh --services-only` prints the variable).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use docaiche_core::cache::{CacheKey, CacheStore};
use docaiche_store::read_through::ReadThrough;
use docaiche_store::redis::RedisStore;

fn redis_cache(c: &mut Criterion) {
    let Ok(url) = std::env::var("DOCAICHE_TEST_REDIS_URL") else {
        eprintln!("redis_cache: DOCAICHE_TEST_REDIS_URL is not set; nothing to measure");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The connection's tasks are spawned on this runtime.
    let _context = runtime.enter();
    let prefix = format!("docaiche:bench:{}", uuid::Uuid::new_v4().simple());
    let store = RedisStore::builder(url.clone())
        .key_prefix(prefix)
        .build()
        .unwrap();
    let cache = store.cache();
    let key = CacheKey::new("bench", "hot").unwrap();
    let value = Bytes::from(vec![7_u8; 1024]);
    let redis_key = cache.redis_key(&key);
    let mut raw = runtime.block_on(async {
        cache
            .set(&key, value.clone(), Duration::from_secs(600))
            .await
            .unwrap();
        let client = redis::Client::open(url.as_str()).unwrap();
        redis::aio::ConnectionManager::new(client).await.unwrap()
    });
    let read_through = ReadThrough::new(Arc::new(cache.clone()));
    let through_key = CacheKey::new("bench", "through").unwrap();
    runtime.block_on(async {
        read_through
            .get_or_load(&through_key, Duration::from_secs(600), || async {
                Ok(Bytes::from(vec![7_u8; 1024]))
            })
            .await
            .unwrap();
    });

    let mut group = c.benchmark_group("redis_cache_hit_1kib");
    group.bench_function("raw_get (baseline)", |b| {
        b.to_async(&runtime).iter(|| {
            let command = redis::cmd("GET").arg(&redis_key).clone();
            let mut connection = raw.clone();
            async move {
                let found: Option<Vec<u8>> = command.query_async(&mut connection).await.unwrap();
                assert!(found.is_some());
            }
        });
    });
    group.bench_function("redis_cache_store_get", |b| {
        b.to_async(&runtime).iter(|| async {
            assert!(cache.get(&key).await.unwrap().is_some());
        });
    });
    group.bench_function("read_through_hit", |b| {
        b.to_async(&runtime).iter(|| async {
            read_through
                .get_or_load(&through_key, Duration::from_secs(600), || async {
                    unreachable!("a hit")
                })
                .await
                .unwrap();
        });
    });
    group.finish();
    runtime.block_on(async {
        let _: i64 = redis::cmd("DEL")
            .arg(&redis_key)
            .arg(cache.redis_key(&through_key))
            .query_async(&mut raw)
            .await
            .unwrap();
    });
}

criterion_group!(benches, redis_cache);
criterion_main!(benches);
