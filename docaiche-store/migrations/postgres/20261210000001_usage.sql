-- Usage counters (`UsageStore`): one table per bucket size, each batch
-- added to all three at once (eager rollup). `bucket_start` is Unix
-- seconds; `key_id` is the API key's UUID (the nil UUID: no key);
-- `account` is the principal id ('' : no account).
CREATE TABLE usage_minute (
    tenant_id          TEXT    NOT NULL,
    bucket_start       BIGINT NOT NULL,
    key_id             UUID    NOT NULL,
    account            TEXT    NOT NULL,
    route_class        TEXT    COLLATE "C" NOT NULL,
    allowed            BIGINT NOT NULL,
    rate_limited       BIGINT NOT NULL,
    denied             BIGINT NOT NULL,
    invalid_credential BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, bucket_start, key_id, account, route_class)
);
CREATE INDEX usage_minute_key ON usage_minute (tenant_id, key_id, bucket_start);
CREATE INDEX usage_minute_account ON usage_minute (tenant_id, account, bucket_start);
CREATE INDEX usage_minute_expiry ON usage_minute (bucket_start);

CREATE TABLE usage_hour (
    tenant_id          TEXT    NOT NULL,
    bucket_start       BIGINT NOT NULL,
    key_id             UUID    NOT NULL,
    account            TEXT    NOT NULL,
    route_class        TEXT    COLLATE "C" NOT NULL,
    allowed            BIGINT NOT NULL,
    rate_limited       BIGINT NOT NULL,
    denied             BIGINT NOT NULL,
    invalid_credential BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, bucket_start, key_id, account, route_class)
);
CREATE INDEX usage_hour_key ON usage_hour (tenant_id, key_id, bucket_start);
CREATE INDEX usage_hour_account ON usage_hour (tenant_id, account, bucket_start);
CREATE INDEX usage_hour_expiry ON usage_hour (bucket_start);

CREATE TABLE usage_day (
    tenant_id          TEXT    NOT NULL,
    bucket_start       BIGINT NOT NULL,
    key_id             UUID    NOT NULL,
    account            TEXT    NOT NULL,
    route_class        TEXT    COLLATE "C" NOT NULL,
    allowed            BIGINT NOT NULL,
    rate_limited       BIGINT NOT NULL,
    denied             BIGINT NOT NULL,
    invalid_credential BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, bucket_start, key_id, account, route_class)
);
CREATE INDEX usage_day_key ON usage_day (tenant_id, key_id, bucket_start);
CREATE INDEX usage_day_account ON usage_day (tenant_id, account, bucket_start);
CREATE INDEX usage_day_expiry ON usage_day (bucket_start);

-- Applied batch ids (exactly once per batch), forgotten with minute rows.
CREATE TABLE usage_batches (
    id         UUID    NOT NULL PRIMARY KEY,
    created_at BIGINT NOT NULL
);
CREATE INDEX usage_batches_created ON usage_batches (created_at);

-- Row-level security (enabled by `enable_row_level_security`): reads see
-- their tenant's rows; the flusher and the retention job, which work
-- across tenants, open the `docaiche.usage_writer` setting.
CREATE POLICY usage_minute_tenant ON usage_minute
    USING (tenant_id = current_setting('docaiche.tenant_id', true)
           OR current_setting('docaiche.usage_writer', true) = 'on');
CREATE POLICY usage_hour_tenant ON usage_hour
    USING (tenant_id = current_setting('docaiche.tenant_id', true)
           OR current_setting('docaiche.usage_writer', true) = 'on');
CREATE POLICY usage_day_tenant ON usage_day
    USING (tenant_id = current_setting('docaiche.tenant_id', true)
           OR current_setting('docaiche.usage_writer', true) = 'on');
