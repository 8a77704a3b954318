-- The audit log as a queryable list (GET /v1/audit, `agentd audit`).
--
-- `run_id` becomes nullable: records of a tenant that concern no run (an
-- API key created or revoked) live in the same trail. SQLite cannot drop
-- a NOT NULL, so the table is rebuilt, keeping every id.
--
-- Every filter of the list is a range of one index, newest first by
-- `(at, id)`: the tenant's whole log, one actor's, or one kind's, each
-- cut at `since` by the same range. A run's trail keeps audit_by_run: it
-- is short, so sorting it costs nothing.
CREATE TABLE audit_v12 (
    id      INTEGER PRIMARY KEY,
    tenant  TEXT    NOT NULL,
    run_id  BLOB,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    event   TEXT    NOT NULL,
    detail  TEXT
);
INSERT INTO audit_v12 (id, tenant, run_id, at, actor, event, detail)
    SELECT id, tenant, run_id, at, actor, event, detail FROM audit;
DROP TABLE audit;
ALTER TABLE audit_v12 RENAME TO audit;
CREATE INDEX audit_by_run ON audit (tenant, run_id, id);
CREATE INDEX audit_by_time ON audit (tenant, at, id);
CREATE INDEX audit_by_actor ON audit (tenant, actor, at, id);
CREATE INDEX audit_by_kind ON audit (tenant, event, at, id);
