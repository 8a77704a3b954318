-- Budget alerts: each threshold of a budget is announced once per run (a
-- run's budget) or per period (a tenant's), however many processes see it
-- crossed: the first insert wins.
CREATE TABLE budget_alerts (
    tenant        text    NOT NULL,
    scope         text    NOT NULL,
    subject       text    NOT NULL,
    period_start  bigint  NOT NULL,
    threshold     text    NOT NULL,
    run_id        uuid,
    at            bigint  NOT NULL,
    PRIMARY KEY (tenant, scope, subject, period_start, threshold)
);
