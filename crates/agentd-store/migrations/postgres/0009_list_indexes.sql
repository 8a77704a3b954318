-- Every list filter is a range of one index, so a filter that matches
-- nothing costs as little as one that matches: without these, listing a
-- tenant's paused runs (the approvals inbox) or dead letters, or an
-- agent's runs, scanned every run of the tenant.
--
-- Active runs (queued, running) are left out. An update of a run is not
-- HOT (its lease and times are indexed), so it adds an entry to every
-- index whose predicate the new row meets: a run in flight, written
-- several times, adds none here. Lists find active runs through the queue's
-- runs_queued and runs_leased, which hold only runs in flight. The
-- tenant's whole list is a merge of these ranges, so runs_by_tenant,
-- written on every update, goes.
DROP INDEX runs_by_tenant;
CREATE INDEX runs_by_status ON runs (tenant, status, id) WHERE status NOT IN ('queued', 'running');
CREATE INDEX runs_by_agent ON runs (tenant, agent, id) WHERE status NOT IN ('queued', 'running');
