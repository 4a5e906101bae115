-- DocAIche store schema, SQLite. Same tables, columns and indexes as the
-- PostgreSQL schema (see its comments): `*_at` are Unix microseconds,
-- caller-chosen strings are BLOBs of UTF-8, JSON is serde_json text, UUIDs
-- are 16-byte BLOBs.

CREATE TABLE documents (
    id           BLOB    PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    owner_id     TEXT    NOT NULL,
    filename     BLOB,
    content_type BLOB    NOT NULL,
    size         INTEGER NOT NULL,
    sha256       BLOB    NOT NULL,
    content      BLOB    NOT NULL,
    text_pages   TEXT,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX documents_tenant_id ON documents (tenant_id, id);
CREATE INDEX documents_tenant_owner_id ON documents (tenant_id, owner_id, id);

CREATE TABLE api_keys (
    id           BLOB    PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    principal_id TEXT    NOT NULL,
    name         BLOB    NOT NULL,
    lookup       TEXT    NOT NULL UNIQUE,
    hash         BLOB    NOT NULL,
    hash_version INTEGER NOT NULL,
    scopes       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER,
    replaced_by  BLOB
) STRICT;
CREATE UNIQUE INDEX api_keys_tenant_id ON api_keys (tenant_id, id);

CREATE TABLE token_revocations (
    token_id   TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX token_revocations_expires_at ON token_revocations (expires_at);

CREATE TABLE jobs (
    id               BLOB    PRIMARY KEY,
    tenant_id        TEXT    NOT NULL,
    kind             BLOB    NOT NULL,
    payload          TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    progress         INTEGER NOT NULL,
    result           TEXT,
    last_error       BLOB,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    run_after        INTEGER NOT NULL,
    lease_token      BLOB,
    lease_expires_at INTEGER
) STRICT;
CREATE UNIQUE INDEX jobs_tenant_id ON jobs (tenant_id, id);
CREATE INDEX jobs_claimable ON jobs (kind, id) WHERE state IN ('queued', 'running');

CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          BLOB    NOT NULL UNIQUE,
    tenant_id   TEXT,
    occurred_at INTEGER NOT NULL,
    action      BLOB    NOT NULL,
    outcome     TEXT    NOT NULL,
    event       TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_events_tenant_seq ON audit_events (tenant_id, seq);
