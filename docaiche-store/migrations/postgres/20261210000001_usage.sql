-- Usage counters (`UsageStore`): one table per bucket size, each batch
-- added to all three at once (eager rollup). `bucket_start` is Unix
-- seconds; `key_id` is the API key's UUID (the nil UUID: no key);
-- `account` is the principal id ('' : no account).
--
-- The primary key carries the counters (`INCLUDE`): top-N reads a range of
-- `(tenant_id, bucket_start)` by an index-only scan, with no heap fetch
-- per row (30 days of 10 000 keys' hour edges are ~400 000 rows, each a
-- random heap page without it). The price: a counter update is not HOT.
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
        INCLUDE (allowed, rate_limited, denied, invalid_credential)
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
        INCLUDE (allowed, rate_limited, denied, invalid_credential)
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
        INCLUDE (allowed, rate_limited, denied, invalid_credential)
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
-- across tenants, open the `docaiche.usage_writer` setting. Each setting
-- is read by a sub-select, planned as an InitPlan evaluated once per
-- statement: the per-row check is then one text comparison, where two
-- `current_setting` calls per row cost top-N over 300 000 day rows ~50%.
CREATE POLICY usage_minute_tenant ON usage_minute
    USING (tenant_id = (SELECT current_setting('docaiche.tenant_id', true))
           OR (SELECT current_setting('docaiche.usage_writer', true) = 'on'));
CREATE POLICY usage_hour_tenant ON usage_hour
    USING (tenant_id = (SELECT current_setting('docaiche.tenant_id', true))
           OR (SELECT current_setting('docaiche.usage_writer', true) = 'on'));
CREATE POLICY usage_day_tenant ON usage_day
    USING (tenant_id = (SELECT current_setting('docaiche.tenant_id', true))
           OR (SELECT current_setting('docaiche.usage_writer', true) = 'on'));
