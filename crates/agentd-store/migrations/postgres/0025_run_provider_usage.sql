-- The usage report by provider (`GET /v1/usage?group_by=provider`) sums,
-- per provider, what each run's model steps used and cost. A model step's
-- cost is known only when it is journaled (the store has no prices), so
-- the journal adds it here, one row per run and provider, in the
-- statement that writes the step. The report then reads a range of one
-- covering index instead of joining every run's steps.
CREATE TABLE run_provider_usage (
    run_id        uuid             NOT NULL,
    created_at    bigint           NOT NULL,  -- the run's
    input_tokens  bigint           NOT NULL DEFAULT 0,
    output_tokens bigint           NOT NULL DEFAULT 0,
    cost_usd      double precision NOT NULL DEFAULT 0,
    provider      text             NOT NULL,
    tenant        text             NOT NULL,
    PRIMARY KEY (run_id, provider)
);
CREATE INDEX run_provider_usage_report ON run_provider_usage (tenant, created_at)
    INCLUDE (provider, input_tokens, output_tokens, cost_usd);

-- Runs journaled before: their model steps' tokens. Steps did not record
-- their cost, so a run that called one provider is given its whole cost,
-- and one that called several none.
INSERT INTO run_provider_usage
    (run_id, provider, tenant, created_at, input_tokens, output_tokens, cost_usd)
SELECT s.run_id, s.name, min(r.tenant), min(r.created_at),
       sum(COALESCE(s.input_tokens, 0)), sum(COALESCE(s.output_tokens, 0)),
       CASE WHEN (SELECT count(DISTINCT x.name) FROM steps x
                  WHERE x.run_id = s.run_id AND x.kind = 'llm') = 1
            THEN min(r.cost_usd) ELSE 0 END
FROM steps s JOIN runs r ON r.id = s.run_id
WHERE s.kind = 'llm'
GROUP BY s.run_id, s.name;

-- The report no longer reads model steps.
DROP INDEX steps_llm;
