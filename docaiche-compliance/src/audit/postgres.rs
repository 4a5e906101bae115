//! [`PgAuditTrail`]: the chained trail in PostgreSQL.

use std::sync::Arc;

use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};
use docaiche_core::clock::{Clock, SystemClock};
use docaiche_core::{Error, Result, TenantId};
use sqlx::{PgPool, Row};

use futures_util::TryStreamExt as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::anchor::Anchor;
use super::chain::CheckpointPolicy;
use super::merkle::Frontier;
use super::record::{
    CheckpointKey, GENESIS, Hash, Head, NO_TENANT_STREAM, ParsedLine, encode_record, event_json,
    event_of, merkle_leaf, parse_line, stream_of,
};
use super::trail_retention::StreamRule;
use super::tree_head::{TreeHead, TreeHeadPolicy};
use super::verify::{Location, TrailLine, Verifier, VerifyReport};

const DEPENDENCY: &str = "audit trail (postgres)";

/// The table of records and checkpoints.
pub(super) const TABLE: &str = "audit_trail";

/// The schema, created by [`PgAuditTrail::migrate`]. Idempotent; runs under
/// an advisory lock so several instances can start at once.
///
/// - `audit_trail` holds every line (`kind` `record`, `checkpoint` or
///   `tree_head`) in insertion order (`id`); a unique index stops two records taking one
///   place in a stream.
/// - `audit_trail_heads` holds each stream's head; a writer locks its
///   stream's row (`SELECT … FOR UPDATE`) for the length of its
///   transaction, so writers in any number of processes extend a stream one
///   at a time and the chain never forks. With tree heads
///   ([`PgAuditTrail::with_tree_heads`]) the row also holds the stream's
///   Merkle [`Frontier`](super::merkle::Frontier) (`tree_size`, `frontier`:
///   hex, `-1` when the stream's start is gone) and its last signed head
///   (`signed_size`, `signed_time`); a writer without tree heads clears
///   `tree_size`, and the next writer with them rebuilds the tree from the
///   records, once (the last signed head stays, so heads never go back in
///   time, whatever the writers' clocks). Migrating an older schema adds
///   these columns and `tree_head` to the kinds.
/// - A statement trigger refuses `UPDATE` and `TRUNCATE` on `audit_trail`
///   for everyone, its owner included (a superuser can still disable it;
///   that is what checkpoints and `verify` are for), and the privileges are
///   revoked from `PUBLIC`; grant the application role only
///   [`PgAuditTrail::grant_statements`].
/// - `DELETE` passes a row trigger only for retention: the deleting role
///   must be the table's owner, the transaction must have named the stream
///   in the transaction-local setting `docaiche.audit_purge_stream`, and
///   the row must lie at or before that stream's anchor in
///   `audit_trail_anchors` (one signed [`Anchor`](super::Anchor) line per
///   stream), written first in the same transaction.
///   [`PgAuditTrail::purge_through`] is that path. The setting alone is
///   worth nothing (any role can set it): the application role holds no
///   `DELETE` privilege and no write access to the anchors, and even the
///   owner can only cut a prefix that an anchor vouches for.
pub const MIGRATION: &str = r"
SELECT pg_advisory_xact_lock(8031965420317);
CREATE TABLE IF NOT EXISTS audit_trail (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq > 0),
    hash TEXT NOT NULL,
    line TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS audit_trail_stream_seq
    ON audit_trail (stream, seq) WHERE kind = 'record';
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'audit_trail'::regclass
                     AND conname = 'audit_trail_kind_check'
                     AND pg_get_constraintdef(oid) LIKE '%tree_head%') THEN
        ALTER TABLE audit_trail DROP CONSTRAINT IF EXISTS audit_trail_kind_check;
        ALTER TABLE audit_trail ADD CONSTRAINT audit_trail_kind_check
            CHECK (kind IN ('record', 'checkpoint', 'tree_head'));
    END IF;
END
$$;
CREATE TABLE IF NOT EXISTS audit_trail_heads (
    stream TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
ALTER TABLE audit_trail_heads ADD COLUMN IF NOT EXISTS tree_size BIGINT;
ALTER TABLE audit_trail_heads ADD COLUMN IF NOT EXISTS frontier TEXT;
ALTER TABLE audit_trail_heads ADD COLUMN IF NOT EXISTS signed_size BIGINT;
ALTER TABLE audit_trail_heads ADD COLUMN IF NOT EXISTS signed_time TEXT;
CREATE TABLE IF NOT EXISTS audit_trail_anchors (
    stream TEXT PRIMARY KEY,
    seq BIGINT NOT NULL CHECK (seq > 0),
    hash TEXT NOT NULL,
    line TEXT NOT NULL,
    anchored_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_trail_anchors FROM PUBLIC;
CREATE OR REPLACE FUNCTION audit_trail_purge_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    anchored BIGINT;
BEGIN
    IF current_setting('docaiche.audit_purge_stream', true) IS DISTINCT FROM OLD.stream
        OR current_user IS DISTINCT FROM
            (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID) THEN
        RAISE EXCEPTION 'audit_trail is append-only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT seq INTO anchored FROM audit_trail_anchors WHERE stream = OLD.stream;
    IF anchored IS NULL OR OLD.seq > anchored THEN
        RAISE EXCEPTION 'audit_trail is append-only: only a prefix behind the stream''s anchor may go'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END
$$;
CREATE OR REPLACE FUNCTION audit_trail_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_trail is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS audit_trail_append_only ON audit_trail;
CREATE TRIGGER audit_trail_append_only
    BEFORE UPDATE OR TRUNCATE ON audit_trail
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_append_only();
DROP TRIGGER IF EXISTS audit_trail_purge_guard ON audit_trail;
CREATE TRIGGER audit_trail_purge_guard
    BEFORE DELETE ON audit_trail
    FOR EACH ROW EXECUTE FUNCTION audit_trail_purge_guard();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_trail FROM PUBLIC;
";

const SEED_HEAD: &str = "INSERT INTO audit_trail_heads (stream, seq, hash) \
     SELECT $1, COALESCE(MAX(seq), (SELECT seq FROM audit_trail_anchors WHERE stream = $1), 0), \
            COALESCE((SELECT hash FROM audit_trail WHERE stream = $1 AND kind = 'record' \
                      ORDER BY seq DESC LIMIT 1), \
                     (SELECT hash FROM audit_trail_anchors WHERE stream = $1), $2) \
     FROM audit_trail WHERE stream = $1 AND kind = 'record' \
     ON CONFLICT (stream) DO NOTHING";
const LOCK_HEAD: &str = "SELECT seq, hash, tree_size, frontier, signed_size, signed_time \
     FROM audit_trail_heads WHERE stream = $1 FOR UPDATE";
const INSERT_LINE: &str =
    "INSERT INTO audit_trail (kind, stream, seq, hash, line) VALUES ($1, $2, $3, $4, $5)";
const MOVE_HEAD: &str = "UPDATE audit_trail_heads SET seq = $2, hash = $3, tree_size = $4, \
     frontier = $5, signed_size = $6, signed_time = $7 WHERE stream = $1";
/// A writer without tree heads: the tree no longer matches the chain (the
/// next writer with them rebuilds it); the last signed head stays, so heads
/// never go back in time.
const MOVE_HEAD_CLEAR_TREE: &str = "UPDATE audit_trail_heads SET seq = $2, hash = $3, \
     tree_size = NULL, frontier = NULL WHERE stream = $1";
const STREAM_RECORDS: &str = "SELECT seq, hash FROM audit_trail \
     WHERE stream = $1 AND kind = 'record' ORDER BY seq";
const IS_ANCHORED: &str = "SELECT EXISTS (SELECT 1 FROM audit_trail_anchors WHERE stream = $1)";
const TREE_STREAMS: &str = "SELECT stream FROM audit_trail_heads \
     WHERE tree_size IS NULL OR tree_size > 0 ORDER BY stream";
const PAGE: &str = "SELECT id, line FROM audit_trail WHERE id > $1 ORDER BY id LIMIT $2";
const ANCHORS_EXIST: &str = "SELECT to_regclass('audit_trail_anchors') IS NOT NULL";
const ANCHORS: &str = "SELECT line FROM audit_trail_anchors ORDER BY stream";
const ANCHOR_OF: &str =
    "SELECT seq, hash, line FROM audit_trail_anchors WHERE stream = $1 FOR UPDATE";
const EXPIRED_PREFIX: &str = "SELECT seq, hash FROM audit_trail \
     WHERE stream = $1 AND kind = 'record' AND seq > $2 AND seq < COALESCE( \
         (SELECT MIN(seq) FROM audit_trail \
          WHERE stream = $1 AND kind = 'record' AND recorded_at >= $3::timestamptz), \
         9223372036854775807) \
     ORDER BY seq DESC LIMIT 1";
const PREFIX_LINES: &str = "SELECT seq, line FROM audit_trail \
     WHERE stream = $1 AND kind = 'record' AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT 1000";
const WRITE_ANCHOR: &str = "INSERT INTO audit_trail_anchors (stream, seq, hash, line) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (stream) DO UPDATE \
     SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, line = EXCLUDED.line, anchored_at = now()";
const PURGE_STREAM: &str = "SELECT set_config('docaiche.audit_purge_stream', $1, true)";
const DELETE_PREFIX: &str = "DELETE FROM audit_trail WHERE stream = $1 AND seq <= $2";
const STREAMS: &str = "SELECT stream FROM audit_trail_heads ORDER BY stream";
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
    tree_heads: Option<TreeHeadPolicy>,
    clock: Arc<dyn Clock>,
}

/// A stream's head row, locked.
struct LockedHead {
    head: Head,
    /// `None`: not built (or cleared); `Some(None)`: no tree (the
    /// stream's start is gone).
    tree: Option<Option<Frontier>>,
    signed_size: u64,
    signed_time: Option<OffsetDateTime>,
}

impl LockedHead {
    fn from_row(row: &sqlx::postgres::PgRow) -> Result<Self> {
        let seq: i64 = row.try_get("seq").map_err(db)?;
        let hash: String = row.try_get("hash").map_err(db)?;
        let tree_size: Option<i64> = row.try_get("tree_size").map_err(db)?;
        let frontier: Option<String> = row.try_get("frontier").map_err(db)?;
        let signed_size: Option<i64> = row.try_get("signed_size").map_err(db)?;
        let signed_time: Option<String> = row.try_get("signed_time").map_err(db)?;
        let corrupt = || Error::internal("stored audit tree is not readable");
        let tree = match tree_size {
            None => None,
            Some(size) if size < 0 => Some(None),
            Some(size) => {
                let bytes = hex::decode(frontier.unwrap_or_default()).map_err(|_| corrupt())?;
                let hashes = bytes
                    .chunks_exact(32)
                    .map(|c| <[u8; 32]>::try_from(c).map(Hash::from_bytes))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|_| corrupt())?;
                let size = u64::try_from(size).map_err(|_| corrupt())?;
                Some(Some(
                    Frontier::from_parts(size, hashes).map_err(|_| corrupt())?,
                ))
            }
        };
        Ok(Self {
            head: head_of(seq, &hash)?,
            tree,
            signed_size: signed_size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            signed_time: signed_time
                .map(|t| OffsetDateTime::parse(&t, &Rfc3339).map_err(|_| corrupt()))
                .transpose()?,
        })
    }
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
            tree_heads: None,
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

    /// Keep each stream's Merkle tree and sign its heads under `policy`:
    /// with a record when the stream's last head is at least
    /// [`TreeHeadPolicy::every`] old (or it has none), and from
    /// [`sign_due_heads`](Self::sign_due_heads) for the tail of a burst and
    /// for quiet streams ([`TreeHeadPolicy::idle`]): run
    /// [`sign_heads_forever`](Self::sign_heads_forever) in one process.
    #[must_use]
    pub fn with_tree_heads(mut self, policy: TreeHeadPolicy) -> Self {
        self.tree_heads = Some(policy);
        self
    }

    /// Sign every head that is due: for each stream with a tree (built
    /// first if it never was), a head when it has records no head covers
    /// and its last head is [`TreeHeadPolicy::every`] old, or when its last
    /// head is [`TreeHeadPolicy::idle`] old. One transaction a stream, under
    /// the stream's head lock (so writers in other processes never race
    /// it). Returns the heads signed (0 without tree heads).
    ///
    /// # Errors
    /// `Unavailable` if the database fails.
    pub async fn sign_due_heads(&self) -> Result<u64> {
        let Some(policy) = &self.tree_heads else {
            return Ok(0);
        };
        let streams: Vec<String> = sqlx::query_scalar(TREE_STREAMS)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut signed = 0;
        for stream in streams {
            let mut tx = self.pool.begin().await.map_err(db)?;
            let row = sqlx::query(LOCK_HEAD)
                .bind(&stream)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            let mut locked = LockedHead::from_row(&row)?;
            let mut frontier = self.load_tree(&mut tx, &stream, &locked).await?;
            let head = self
                .maybe_sign(
                    &mut tx,
                    policy,
                    &stream,
                    frontier.as_mut(),
                    &mut locked,
                    false,
                )
                .await?;
            self.move_head(&mut tx, &stream, &locked, frontier.as_ref())
                .await?;
            tx.commit().await.map_err(db)?;
            signed += u64::from(head);
        }
        Ok(signed)
    }

    /// [`sign_due_heads`](Self::sign_due_heads) every
    /// [`TreeHeadPolicy`] tick (a quarter of the shorter interval) of the
    /// trail's clock, forever; failures are logged and retried at the next
    /// tick. Spawn it once (`tokio::spawn(trail.clone().sign_heads_forever())`).
    pub async fn sign_heads_forever(self) {
        let Some(period) = self.tree_heads.as_ref().map(TreeHeadPolicy::tick) else {
            return;
        };
        loop {
            self.clock.sleep(period).await;
            if let Err(error) = self.sign_due_heads().await {
                tracing::warn!(error = %error.log_chain(), "audit trail (postgres): tree heads not signed");
            }
        }
    }

    /// The stream's frontier, rebuilt from its records if the row holds
    /// none (`None`: the stream has no tree).
    async fn load_tree(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        stream: &str,
        locked: &LockedHead,
    ) -> Result<Option<Frontier>> {
        if self.tree_heads.is_none() {
            return Ok(None);
        }
        if let Some(tree) = &locked.tree {
            return Ok(tree.clone());
        }
        let anchored: bool = sqlx::query_scalar(IS_ANCHORED)
            .bind(stream)
            .fetch_one(&mut **tx)
            .await
            .map_err(db)?;
        if anchored {
            return Ok(None);
        }
        let mut frontier = Frontier::new();
        let mut rows = sqlx::query_as::<_, (i64, String)>(STREAM_RECORDS)
            .bind(stream)
            .fetch(&mut **tx);
        while let Some((seq, hash)) = rows.try_next().await.map_err(db)? {
            let head = head_of(seq, &hash)?;
            if head.seq != frontier.size() + 1 {
                // A gap: no root over a hole.
                return Ok(None);
            }
            frontier.push(merkle_leaf(&head.hash));
        }
        Ok(Some(frontier))
    }

    /// Sign and insert the stream's head if it is due (`grew`: a record was
    /// just added to it). Returns whether one was signed.
    async fn maybe_sign(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        policy: &TreeHeadPolicy,
        stream: &str,
        frontier: Option<&mut Frontier>,
        locked: &mut LockedHead,
        grew: bool,
    ) -> Result<bool> {
        let Some(frontier) = frontier else {
            return Ok(false);
        };
        if frontier.is_empty() {
            return Ok(false);
        }
        let now = self.clock.now();
        let grown = frontier.size() > locked.signed_size || grew;
        let due = match locked.signed_time {
            None => true,
            Some(last) => {
                let age = now - last;
                (grown && age >= policy.every) || age >= policy.idle
            }
        };
        if !due {
            return Ok(false);
        }
        let time = locked.signed_time.map_or(now, |last| now.max(last));
        let head = TreeHead::sign(
            &policy.key,
            &policy.origin_of(stream),
            frontier.size(),
            frontier.root(),
            time,
        )?;
        let line = String::from_utf8(head.to_line())
            .map_err(|_| Error::internal("tree head is not utf-8"))?;
        sqlx::query(INSERT_LINE)
            .bind("tree_head")
            .bind(stream)
            .bind(to_i64(head.size)?)
            .bind(head.root.to_hex())
            .bind(line)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        locked.signed_size = head.size;
        locked.signed_time = Some(time);
        Ok(true)
    }

    /// Write the locked row back: the chain's head, the tree (cleared when
    /// this writer keeps none) and the last signed head.
    async fn move_head(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        stream: &str,
        locked: &LockedHead,
        frontier: Option<&Frontier>,
    ) -> Result<()> {
        if self.tree_heads.is_none() {
            sqlx::query(MOVE_HEAD_CLEAR_TREE)
                .bind(stream)
                .bind(to_i64(locked.head.seq)?)
                .bind(locked.head.hash.to_hex())
                .execute(&mut **tx)
                .await
                .map_err(db)?;
            return Ok(());
        }
        let (tree_size, hex_frontier) = match frontier {
            None => (-1, None),
            Some(frontier) => {
                let mut bytes = Vec::with_capacity(32 * frontier.hashes().len());
                for hash in frontier.hashes() {
                    bytes.extend_from_slice(hash.as_bytes());
                }
                (to_i64(frontier.size())?, Some(hex::encode(bytes)))
            }
        };
        let signed_time = locked
            .signed_time
            .map(|t| t.format(&Rfc3339))
            .transpose()
            .map_err(|_| Error::internal("tree head time does not format"))?;
        sqlx::query(MOVE_HEAD)
            .bind(stream)
            .bind(to_i64(locked.head.seq)?)
            .bind(locked.head.hash.to_hex())
            .bind(tree_size)
            .bind(hex_frontier)
            .bind(to_i64(locked.signed_size)?)
            .bind(signed_time)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Read checkpoint times from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The statements granting `role` what writing the trail needs and no
    /// more: `SELECT, INSERT` on the records, `SELECT, INSERT, UPDATE` on
    /// the heads, `SELECT` on the anchors.
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
            format!("GRANT SELECT ON audit_trail_anchors TO {role}"),
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
    /// commits during the walk is not half seen). The anchors of
    /// `audit_trail_anchors` are given to the walk (see
    /// [`Verifier::with_anchor`]): they count only if they verify under the
    /// verifier's key.
    ///
    /// # Errors
    /// `Unavailable` if reading fails.
    pub async fn verify(&self, verifier: &Verifier) -> Result<VerifyReport> {
        const PAGE_ROWS: i64 = 1000;
        let source = format!("postgres:{TABLE}");
        let mut after = 0i64;
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // Retention anchors: honoured when they verify under the
        // verifier's key (a schema migrated before anchors has none).
        let mut with_anchors = verifier.clone();
        let anchors_exist: bool = sqlx::query_scalar(ANCHORS_EXIST)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if anchors_exist {
            let lines: Vec<String> = sqlx::query_scalar(ANCHORS)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            for line in lines {
                // An unreadable anchor vouches for nothing: the walk then
                // reports the stream's missing start.
                if let Ok(anchor) = Anchor::parse(line.as_bytes()) {
                    with_anchors = with_anchors.with_anchor(anchor);
                }
            }
        }
        let mut walk = with_anchors.walk();
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
        let mut locked = LockedHead::from_row(&row)?;
        let mut frontier = self.load_tree(&mut tx, stream, &locked).await?;
        let record = encode_record(stream, locked.head, &json)?;
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
        locked.head = Head::new(record.seq, record.hash);
        if let Some(frontier) = &mut frontier {
            frontier.push(merkle_leaf(&record.hash));
        }
        if let Some(policy) = &self.tree_heads {
            self.maybe_sign(
                &mut tx,
                policy,
                stream,
                frontier.as_mut(),
                &mut locked,
                true,
            )
            .await?;
        }
        self.move_head(&mut tx, stream, &locked, frontier.as_ref())
            .await?;
        tx.commit().await.map_err(db)?;
        Ok(AuditReceipt::new(Some(record.seq)))
    }
}

fn stream_name(tenant: Option<&TenantId>) -> &str {
    tenant.map_or(NO_TENANT_STREAM, TenantId::as_str)
}

fn head_of(seq: i64, hash: &str) -> Result<Head> {
    Ok(Head::new(
        u64::try_from(seq).map_err(|_| Error::internal("stored audit sequence is negative"))?,
        Hash::from_hex(hash).map_err(|_| Error::internal("stored audit hash is not a hash"))?,
    ))
}

impl PgAuditTrail {
    /// The last record of `tenant`'s stream (`None`: the events without a
    /// tenant) that can go at `cutoff`: the end of the longest prefix after
    /// the stream's anchor whose every record was stored (`recorded_at`,
    /// the database's clock, not the event's claimed time) before `cutoff`.
    /// `None` when nothing has expired.
    ///
    /// # Errors
    /// `Unavailable` if reading fails.
    pub async fn expired_prefix(
        &self,
        tenant: Option<&TenantId>,
        cutoff: time::OffsetDateTime,
    ) -> Result<Option<Head>> {
        let stream = stream_name(tenant);
        let anchored: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM audit_trail_anchors WHERE stream = $1")
                .bind(stream)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        let row: Option<(i64, String)> = sqlx::query_as(EXPIRED_PREFIX)
            .bind(stream)
            .bind(anchored.unwrap_or(0))
            .bind(
                cutoff
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(|_| Error::invalid_input("cutoff does not format"))?,
            )
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|(seq, hash)| head_of(seq, &hash)).transpose()
    }

    /// Remove `tenant`'s stream up to and including `through` (a head
    /// [`PgAuditTrail::expired_prefix`] returned), as the table's owner
    /// (`owner`: a pool connecting as the role owning `audit_trail`), in
    /// one transaction: lock the stream's anchor, check that the current
    /// anchor verifies under `key` and that the records being removed chain
    /// from it to `through`, write the new anchor (signed with `key`), name
    /// the stream in `docaiche.audit_purge_stream`, delete the prefix (its
    /// checkpoints included), commit. Returns the records removed.
    ///
    /// # Errors
    /// `Conflict` if the anchor or the prefix does not verify (nothing is
    /// removed: the evidence stays), `InvalidInput` if `through` is not at
    /// or after the anchor, `Unavailable` on database errors, including the
    /// trigger's refusal when `owner` is not the owner.
    pub async fn purge_through(
        &self,
        owner: &PgPool,
        tenant: Option<&TenantId>,
        through: Head,
        key: &CheckpointKey,
        now: time::OffsetDateTime,
    ) -> Result<u64> {
        let stream = stream_name(tenant);
        let mut tx = owner.begin().await.map_err(db)?;
        let current: Option<(i64, String, String)> = sqlx::query_as(ANCHOR_OF)
            .bind(stream)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let start = match current {
            Some((seq, hash, line)) => {
                let anchor = Anchor::parse(line.as_bytes())?;
                let head = head_of(seq, &hash)?;
                if !anchor.is_signed_by(key) || anchor.streams.get(stream) != Some(&head) {
                    return Err(Error::conflict(
                        "the audit stream's anchor does not verify: nothing purged",
                    ));
                }
                head
            }
            None => Head::EMPTY,
        };
        if through.seq <= start.seq {
            return Err(Error::invalid_input(
                "the purge must end after the stream's anchor",
            ));
        }
        // The prefix must chain from the anchor to `through`.
        let mut head = start;
        while head.seq < through.seq {
            let rows: Vec<(i64, String)> = sqlx::query_as(PREFIX_LINES)
                .bind(stream)
                .bind(to_i64(head.seq)?)
                .bind(to_i64(through.seq)?)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            if rows.is_empty() {
                break;
            }
            for (_, line) in rows {
                let linked = match parse_line(line.as_bytes()) {
                    Ok(ParsedLine::Record(r)) => {
                        (r.stream == stream && r.seq == head.seq + 1 && r.prev == head.hash)
                            .then_some(Head::new(r.seq, r.hash))
                    }
                    _ => None,
                };
                head = linked.ok_or_else(|| {
                    Error::conflict("the audit stream does not verify: nothing purged")
                })?;
            }
        }
        if head != through {
            return Err(Error::conflict(
                "the audit stream does not verify up to the purge point: nothing purged",
            ));
        }
        let anchor = Anchor::sign(
            key,
            std::collections::BTreeMap::from([(stream.to_owned(), through)]),
            Vec::new(),
            now,
            now,
        )?;
        let line = String::from_utf8(anchor.to_line())
            .map_err(|_| Error::internal("audit anchor is not utf-8"))?;
        sqlx::query(WRITE_ANCHOR)
            .bind(stream)
            .bind(to_i64(through.seq)?)
            .bind(through.hash.to_hex())
            .bind(line)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(PURGE_STREAM)
            .bind(stream)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(DELETE_PREFIX)
            .bind(stream)
            .bind(to_i64(through.seq)?)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(through.seq - start.seq)
    }

    /// [`expired_prefix`](Self::expired_prefix) then
    /// [`purge_through`](Self::purge_through): remove what of `tenant`'s
    /// stream was stored before `cutoff`. Returns the records removed.
    ///
    /// # Errors
    /// As those two.
    pub async fn purge_before(
        &self,
        owner: &PgPool,
        tenant: Option<&TenantId>,
        cutoff: time::OffsetDateTime,
        key: &CheckpointKey,
    ) -> Result<u64> {
        match self.expired_prefix(tenant, cutoff).await? {
            Some(through) => {
                self.purge_through(owner, tenant, through, key, self.clock.now())
                    .await
            }
            None => Ok(0),
        }
    }
}

/// The `audit` retention period applied to the PostgreSQL trail, stream by
/// stream (each tenant's own period, the default one for events without a
/// tenant), through [`PgAuditTrail::purge_through`] on a pool of the
/// table's owner. A tenant under an active legal hold on `audit` (or on
/// every kind) is skipped (`retention.suspended`); otherwise a
/// `retention.purge` event (resource kind `audit`, records removed, the
/// last sequence, the cutoff) is recorded before the prefix goes.
#[derive(Debug, Clone)]
pub struct PgTrailRetention {
    trail: PgAuditTrail,
    key: CheckpointKey,
}

impl PgTrailRetention {
    /// Retention of the trail in `owner`'s database (and `search_path`),
    /// `owner` connecting as the role owning `audit_trail`; anchors signed
    /// with `key` (the checkpoint key).
    #[must_use]
    pub fn new(owner: PgPool, key: CheckpointKey) -> Self {
        Self {
            trail: PgAuditTrail::existing(owner),
            key,
        }
    }
}

#[async_trait::async_trait]
impl crate::retention::TrailRetention for PgTrailRetention {
    async fn purge_trail(
        &self,
        policies: &crate::retention::RetentionPolicies,
        holds: &dyn crate::retention::LegalHoldRegistry,
        audit: &dyn AuditSink,
        now: time::OffsetDateTime,
    ) -> Result<std::collections::BTreeMap<TenantId, crate::retention::KindPurge>> {
        use crate::retention::{KindPurge, resource};
        use docaiche_core::RequestContext;
        use docaiche_core::audit::{AuditOutcome, AuditResource};

        let streams: Vec<String> = sqlx::query_scalar(STREAMS)
            .fetch_all(self.trail.pool())
            .await
            .map_err(db)?;
        let mut out = std::collections::BTreeMap::new();
        for stream in streams {
            let StreamRule {
                tenant,
                days,
                cutoff,
                hold,
            } = StreamRule::of(&stream, policies, holds, now).await?;
            let (Some(days), Some(cutoff)) = (days, cutoff) else {
                continue;
            };
            let Some(through) = self.trail.expired_prefix(tenant.as_ref(), cutoff).await? else {
                continue;
            };
            let cutoff_text = cutoff
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            if let (Some(tenant), Some(hold)) = (&tenant, hold) {
                audit
                    .record(&crate::retention::suspended_event(
                        tenant,
                        hold,
                        resource::AUDIT,
                        now,
                    ))
                    .await?;
                out.insert(
                    tenant.clone(),
                    KindPurge {
                        retention_days: days,
                        suspended_by_hold: true,
                        ..KindPurge::default()
                    },
                );
                continue;
            }
            let mut event = AuditEvent::new(
                "retention.purge",
                AuditOutcome::Success,
                now,
                &RequestContext::new(),
            )
            .on(AuditResource::new(resource::AUDIT, stream.clone()))
            .because("retention_expired")
            .with_detail("through_seq", through.seq.into())
            .with_detail("retention_days", days.into())
            .with_detail("cutoff", cutoff_text.into());
            if let Some(tenant) = &tenant {
                event = event.by(tenant.clone(), None);
            }
            audit.record(&event).await?;
            let removed = self
                .trail
                .purge_through(self.trail.pool(), tenant.as_ref(), through, &self.key, now)
                .await?;
            if let Some(tenant) = tenant {
                out.insert(
                    tenant,
                    KindPurge {
                        retention_days: days,
                        purged: removed,
                        ..KindPurge::default()
                    },
                );
            }
        }
        Ok(out)
    }
}
