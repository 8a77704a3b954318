-- Each tenant's runs queued or running, kept by triggers on every insert,
-- status change and delete of a run, whatever statement makes it: the
-- `max_concurrent_runs_per_tenant` check reads one row instead of counting
-- the queue inside the single writer, so its cost does not grow with the
-- backlog. A move between queued and running changes no count and fires
-- no write.
CREATE TABLE active_runs (
    tenant TEXT    PRIMARY KEY,
    n      INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO active_runs (tenant, n)
    SELECT tenant, count(*) FROM runs WHERE status IN ('queued', 'running') GROUP BY tenant;

CREATE TRIGGER active_runs_insert AFTER INSERT ON runs
    WHEN NEW.status IN ('queued', 'running')
BEGIN
    INSERT INTO active_runs (tenant, n) VALUES (NEW.tenant, 1)
        ON CONFLICT (tenant) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER active_runs_update AFTER UPDATE OF status ON runs
    WHEN (OLD.status IN ('queued', 'running')) <> (NEW.status IN ('queued', 'running'))
BEGIN
    INSERT INTO active_runs (tenant, n)
        VALUES (NEW.tenant, CASE WHEN NEW.status IN ('queued', 'running') THEN 1 ELSE -1 END)
        ON CONFLICT (tenant) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER active_runs_delete AFTER DELETE ON runs
    WHEN OLD.status IN ('queued', 'running')
BEGIN
    UPDATE active_runs SET n = n - 1 WHERE tenant = OLD.tenant;
END;
