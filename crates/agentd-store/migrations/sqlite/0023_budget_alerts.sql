-- Budget alerts: each threshold of a budget is announced once per run (a
-- run's budget) or per period (a tenant's), however many processes see it
-- crossed: the first insert wins.
CREATE TABLE budget_alerts (
    tenant        TEXT    NOT NULL,
    scope         TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    period_start  BIGINT  NOT NULL,
    threshold     TEXT    NOT NULL,
    run_id        BLOB,
    at            BIGINT  NOT NULL,
    PRIMARY KEY (tenant, scope, subject, period_start, threshold)
);
