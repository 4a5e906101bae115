//! The SQL text of every SQLite adapter statement, public (but hidden from
//! the docs) so that the index test can `EXPLAIN QUERY PLAN` exactly what
//! the adapters run. Every statement is parameterized; every tenant-scoped
//! one has `tenant_id = ?` in its predicate.

use std::sync::LazyLock;

use sqlx::{QueryBuilder, Sqlite};

use crate::sql::{API_KEY_COLUMNS, API_KEY_SELECT, DOCUMENT_COLUMNS, JOB_COLUMNS, LEASE_LOST};

/// Insert a document: id, tenant, owner, filename, content type, size, sha256, content, created_at.
pub const DOCUMENT_INSERT: &str = "INSERT INTO documents (id, tenant_id, owner_id, filename, content_type, size, \
     sha256, content, text_pages, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, \
     ?8, NULL, ?9)";
/// A document with content: tenant, id.
pub static DOCUMENT_GET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {DOCUMENT_COLUMNS}, content FROM documents WHERE tenant_id = ?1 AND id \
         = ?2"
    )
});
/// A document's metadata: tenant, id.
pub static DOCUMENT_HEAD: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {DOCUMENT_COLUMNS} FROM documents WHERE tenant_id = ?1 AND id = ?2")
});
/// A page of documents: tenant, after id, limit.
pub static DOCUMENT_LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE tenant_id = ?1 AND id > ?2 \
         ORDER BY id LIMIT ?3"
    )
});
/// A page of an owner's documents: tenant, owner, after id, limit.
pub static DOCUMENT_LIST_BY_OWNER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE tenant_id = ?1 AND owner_id = \
         ?2 AND id > ?3 ORDER BY id LIMIT ?4"
    )
});
/// A tenant's document count and content bytes (`usage`, for quotas).
pub const DOCUMENT_USAGE: &str =
    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM documents WHERE tenant_id = ?1";
/// Delete a document: tenant, id.
pub const DOCUMENT_DELETE: &str = "DELETE FROM documents WHERE tenant_id = ?1 AND id = ?2";
/// Store text: tenant, id, pages (json), risk flags (`risks_column`).
pub const DOCUMENT_PUT_TEXT: &str =
    "UPDATE documents SET text_pages = ?3, risks = ?4 WHERE tenant_id = ?1 AND id = ?2";
/// Fetch text and risk flags: tenant, id.
pub const DOCUMENT_GET_TEXT: &str =
    "SELECT text_pages, risks FROM documents WHERE tenant_id = ?1 AND id = ?2";
/// Insert an api key record (columns in `API_KEY_COLUMNS` order).
pub static API_KEY_INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, \
         ?8, ?9, ?10, ?11, ?12, ?13)"
    )
});
/// The unscoped lookup of the contract: lookup.
pub static API_KEY_FIND_BY_LOOKUP: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM api_keys WHERE lookup = ?1", *API_KEY_SELECT));
/// A record: tenant, id.
pub static API_KEY_GET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM api_keys WHERE tenant_id = ?1 AND id = ?2",
        *API_KEY_SELECT
    )
});
/// A page of records: tenant, after id, limit.
pub static API_KEY_LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM api_keys WHERE tenant_id = ?1 AND id > ?2 ORDER \
         BY id LIMIT ?3",
        *API_KEY_SELECT
    )
});
/// Revoke, keeping the first time: tenant, id, at.
pub const API_KEY_REVOKE: &str = "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE tenant_id = ?1 \
     AND id = ?2";
/// Delete a record: tenant, id.
pub const API_KEY_DELETE: &str = "DELETE FROM api_keys WHERE tenant_id = ?1 AND id = ?2";
/// Rotate: tenant, id, replaced_by, valid_until.
pub const API_KEY_MARK_ROTATED: &str = "UPDATE api_keys SET replaced_by = COALESCE(replaced_by, ?3), expires_at = CASE \
     WHEN expires_at IS NULL OR expires_at > ?4 THEN ?4 ELSE expires_at END WHERE \
     tenant_id = ?1 AND id = ?2";
/// Move one key's last use forward: tenant, id, used_at.
pub const API_KEY_RECORD_USAGE: &str = "UPDATE api_keys SET last_used_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND \
     (last_used_at IS NULL OR last_used_at < ?3)";
/// Revoke a token id until: token, expires_at.
pub const REVOCATION_UPSERT: &str = "INSERT INTO token_revocations (token_id, expires_at) VALUES (?1, ?2) ON \
     CONFLICT (token_id) DO UPDATE SET expires_at = excluded.expires_at WHERE \
     excluded.expires_at > token_revocations.expires_at";
/// Whether revoked: token, now.
pub const REVOCATION_CHECK: &str =
    "SELECT 1 FROM token_revocations WHERE token_id = ?1 AND expires_at > ?2";
/// Forget expired revocations: now.
pub const REVOCATION_PURGE: &str = "DELETE FROM token_revocations WHERE expires_at <= ?1";
/// Revoke a subject: tenant, principal, through, expires_at (each only
/// ever moves later).
pub const SUBJECT_REVOCATION_UPSERT: &str = "INSERT INTO subject_revocations \
     (tenant_id, principal_id, through, expires_at) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (tenant_id, principal_id) DO UPDATE SET \
     through = max(subject_revocations.through, excluded.through), \
     expires_at = max(subject_revocations.expires_at, excluded.expires_at)";
/// Through when a subject is revoked: tenant, principal, now.
pub const SUBJECT_REVOCATION_CHECK: &str = "SELECT through FROM subject_revocations \
     WHERE tenant_id = ?1 AND principal_id = ?2 AND expires_at > ?3";
/// Whether a token is revoked by its id or its subject, in one round trip:
/// token, tenant, principal, now, the token's `iat` second in µs.
pub const TOKEN_OR_SUBJECT_REVOKED: &str = "SELECT EXISTS (SELECT 1 FROM token_revocations \
     WHERE token_id = ?1 AND expires_at > ?4) OR EXISTS (SELECT 1 FROM subject_revocations \
     WHERE tenant_id = ?2 AND principal_id = ?3 AND expires_at > ?4 AND through >= ?5)";
/// Forget expired subject revocations: now.
pub const SUBJECT_REVOCATION_PURGE: &str = "DELETE FROM subject_revocations WHERE expires_at <= ?1";
/// Enqueue: id, tenant, kind, payload, max_attempts, now, run_after.
pub static JOB_INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, 'queued', 0, ?5, 0, \
         NULL, NULL, ?6, ?6, ?7, NULL, NULL)"
    )
});
/// Extend a held lease: id, token, progress, new expiry, now, tenant.
pub const JOB_HEARTBEAT: &str = "UPDATE jobs SET progress = ?3, lease_expires_at = ?4 WHERE tenant_id = ?6 AND \
     id = ?1 AND lease_token = ?2 AND state = 'running' AND lease_expires_at > ?5";
/// Whether a lease's job was cancelled: id, token, tenant.
pub const JOB_LEASE_CANCELLED: &str = "SELECT 1 FROM jobs WHERE tenant_id = ?3 AND id = ?1 AND lease_token = ?2 AND \
     state = 'cancelled'";
/// Complete: id, token, result, now, tenant.
pub const JOB_COMPLETE: &str = "UPDATE jobs SET state = 'succeeded', progress = 100, result = ?3, updated_at = \
     ?4 WHERE tenant_id = ?5 AND id = ?1 AND lease_token = ?2 AND state = 'running' \
     AND lease_expires_at > ?4";
/// Fail: id, token, error, now, retry-at (null: no retry), tenant.
pub const JOB_FAIL: &str = "UPDATE jobs SET last_error = ?3, updated_at = ?4, state = CASE WHEN ?5 IS NOT \
     NULL AND attempts < max_attempts THEN 'queued' ELSE 'dead' END, run_after = \
     CASE WHEN ?5 IS NOT NULL AND attempts < max_attempts THEN ?5 ELSE run_after \
     END WHERE tenant_id = ?6 AND id = ?1 AND lease_token = ?2 AND state = \
     'running' AND lease_expires_at > ?4 RETURNING state";
/// Cancel: tenant, id, now.
pub const JOB_CANCEL: &str = "UPDATE jobs SET state = 'cancelled', updated_at = ?3 WHERE tenant_id = ?1 AND \
     id = ?2 AND state IN ('queued', 'running')";
/// A job: tenant, id.
pub static JOB_GET: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = ?1 AND id = ?2"));
/// A page of jobs: tenant, after id, limit.
pub static JOB_LIST: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3")
});
/// A page of jobs in one state: tenant, state, after id, limit.
pub static JOB_LIST_IN_STATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = ?1 AND state = ?2 AND id > ?3 \
         ORDER BY id LIMIT ?4"
    )
});
/// Queue a dead job again: tenant, id, now.
pub const JOB_RETRY: &str = "UPDATE jobs SET state = 'queued', attempts = 0, progress = 0, \
     run_after = ?3, updated_at = ?3, lease_token = NULL, lease_expires_at = NULL \
     WHERE tenant_id = ?1 AND id = ?2 AND state = 'dead'";
/// Record an event: id, tenant (nullable), time, action, outcome, json.
pub const AUDIT_INSERT: &str = "INSERT INTO audit_events (id, tenant_id, occurred_at, action, outcome, event) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING RETURNING seq";
/// The sequence of an event recorded before: id, tenant (nullable).
pub const AUDIT_SEQ_OF: &str = "SELECT seq FROM audit_events WHERE id = ?1 AND tenant_id IS ?2";
/// A page of a tenant's events: tenant, after seq, limit.
pub const AUDIT_EVENTS: &str = "SELECT seq, event FROM audit_events WHERE tenant_id = ?1 AND seq > ?2 ORDER BY \
     seq LIMIT ?3";

/// `kind IN (?, ?, …)` with each kind bound as bytes.
fn push_kinds(query: &mut QueryBuilder<'_, Sqlite>, kinds: &[&str]) {
    query.push("kind IN (");
    let mut list = query.separated(", ");
    for kind in kinds {
        list.push_bind(kind.as_bytes().to_vec());
    }
    list.push_unseparated(")");
}

/// Dead-letter the jobs of `kinds` whose last allowed attempt's lease lapsed
/// by `now`.
pub fn job_dead_letter(kinds: &[&str], now: i64) -> QueryBuilder<'static, Sqlite> {
    let mut dead = QueryBuilder::new("UPDATE jobs SET state = 'dead', last_error = ");
    dead.push_bind(LEASE_LOST.as_bytes().to_vec())
        .push(", updated_at = ")
        .push_bind(now)
        .push(" WHERE state IN ('queued', 'running') AND state = 'running' AND ");
    push_kinds(&mut dead, kinds);
    dead.push(" AND lease_expires_at <= ")
        .push_bind(now)
        .push(" AND attempts >= max_attempts");
    dead
}

/// Claim the oldest runnable job of `kinds` at `now` under `token` until
/// `expires`.
pub fn job_claim(
    kinds: &[&str],
    now: i64,
    token: uuid::Uuid,
    expires: i64,
) -> QueryBuilder<'static, Sqlite> {
    let mut claim = QueryBuilder::new(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = ",
    );
    claim
        .push_bind(now)
        .push(", lease_token = ")
        .push_bind(token)
        .push(", lease_expires_at = ")
        .push_bind(expires)
        .push(" WHERE id = (SELECT id FROM jobs WHERE state IN ('queued', 'running') AND ");
    push_kinds(&mut claim, kinds);
    claim
        .push(" AND ((state = 'queued' AND run_after <= ")
        .push_bind(now)
        .push(") OR (state = 'running' AND lease_expires_at <= ")
        .push_bind(now)
        .push(" AND attempts < max_attempts)) ORDER BY id LIMIT 1) RETURNING ")
        .push(JOB_COLUMNS);
    claim
}
