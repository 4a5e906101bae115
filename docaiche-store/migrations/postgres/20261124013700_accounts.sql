-- Password accounts (`AccountStore`): one row per (tenant, principal id),
-- emails unique per tenant. Only the argon2id PHC hash of the password is
-- stored. `roles` is serde_json text; `*_at` are Unix microseconds. Emails
-- are validated (no control characters), so `text` holds them. `COLLATE
-- "C"`: `list` pages in byte order whatever the database's locale.
CREATE TABLE accounts (
    tenant_id     TEXT    NOT NULL,
    id            TEXT    COLLATE "C" NOT NULL,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    roles         TEXT    NOT NULL,
    disabled      BOOLEAN NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX accounts_tenant_email ON accounts (tenant_id, email);

CREATE POLICY accounts_tenant ON accounts
    USING (tenant_id = current_setting('docaiche.tenant_id', true));
