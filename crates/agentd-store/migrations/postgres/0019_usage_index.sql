-- The usage report (`GET /v1/usage`, `agentd usage`) sums a tenant's runs
-- created in a time range. This index holds every column it reads, so a
-- range of it answers by an index-only scan, however many runs the store
-- holds. Runs in flight are left out, as in migration 9: a run's update is
-- not HOT, so an index it meets gains an entry at every step; the report
-- reads them through runs_queued and runs_leased. A run enters this index
-- when it pauses or ends.
CREATE INDEX runs_usage ON runs (tenant, created_at)
    INCLUDE (id, agent, principal, status, input_tokens, output_tokens, cost_usd)
    WHERE status NOT IN ('queued', 'running');
-- Grouped by provider, the report reads each run's model steps: their
-- provider and tokens, without the step's payloads, in the order the
-- report sums them (by run, then provider). A model step is
-- written once, so this costs one entry per model step.
CREATE INDEX steps_llm ON steps (run_id, name) INCLUDE (input_tokens, output_tokens)
    WHERE kind = 'llm';
