-- Every list filter is a range of one index, so a filter that matches
-- nothing costs as little as one that matches: without these, listing a
-- tenant's paused runs (the approvals inbox) or dead letters, or an
-- agent's runs, scanned every run of the tenant. Status changes update
-- runs_by_status; runs_by_agent is written once, when a run is created.
CREATE INDEX runs_by_status ON runs (tenant, status, id);
CREATE INDEX runs_by_agent ON runs (tenant, agent, id);
