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
    let mut tx = store.pool.begin().await?;
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
    .execute(&mut *tx)
    .await?;
    let first = done.rows_affected() == 1;
    if let (true, Some((url, payload)), Some(run)) = (first, &alert.webhook, alert.run_id) {
        sqlx::query(
            "INSERT INTO deliveries (id, tenant, run_id, url, event, created_at, \
             next_attempt_at, payload) VALUES ('msg_' || replace(gen_random_uuid()::text, '-', ''), \
             $1, $2, $3, 'budget.alert', (floor(extract(epoch FROM now()) * 1000)::int8), \
             (floor(extract(epoch FROM now()) * 1000)::int8), $4)",
        )
        .bind(tenant.as_str())
        .bind(run.0)
        .bind(url)
        .bind(payload.to_string())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(first)
}
