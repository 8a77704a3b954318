-- Per-principal budgets ([principals."ID"] budget_usd over a period): what
-- one principal's runs spent in the current period, counted in each tenant
-- apart, as tenant_budgets counts a tenant's. A reservation names the
-- run's principal (NULL when it has no budget), so calls in flight hold
-- that budget too.
CREATE TABLE principal_budgets (
    period_start bigint           NOT NULL,  -- epoch ms, aligned to the period
    spent_usd    double precision NOT NULL DEFAULT 0,
    tenant       text             NOT NULL,
    principal    text             NOT NULL,
    PRIMARY KEY (tenant, principal)
);

ALTER TABLE budget_reservations ADD COLUMN principal text;
CREATE INDEX budget_reservations_by_principal ON budget_reservations (tenant, principal, expires_at)
    WHERE principal IS NOT NULL;
