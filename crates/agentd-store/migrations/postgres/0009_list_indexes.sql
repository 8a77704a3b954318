-- Every list filter is a range of one index, so a filter that matches
-- nothing costs as little as one that matches: without these, listing a
-- tenant's paused runs (the approvals inbox) or dead letters, or an
-- agent's runs, read every run of the tenant.
CREATE INDEX runs_by_status ON runs (tenant, status, id);
CREATE INDEX runs_by_agent ON runs (tenant, agent, id);
-- A run's update is not HOT (its indexed times change), so it writes an
-- entry in every index of runs: the unfiltered list merges the tenant's
-- ranges of runs_by_status instead of keeping (tenant, id) as well.
DROP INDEX runs_by_tenant;
