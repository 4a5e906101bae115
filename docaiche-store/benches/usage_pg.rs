//! `UsageStore::top_keys` on PostgreSQL over 10 000 keys × 30 days of
//! hourly rollups (7.2 million hour rows, their 300 000 day rows), seeded
//! with one bulk insert per table, against the baseline of reading the
//! same rows' day rollups alone (a whole-day range: no edges).
//!
//! `DOCAICHE_TEST_POSTGRES_URL=… cargo bench -p docaiche-store --features postgres --bench usage_pg`
//!
//! Runs in a schema of its own, dropped at the end. Seeding takes a minute
//! or two.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use docaiche_core::TenantId;
use docaiche_core::usage::{TopBy, TopQuery, UsageStore};
use docaiche_store::postgres::{PgConfig, PgStore};
use time::macros::datetime;

const START: time::OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

fn top(c: &mut Criterion) {
    let Ok(url) = std::env::var("DOCAICHE_TEST_POSTGRES_URL") else {
        eprintln!("DOCAICHE_TEST_POSTGRES_URL is not set: nothing to measure");
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let schema = format!(
        "docaiche_bench_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let (admin, store) = rt.block_on(async {
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        let mut config = PgConfig::new(url.clone());
        config.schema = Some(schema.clone());
        let store = PgStore::connect(&config).await.unwrap();
        let seeded = Instant::now();
        let start = START.unix_timestamp();
        sqlx::query(
            "INSERT INTO usage_hour (tenant_id, bucket_start, key_id, account, route_class, \
             allowed, rate_limited, denied, invalid_credential) \
             SELECT 'bench', h, k.id, '', 'documents', (random() * 100)::bigint, \
             (random() * 5)::bigint, 0, 0 \
             FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, 10000)) AS k, \
             generate_series($1::bigint, $1::bigint + 719 * 3600, 3600) AS h",
        )
        .bind(start)
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO usage_day SELECT tenant_id, bucket_start - bucket_start % 86400, key_id, \
             account, route_class, SUM(allowed), SUM(rate_limited), SUM(denied), \
             SUM(invalid_credential) FROM usage_hour GROUP BY 1, 2, 3, 4, 5",
        )
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query("VACUUM ANALYZE usage_hour")
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query("VACUUM ANALYZE usage_day")
            .execute(store.pool())
            .await
            .unwrap();
        eprintln!(
            "seeded 7.2M hour rows and 300k day rows in {:?}",
            seeded.elapsed()
        );
        (admin, store)
    });
    let usage: Arc<dyn UsageStore> = Arc::new(store.usage());
    let tenant = TenantId::new("bench").unwrap();
    let hour = time::Duration::HOUR;
    let ranges = [
        (
            "whole_days_baseline",
            START,
            START + time::Duration::days(30),
        ),
        (
            "ragged_30_days",
            START + 5 * hour + time::Duration::minutes(30),
            START + time::Duration::days(30) - 2 * hour,
        ),
    ];
    let mut group = c.benchmark_group("usage_top_keys_pg_10k_keys_30_days");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    for (name, from, to) in ranges {
        for by in [TopBy::Requests, TopBy::RateLimited] {
            let query = TopQuery::new(from, to, by, 10).unwrap();
            let first = rt.block_on(usage.top_keys(&tenant, &query)).unwrap();
            assert_eq!(first.len(), 10);
            group.bench_with_input(BenchmarkId::new(name, format!("{by:?}")), &query, |b, q| {
                b.to_async(&rt)
                    .iter(|| async { usage.top_keys(&tenant, q).await.unwrap() });
            });
        }
    }
    group.finish();
    rt.block_on(async {
        store.pool().close().await;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await
            .unwrap();
    });
}

criterion_group!(benches, top);
criterion_main!(benches);
