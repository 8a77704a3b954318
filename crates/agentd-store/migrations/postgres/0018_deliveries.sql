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
    run_id           UUID    NOT NULL,
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

CREATE FUNCTION agentd_enqueue_callbacks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deliveries (id, tenant, run_id, url, tool, event, created_at, next_attempt_at)
    SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), NEW.tenant, NEW.id,
           c->>'url', c->>'tool', 'run.' || NEW.status, NEW.updated_at, NEW.updated_at
    FROM jsonb_array_elements(NEW.callbacks::jsonb) AS c;
    RETURN NULL;
END $$;

CREATE TRIGGER runs_callbacks AFTER UPDATE OF status ON runs FOR EACH ROW
WHEN (NEW.callbacks IS NOT NULL AND NEW.status IS DISTINCT FROM OLD.status
      AND NEW.status IN ('succeeded', 'failed', 'cancelled', 'dead', 'paused'))
EXECUTE FUNCTION agentd_enqueue_callbacks();

-- Retention removes a run's deliveries with it.
CREATE FUNCTION agentd_delete_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM delivery_attempts WHERE delivery_id IN
        (SELECT id FROM deliveries WHERE run_id = OLD.id);
    DELETE FROM deliveries WHERE run_id = OLD.id;
    RETURN NULL;
END $$;

CREATE TRIGGER runs_deliveries_delete AFTER DELETE ON runs FOR EACH ROW
EXECUTE FUNCTION agentd_delete_deliveries();
