-- Wrapped per-subject data keys of encryption at rest (`EncryptedDocumentStore`).
-- Only the wrapped form is stored; deleting a row crypto-shreds the subject.
CREATE TABLE data_keys (
    tenant_id   TEXT    NOT NULL,
    subject_id  TEXT    NOT NULL,
    kek_id      BLOB    NOT NULL,
    kek_version INTEGER NOT NULL,
    ciphertext  BLOB    NOT NULL,
    PRIMARY KEY (tenant_id, subject_id)
) STRICT, WITHOUT ROWID;
