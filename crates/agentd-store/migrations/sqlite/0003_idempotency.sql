-- Idempotency-Key on run creation: the same key (per tenant) and request
-- returns the run it created; the same key with another request conflicts.
CREATE TABLE idempotency_keys (
    tenant      TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    run_id      BLOB    NOT NULL,
    fingerprint TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;
