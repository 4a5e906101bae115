-- Tenant-defined roles (`CustomRoleStore`): one row per (tenant, name).
-- `permissions` is a serde_json array of exact permissions; `description`
-- is validated text (no control characters); `*_at` are Unix microseconds.
CREATE TABLE custom_roles (
    tenant_id   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    permissions TEXT    NOT NULL,
    description TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT, WITHOUT ROWID;
