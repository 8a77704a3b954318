-- PII redaction: a run's placeholders and the values they stand for
-- (sealed with the store's keyring, which `restore` requires), written
-- before the run and each journal write that uses a new placeholder.
CREATE TABLE pii_vaults (
    run_id      uuid    PRIMARY KEY,
    tenant      text    NOT NULL,
    vault       text    NOT NULL,
    updated_at  bigint  NOT NULL
);
