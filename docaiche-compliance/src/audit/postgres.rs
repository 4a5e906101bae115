//! [`PgAuditTrail`]: the chained trail in PostgreSQL.

use std::sync::Arc;

use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};
use docaiche_core::clock::{Clock, SystemClock};
use docaiche_core::{Error, Result, TenantId};
use sqlx::{PgPool, Row};

use super::anchor::Anchor;
use super::chain::CheckpointPolicy;
use super::record::{
    CheckpointKey, GENESIS, Hash, Head, NO_TENANT_STREAM, ParsedLine, encode_record, event_json,
    event_of, parse_line, stream_of,
};
use super::trail_retention::StreamRule;
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
const LOCK_HEAD: &str = "SELECT seq, hash FROM audit_trail_heads WHERE stream = $1 FOR UPDATE";
const INSERT_LINE: &str =
    "INSERT INTO audit_trail (kind, stream, seq, hash, line) VALUES ($1, $2, $3, $4, $5)";
const MOVE_HEAD: &str = "UPDATE audit_trail_heads SET seq = $2, hash = $3 WHERE stream = $1";
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
