//! The SQL text of every PostgreSQL adapter statement, public (but hidden
//! from the docs) so that the index test can `EXPLAIN` exactly what the
//! adapters run. Every statement is parameterized; every tenant-scoped one
//! has `tenant_id = $1` in its predicate.

use std::sync::LazyLock;

use crate::sql::{API_KEY_COLUMNS, API_KEY_SELECT, DOCUMENT_COLUMNS, JOB_COLUMNS};

/// Insert a document: id, tenant, owner, filename, content type, size,
/// sha256, content, created_at.
pub const DOCUMENT_INSERT: &str = "INSERT INTO documents (id, tenant_id, owner_id, filename, \
     content_type, size, sha256, content, text_pages, created_at) \
     VALUES ($2, $1, $3, $4, $5, $6, $7, $8, NULL, $9)";
/// A document with content: tenant, id.
pub static DOCUMENT_GET: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {DOCUMENT_COLUMNS}, content FROM documents WHERE tenant_id = $1 AND id = $2")
});
/// A document's metadata: tenant, id.
pub static DOCUMENT_HEAD: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {DOCUMENT_COLUMNS} FROM documents WHERE tenant_id = $1 AND id = $2")
});
/// A page of documents: tenant, after id, limit.
pub static DOCUMENT_LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE tenant_id = $1 AND id > $2 \
         ORDER BY id LIMIT $3"
    )
});
/// A page of an owner's documents: tenant, owner, after id, limit.
pub static DOCUMENT_LIST_BY_OWNER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {DOCUMENT_COLUMNS} FROM documents \
         WHERE tenant_id = $1 AND owner_id = $2 AND id > $3 ORDER BY id LIMIT $4"
    )
});
/// A tenant's document count and content bytes (`usage`, for quotas).
pub const DOCUMENT_USAGE: &str =
    "SELECT COUNT(*), COALESCE(SUM(size), 0)::BIGINT FROM documents WHERE tenant_id = $1";
/// Delete a document: tenant, id.
pub const DOCUMENT_DELETE: &str = "DELETE FROM documents WHERE tenant_id = $1 AND id = $2";
/// Store text: tenant, id, pages (json), risk flags (`risks_column`).
pub const DOCUMENT_PUT_TEXT: &str =
    "UPDATE documents SET text_pages = $3, risks = $4 WHERE tenant_id = $1 AND id = $2";
/// Fetch text and risk flags: tenant, id.
pub const DOCUMENT_GET_TEXT: &str =
    "SELECT text_pages, risks FROM documents WHERE tenant_id = $1 AND id = $2";

/// Insert an api key record (columns in `API_KEY_COLUMNS` order, tenant first).
pub static API_KEY_INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO api_keys ({API_KEY_COLUMNS}) \
         VALUES ($2, $1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )
});
/// The unscoped lookup of the contract: lookup.
pub static API_KEY_FIND_BY_LOOKUP: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM api_keys WHERE lookup = $1", *API_KEY_SELECT));
/// A record: tenant, id.
pub static API_KEY_GET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM api_keys WHERE tenant_id = $1 AND id = $2",
        *API_KEY_SELECT
    )
});
/// A page of records: tenant, after id, limit.
pub static API_KEY_LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM api_keys WHERE tenant_id = $1 AND id > $2 \
         ORDER BY id LIMIT $3",
        *API_KEY_SELECT
    )
});
/// Revoke, keeping the first time: tenant, id, at.
pub const API_KEY_REVOKE: &str = "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) \
     WHERE tenant_id = $1 AND id = $2";
/// Delete a record: tenant, id.
pub const API_KEY_DELETE: &str = "DELETE FROM api_keys WHERE tenant_id = $1 AND id = $2";
/// Rotate: tenant, id, replaced_by, valid_until.
pub const API_KEY_MARK_ROTATED: &str = "UPDATE api_keys \
     SET replaced_by = COALESCE(replaced_by, $3), \
     expires_at = CASE WHEN expires_at IS NULL OR expires_at > $4 THEN $4 ELSE expires_at END \
     WHERE tenant_id = $1 AND id = $2";
/// Move last-used forward for one tenant's keys: tenant, ids, times.
pub const API_KEY_RECORD_USAGE: &str = "UPDATE api_keys AS k SET last_used_at = u.used_at \
     FROM UNNEST($2::uuid[], $3::bigint[]) AS u(id, used_at) \
     WHERE k.tenant_id = $1 AND k.id = u.id \
     AND (k.last_used_at IS NULL OR k.last_used_at < u.used_at)";

/// Revoke a token id until: token, expires_at.
pub const REVOCATION_UPSERT: &str = "INSERT INTO token_revocations (token_id, expires_at) \
     VALUES ($1, $2) ON CONFLICT (token_id) DO UPDATE SET expires_at = excluded.expires_at \
     WHERE excluded.expires_at > token_revocations.expires_at";
/// Whether revoked: token, now.
pub const REVOCATION_CHECK: &str =
    "SELECT 1::bigint FROM token_revocations WHERE token_id = $1 AND expires_at > $2";
/// Forget expired revocations: now.
pub const REVOCATION_PURGE: &str = "DELETE FROM token_revocations WHERE expires_at <= $1";
/// Revoke a subject: tenant, principal, through, expires_at (each only
/// ever moves later).
pub const SUBJECT_REVOCATION_UPSERT: &str = "INSERT INTO subject_revocations \
     (tenant_id, principal_id, through, expires_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (tenant_id, principal_id) DO UPDATE SET \
     through = GREATEST(subject_revocations.through, excluded.through), \
     expires_at = GREATEST(subject_revocations.expires_at, excluded.expires_at)";
/// Through when a subject is revoked: tenant, principal, now.
pub const SUBJECT_REVOCATION_CHECK: &str = "SELECT through FROM subject_revocations \
     WHERE tenant_id = $1 AND principal_id = $2 AND expires_at > $3";
/// Whether a token is revoked by its id or its subject, in one round trip:
/// token, tenant, principal, now, the token's `iat` second in µs.
pub const TOKEN_OR_SUBJECT_REVOKED: &str = "SELECT EXISTS (SELECT 1 FROM token_revocations \
     WHERE token_id = $1 AND expires_at > $4) OR EXISTS (SELECT 1 FROM subject_revocations \
     WHERE tenant_id = $2 AND principal_id = $3 AND expires_at > $4 AND through >= $5)";
/// Forget expired subject revocations: now.
pub const SUBJECT_REVOCATION_PURGE: &str = "DELETE FROM subject_revocations WHERE expires_at <= $1";

/// Enqueue: tenant, id, kind, payload, max_attempts, now, run_after.
pub static JOB_INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO jobs ({JOB_COLUMNS}) VALUES \
         ($2, $1, $3, $4, 'queued', 0, $5, 0, NULL, NULL, $6, $6, $7, NULL, NULL)"
    )
});
/// Dead-letter jobs whose last attempt's lease lapsed: kinds, now, message.
pub const JOB_DEAD_LETTER: &str = "UPDATE jobs SET state = 'dead', last_error = $3, \
     updated_at = $2 WHERE id IN (SELECT id FROM jobs \
     WHERE state IN ('queued', 'running') AND kind = ANY($1) AND state = 'running' \
     AND lease_expires_at <= $2 AND attempts >= max_attempts FOR UPDATE SKIP LOCKED)";
/// Claim the oldest runnable job: kinds, now, token, lease expiry.
pub static JOB_CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = $2, \
         lease_token = $3, lease_expires_at = $4 \
         WHERE id = (SELECT id FROM jobs \
         WHERE state IN ('queued', 'running') AND kind = ANY($1) \
         AND ((state = 'queued' AND run_after <= $2) \
         OR (state = 'running' AND lease_expires_at <= $2 AND attempts < max_attempts)) \
         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING {JOB_COLUMNS}"
    )
});
/// Extend a held lease: tenant, id, token, progress, new expiry, now.
pub const JOB_HEARTBEAT: &str = "UPDATE jobs SET progress = $4, lease_expires_at = $5 \
     WHERE tenant_id = $1 AND id = $2 AND lease_token = $3 AND state = 'running' \
     AND lease_expires_at > $6";
/// Whether a lease's job was cancelled: tenant, id, token.
pub const JOB_LEASE_CANCELLED: &str = "SELECT 1::bigint FROM jobs \
     WHERE tenant_id = $1 AND id = $2 AND lease_token = $3 AND state = 'cancelled'";
/// Complete: tenant, id, token, result, now.
pub const JOB_COMPLETE: &str = "UPDATE jobs SET state = 'succeeded', progress = 100, \
     result = $4, updated_at = $5 \
     WHERE tenant_id = $1 AND id = $2 AND lease_token = $3 AND state = 'running' \
     AND lease_expires_at > $5";
/// Fail: tenant, id, token, error, now, retry-at (null: no retry).
pub const JOB_FAIL: &str = "UPDATE jobs SET last_error = $4, updated_at = $5, \
     state = CASE WHEN $6::bigint IS NOT NULL AND attempts < max_attempts \
             THEN 'queued' ELSE 'dead' END, \
     run_after = CASE WHEN $6::bigint IS NOT NULL AND attempts < max_attempts \
             THEN $6::bigint ELSE run_after END \
     WHERE tenant_id = $1 AND id = $2 AND lease_token = $3 AND state = 'running' \
     AND lease_expires_at > $5 RETURNING state";
/// Cancel: tenant, id, now.
pub const JOB_CANCEL: &str = "UPDATE jobs SET state = 'cancelled', updated_at = $3 \
     WHERE tenant_id = $1 AND id = $2 AND state IN ('queued', 'running')";
/// A job: tenant, id.
pub static JOB_GET: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND id = $2"));
/// A page of jobs: tenant, after id, limit.
pub static JOB_LIST: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3")
});
/// A page of jobs in one state: tenant, state, after id, limit.
pub static JOB_LIST_IN_STATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND state = $2 AND id > $3 \
         ORDER BY id LIMIT $4"
    )
});
/// Queue a dead job again: tenant, id, now.
pub const JOB_RETRY: &str = "UPDATE jobs SET state = 'queued', attempts = 0, progress = 0, \
     run_after = $3, updated_at = $3, lease_token = NULL, lease_expires_at = NULL \
     WHERE tenant_id = $1 AND id = $2 AND state = 'dead'";

/// Record an event: tenant (nullable), id, time, action, outcome, json.
pub const AUDIT_INSERT: &str = "INSERT INTO audit_events \
     (tenant_id, id, occurred_at, action, outcome, event) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (id) DO NOTHING RETURNING seq";
/// The sequence of an event recorded before: tenant (nullable), id.
pub const AUDIT_SEQ_OF: &str = "SELECT seq FROM audit_events \
     WHERE tenant_id IS NOT DISTINCT FROM $1 AND id = $2";
/// A page of a tenant's events: tenant, after seq, limit.
pub const AUDIT_EVENTS: &str = "SELECT seq, event FROM audit_events \
     WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";

/// Top-N keys (`UsageStore::top_keys`): tenant, then `[from, to)` of the
/// day, hour, hour, minute and minute slots (`$2`..`$11`, unused ones
/// `[0, 0)`), the nil key, the limit. Ranked by rate-limited requests when
/// `rate_limited`, else by all requests.
#[must_use]
pub fn usage_top(rate_limited: bool) -> String {
    super::usage::top_statement(rate_limited)
}

/// A usage series (`UsageStore::series`) of `bucket`'s table: tenant, key
/// (or account when `by_account`), from, to, route class (or `NULL`).
#[must_use]
pub fn usage_series(bucket: docaiche_core::usage::Bucket, by_account: bool) -> String {
    let column = if by_account {
        crate::sql::usage::ACCOUNT_COLUMN
    } else {
        crate::sql::usage::KEY_COLUMN
    };
    super::usage::series_statement(bucket, column)
}
