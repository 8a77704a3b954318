//! The statements of tenant and principal budgets (`postgres/budget.rs`):
//! their periods, what calls in flight reserve, and budget alerts.

/// Opens or rolls the tenant's budget period and locks its row, which
/// serializes reservations of one tenant across processes: `$1` tenant,
/// `$2` period in ms. Returns the period's spending.
pub(in crate::postgres) const BUDGET_PERIOD: &str = concat!(
    "INSERT INTO tenant_budgets AS t (tenant, period_start, spent_usd) VALUES ($1, ",
    now!(),
    " - ",
    now!(),
    " % $2, 0) ON CONFLICT (tenant) DO UPDATE SET \
     spent_usd = CASE WHEN t.period_start < excluded.period_start THEN 0 ELSE t.spent_usd END, \
     period_start = GREATEST(t.period_start, excluded.period_start) RETURNING spent_usd"
);

/// [`BUDGET_PERIOD`] of principal `$3` within tenant `$1`.
pub(in crate::postgres) const PRINCIPAL_BUDGET_PERIOD: &str = concat!(
    "INSERT INTO principal_budgets AS t (tenant, principal, period_start, spent_usd) \
     VALUES ($1, $3, ",
    now!(),
    " - ",
    now!(),
    " % $2, 0) ON CONFLICT (tenant, principal) DO UPDATE SET \
     spent_usd = CASE WHEN t.period_start < excluded.period_start THEN 0 ELSE t.spent_usd END, \
     period_start = GREATEST(t.period_start, excluded.period_start) RETURNING spent_usd"
);

/// The tenant's spending in the period that holds now, if its row is of
/// that period: `$1` tenant, `$2` period in ms. A read: no row is created
/// or rolled, nothing is locked.
pub(in crate::postgres) const BUDGET_SPENT: &str = concat!(
    "SELECT spent_usd FROM tenant_budgets WHERE tenant = $1 AND period_start >= ",
    now!(),
    " - ",
    now!(),
    " % $2"
);

/// [`BUDGET_SPENT`] of principal `$3` within tenant `$1`.
pub(in crate::postgres) const PRINCIPAL_BUDGET_SPENT: &str = concat!(
    "SELECT spent_usd FROM principal_budgets WHERE tenant = $1 AND principal = $3 \
     AND period_start >= ",
    now!(),
    " - ",
    now!(),
    " % $2"
);

/// What other calls of the tenant hold: `$1` tenant, `$2` this run.
pub(in crate::postgres) const BUDGET_RESERVED: &str = concat!(
    "SELECT COALESCE(sum(amount_usd), 0)::float8 FROM budget_reservations \
     WHERE tenant = $1 AND run_id <> $2 AND expires_at > ",
    now!()
);

/// What other calls of principal `$3` within tenant `$1` hold (`$2`
/// this run).
pub(in crate::postgres) const PRINCIPAL_BUDGET_RESERVED: &str = concat!(
    "SELECT COALESCE(sum(amount_usd), 0)::float8 FROM budget_reservations \
     WHERE tenant = $1 AND principal = $3 AND run_id <> $2 AND expires_at > ",
    now!()
);

/// Reserves `$3` USD for run `$1` of tenant `$2` (principal `$5`, NULL
/// when it has no budget) for `$4` ms.
pub(in crate::postgres) const BUDGET_RESERVE: &str = concat!(
    "INSERT INTO budget_reservations (run_id, tenant, amount_usd, expires_at, principal) \
     VALUES ($1, $2, $3, ",
    now!(),
    " + $4, $5) ON CONFLICT (run_id) DO UPDATE SET amount_usd = excluded.amount_usd, \
     expires_at = excluded.expires_at, principal = excluded.principal"
);

/// Ends run `$1`'s reservation.
pub(in crate::postgres) const BUDGET_RELEASE: &str =
    "DELETE FROM budget_reservations WHERE run_id = $1";

/// Records a budget alert of tenant `$1` (`$2` scope, `$3` subject, `$4`
/// period start, `$5` threshold, `$6` run) unless it is recorded already,
/// and in the same statement queues its webhook to `$7` (NULL: none) with
/// body `$8`. Returns 1 when this call recorded it.
pub(in crate::postgres) const RECORD_BUDGET_ALERT: &str = concat!(
    "WITH a AS (INSERT INTO budget_alerts (tenant, scope, subject, period_start, threshold, \
     run_id, at) VALUES ($1, $2, $3, $4, $5, $6, ",
    now!(),
    ") ON CONFLICT DO NOTHING RETURNING 1), \
     d AS (INSERT INTO deliveries (id, tenant, run_id, url, event, created_at, \
     next_attempt_at, payload) SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), \
     $1, $6, $7, 'budget.alert', ",
    now!(),
    ", ",
    now!(),
    ", $8 FROM a WHERE $7::text IS NOT NULL) SELECT count(*) FROM a"
);
