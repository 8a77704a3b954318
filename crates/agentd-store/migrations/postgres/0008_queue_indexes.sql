-- The queue index covered running runs as well as queued ones, so a
-- worker's fenced write (`status = 'running'`) could be planned as a scan
-- of every running run, and of every dead index entry their updates left,
-- instead of a lookup by id: with many runs written per statement (group
-- commit), that is what the planner chose. Queued runs and held leases are
-- now indexed apart, on predicates a fence never implies.
DROP INDEX runs_runnable;
CREATE INDEX runs_queued ON runs (available_at, id) WHERE status = 'queued';
-- lease_owner is set exactly while a run is running (a claim sets it, and
-- every way out of running clears it).
CREATE INDEX runs_leased ON runs (lease_until) WHERE lease_owner IS NOT NULL;
