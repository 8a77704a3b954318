-- Retention: the purge finds finished runs by age without scanning the
-- table, and deletes a run's idempotency keys by run.
CREATE INDEX runs_finished ON runs (updated_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX idempotency_keys_by_run ON idempotency_keys (run_id);
