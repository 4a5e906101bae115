//! The PostgreSQL audit trail against a real server on loopback.
//!
//! | suite | variable | what |
//! |---|---|---|
//! | `compliance-postgres` | `DOCAICHE_TEST_POSTGRES_URL` | tampering found at the right row (flipped byte, deleted, inserted, swapped), signed tree heads (with records, from `sign_due_heads`, across writers and an old schema) and the mutation suite of the verifiable log detected in full (every mutant over the rows, one of each kind written into the table), append-only for the application role and the owner, two writer processes (and two pools) on one chain, recovery of the chain on restart, the sink contract, retention (the owner's anchored purge of an expired prefix, deletes refused on every other path, a further deletion or a forged anchor still found) |
//!
//! `./scripts/test.sh` starts PostgreSQL and sets the variable. A missing
//! variable skips loudly, or fails under `CI=true` /
//! `DOCAICHE_REQUIRE_BACKENDS=1`. Every test works in its own schema (and
//! role), dropped at the end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

#[path = "../../tests/backends/report.rs"]
#[allow(dead_code, unreachable_pub)]
mod report;

mod audit_common;

use std::future::Future;
use std::num::NonZeroU64;
use std::str::FromStr;
use std::sync::Arc;

use audit_common::{event, fields, flip_byte};
use docaiche_compliance::audit::{
    CheckpointKey, CheckpointPolicy, PgAuditTrail, TamperKind, Verifier, VerifyReport,
};
use docaiche_core::audit::{AuditEvent, AuditSink};
use docaiche_core::{Result, SecretBytes, TenantId};
use docaiche_store::conformance::{self, AuditReadBack, Harness};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

const SUITE: &str = "compliance-postgres";
const VAR: &str = "DOCAICHE_TEST_POSTGRES_URL";

#[derive(Clone)]
struct Ctx {
    url: String,
    schema: String,
    admin: PgPool,
}

impl Ctx {
    /// A pool in the test's schema, as `role` when given (as a second
    /// process would have: its own connections).
    async fn pool(&self, role: Option<&str>) -> PgPool {
        let mut options = PgConnectOptions::from_str(&self.url)
            .unwrap()
            .options([("search_path", self.schema.as_str())]);
        if let Some(role) = role {
            options = options.options([("role", role)]);
        }
        PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .unwrap()
    }

    fn table(&self) -> String {
        format!("{}.audit_trail", self.schema)
    }

    /// The rows, in id order: (id, stream, seq, line).
    async fn rows(&self) -> Vec<(i64, String, i64, String)> {
        sqlx::query_as(&format!(
            "SELECT id, stream, seq, line FROM {} WHERE kind = 'record' ORDER BY id",
            self.table()
        ))
        .fetch_all(&self.admin)
        .await
        .unwrap()
    }

    async fn row_of(&self, stream: &str, seq: i64) -> i64 {
        self.rows()
            .await
            .into_iter()
            .find(|r| r.1 == stream && r.2 == seq)
            .unwrap()
            .0
    }

    /// Become the attacker with superuser rights: the append-only trigger
    /// off (the unique index stays unless a test drops it).
    async fn disable_trigger(&self) {
        sqlx::query(&format!(
            "ALTER TABLE {} DISABLE TRIGGER USER",
            self.table()
        ))
        .execute(&self.admin)
        .await
        .unwrap();
    }
}

async fn in_schema<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = report::require_backend(SUITE, VAR) else {
        return;
    };
    let admin = match PgPool::connect(&url).await {
        Ok(pool) => pool,
        Err(e) => {
            report::skip(SUITE, &format!("{VAR} does not answer: {e}"));
            return;
        }
    };
    let schema = format!(
        "docaiche_audit_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let ctx = Ctx {
        url,
        schema: schema.clone(),
        admin: admin.clone(),
    };
    let outcome = tokio::spawn(body(ctx)).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    let role = format!("{schema}_app");
    let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {role}"))
        .execute(&admin)
        .await;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&admin)
        .await
        .unwrap_or_default();
    admin.close().await;
    match outcome {
        Ok(()) => report::mark_ran(SUITE, &format!("postgres {version} audit trail: {test}")),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("test task failed: {e}"),
    }
}

fn key() -> CheckpointKey {
    CheckpointKey::from_bytes("audit/checkpoint-key", &SecretBytes::from(vec![5u8; 32])).unwrap()
}

/// A trail with 20 records alternating between tenants `a` and `b`.
async fn trail_of_twenty(ctx: &Ctx) -> PgAuditTrail {
    let trail = PgAuditTrail::new(ctx.pool(None).await)
        .await
        .unwrap()
        .with_checkpoints(CheckpointPolicy::new(key(), NonZeroU64::new(4).unwrap()));
    for i in 0..20 {
        let receipt = trail
            .record(&event(if i % 2 == 0 { "a" } else { "b" }, i))
            .await
            .unwrap();
        assert_eq!(receipt.sequence, Some(i as u64 / 2 + 1));
    }
    trail
}

async fn verify(trail: &PgAuditTrail) -> VerifyReport {
    trail
        .verify(&Verifier::new().with_key(key()))
        .await
        .unwrap()
}

fn found(report: &VerifyReport) -> (TamperKind, u64) {
    let tamper = report.tamper.as_ref().expect("tampering detected");
    assert!(tamper.location.source.starts_with("postgres:"));
    (tamper.kind, tamper.location.line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untouched_trail_verifies_with_its_checkpoints() {
    in_schema("untouched", |ctx| async move {
        let trail = trail_of_twenty(&ctx).await;
        let report = verify(&trail).await;
        assert!(report.is_ok(), "{:?}", report.tamper);
        assert_eq!((report.records, report.checkpoints_verified), (20, 4));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_found_as_modified_at_its_row() {
    in_schema("flipped byte", |ctx| async move {
        let trail = trail_of_twenty(&ctx).await;
        let id = ctx.row_of("b", 3).await;
        let line: String =
            sqlx::query_scalar(&format!("SELECT line FROM {} WHERE id = $1", ctx.table()))
                .bind(id)
                .fetch_one(&ctx.admin)
                .await
                .unwrap();
        let mut lines = vec![line.into_bytes()];
        flip_byte(&mut lines, 0);
        ctx.disable_trigger().await;
        sqlx::query(&format!(
            "UPDATE {} SET line = $2 WHERE id = $1",
            ctx.table()
        ))
        .bind(id)
        .bind(String::from_utf8(lines.remove(0)).unwrap())
        .execute(&ctx.admin)
        .await
        .unwrap();
        assert_eq!(
            found(&verify(&trail).await),
            (TamperKind::Modified, id as u64)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_row_is_found_as_removed_at_the_next_of_its_stream() {
    in_schema("deleted row", |ctx| async move {
        let trail = trail_of_twenty(&ctx).await;
        let (gone, next) = (ctx.row_of("a", 2).await, ctx.row_of("a", 3).await);
        ctx.disable_trigger().await;
        sqlx::query(&format!("DELETE FROM {} WHERE id = $1", ctx.table()))
            .bind(gone)
            .execute(&ctx.admin)
            .await
            .unwrap();
        assert_eq!(
            found(&verify(&trail).await),
            (TamperKind::Removed, next as u64)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inserted_copy_is_refused_by_the_index_and_found_once_forced_in() {
    in_schema("inserted row", |ctx| async move {
        let trail = trail_of_twenty(&ctx).await;
        let copy = format!(
            "INSERT INTO {} (kind, stream, seq, hash, line) \
             SELECT kind, stream, seq, hash, line FROM {} WHERE kind = 'record' AND stream = 'a' AND seq = 2",
            ctx.table(),
            ctx.table()
        );
        let refused = sqlx::query(&copy).execute(&ctx.admin).await.unwrap_err();
        assert!(refused.to_string().contains("duplicate"), "{refused}");
        sqlx::query(&format!("DROP INDEX {}.audit_trail_stream_seq", ctx.schema))
            .execute(&ctx.admin)
            .await
            .unwrap();
        sqlx::query(&copy).execute(&ctx.admin).await.unwrap();
        let inserted: i64 = sqlx::query_scalar(&format!("SELECT max(id) FROM {}", ctx.table()))
            .fetch_one(&ctx.admin)
            .await
            .unwrap();
        assert_eq!(
            found(&verify(&trail).await),
            (TamperKind::Inserted, inserted as u64)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_swapped_rows_are_found_as_reordered_at_the_first() {
    in_schema("swapped rows", |ctx| async move {
        let trail = trail_of_twenty(&ctx).await;
        let (x, y) = (ctx.row_of("b", 5).await, ctx.row_of("b", 6).await);
        ctx.disable_trigger().await;
        sqlx::query(&format!("DROP INDEX {}.audit_trail_stream_seq", ctx.schema))
            .execute(&ctx.admin)
            .await
            .unwrap();
        sqlx::query(&format!(
            "UPDATE {t} AS r SET seq = o.seq, hash = o.hash, line = o.line \
             FROM {t} AS o WHERE (r.id, o.id) IN (($1, $2), ($2, $1))",
            t = ctx.table()
        ))
        .bind(x)
        .bind(y)
        .execute(&ctx.admin)
        .await
        .unwrap();
        assert_eq!(
            found(&verify(&trail).await),
            (TamperKind::Reordered, x as u64)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_role_cannot_update_or_delete_and_neither_can_the_owner() {
    in_schema("append-only", |ctx| async move {
        let role = format!("{}_app", ctx.schema);
        PgAuditTrail::migrate(&ctx.pool(None).await).await.unwrap();
        sqlx::query(&format!("CREATE ROLE {role} NOLOGIN"))
            .execute(&ctx.admin)
            .await
            .unwrap();
        sqlx::query(&format!("GRANT USAGE ON SCHEMA {} TO {role}", ctx.schema))
            .execute(&ctx.admin)
            .await
            .unwrap();
        for grant in PgAuditTrail::grant_statements(&role).unwrap() {
            let grant = grant.replace(
                " ON audit_trail",
                &format!(" ON {}.audit_trail", ctx.schema),
            );
            sqlx::query(&grant).execute(&ctx.admin).await.unwrap();
        }
        // The application writes as its role.
        let app = PgAuditTrail::existing(ctx.pool(Some(&role)).await);
        for i in 0..3 {
            app.record(&event("a", i)).await.unwrap();
        }
        for statement in [
            "UPDATE audit_trail SET line = line || ' '",
            "DELETE FROM audit_trail",
            "TRUNCATE audit_trail",
        ] {
            let e = sqlx::query(statement)
                .execute(app.pool())
                .await
                .unwrap_err();
            let code = e
                .as_database_error()
                .and_then(|d| d.code())
                .unwrap_or_default();
            assert_eq!(code, "42501", "{statement}: {e}");
            assert!(
                e.to_string().contains("permission denied"),
                "{statement}: {e}"
            );
        }
        // The owner (here a superuser) is stopped by the trigger.
        for statement in [
            "UPDATE audit_trail SET line = line",
            "DELETE FROM audit_trail",
        ] {
            let owner = ctx.pool(None).await;
            let e = sqlx::query(statement).execute(&owner).await.unwrap_err();
            assert!(e.to_string().contains("append-only"), "{statement}: {e}");
        }
        assert!(verify(&app).await.is_ok());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_with_their_own_connections_keep_one_chain() {
    in_schema("two writers", |ctx| async move {
        // Two trails over two pools: what two processes share is only the
        // database, so the per-stream row lock is all that orders them.
        let first = Arc::new(PgAuditTrail::new(ctx.pool(None).await).await.unwrap());
        let second = Arc::new(PgAuditTrail::new(ctx.pool(None).await).await.unwrap());
        let mut tasks = Vec::new();
        for writer in 0..8 {
            let trail = if writer % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..25 {
                    let tenant = if i % 5 == 0 { "b" } else { "a" };
                    seqs.push((
                        tenant,
                        trail
                            .record(&event(tenant, writer * 100 + i))
                            .await
                            .unwrap()
                            .sequence
                            .unwrap(),
                    ));
                }
                seqs
            }));
        }
        let mut a = Vec::new();
        for task in tasks {
            a.extend(
                task.await
                    .unwrap()
                    .into_iter()
                    .filter(|(t, _)| *t == "a")
                    .map(|(_, s)| s),
            );
        }
        a.sort_unstable();
        assert_eq!(a, (1..=160).collect::<Vec<_>>());
        let report = verify(&first).await;
        assert!(report.is_ok(), "{:?}", report.tamper);
        assert_eq!(report.records, 200);
    })
    .await;
}

const CHILD_VAR: &str = "DOCAICHE_AUDIT_PG_CHILD_SCHEMA";

/// Only does something in a child process started by
/// `two_writer_processes_keep_one_chain`: 100 events of tenant `a` from
/// four tasks into the schema it is given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_pg_writer() {
    let (Ok(schema), Ok(url)) = (std::env::var(CHILD_VAR), std::env::var(VAR)) else {
        return;
    };
    let ctx = Ctx {
        admin: PgPool::connect(&url).await.unwrap(),
        url,
        schema,
    };
    let trail = Arc::new(PgAuditTrail::existing(ctx.pool(None).await));
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let trail = trail.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    trail.record(&event("a", task * 100 + i)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writer_processes_keep_one_chain() {
    if std::env::var_os(CHILD_VAR).is_some() {
        return;
    }
    in_schema("two processes", |ctx| async move {
        PgAuditTrail::migrate(&ctx.pool(None).await).await.unwrap();
        let spawn = || {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child_pg_writer", "--test-threads", "1"])
                .env(CHILD_VAR, &ctx.schema)
                .env(VAR, &ctx.url)
                .env_remove("DOCAICHE_TEST_REPORT_DIR")
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let (mut first, mut second) = (spawn(), spawn());
        let (a, b) = tokio::task::spawn_blocking(move || (first.wait(), second.wait()))
            .await
            .unwrap();
        assert!(
            a.unwrap().success() && b.unwrap().success(),
            "a writer process failed"
        );
        let trail = PgAuditTrail::existing(ctx.pool(None).await);
        let report = verify(&trail).await;
        assert!(report.is_ok(), "{:?}", report.tamper);
        assert_eq!(report.records, 200);
        assert_eq!(report.heads["a"].seq, 200);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_writer_continues_the_chain_from_the_last_row() {
    in_schema("restart", |ctx| async move {
        let trail = trail_of_twenty(&ctx).await;
        trail.pool().close().await;
        // Even with the heads table lost, the stream's last row is the head.
        sqlx::query(&format!("DELETE FROM {}.audit_trail_heads", ctx.schema))
            .execute(&ctx.admin)
            .await
            .unwrap();
        let restarted = PgAuditTrail::new(ctx.pool(None).await).await.unwrap();
        let receipt = restarted.record(&event("a", 500)).await.unwrap();
        assert_eq!(receipt.sequence, Some(11));
        let last = ctx.rows().await.pop().unwrap();
        let previous = ctx
            .rows()
            .await
            .into_iter()
            .find(|r| r.1 == "a" && r.2 == 10)
            .unwrap();
        assert_eq!(
            fields(last.3.as_bytes()).prev,
            fields(previous.3.as_bytes()).hash
        );
        assert!(verify(&restarted).await.is_ok());
    })
    .await;
}

/// The database's clock, now.
async fn db_now(ctx: &Ctx) -> time::OffsetDateTime {
    let micros: i64 =
        sqlx::query_scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")
            .fetch_one(&ctx.admin)
            .await
            .unwrap();
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap()
}

/// Twenty records of `a` and `b`, the cutoff, then four younger ones.
async fn trail_with_an_expired_prefix(ctx: &Ctx) -> (PgAuditTrail, time::OffsetDateTime) {
    let trail = trail_of_twenty(ctx).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let cutoff = db_now(ctx).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    for i in 20..24 {
        trail
            .record(&event(if i % 2 == 0 { "a" } else { "b" }, i))
            .await
            .unwrap();
    }
    (trail, cutoff)
}

fn other_key() -> CheckpointKey {
    CheckpointKey::from_bytes("audit/checkpoint-key", &SecretBytes::from(vec![6u8; 32])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_purges_an_expired_prefix_behind_a_signed_anchor() {
    in_schema("retention purge", |ctx| async move {
        let (trail, cutoff) = trail_with_an_expired_prefix(&ctx).await;
        let a = TenantId::new("a").unwrap();
        let owner = ctx.pool(None).await;
        let removed = trail
            .purge_before(&owner, Some(&a), cutoff, &key())
            .await
            .unwrap();
        assert_eq!(removed, 10);
        let left: Vec<i64> = ctx
            .rows()
            .await
            .into_iter()
            .filter(|r| r.1 == "a")
            .map(|r| r.2)
            .collect();
        assert_eq!(left, vec![11, 12]);
        // Nothing more has expired.
        assert_eq!(
            trail
                .purge_before(&owner, Some(&a), cutoff, &key())
                .await
                .unwrap(),
            0
        );

        // With the key, the anchored start verifies; without it, or with
        // another key, the missing start shows.
        let report = verify(&trail).await;
        assert!(report.is_ok(), "{:?}", report.tamper);
        assert!(report.anchored);
        assert_eq!(report.records, 14);
        let keyless = trail.verify(&Verifier::new()).await.unwrap();
        assert_eq!(keyless.tamper.unwrap().kind, TamperKind::Removed);
        let wrong = trail
            .verify(&Verifier::new().with_key(other_key()))
            .await
            .unwrap();
        assert!(!wrong.anchored);
        assert!(!wrong.is_ok());

        // Writers continue the stream, even with the heads table lost.
        sqlx::query(&format!("DELETE FROM {}.audit_trail_heads", ctx.schema))
            .execute(&ctx.admin)
            .await
            .unwrap();
        let restarted = PgAuditTrail::new(ctx.pool(None).await).await.unwrap();
        assert_eq!(
            restarted.record(&event("a", 99)).await.unwrap().sequence,
            Some(13)
        );
        assert!(verify(&restarted).await.is_ok());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_more_deleted_row_or_a_forged_anchor_is_still_found() {
    in_schema("retention tamper", |ctx| async move {
        let (trail, cutoff) = trail_with_an_expired_prefix(&ctx).await;
        let a = TenantId::new("a").unwrap();
        let owner = ctx.pool(None).await;
        trail
            .purge_before(&owner, Some(&a), cutoff, &key())
            .await
            .unwrap();
        assert!(verify(&trail).await.is_ok());

        // The attacker removes the first record left (trigger off).
        ctx.disable_trigger().await;
        let first = ctx.row_of("a", 11).await;
        sqlx::query(&format!("DELETE FROM {} WHERE id = $1", ctx.table()))
            .bind(first)
            .execute(&ctx.admin)
            .await
            .unwrap();
        let report = verify(&trail).await;
        let tamper = report.tamper.expect("removal found");
        assert_eq!(tamper.kind, TamperKind::Removed);
        assert_eq!(
            (tamper.stream.as_deref(), tamper.seq),
            (Some("a"), Some(12))
        );

        // And covers it with an anchor of their own making: not signed by
        // the key, so it counts for nothing.
        let forged = docaiche_compliance::audit::Anchor::sign(
            &other_key(),
            std::collections::BTreeMap::from([(
                "a".to_owned(),
                docaiche_compliance::audit::record::Head::new(
                    11,
                    fields(
                        ctx.rows()
                            .await
                            .iter()
                            .find(|r| r.1 == "a")
                            .unwrap()
                            .3
                            .as_bytes(),
                    )
                    .prev,
                ),
            )]),
            Vec::new(),
            cutoff,
            cutoff,
        )
        .unwrap();
        sqlx::query(&format!(
            "UPDATE {}.audit_trail_anchors SET seq = 11, line = $1 WHERE stream = 'a'",
            ctx.schema
        ))
        .bind(String::from_utf8(forged.to_line()).unwrap())
        .execute(&ctx.admin)
        .await
        .unwrap();
        let report = verify(&trail).await;
        assert!(!report.anchored);
        assert_eq!(report.tamper.unwrap().kind, TamperKind::Removed);
        // A purge refuses to build on it.
        let refused = trail
            .purge_before(&owner, Some(&a), db_now(&ctx).await, &key())
            .await;
        assert!(refused.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_pass_only_through_the_owners_anchored_purge() {
    in_schema("retention guard", |ctx| async move {
        let role = format!("{}_app", ctx.schema);
        let (trail, cutoff) = trail_with_an_expired_prefix(&ctx).await;
        sqlx::query(&format!("CREATE ROLE {role} NOLOGIN"))
            .execute(&ctx.admin)
            .await
            .unwrap();
        sqlx::query(&format!("GRANT USAGE ON SCHEMA {} TO {role}", ctx.schema))
            .execute(&ctx.admin)
            .await
            .unwrap();
        for grant in PgAuditTrail::grant_statements(&role).unwrap() {
            let grant = grant.replace(
                " ON audit_trail",
                &format!(" ON {}.audit_trail", ctx.schema),
            );
            sqlx::query(&grant).execute(&ctx.admin).await.unwrap();
        }
        let a = TenantId::new("a").unwrap();
        // The application role: no DELETE, no anchors.
        let app = PgAuditTrail::existing(ctx.pool(Some(&role)).await);
        let through = app.expired_prefix(Some(&a), cutoff).await.unwrap().unwrap();
        assert_eq!(through.seq, 10);
        let e = app
            .purge_through(app.pool(), Some(&a), through, &key(), cutoff)
            .await
            .unwrap_err();
        assert!(
            matches!(e, docaiche_core::Error::Unavailable { .. }),
            "{e:?}"
        );
        assert_eq!(ctx.rows().await.iter().filter(|r| r.1 == "a").count(), 12);
        // The owner, setting the stream by hand without an anchor: refused.
        let owner = ctx.pool(None).await;
        let mut tx = owner.begin().await.unwrap();
        sqlx::query("SELECT set_config('docaiche.audit_purge_stream', 'a', true)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let e = sqlx::query("DELETE FROM audit_trail WHERE stream = 'a' AND seq = 1")
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("append-only"), "{e}");
        tx.rollback().await.unwrap();
        // Beyond the anchor: refused, even in the purge's transaction shape.
        trail
            .purge_before(&owner, Some(&a), cutoff, &key())
            .await
            .unwrap();
        let mut tx = owner.begin().await.unwrap();
        sqlx::query("SELECT set_config('docaiche.audit_purge_stream', 'a', true)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let e = sqlx::query("DELETE FROM audit_trail WHERE stream = 'a' AND seq = 11")
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("anchor"), "{e}");
        tx.rollback().await.unwrap();
        assert!(verify(&app).await.is_ok());
    })
    .await;
}

#[derive(Debug)]
struct PgReadBack(PgAuditTrail);

#[async_trait::async_trait]
impl AuditReadBack for PgReadBack {
    async fn events(&self, tenant: &TenantId) -> Result<Vec<AuditEvent>> {
        self.0.events(Some(tenant)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_trail_conforms() {
    in_schema("conformance", |ctx| async move {
        let trail = PgAuditTrail::new(ctx.pool(None).await).await.unwrap();
        conformance::run_audit_sink_with_read_back(
            Arc::new(trail.clone()),
            &PgReadBack(trail.clone()),
            &Harness::real_time(),
        )
        .await;
        let rows: i64 = sqlx::query(&format!("SELECT count(*) AS n FROM {}", ctx.table()))
            .fetch_one(&ctx.admin)
            .await
            .unwrap()
            .get("n");
        assert!(rows > 0);
        assert!(verify(&trail).await.is_ok());
    })
    .await;
}

// ---------------------------------------------------------------------------
// The verifiable log: tree heads and the mutation suite.
// ---------------------------------------------------------------------------

const ORIGIN: &str = "audit.test/pg";

fn tree_policy(origin: &str) -> docaiche_compliance::audit::TreeHeadPolicy {
    docaiche_compliance::audit::TreeHeadPolicy::new(key(), origin).unwrap()
}

/// Every line of the table, in id order.
async fn all_lines(ctx: &Ctx) -> Vec<Vec<u8>> {
    let lines: Vec<String> =
        sqlx::query_scalar(&format!("SELECT line FROM {} ORDER BY id", ctx.table()))
            .fetch_all(&ctx.admin)
            .await
            .unwrap();
    lines.into_iter().map(String::into_bytes).collect()
}

/// Three tenants, 8 events each 400 ms apart, heads due signed a second
/// later, an idle minute, one more event of `a` and its head: the trail
/// `tests/audit_log.rs` writes to a file, here in the table.
async fn log_of_three(ctx: &Ctx, clock: &docaiche_core::clock::ManualClock) -> PgAuditTrail {
    let trail = PgAuditTrail::new(ctx.pool(None).await)
        .await
        .unwrap()
        .with_checkpoints(CheckpointPolicy::new(key(), NonZeroU64::new(3).unwrap()))
        .with_tree_heads(tree_policy(ORIGIN))
        .with_clock(Arc::new(clock.clone()));
    for i in 0..24 {
        trail
            .record(&event(["a", "b", "c"][i % 3], i))
            .await
            .unwrap();
        clock.advance(std::time::Duration::from_millis(400));
    }
    clock.advance(std::time::Duration::from_secs(1));
    trail.sign_due_heads().await.unwrap();
    clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(
        trail.sign_due_heads().await.unwrap(),
        3,
        "an idle head a stream"
    );
    trail.record(&event("a", 24)).await.unwrap();
    clock.advance(std::time::Duration::from_secs(1));
    trail.sign_due_heads().await.unwrap();
    trail
}

fn log_verifier(history: Vec<docaiche_compliance::audit::TreeHead>) -> Verifier {
    Verifier::new()
        .with_key(key())
        .with_origin(ORIGIN)
        .with_history(history)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_heads_are_signed_with_records_and_when_due_and_verify() {
    in_schema("tree heads", |ctx| async move {
        let clock = docaiche_core::clock::ManualClock::new();
        let trail = log_of_three(&ctx, &clock).await;
        let lines = all_lines(&ctx).await;
        let heads = audit_common::mutation::tree_heads(&lines);
        let sizes = |stream: &str| {
            heads
                .iter()
                .filter(|h| h.stream() == stream)
                .map(|h| h.size)
                .collect::<Vec<_>>()
        };
        // A stream's records are 1.2 s apart: each is signed with its
        // record; then an idle head each from sign_due_heads, and `a`'s
        // last record (0 s after its idle head) a second later.
        assert_eq!(sizes("a"), [1, 2, 3, 4, 5, 6, 7, 8, 8, 9]);
        assert_eq!(sizes("b"), [1, 2, 3, 4, 5, 6, 7, 8, 8]);
        let report = trail.verify(&log_verifier(heads.clone())).await.unwrap();
        assert!(report.is_ok(), "{:?}", report.tamper);
        assert_eq!(report.history_matched, heads.len() as u64);
        assert_eq!(report.tree_heads_verified, heads.len() as u64);
        // Nothing due: nothing signed.
        assert_eq!(trail.sign_due_heads().await.unwrap(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_without_trees_between_two_with_them_keeps_the_log_whole() {
    in_schema("tree rebuild", |ctx| async move {
        let clock = docaiche_core::clock::ManualClock::new();
        let with_trees = PgAuditTrail::new(ctx.pool(None).await)
            .await
            .unwrap()
            .with_tree_heads(tree_policy(ORIGIN))
            .with_clock(Arc::new(clock.clone()));
        let without = PgAuditTrail::new(ctx.pool(None).await).await.unwrap();
        for i in 0..9 {
            let trail = if i % 3 == 1 { &without } else { &with_trees };
            trail.record(&event("a", i)).await.unwrap();
            clock.advance(std::time::Duration::from_secs(1));
        }
        with_trees.sign_due_heads().await.unwrap();
        let heads = audit_common::mutation::tree_heads(&all_lines(&ctx).await);
        assert_eq!(heads.last().unwrap().size, 9);
        let report = with_trees.verify(&log_verifier(heads)).await.unwrap();
        assert!(report.is_ok(), "{:?}", report.tamper);
    })
    .await;
}

/// Replace the table's rows with `lines`, as an attacker with superuser
/// rights would: triggers off, the unique index dropped. Returns false if
/// the database refused the lines.
async fn rewrite_table(ctx: &Ctx, lines: &[Vec<u8>]) -> bool {
    use docaiche_compliance::audit::record::{ParsedLine, parse_line};
    let table = ctx.table();
    for statement in [
        format!("ALTER TABLE {table} DISABLE TRIGGER USER"),
        format!("DROP INDEX IF EXISTS {}.audit_trail_stream_seq", ctx.schema),
        format!("DELETE FROM {table}"),
    ] {
        sqlx::query(&statement).execute(&ctx.admin).await.unwrap();
    }
    for (i, line) in lines.iter().enumerate() {
        let (kind, stream, seq, hash) = match parse_line(line) {
            Ok(ParsedLine::Record(r)) => ("record", r.stream, r.seq, r.hash.to_hex()),
            Ok(ParsedLine::Checkpoint(c)) => ("checkpoint", c.stream, c.seq, c.hash.to_hex()),
            Ok(ParsedLine::TreeHead(h)) => (
                "tree_head",
                h.stream().to_owned(),
                h.size.max(1),
                h.root.to_hex(),
            ),
            _ => ("record", "?".to_owned(), i as u64 + 1, String::new()),
        };
        let Ok(text) = String::from_utf8(line.clone()) else {
            return false;
        };
        if text.contains('\0') {
            return false;
        }
        sqlx::query(&format!(
            "INSERT INTO {table} (kind, stream, seq, hash, line) VALUES ($1, $2, $3, $4, $5)"
        ))
        .bind(kind)
        .bind(stream)
        .bind(seq as i64)
        .bind(hash)
        .bind(text)
        .execute(&ctx.admin)
        .await
        .unwrap();
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mutation_suite_is_detected_in_full_on_postgres_trails() {
    use audit_common::mutation::{Mutation, mutants, tree_heads};
    in_schema("mutation suite", |ctx| async move {
        let clock = docaiche_core::clock::ManualClock::new();
        let trail = log_of_three(&ctx, &clock).await;
        let lines = all_lines(&ctx).await;
        let history = tree_heads(&lines);
        let verifier = log_verifier(history.clone());
        assert!(trail.verify(&verifier).await.unwrap().is_ok());

        // Other trails to splice from: one of another origin, one of this
        // origin (written to files by the file sink: the lines are alike).
        let dir = std::env::temp_dir().join(format!("docaiche-pg-mut-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut others = Vec::new();
        for (name, origin, offset) in [("b", "audit.test/other", 1000), ("a2", ORIGIN, 2000)] {
            let path = dir.join(format!("{name}.jsonl"));
            let clock = docaiche_core::clock::ManualClock::new();
            let sink = docaiche_compliance::audit::JsonlFileSink::open_with_clock(
                docaiche_compliance::audit::FileSinkConfig::new(&path)
                    .with_fsync(docaiche_compliance::audit::FsyncPolicy::Never)
                    .with_tree_heads(tree_policy(origin)),
                Arc::new(clock.clone()),
            )
            .unwrap();
            for i in 0..24 {
                sink.record(&event(["a", "b", "c"][i % 3], offset + i))
                    .await
                    .unwrap();
                clock.advance(std::time::Duration::from_millis(400));
            }
            clock.advance(std::time::Duration::from_secs(1));
            sink.flush().await.unwrap();
            drop(sink);
            others.push(
                docaiche_compliance::audit::read_lines(&path)
                    .unwrap()
                    .map(|l| l.unwrap().bytes)
                    .collect::<Vec<_>>(),
            );
        }
        let _ = std::fs::remove_dir_all(&dir);

        let all = mutants(&lines, &others[0], &others[1], 11);
        let mut missed = Vec::new();
        let mut first_of_kind: std::collections::BTreeMap<Mutation, usize> =
            std::collections::BTreeMap::new();
        for (index, mutant) in all.iter().enumerate() {
            first_of_kind.entry(mutant.mutation).or_insert(index);
            let report = verifier
                .verify(mutant.lines.iter().enumerate().map(|(i, l)| {
                    Ok(docaiche_compliance::audit::TrailLine::complete(
                        docaiche_compliance::audit::Location::new("rows", i as u64 + 1),
                        l.clone(),
                    ))
                }))
                .unwrap();
            if report.is_ok() {
                missed.push(format!("{:?}: {}", mutant.mutation, mutant.what));
            }
        }
        assert!(
            missed.is_empty(),
            "{} of {} missed:\n{}",
            missed.len(),
            all.len(),
            missed.join("\n")
        );
        assert_eq!(first_of_kind.len(), 7, "every kind of mutation was tried");

        // One of each kind written into the table and found by the
        // trail's own verify (the database walk).
        let mut written = 0;
        for (mutation, index) in first_of_kind {
            let mutant = &all[index];
            if !rewrite_table(&ctx, &mutant.lines).await {
                continue;
            }
            written += 1;
            let report = trail.verify(&verifier).await.unwrap();
            assert!(
                !report.is_ok(),
                "{mutation:?} in the table: {} went unnoticed",
                mutant.what
            );
        }
        assert_eq!(written, 7, "each kind written into the table");
        eprintln!(
            "mutation suite (postgres): {} mutants over the rows and {written} in the table, all detected",
            all.len()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_from_before_tree_heads_migrates_and_its_records_get_heads() {
    in_schema("tree head migration", |ctx| async move {
        // The tables as the previous migration made them, with records.
        let pool = ctx.pool(None).await;
        for statement in [
            "CREATE TABLE audit_trail (
                 id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 kind TEXT NOT NULL CHECK (kind IN ('record', 'checkpoint')),
                 stream TEXT NOT NULL,
                 seq BIGINT NOT NULL CHECK (seq > 0),
                 hash TEXT NOT NULL,
                 line TEXT NOT NULL,
                 recorded_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            "CREATE TABLE audit_trail_heads (
                 stream TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)",
        ] {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        let mut head = docaiche_compliance::audit::record::Head::EMPTY;
        for i in 0..5 {
            let json = docaiche_compliance::audit::record::event_json(&event("a", i)).unwrap();
            let record =
                docaiche_compliance::audit::record::encode_record("a", head, &json).unwrap();
            sqlx::query(
                "INSERT INTO audit_trail (kind, stream, seq, hash, line) VALUES ('record', 'a', $1, $2, $3)",
            )
            .bind(record.seq as i64)
            .bind(record.hash.to_hex())
            .bind(String::from_utf8(record.line).unwrap())
            .execute(&pool)
            .await
            .unwrap();
            head = docaiche_compliance::audit::record::Head::new(record.seq, record.hash);
        }
        sqlx::query("INSERT INTO audit_trail_heads VALUES ('a', 5, $1)")
            .bind(head.hash.to_hex())
            .execute(&pool)
            .await
            .unwrap();
        // Migrated (twice: idempotent), then extended with tree heads.
        PgAuditTrail::migrate(&pool).await.unwrap();
        let clock = docaiche_core::clock::ManualClock::new();
        let trail = PgAuditTrail::new(pool)
            .await
            .unwrap()
            .with_tree_heads(tree_policy(ORIGIN))
            .with_clock(Arc::new(clock.clone()));
        assert_eq!(trail.sign_due_heads().await.unwrap(), 1, "the old records' head");
        trail.record(&event("a", 5)).await.unwrap();
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(trail.sign_due_heads().await.unwrap(), 1);
        let heads = audit_common::mutation::tree_heads(&all_lines(&ctx).await);
        assert_eq!(heads.iter().map(|h| h.size).collect::<Vec<_>>(), [5, 6]);
        let report = trail.verify(&log_verifier(heads)).await.unwrap();
        assert!(report.is_ok(), "{:?}", report.tamper);
        assert_eq!(report.records, 6);
    })
    .await;
}
