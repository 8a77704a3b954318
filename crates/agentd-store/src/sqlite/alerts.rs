//! SQLite's budget alerts (see [`crate::Store::record_budget_alert`]).

use super::*;
use crate::BudgetAlert;

/// [`Store::record_budget_alert`](crate::Store::record_budget_alert) on
/// this backend.
pub(super) async fn record_budget_alert(
    store: &SqliteStore,
    tenant: &TenantId,
    alert: &BudgetAlert,
) -> Result<bool> {
    let tenant = tenant.clone();
    let a = alert.clone();
    store
        .write(move |conn, now, _| {
            let n = conn
                .prepare_cached(
                    "INSERT INTO budget_alerts (tenant, scope, subject, period_start, threshold, \
                     run_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    tenant.as_str(),
                    a.scope,
                    a.subject,
                    a.period_start,
                    a.threshold,
                    a.run_id.0.as_bytes(),
                    now
                ])?;
            if let (1, Some((url, payload))) = (n, &a.webhook) {
                conn.prepare_cached(
                    "INSERT INTO deliveries (id, tenant, run_id, url, event, created_at, \
                     next_attempt_at, payload) \
                     VALUES ('msg_' || lower(hex(randomblob(16))), ?1, ?2, ?3, 'budget.alert', \
                     ?4, ?4, ?5)",
                )?
                .execute(params![
                    tenant.as_str(),
                    a.run_id.0.as_bytes(),
                    url,
                    now,
                    payload.to_string()
                ])?;
            }
            Ok(n == 1)
        })
        .await
}
