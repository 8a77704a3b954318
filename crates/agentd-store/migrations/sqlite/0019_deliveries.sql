-- Completion webhooks: an outbox. A run's webhooks (`callback_url`, its
-- agent's `on_finish`) are stored with it as a JSON array of
-- `{"url", "tool"}`; the trigger below writes one delivery per webhook in
-- the very transaction that moves the run to a status worth announcing, so
-- no code path (finish, pause, cancel, interrupt, dead) can change a status
-- without its deliveries, and a crash cannot lose one.
ALTER TABLE runs ADD COLUMN callbacks TEXT;

CREATE TABLE deliveries (
    id               TEXT    PRIMARY KEY,
    tenant           TEXT    NOT NULL,
    run_id           BLOB    NOT NULL,
    url              TEXT    NOT NULL,
    tool             TEXT,
    event            TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       BIGINT  NOT NULL,
    next_attempt_at  BIGINT  NOT NULL,
    delivered_at     BIGINT,
    lease_owner      TEXT,
    lease_until      BIGINT
);
CREATE INDEX deliveries_run ON deliveries (tenant, run_id, created_at, id);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

-- Every attempt of a delivery: when, how long, and what came back.
CREATE TABLE delivery_attempts (
    delivery_id TEXT    NOT NULL,
    n           INTEGER NOT NULL,
    at          BIGINT  NOT NULL,
    duration_ms BIGINT  NOT NULL,
    status_code INTEGER,
    error       TEXT,
    PRIMARY KEY (delivery_id, n)
);

CREATE TRIGGER runs_callbacks AFTER UPDATE OF status ON runs
WHEN NEW.callbacks IS NOT NULL AND NEW.status <> OLD.status
    AND NEW.status IN ('succeeded', 'failed', 'cancelled', 'dead', 'paused')
BEGIN
    INSERT INTO deliveries (id, tenant, run_id, url, tool, event, created_at, next_attempt_at)
    SELECT 'msg_' || lower(hex(randomblob(16))), NEW.tenant, NEW.id,
           json_extract(c.value, '$.url'), json_extract(c.value, '$.tool'),
           'run.' || NEW.status, NEW.updated_at, NEW.updated_at
    FROM json_each(NEW.callbacks) AS c;
END;

-- Retention removes a run's deliveries with it.
CREATE TRIGGER runs_deliveries_delete AFTER DELETE ON runs
BEGIN
    DELETE FROM delivery_attempts WHERE delivery_id IN
        (SELECT id FROM deliveries WHERE run_id = OLD.id);
    DELETE FROM deliveries WHERE run_id = OLD.id;
END;
