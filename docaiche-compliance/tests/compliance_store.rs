//! Privacy request stores and legal hold registries through the shared
//! conformance suite: the memory stores, and SQLite in a temporary file
//! (feature `sqlite`). PostgreSQL: `compliance_store_postgres.rs`.

mod compliance_store_common;

use compliance_store_common::{legal_holds, privacy_requests};
use docaiche_compliance::privacy::MemoryPrivacyRequestStore;
use docaiche_compliance::retention::MemoryLegalHoldRegistry;

#[tokio::test]
async fn the_memory_stores_keep_the_contract() {
    privacy_requests(&MemoryPrivacyRequestStore::new(), "memory").await;
    legal_holds(&MemoryLegalHoldRegistry::new(), "memory").await;
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::compliance_store_common::{
        bounded_at_two, legal_holds, odd_subject, privacy_requests, tenants, unavailable,
    };
    use docaiche_compliance::privacy::PrivacyRequest;
    use docaiche_compliance::privacy::{
        PrivacyRequestStore, Regulation, RequestKind, SqliteComplianceStore,
    };
    use docaiche_compliance::retention::{LegalHold, LegalHoldRegistry};
    use sqlx::SqlitePool;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    /// A temporary database file, removed on drop.
    struct TempDb(std::path::PathBuf);

    impl TempDb {
        fn new() -> Self {
            Self(std::env::temp_dir().join(format!(
                "docaiche-compliance-{}.db",
                uuid::Uuid::new_v4().simple()
            )))
        }

        async fn pool(&self) -> SqlitePool {
            let options = SqliteConnectOptions::new()
                .filename(&self.0)
                .create_if_missing(true);
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .expect("sqlite opens")
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut path = self.0.clone().into_os_string();
                path.push(suffix);
                // Absent files are the normal case.
                let _ = std::fs::remove_file(path);
            }
        }
    }

    #[tokio::test]
    async fn sqlite_keeps_the_contract_across_restarts_and_outages() {
        let db = TempDb::new();
        let pool = db.pool().await;
        let store = SqliteComplianceStore::new(pool.clone())
            .await
            .expect("migrated");
        // Migrating again is harmless.
        SqliteComplianceStore::new(pool.clone())
            .await
            .expect("migrated twice");
        privacy_requests(&store, "sqlite").await;
        legal_holds(&store, "sqlite").await;
        let small = store.clone().with_max_requests(2).with_max_holds(2);
        bounded_at_two(&small, &small, "sqlite").await;

        // Durable: a new pool on the same file (a restart) reads it back.
        let (a, _) = tenants("restart");
        let request = PrivacyRequest::new(
            a.clone(),
            odd_subject(),
            RequestKind::Erase,
            Regulation::Gdpr,
            odd_subject(),
            time::OffsetDateTime::now_utc(),
        );
        store.insert(&request).await.expect("inserted");
        let hold = LegalHold::new(
            a.clone(),
            "kept",
            odd_subject(),
            time::OffsetDateTime::now_utc(),
        );
        store.place(hold.clone()).await.expect("placed");
        pool.close().await;
        let reopened = SqliteComplianceStore::new(db.pool().await)
            .await
            .expect("reopened");
        assert_eq!(
            reopened.get(&a, &request.id).await.expect("read"),
            Some(request)
        );
        assert_eq!(reopened.all(&a).await.expect("read"), [hold]);
        reopened.pool().close().await;

        // The closed pool: every operation is Unavailable.
        unavailable(&store, &store).await;
    }
}
