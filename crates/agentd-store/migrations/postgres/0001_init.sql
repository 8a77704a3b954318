-- The PostgreSQL schema of agentd; the same tables as migrations/sqlite.
-- Times are epoch milliseconds from the database's clock. JSON is stored as
-- TEXT: agentd never queries into it, and TEXT is smaller than JSONB for the
-- short documents a journal holds. Fixed-width columns come first in every
-- table so rows carry no alignment padding.

-- Runs are both the run objects and the queue: a run is claimed by taking a
-- lease on its row (`FOR UPDATE SKIP LOCKED`), so creating, claiming and
-- finishing never touch two queue tables.
CREATE TABLE runs (
    id              uuid             PRIMARY KEY,  -- UUID v7, time-ordered
    created_at      bigint           NOT NULL,
    updated_at      bigint           NOT NULL,
    available_at    bigint           NOT NULL,     -- a queued run is due from here
    lease_until     bigint,
    lease_token     bigint           NOT NULL DEFAULT 0, -- fencing token, +1 per claim
    input_tokens    bigint           NOT NULL DEFAULT 0,
    output_tokens   bigint           NOT NULL DEFAULT 0,
    cost_usd        double precision NOT NULL DEFAULT 0,
    steps           integer          NOT NULL DEFAULT 0,
    attempt         integer          NOT NULL DEFAULT 1,
    v               smallint         NOT NULL,     -- record schema version
    tenant          text             NOT NULL,
    agent           text             NOT NULL,
    principal       text             NOT NULL,
    status          text             NOT NULL,
    conversation_id text,
    lease_owner     text,
    input           text             NOT NULL,     -- JSON
    output          text,                          -- JSON
    error           text,                          -- JSON {code, message}
    pause           text,                          -- JSON {question, step}
    metadata        text                           -- JSON
);

CREATE INDEX runs_by_tenant ON runs (tenant, id);
-- The queue: only runs that may become claimable are indexed.
CREATE INDEX runs_runnable ON runs (available_at, id) WHERE status IN ('queued', 'running');
CREATE INDEX runs_by_conversation ON runs (tenant, conversation_id, id)
    WHERE conversation_id IS NOT NULL;

-- The journal: one row per step, index from 0 with no gaps.
CREATE TABLE steps (
    run_id        uuid     NOT NULL,
    started_at    bigint   NOT NULL,
    duration_ms   bigint   NOT NULL,
    input_tokens  bigint,
    output_tokens bigint,
    idx           integer  NOT NULL,
    attempt       integer  NOT NULL,
    v             smallint NOT NULL,
    kind          text     NOT NULL,
    name          text     NOT NULL,
    status        text     NOT NULL,
    input         text     NOT NULL,   -- JSON
    output        text     NOT NULL,   -- JSON
    error         text,                -- JSON
    PRIMARY KEY (run_id, idx)
);

-- Conversation memory: the messages of the conversation's finished runs.
CREATE TABLE messages (
    run_id          uuid   NOT NULL,
    seq             bigint NOT NULL,
    created_at      bigint NOT NULL,
    tenant          text   NOT NULL,
    conversation_id text   NOT NULL,
    message         text   NOT NULL,  -- JSON
    PRIMARY KEY (tenant, conversation_id, seq)
);

-- The audit trail. Its key doubles as the by-run index: a run's records in
-- the order they were written.
CREATE TABLE audit (
    run_id  uuid   NOT NULL,
    id      bigint GENERATED ALWAYS AS IDENTITY,
    at      bigint NOT NULL,
    tenant  text   NOT NULL,
    actor   text   NOT NULL,
    event   text   NOT NULL,
    detail  text,                     -- JSON
    PRIMARY KEY (run_id, id)
);
