-- Per-tenant budgets ([tenants."ID"] budget_usd over a period): what the
-- current period's journaled model steps cost, and what model calls in
-- flight have reserved. A reservation expires, so a worker that dies
-- mid-call does not hold the tenant's budget for ever.
CREATE TABLE tenant_budgets (
    period_start bigint           NOT NULL,  -- epoch ms, aligned to the period
    spent_usd    double precision NOT NULL DEFAULT 0,
    tenant       text             PRIMARY KEY
);

CREATE TABLE budget_reservations (
    run_id     uuid             PRIMARY KEY, -- one call in flight per run
    expires_at bigint           NOT NULL,
    amount_usd double precision NOT NULL,
    tenant     text             NOT NULL
);
CREATE INDEX budget_reservations_by_tenant ON budget_reservations (tenant, expires_at);
