-- The audit log as a queryable list (GET /v1/audit, `agentd audit`).
--
-- `run_id` becomes nullable: records of a tenant that concern no run (an
-- API key created or revoked) live in the same trail. SQLite cannot drop
-- a NOT NULL, so the table is rebuilt, keeping every id.
--
-- The list reads the tenant's log newest first by `(at, id)`, cut at
-- `since`, from one index; an actor or kind filter is applied to that
-- range rather than served by an index of its own. Every run writes audit
-- rows on the hot path (created, running, finished) and each index is one
-- more page per commit: indexes per actor and per kind cost W1 about 30%
-- of its throughput (agentd-bench conc, SQLite) for an admin's occasional
-- query. A run's trail keeps audit_by_run: it is short, so sorting it
-- costs nothing.
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
