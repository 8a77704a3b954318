-- Idempotency-Key on run creation: the same key (per tenant) and request
-- returns the run it created; the same key with another request conflicts.
CREATE TABLE idempotency_keys (
    tenant      text   NOT NULL,
    key         text   NOT NULL,
    run_id      uuid   NOT NULL,
    fingerprint text   NOT NULL,
    created_at  bigint NOT NULL,
    PRIMARY KEY (tenant, key)
);
