//! PostgreSQL's budget alerts (see [`crate::Store::record_budget_alert`]).

use super::*;
use crate::BudgetAlert;

/// [`Store::record_budget_alert`](crate::Store::record_budget_alert) on
/// this backend.
pub(super) async fn record_budget_alert(
    store: &PgStore,
    tenant: &TenantId,
    alert: &BudgetAlert,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO budget_alerts (tenant, scope, subject, period_start, threshold, run_id, at) \
         VALUES ($1, $2, $3, $4, $5, $6, (floor(extract(epoch FROM now()) * 1000)::int8)) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(alert.scope)
    .bind(&alert.subject)
    .bind(alert.period_start)
    .bind(&alert.threshold)
    .bind(alert.run_id.map(|r| r.0))
    .execute(&store.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
