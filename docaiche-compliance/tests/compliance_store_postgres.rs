//! `PgComplianceStore` against a real PostgreSQL on loopback, through the
//! shared conformance suite.
//!
//! | suite | variable | what |
//! |---|---|---|
//! | `compliance-postgres` | `DOCAICHE_TEST_POSTGRES_URL` | privacy requests and legal holds: the store contracts, tenant scoping with SQL metacharacters, bounds, concurrent idempotent migration, durability across pools, `Unavailable` on outage |
//!
//! A missing variable skips loudly (fails under `CI=true` /
//! `DOCAICHE_REQUIRE_BACKENDS=1`); a variable naming a server that does
//! not answer fails. The test works in its own schema, dropped at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/backends/report.rs"]
#[allow(dead_code, unreachable_pub)]
mod report;

mod compliance_store_common;

use std::str::FromStr;

use compliance_store_common::{
    bounded_at_two, legal_holds, odd_subject, privacy_requests, tenants, unavailable,
};
use docaiche_compliance::privacy::{
    PgComplianceStore, PrivacyRequest, PrivacyRequestStore, Regulation, RequestKind,
};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const SUITE: &str = "compliance-postgres";
const VAR: &str = "DOCAICHE_TEST_POSTGRES_URL";

async fn pool_in(url: &str, schema: &str) -> PgPool {
    let options = PgConnectOptions::from_str(url)
        .expect("a PostgreSQL URL")
        .options([("search_path", schema)]);
    PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .expect("connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_the_privacy_and_legal_hold_contracts() {
    let Some(url) = report::require_backend(SUITE, VAR) else {
        return;
    };
    let admin = PgPool::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{VAR} is set but PostgreSQL does not answer: {e}"));
    let schema = format!(
        "docaiche_compliance_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("create the test schema");
    let run = {
        let (url, schema) = (url.clone(), schema.clone());
        tokio::spawn(async move {
            let pool = pool_in(&url, &schema).await;
            // Two instances starting at once: both migrate, neither fails.
            let (first, second) = tokio::join!(
                PgComplianceStore::new(pool.clone()),
                PgComplianceStore::new(pool.clone())
            );
            let store = first.expect("migrated");
            second.expect("migrated concurrently");
            privacy_requests(&store, "pg").await;
            legal_holds(&store, "pg").await;
            let small = store.clone().with_max_requests(2).with_max_holds(2);
            bounded_at_two(&small, &small, "pg").await;

            // Another pool (another process) reads what this one wrote.
            let (a, _) = tenants("restart");
            let request = PrivacyRequest::new(
                a.clone(),
                odd_subject(),
                RequestKind::Erase,
                Regulation::Ccpa,
                odd_subject(),
                time::OffsetDateTime::now_utc(),
            );
            store.insert(&request).await.expect("inserted");
            let other = PgComplianceStore::new(pool_in(&url, &schema).await)
                .await
                .expect("second pool");
            assert_eq!(
                other.get(&a, &request.id).await.expect("read"),
                Some(request)
            );
            other.pool().close().await;

            // The tables hold exactly the tenants' rows: nothing leaked into
            // names, no statement was built from input.
            let tables: Vec<(String,)> = sqlx::query_as(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = $1 ORDER BY 1",
            )
            .bind(&schema)
            .fetch_all(&pool)
            .await
            .expect("tables");
            let names: Vec<&str> = tables.iter().map(|(n,)| n.as_str()).collect();
            assert_eq!(
                names,
                ["compliance_legal_holds", "compliance_privacy_requests"]
            );

            pool.close().await;
            unavailable(&store, &store).await;
        })
    };
    let outcome = run.await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .expect("drop the test schema");
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&admin)
        .await
        .unwrap_or_default();
    admin.close().await;
    match outcome {
        Ok(()) => report::mark_ran(
            SUITE,
            &format!("postgres {version} privacy requests and legal holds"),
        ),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("test task failed: {e}"),
    }
}
