-- Every list filter is a range of one index, so a filter that matches
-- nothing costs as little as one that matches: without these, listing a
-- tenant's paused runs (the approvals inbox) or dead letters, or an
-- agent's runs, scanned every run of the tenant.
--
-- Active runs (queued, running) are left out: a run in flight is written
-- several times, and none of those writes needs to touch these indexes.
-- Lists find active runs through runs_runnable, which holds only runs in
-- flight. A run enters both indexes once, when it pauses or ends.
CREATE INDEX runs_by_status ON runs (tenant, status, id) WHERE status NOT IN ('queued', 'running');
CREATE INDEX runs_by_agent ON runs (tenant, agent, id) WHERE status NOT IN ('queued', 'running');
