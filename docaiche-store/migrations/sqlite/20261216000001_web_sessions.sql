-- Browser (admin console) sessions (`WebSessionStore`): one row per
-- session, keyed by the SHA-256 of its cookie value (`session_key`, 32
-- bytes: the cookie itself is never stored). `*_at` are Unix microseconds;
-- `last_seen_at` only ever moves later (`MAX`).
CREATE TABLE web_sessions (
    session_key   BLOB    NOT NULL PRIMARY KEY CHECK (length(session_key) = 32),
    tenant_id     TEXT    NOT NULL,
    principal_id  TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    second_factor TEXT    NOT NULL
        CHECK (second_factor IN ('not_required', 'pending', 'passed'))
) STRICT, WITHOUT ROWID;
-- `remove_subject` (sign-out everywhere, a disabled account).
CREATE INDEX web_sessions_subject ON web_sessions (tenant_id, principal_id);
-- `purge`: idle or too old (the OR uses both indexes).
CREATE INDEX web_sessions_last_seen_at ON web_sessions (last_seen_at);
CREATE INDEX web_sessions_created_at ON web_sessions (created_at);
