-- Password accounts (`AccountStore`): one row per (tenant, principal id),
-- emails unique per tenant. Only the argon2id PHC hash of the password is
-- stored. `roles` is a serde_json array; `*_at` are Unix microseconds.
CREATE TABLE accounts (
    tenant_id     TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    roles         TEXT    NOT NULL,
    disabled      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX accounts_tenant_email ON accounts (tenant_id, email);
