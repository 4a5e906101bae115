-- The tenant registry (`TenantStore`): a platform table, not scoped by
-- tenant. `display_name` and `suspension_reason` are the UTF-8 bytes of
-- operator-chosen text; `settings` is serde_json text; `*_at` are Unix
-- microseconds; `suspended_at` and `suspension_reason` are set exactly
-- while `status` is 'suspended'.
CREATE TABLE tenants (
    id                TEXT    NOT NULL PRIMARY KEY,
    display_name      BLOB    NOT NULL,
    status            TEXT    NOT NULL,
    suspended_at      INTEGER,
    suspension_reason BLOB,
    settings          TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX tenants_status ON tenants (status, id);
