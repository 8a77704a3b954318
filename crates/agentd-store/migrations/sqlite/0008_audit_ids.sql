-- Audit ids without AUTOINCREMENT. AUTOINCREMENT keeps the largest id in
-- sqlite_sequence: one more page in the WAL for every commit that audits
-- (creating, claiming, pausing, resuming, finishing a run). Ids still grow
-- with every record: a new row takes the largest id plus one, and the
-- retention purge removes the oldest records, never the newest.
CREATE TABLE audit_v8 (
    id      INTEGER PRIMARY KEY,
    tenant  TEXT    NOT NULL,
    run_id  BLOB    NOT NULL,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    event   TEXT    NOT NULL,
    detail  TEXT
);
INSERT INTO audit_v8 (id, tenant, run_id, at, actor, event, detail)
    SELECT id, tenant, run_id, at, actor, event, detail FROM audit;
DROP TABLE audit;
ALTER TABLE audit_v8 RENAME TO audit;
CREATE INDEX audit_by_run ON audit (tenant, run_id, id);
