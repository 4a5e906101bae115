//! [`PgAuditTrail`]: the chained trail in PostgreSQL.

use std::sync::Arc;

use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};
use docaiche_core::clock::{Clock, SystemClock};
use docaiche_core::{Error, Result, TenantId};
use sqlx::{PgPool, Row};

use super::chain::CheckpointPolicy;
use super::record::{GENESIS, Hash, Head, encode_record, event_json, event_of, stream_of};
use super::verify::{Location, TrailLine, Verifier, VerifyReport};

const DEPENDENCY: &str = "audit trail (postgres)";

/// The table of records and checkpoints.
pub(super) const TABLE: &str = "audit_trail";

/// The schema, created by [`PgAuditTrail::migrate`]. Idempotent; runs under
/// an advisory lock so several instances can start at once.
///
/// - `audit_trail` holds every line (`kind` `record` or `checkpoint`) in
///   insertion order (`id`); a unique index stops two records taking one
///   place in a stream.
/// - `audit_trail_heads` holds each stream's head; a writer locks its
///   stream's row (`SELECT … FOR UPDATE`) for the length of its
///   transaction, so writers in any number of processes extend a stream one
///   at a time and the chain never forks.
/// - A statement trigger refuses `UPDATE`, `DELETE` and `TRUNCATE` on
///   `audit_trail` for everyone, its owner included (a superuser can still
///   disable it; that is what checkpoints and `verify` are for), and the
///   privileges are revoked from `PUBLIC`; grant the application role only
///   [`PgAuditTrail::grant_statements`].
pub const MIGRATION: &str = r"
SELECT pg_advisory_xact_lock(8031965420317);
CREATE TABLE IF NOT EXISTS audit_trail (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('record', 'checkpoint')),
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    hash TEXT NOT NULL,
    line TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS audit_trail_stream_seq
    ON audit_trail (stream, seq) WHERE kind = 'record';
CREATE TABLE IF NOT EXISTS audit_trail_heads (
    stream TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
CREATE OR REPLACE FUNCTION audit_trail_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_trail is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS audit_trail_append_only ON audit_trail;
CREATE TRIGGER audit_trail_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_trail
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_trail FROM PUBLIC;
";

const SEED_HEAD: &str = "INSERT INTO audit_trail_heads (stream, seq, hash) \
     SELECT $1, COALESCE(MAX(seq), 0), \
            COALESCE((SELECT hash FROM audit_trail WHERE stream = $1 AND kind = 'record' \
                      ORDER BY seq DESC LIMIT 1), $2) \
     FROM audit_trail WHERE stream = $1 AND kind = 'record' \
     ON CONFLICT (stream) DO NOTHING";
const LOCK_HEAD: &str = "SELECT seq, hash FROM audit_trail_heads WHERE stream = $1 FOR UPDATE";
const INSERT_LINE: &str =
    "INSERT INTO audit_trail (kind, stream, seq, hash, line) VALUES ($1, $2, $3, $4, $5)";
const MOVE_HEAD: &str = "UPDATE audit_trail_heads SET seq = $2, hash = $3 WHERE stream = $1";
const PAGE: &str = "SELECT id, line FROM audit_trail WHERE id > $1 ORDER BY id LIMIT $2";
const EVENTS: &str = "SELECT seq, line FROM audit_trail \
     WHERE stream = $1 AND kind = 'record' AND seq > $2 ORDER BY seq LIMIT $3";

/// The tamper-evident trail in PostgreSQL, chained per tenant across any
/// number of writer processes. Receipts mean "committed".
///
/// The pool's `search_path` picks the schema. Each `record` is one
/// transaction: seed the stream's head from its last row if it has none
/// (recovery: the chain continues from what is stored, whatever process
/// wrote it), lock the head, insert the record (and a checkpoint when one
/// is due), move the head, commit.
#[derive(Debug, Clone)]
pub struct PgAuditTrail {
    pool: PgPool,
    checkpoints: Option<CheckpointPolicy>,
    clock: Arc<dyn Clock>,
}

fn db(e: sqlx::Error) -> Error {
    Error::unavailable(DEPENDENCY, e)
}

fn to_i64(value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::invalid_input("audit sequence out of range"))
}

impl PgAuditTrail {
    /// A trail over `pool`, after running [`MIGRATION`].
    ///
    /// # Errors
    /// `Unavailable` if the database cannot be reached or migrated.
    pub async fn new(pool: PgPool) -> Result<Self> {
        Self::migrate(&pool).await?;
        Ok(Self::existing(pool))
    }

    /// A trail over `pool` whose schema already exists (no migration: for
    /// readers such as a verifier with read-only access).
    #[must_use]
    pub fn existing(pool: PgPool) -> Self {
        Self {
            pool,
            checkpoints: None,
            clock: Arc::new(SystemClock::new()),
        }
    }

    /// Run [`MIGRATION`] on `pool`.
    ///
    /// # Errors
    /// `Unavailable` if it fails.
    pub async fn migrate(pool: &PgPool) -> Result<()> {
        sqlx::raw_sql(MIGRATION).execute(pool).await.map_err(db)?;
        Ok(())
    }

    /// Sign checkpoints under `policy`.
    #[must_use]
    pub fn with_checkpoints(mut self, policy: CheckpointPolicy) -> Self {
        self.checkpoints = Some(policy);
        self
    }

    /// Read checkpoint times from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The statements granting `role` what writing the trail needs and no
    /// more: `SELECT, INSERT` on the records, `SELECT, INSERT, UPDATE` on
    /// the heads.
    ///
    /// # Errors
    /// `InvalidInput` unless `role` is a plain lower-case identifier.
    pub fn grant_statements(role: &str) -> Result<Vec<String>> {
        let plain = !role.is_empty()
            && role.len() <= 63
            && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !plain {
            return Err(Error::invalid_input(
                "role must be a lower-case sql identifier",
            ));
        }
        Ok(vec![
            format!("GRANT SELECT, INSERT ON audit_trail TO {role}"),
            format!("GRANT SELECT, INSERT, UPDATE ON audit_trail_heads TO {role}"),
        ])
    }

    /// The pool.
    #[must_use]
    pub const fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Walk the whole table in `id` order with `verifier`, a page at a time,
    /// in one read-only `REPEATABLE READ` transaction: writers may go on,
    /// and the walk sees one consistent snapshot (a row whose transaction
    /// commits during the walk is not half seen).
    ///
    /// # Errors
    /// `Unavailable` if reading fails.
    pub async fn verify(&self, verifier: &Verifier) -> Result<VerifyReport> {
        const PAGE_ROWS: i64 = 1000;
        let source = format!("postgres:{TABLE}");
        let mut walk = verifier.walk();
        let mut after = 0i64;
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        'pages: loop {
            let rows = sqlx::query(PAGE)
                .bind(after)
                .bind(PAGE_ROWS)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            let full = rows.len() == usize::try_from(PAGE_ROWS).unwrap_or(usize::MAX);
            for row in rows {
                let id: i64 = row.try_get("id").map_err(db)?;
                let line: String = row.try_get("line").map_err(db)?;
                after = id;
                let location = Location::new(source.clone(), u64::try_from(id).unwrap_or(0));
                if !walk.push(TrailLine::complete(location, line.into_bytes())) {
                    break 'pages;
                }
            }
            if !full {
                break;
            }
        }
        tx.rollback().await.map_err(db)?;
        Ok(walk.finish())
    }

    /// `tenant`'s events in stream order (`None`: the events without a
    /// tenant), read back without verification.
    ///
    /// # Errors
    /// `Unavailable` if reading fails, `InvalidInput` for a row that is not
    /// a record.
    pub async fn events(&self, tenant: Option<&TenantId>) -> Result<Vec<AuditEvent>> {
        let stream = tenant.map_or(super::record::NO_TENANT_STREAM, TenantId::as_str);
        let mut out = Vec::new();
        let mut after = 0i64;
        loop {
            let lines: Vec<(i64, String)> = sqlx::query_as(EVENTS)
                .bind(stream)
                .bind(after)
                .bind(1000i64)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
            if lines.is_empty() {
                return Ok(out);
            }
            for (seq, line) in &lines {
                out.push(event_of(line.as_bytes())?);
                after = *seq;
            }
        }
    }
}

#[async_trait::async_trait]
impl AuditSink for PgAuditTrail {
    async fn record(&self, event: &AuditEvent) -> Result<AuditReceipt> {
        let stream = stream_of(event);
        let json = event_json(event)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(SEED_HEAD)
            .bind(stream)
            .bind(GENESIS.to_hex())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let row = sqlx::query(LOCK_HEAD)
            .bind(stream)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let seq: i64 = row.try_get("seq").map_err(db)?;
        let hash: String = row.try_get("hash").map_err(db)?;
        let head = Head::new(
            u64::try_from(seq).map_err(|_| Error::internal("stored audit head is negative"))?,
            Hash::from_hex(&hash)
                .map_err(|_| Error::internal("stored audit head is not a hash"))?,
        );
        let record = encode_record(stream, head, &json)?;
        let line = String::from_utf8(record.line)
            .map_err(|_| Error::internal("audit record is not utf-8"))?;
        let seq = to_i64(record.seq)?;
        sqlx::query(INSERT_LINE)
            .bind("record")
            .bind(stream)
            .bind(seq)
            .bind(record.hash.to_hex())
            .bind(line)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if let Some(policy) = &self.checkpoints
            && record.seq % policy.every.get() == 0
        {
            let checkpoint = policy.key.checkpoint(
                stream,
                Head::new(record.seq, record.hash),
                self.clock.now(),
            )?;
            let checkpoint = String::from_utf8(checkpoint)
                .map_err(|_| Error::internal("audit checkpoint is not utf-8"))?;
            sqlx::query(INSERT_LINE)
                .bind("checkpoint")
                .bind(stream)
                .bind(seq)
                .bind(record.hash.to_hex())
                .bind(checkpoint)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        sqlx::query(MOVE_HEAD)
            .bind(stream)
            .bind(seq)
            .bind(record.hash.to_hex())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(AuditReceipt::new(Some(record.seq)))
    }
}
