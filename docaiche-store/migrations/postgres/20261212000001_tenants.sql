-- The tenant registry (`TenantStore`): a platform table, not scoped by
-- tenant (so no row-level security policy: the request path reads the
-- caller's own tenant, the platform routes every tenant).
-- `display_name` and `suspension_reason` are the UTF-8 bytes of
-- operator-chosen text (NUL-safe); `settings` is serde_json text; `*_at`
-- are Unix microseconds. `COLLATE "C"`: `list` pages in byte order.
CREATE TABLE tenants (
    id                TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    display_name      BYTEA   NOT NULL,
    status            TEXT    NOT NULL,
    suspended_at      BIGINT,
    suspension_reason BYTEA,
    settings          TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);
CREATE INDEX tenants_status ON tenants (status, id);
