-- Browser (admin console) sessions (`WebSessionStore`): one row per
-- session, keyed by the SHA-256 of its cookie value (`session_key`, 32
-- bytes: the cookie itself is never stored). `*_at` are Unix microseconds;
-- `last_seen_at` only ever moves later (`GREATEST`).
--
-- No row-level security policy, like `token_revocations` and
-- `subject_revocations`: a session is looked up by its key before any
-- tenant is known (the key is the credential, 256 random bits), and the
-- purge removes timed-out sessions of every tenant. `remove_subject`
-- still names its tenant in the predicate.
CREATE TABLE web_sessions (
    session_key   BYTEA  NOT NULL PRIMARY KEY CHECK (length(session_key) = 32),
    tenant_id     TEXT   NOT NULL,
    principal_id  TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    second_factor TEXT   NOT NULL
        CHECK (second_factor IN ('not_required', 'pending', 'passed'))
);
-- `remove_subject` (sign-out everywhere, a disabled account).
CREATE INDEX web_sessions_subject ON web_sessions (tenant_id, principal_id);
-- `purge`: idle or too old (a BitmapOr over both).
CREATE INDEX web_sessions_last_seen_at ON web_sessions (last_seen_at);
CREATE INDEX web_sessions_created_at ON web_sessions (created_at);
