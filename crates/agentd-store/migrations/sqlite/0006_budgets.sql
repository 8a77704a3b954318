-- Per-tenant budgets ([tenants."ID"] budget_usd over a period): what the
-- current period's journaled model steps cost, and what model calls in
-- flight have reserved. A reservation expires, so a worker that dies
-- mid-call does not hold the tenant's budget for ever.
CREATE TABLE tenant_budgets (
    tenant       TEXT    PRIMARY KEY,
    period_start INTEGER NOT NULL,          -- epoch ms, aligned to the period
    spent_usd    REAL    NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE budget_reservations (
    run_id     BLOB    PRIMARY KEY,         -- one call in flight per run
    tenant     TEXT    NOT NULL,
    amount_usd REAL    NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX budget_reservations_by_tenant ON budget_reservations (tenant, expires_at);
