-- Second-factor enrolments (`MfaStore`): one row per (tenant, account).
-- `sealed_secret` is the TOTP secret encrypted and authenticated for its
-- tenant and account by docaiche-auth (opaque here, and the enrolment's
-- identity in the compare-and-set updates); `last_step` the greatest TOTP
-- time step accepted; `*_at` are Unix microseconds.
CREATE TABLE mfa_enrolments (
    tenant_id     TEXT    NOT NULL,
    account_id    TEXT    NOT NULL,
    sealed_secret BLOB    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('pending', 'active')),
    last_step     INTEGER,
    created_at    INTEGER NOT NULL,
    confirmed_at  INTEGER,
    PRIMARY KEY (tenant_id, account_id)
) STRICT, WITHOUT ROWID;

-- Recovery codes of an enrolment, as keyed hashes; `used_at` is set once.
-- Deleted with their enrolment (in the same transaction: the adapters
-- write both tables together).
CREATE TABLE mfa_recovery_codes (
    tenant_id  TEXT    NOT NULL,
    account_id TEXT    NOT NULL,
    code_hash  BLOB    NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (tenant_id, account_id, code_hash)
) STRICT, WITHOUT ROWID;
