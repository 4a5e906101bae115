-- Subject revocations (`TokenRevocationStore::revoke_subject`): every
-- credential of (tenant, principal) issued at or before `through` is
-- refused until `expires_at`. Both are Unix microseconds; an upsert only
-- ever moves each later. Not tenant-filtered by row-level security, like
-- `token_revocations`: the verifier reads it before any tenant is bound.
CREATE TABLE subject_revocations (
    tenant_id    TEXT   NOT NULL,
    principal_id TEXT   NOT NULL,
    through      BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, principal_id)
);
CREATE INDEX subject_revocations_expires_at ON subject_revocations (expires_at);
