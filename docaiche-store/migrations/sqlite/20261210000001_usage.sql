-- Usage counters (`UsageStore`): one table per bucket size, each batch
-- added to all three at once (eager rollup). `bucket_start` is Unix
-- seconds; `key_id` is the API key's UUID (16 zero bytes: no key);
-- `account` is the principal id ('' : no account).
CREATE TABLE usage_minute (
    tenant_id          TEXT    NOT NULL,
    bucket_start       INTEGER NOT NULL,
    key_id             BLOB    NOT NULL,
    account            TEXT    NOT NULL,
    route_class        TEXT    NOT NULL,
    allowed            INTEGER NOT NULL,
    rate_limited       INTEGER NOT NULL,
    denied             INTEGER NOT NULL,
    invalid_credential INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, bucket_start, key_id, account, route_class)
) STRICT, WITHOUT ROWID;
CREATE INDEX usage_minute_key ON usage_minute (tenant_id, key_id, bucket_start);
CREATE INDEX usage_minute_account ON usage_minute (tenant_id, account, bucket_start);
CREATE INDEX usage_minute_expiry ON usage_minute (bucket_start);

CREATE TABLE usage_hour (
    tenant_id          TEXT    NOT NULL,
    bucket_start       INTEGER NOT NULL,
    key_id             BLOB    NOT NULL,
    account            TEXT    NOT NULL,
    route_class        TEXT    NOT NULL,
    allowed            INTEGER NOT NULL,
    rate_limited       INTEGER NOT NULL,
    denied             INTEGER NOT NULL,
    invalid_credential INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, bucket_start, key_id, account, route_class)
) STRICT, WITHOUT ROWID;
CREATE INDEX usage_hour_key ON usage_hour (tenant_id, key_id, bucket_start);
CREATE INDEX usage_hour_account ON usage_hour (tenant_id, account, bucket_start);
CREATE INDEX usage_hour_expiry ON usage_hour (bucket_start);

CREATE TABLE usage_day (
    tenant_id          TEXT    NOT NULL,
    bucket_start       INTEGER NOT NULL,
    key_id             BLOB    NOT NULL,
    account            TEXT    NOT NULL,
    route_class        TEXT    NOT NULL,
    allowed            INTEGER NOT NULL,
    rate_limited       INTEGER NOT NULL,
    denied             INTEGER NOT NULL,
    invalid_credential INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, bucket_start, key_id, account, route_class)
) STRICT, WITHOUT ROWID;
CREATE INDEX usage_day_key ON usage_day (tenant_id, key_id, bucket_start);
CREATE INDEX usage_day_account ON usage_day (tenant_id, account, bucket_start);
CREATE INDEX usage_day_expiry ON usage_day (bucket_start);

-- Applied batch ids (exactly once per batch), forgotten with minute rows.
CREATE TABLE usage_batches (
    id         BLOB    NOT NULL PRIMARY KEY,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX usage_batches_created ON usage_batches (created_at);
