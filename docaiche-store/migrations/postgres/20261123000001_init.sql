-- DocAIche store schema, PostgreSQL.
--
-- Conventions (shared with the SQLite schema so one set of queries serves both):
-- * `*_at` columns hold Unix time in microseconds (UTC) as BIGINT.
-- * Free-form strings that callers choose (filenames, job kinds, names, error
--   messages) are BYTEA holding their UTF-8 bytes: PostgreSQL `text` cannot
--   hold NUL, and the store contracts require NUL to round-trip.
-- * JSON values (payloads, results, scopes, audit events) are `text` holding
--   serde_json output, which escapes NUL as \u0000 (`jsonb` would refuse it).
-- * Every tenant-scoped table leads its indexes with `tenant_id`.

CREATE TABLE documents (
    id           UUID PRIMARY KEY,
    tenant_id    TEXT   NOT NULL,
    owner_id     TEXT   NOT NULL,
    filename     BYTEA,
    content_type BYTEA  NOT NULL,
    size         BIGINT NOT NULL,
    sha256       BYTEA  NOT NULL,
    content      BYTEA  NOT NULL,
    text_pages   TEXT,
    created_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX documents_tenant_id ON documents (tenant_id, id);
CREATE INDEX documents_tenant_owner_id ON documents (tenant_id, owner_id, id);

CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    tenant_id    TEXT   NOT NULL,
    principal_id TEXT   NOT NULL,
    name         BYTEA  NOT NULL,
    lookup       TEXT   NOT NULL UNIQUE,
    hash         BYTEA  NOT NULL,
    hash_version BIGINT NOT NULL,
    scopes       TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    replaced_by  UUID
);
CREATE UNIQUE INDEX api_keys_tenant_id ON api_keys (tenant_id, id);

CREATE TABLE token_revocations (
    token_id   TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX token_revocations_expires_at ON token_revocations (expires_at);

CREATE TABLE jobs (
    id               UUID PRIMARY KEY,
    tenant_id        TEXT   NOT NULL,
    kind             BYTEA  NOT NULL,
    payload          TEXT   NOT NULL,
    state            TEXT   NOT NULL,
    attempts         BIGINT NOT NULL,
    max_attempts     BIGINT NOT NULL,
    progress         BIGINT NOT NULL,
    result           TEXT,
    last_error       BYTEA,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    run_after        BIGINT NOT NULL,
    lease_token      UUID,
    lease_expires_at BIGINT
);
CREATE UNIQUE INDEX jobs_tenant_id ON jobs (tenant_id, id);
-- Claim walks the unfinished jobs of the requested kinds in id order.
CREATE INDEX jobs_claimable ON jobs (kind, id) WHERE state IN ('queued', 'running');

CREATE TABLE audit_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          UUID   NOT NULL UNIQUE,
    tenant_id   TEXT,
    occurred_at BIGINT NOT NULL,
    action      BYTEA  NOT NULL,
    outcome     TEXT   NOT NULL,
    event       TEXT   NOT NULL
);
CREATE INDEX audit_events_tenant_seq ON audit_events (tenant_id, seq);

-- Row-level security policies: a second wall between tenants, enforced only
-- once `ENABLE ROW LEVEL SECURITY` is switched on for the tables (see
-- `PgConfig::row_level_security`). The adapters set these settings with
-- `set_config(name, value, true)`, i.e. for the current transaction only.
CREATE POLICY documents_tenant ON documents
    USING (tenant_id = current_setting('docaiche.tenant_id', true));

CREATE POLICY api_keys_tenant ON api_keys
    USING (tenant_id = current_setting('docaiche.tenant_id', true));
-- `find_by_lookup` is the one unscoped read: it may see exactly the row whose
-- lookup id it names, nothing else.
CREATE POLICY api_keys_lookup ON api_keys FOR SELECT
    USING (lookup = current_setting('docaiche.api_key_lookup', true));

CREATE POLICY jobs_tenant ON jobs
    USING (tenant_id = current_setting('docaiche.tenant_id', true));
-- Workers serve every tenant (`claim`, and the lease-taking methods).
CREATE POLICY jobs_worker ON jobs
    USING (current_setting('docaiche.job_worker', true) = 'on');

-- Events without a tenant are written under the sentinel '-', which no valid
-- tenant id can equal (tenant ids start with a letter or digit).
CREATE POLICY audit_events_tenant ON audit_events
    USING (COALESCE(tenant_id, '-') = current_setting('docaiche.tenant_id', true));
