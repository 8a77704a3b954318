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
    let (url, payload) = match &alert.webhook {
        Some((url, payload)) => (Some(url.as_str()), Some(payload.to_string())),
        None => (None, None),
    };
    let recorded: i64 = sqlx::query_scalar(sql::RECORD_BUDGET_ALERT)
        .bind(tenant.as_str())
        .bind(alert.scope)
        .bind(&alert.subject)
        .bind(alert.period_start)
        .bind(&alert.threshold)
        .bind(alert.run_id.0)
        .bind(url)
        .bind(payload)
        .fetch_one(&store.pool)
        .await?;
    let first = recorded == 1;
    Ok(first)
}
