-- Wrapped per-subject data keys of encryption at rest (`EncryptedDocumentStore`).
-- Only the wrapped form is stored; deleting a row crypto-shreds the subject.
-- `COLLATE "C"`: `list` pages in byte order whatever the database's locale,
-- the order every `DataKeyStore` promises.
CREATE TABLE data_keys (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    subject_id  TEXT COLLATE "C" NOT NULL,
    kek_id      BYTEA  NOT NULL,
    kek_version BIGINT NOT NULL,
    ciphertext  BYTEA  NOT NULL,
    PRIMARY KEY (tenant_id, subject_id)
);

-- Row-level security (enforced once `PgConfig::row_level_security` switches
-- it on): a tenant's statements see only its own keys…
CREATE POLICY data_keys_tenant ON data_keys
    USING (tenant_id = current_setting('docaiche.tenant_id', true));
-- …and the rewrap pass after a KEK rotation, the one reader that walks every
-- tenant, may read (never write) all of them.
CREATE POLICY data_keys_rewrap ON data_keys FOR SELECT
    USING (current_setting('docaiche.data_key_rewrap', true) = 'on');
