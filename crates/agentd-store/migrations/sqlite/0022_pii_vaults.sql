-- PII redaction: a run's placeholders and the values they stand for
-- (sealed with the store's keyring, which `restore` requires), written
-- before the run and each journal write that uses a new placeholder.
CREATE TABLE pii_vaults (
    run_id      BLOB    PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    vault       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
);
