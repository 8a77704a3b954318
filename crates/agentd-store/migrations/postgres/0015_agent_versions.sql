-- Agent versions: the version a run started on (NULL for an unversioned
-- agent), and the live state of each agent's rollout (stable, canary,
-- share), shared by every process.
ALTER TABLE runs ADD COLUMN agent_version text;
-- The rollout verdict and `agentd rollout status` read a version's latest
-- finished runs.
CREATE INDEX runs_by_version ON runs (agent, agent_version, updated_at)
    WHERE agent_version IS NOT NULL;
CREATE TABLE rollouts (
    agent       text    PRIMARY KEY,
    -- The config's split this state applies to (RolloutConfig::fingerprint):
    -- a config asking for another split starts afresh.
    base        text    NOT NULL,
    stable      text    NOT NULL,
    canary      text,
    percent     double precision NOT NULL,
    phase       text    NOT NULL,
    reason      text,
    actor       text    NOT NULL,
    started_at  bigint  NOT NULL,
    updated_at  bigint  NOT NULL
);
