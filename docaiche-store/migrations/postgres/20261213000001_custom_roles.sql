-- Tenant-defined roles (`CustomRoleStore`): one row per (tenant, name).
-- `permissions` is serde_json text (an array of exact permissions);
-- `description` is validated text (no control characters); `*_at` are Unix
-- microseconds. `COLLATE "C"`: `list` orders bytewise whatever the
-- database's locale.
CREATE TABLE custom_roles (
    tenant_id   TEXT   NOT NULL,
    name        TEXT   COLLATE "C" NOT NULL,
    permissions TEXT   NOT NULL,
    description TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE POLICY custom_roles_tenant ON custom_roles
    USING (tenant_id = current_setting('docaiche.tenant_id', true));
