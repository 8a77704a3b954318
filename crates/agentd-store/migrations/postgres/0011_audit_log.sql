-- The audit log as a queryable list (GET /v1/audit, `agentd audit`).
--
-- `run_id` becomes nullable: records of a tenant that concern no run (an
-- API key created or revoked) live in the same trail. It can no longer be
-- part of the key, so the key is the record id alone and a run's trail
-- gets its own index, in the order the records were written. The tenant
-- is in it too: a run's trail is then found on two columns of one index,
-- which the planner prefers to one column of the tenant-led ones below.
--
-- The list reads the tenant's log newest first by `(at, id)`, cut at
-- `since`, from one index; an actor or kind filter is applied to that
-- range rather than served by an index of its own: every run writes audit
-- rows on the hot path, and an index per filter is paid on each of them
-- for an admin's occasional query (as on SQLite, migration 0012). A run's
-- trail is short: sorting it costs nothing.
ALTER TABLE audit DROP CONSTRAINT audit_pkey;
ALTER TABLE audit ALTER COLUMN run_id DROP NOT NULL;
ALTER TABLE audit ADD PRIMARY KEY (id);
CREATE INDEX audit_by_run ON audit (run_id, tenant, id);
CREATE INDEX audit_by_time ON audit (tenant, at, id);
