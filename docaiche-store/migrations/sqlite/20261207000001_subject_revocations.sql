-- Subject revocations (`TokenRevocationStore::revoke_subject`): every
-- credential of (tenant, principal) issued at or before `through` is
-- refused until `expires_at`. Both are Unix microseconds; an upsert only
-- ever moves each later.
CREATE TABLE subject_revocations (
    tenant_id    TEXT    NOT NULL,
    principal_id TEXT    NOT NULL,
    through      INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, principal_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX subject_revocations_expires_at ON subject_revocations (expires_at);
