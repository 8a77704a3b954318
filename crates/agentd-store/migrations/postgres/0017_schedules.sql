-- `[[schedules]]`: the latest tick of each schedule that started a run, and
-- that run. A tick is recorded in the transaction that creates its run, and
-- only if it is later than the one recorded (`Store::create_scheduled_run`),
-- so each (schedule, tick) starts at most one run whatever the number of
-- processes; a process starting up reads it to know which ticks it missed.
CREATE TABLE schedule_ticks (
    tenant   TEXT    NOT NULL,
    schedule TEXT    NOT NULL,
    tick_at  BIGINT  NOT NULL,
    run_id   UUID    NOT NULL,
    PRIMARY KEY (tenant, schedule)
);
