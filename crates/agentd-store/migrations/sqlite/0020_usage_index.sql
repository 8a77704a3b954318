-- The usage report (`GET /v1/usage`, `agentd usage`) sums a tenant's runs
-- created in a time range. This index holds every column it reads, so a
-- range of it answers without touching the table, however many runs the
-- store holds. Runs in flight are left out, as in migration 9: they are
-- written at every step, and the report reads them through runs_runnable.
-- A run enters this index when it pauses or ends.
CREATE INDEX runs_usage ON runs
    (tenant, created_at, agent, principal, status, input_tokens, output_tokens, cost_usd)
    WHERE status NOT IN ('queued', 'running');
-- Grouped by provider, the report reads each run's model steps: their
-- provider and tokens, without the step's payloads.
CREATE INDEX steps_llm ON steps (run_id, name, input_tokens, output_tokens)
    WHERE kind = 'llm';
