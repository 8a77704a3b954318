-- Runs are both the run objects and the queue: a run is claimed by taking a
-- lease on its row, so creating, claiming and finishing never touch two tables.
CREATE TABLE runs (
    id              BLOB    PRIMARY KEY,       -- UUID v7, time-ordered
    tenant          TEXT    NOT NULL,
    agent           TEXT    NOT NULL,
    principal       TEXT    NOT NULL,
    conversation_id TEXT,
    status          TEXT    NOT NULL,
    input           TEXT    NOT NULL,          -- JSON
    output          TEXT,                      -- JSON
    error           TEXT,                      -- JSON {code, message}
    pause           TEXT,                      -- JSON {question, step}
    metadata        TEXT,                      -- JSON
    steps           INTEGER NOT NULL DEFAULT 0,
    attempt         INTEGER NOT NULL DEFAULT 1,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    cost_usd        REAL    NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,          -- epoch ms
    updated_at      INTEGER NOT NULL,
    available_at    INTEGER NOT NULL,          -- a queued run is due from here
    lease_owner     TEXT,
    lease_until     INTEGER,
    lease_token     INTEGER NOT NULL DEFAULT 0, -- fencing token, +1 per claim
    v               INTEGER NOT NULL            -- record schema version
) WITHOUT ROWID;

CREATE INDEX runs_by_tenant ON runs (tenant, id);
CREATE INDEX runs_runnable ON runs (status, available_at) WHERE status IN ('queued', 'running');
CREATE INDEX runs_by_conversation ON runs (tenant, conversation_id, id) WHERE conversation_id IS NOT NULL;

-- The journal: one row per step, index from 0 with no gaps.
CREATE TABLE steps (
    run_id        BLOB    NOT NULL,
    idx           INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    attempt       INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    input         TEXT    NOT NULL,   -- JSON
    output        TEXT    NOT NULL,   -- JSON
    error         TEXT,               -- JSON
    input_tokens  INTEGER,
    output_tokens INTEGER,
    v             INTEGER NOT NULL,
    PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;

-- Conversation memory: the messages of the conversation's finished runs.
CREATE TABLE messages (
    tenant          TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    run_id          BLOB    NOT NULL,
    message         TEXT    NOT NULL, -- JSON
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant, conversation_id, seq)
) WITHOUT ROWID;

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant  TEXT    NOT NULL,
    run_id  BLOB    NOT NULL,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    event   TEXT    NOT NULL,
    detail  TEXT
);
CREATE INDEX audit_by_run ON audit (tenant, run_id, id);
