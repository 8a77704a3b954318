-- Agent versions: the version a run started on (NULL for an unversioned
-- agent), and the live state of each agent's rollout (stable, canary,
-- share), shared by every process.
ALTER TABLE runs ADD COLUMN agent_version TEXT;
-- The rollout verdict and `agentd rollout status` read a version's latest
-- finished runs.
CREATE INDEX runs_by_version ON runs (agent, agent_version, updated_at)
    WHERE agent_version IS NOT NULL;
CREATE TABLE rollouts (
    agent       TEXT    PRIMARY KEY,
    -- The config's split this state applies to (RolloutConfig::fingerprint):
    -- a config asking for another split starts afresh.
    base        TEXT    NOT NULL,
    stable      TEXT    NOT NULL,
    canary      TEXT,
    percent     REAL    NOT NULL,
    phase       TEXT    NOT NULL,
    reason      TEXT,
    actor       TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
