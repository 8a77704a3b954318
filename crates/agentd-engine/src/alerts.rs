//! Budget alerts: each share of a budget (`budget_alerts` of an agent's
//! per-run budget, `alerts` of a tenant's or a principal's per-period one)
//! is announced once
//! when spending crosses it, by whichever process sees it first (the
//! store's unique record decides): an audit record `budget_alert` on the
//! run that crossed it, a warning log line and `agentd_budget_alerts_total`.
//! A run's share is checked on the step whose cost crossed it.

use crate::ctx::{RunCtx, Stop};
use crate::state::RunState;
use agentd_core::now_millis;
use agentd_store::{BudgetAlert, BudgetLimit, BudgetOwner};
use serde_json::json;

/// What identifies one alert of `tenant` in the engine's
/// [`Announced`](crate::announced::Announced).
fn alert_key(tenant: &str, alert: &BudgetAlert) -> String {
    format!(
        "{tenant}/{}/{}/{}/{}",
        alert.scope, alert.subject, alert.period_start, alert.threshold
    )
}

/// The run's own budget, after a step took its cost from `before` to what
/// the run has spent now: the shares that step crossed.
pub(crate) async fn check_run(ctx: &RunCtx<'_>, st: &RunState, before: f64) -> Result<(), Stop> {
    let config = &ctx.agent.config;
    let Some(limit) = config
        .budget_usd
        .filter(|_| !config.budget_alerts.is_empty())
    else {
        return Ok(());
    };
    let spent = st.run.cost_usd;
    for &share in &config.budget_alerts {
        let line = share * limit;
        if before < line && spent >= line {
            let alert = BudgetAlert {
                scope: "run",
                subject: st.run.id.to_string(),
                period_start: 0,
                threshold: share.to_string(),
                run_id: st.run.id,
                webhook: None,
            };
            announce(ctx, alert, spent, limit, false).await?;
        }
    }
    Ok(())
}

/// The tenant's and the principal's budgets for the current period, from
/// the store's journaled spending (before a model call that follows
/// spending of the run's, and when the run ends: whichever run's spending
/// crossed a threshold then sees it).
pub(crate) async fn check_periods(ctx: &RunCtx<'_>) -> Result<(), Stop> {
    let lease = ctx.lease;
    if let (Some(limit), false) = (ctx.budget, ctx.budget_alerts.is_empty()) {
        let subject = lease.tenant.as_str();
        check_period(ctx, BudgetOwner::Tenant, subject, limit, ctx.budget_alerts).await?;
    }
    if let Some(p) = ctx
        .principal_budget
        .as_ref()
        .filter(|p| !p.alerts.is_empty())
    {
        check_period(ctx, BudgetOwner::Principal(p.id), p.id, &p.limit, p.alerts).await?;
    }
    Ok(())
}

/// One period budget's shares `alerts` of `limit`, spent by `owner` (named
/// `subject` in the alert).
async fn check_period(
    ctx: &RunCtx<'_>,
    owner: BudgetOwner<'_>,
    subject: &str,
    limit: &BudgetLimit,
    alerts: &[f64],
) -> Result<(), Stop> {
    let lease = ctx.lease;
    let period_start = agentd_core::period_start(now_millis(), limit.period);
    let scope = match owner {
        BudgetOwner::Tenant => "tenant",
        BudgetOwner::Principal(_) => "principal",
    };
    let alerts: Vec<(f64, BudgetAlert)> = alerts
        .iter()
        .map(|&share| {
            let alert = BudgetAlert {
                scope,
                subject: subject.to_owned(),
                period_start,
                threshold: share.to_string(),
                run_id: lease.run_id,
                webhook: None,
            };
            (share, alert)
        })
        .collect();
    // Every share already announced this period: nothing to read.
    let tenant = lease.tenant.as_str();
    if alerts
        .iter()
        .all(|(_, a)| ctx.announced.contains(&alert_key(tenant, a)))
    {
        return Ok(());
    }
    let spent = ctx
        .store
        .budget_spent(&lease.tenant, owner, limit.period)
        .await
        .map_err(|e| ctx.failure(e))?;
    for (share, alert) in alerts {
        if spent >= share * limit.limit_usd {
            announce(ctx, alert, spent, limit.limit_usd, true).await?;
        }
    }
    Ok(())
}

/// Records `alert` and, if this call recorded it, announces it. `remember`
/// skips the store next time this process sees the same crossing (a
/// period budget's threshold stays crossed for the rest of its period).
async fn announce(
    ctx: &RunCtx<'_>,
    mut alert: BudgetAlert,
    spent: f64,
    limit: f64,
    remember: bool,
) -> Result<(), Stop> {
    let lease = ctx.lease;
    let key = remember.then(|| alert_key(lease.tenant.as_str(), &alert));
    if key.as_deref().is_some_and(|k| ctx.announced.contains(k)) {
        return Ok(());
    }
    let detail = json!({
        "scope": alert.scope,
        "subject": alert.subject,
        "threshold": alert.threshold.parse::<f64>().unwrap_or_default(),
        "spent_usd": spent,
        "limit_usd": limit,
        "period_start": (alert.period_start > 0).then_some(alert.period_start),
    });
    // Queued with the record, in its transaction: sent once, durably.
    alert.webhook = ctx.alerts_url.map(|url| {
        let mut payload = detail.clone();
        payload["type"] = json!("budget.alert");
        payload["tenant"] = json!(lease.tenant);
        payload["run_id"] = json!(lease.run_id);
        (url.to_owned(), payload)
    });
    let first = ctx
        .store
        .record_budget_alert(&lease.tenant, &alert)
        .await
        .map_err(|e| ctx.failure(e))?;
    if let Some(key) = key {
        ctx.announced.insert(key);
    }
    if !first {
        return Ok(());
    }
    tracing::warn!(
        scope = alert.scope,
        threshold = %alert.threshold,
        spent_usd = spent,
        limit_usd = limit,
        "budget alert: spending crossed a threshold"
    );
    crate::meter::budget_alert(alert.scope);
    ctx.store
        .audit(
            &lease.tenant,
            lease.run_id,
            "budget",
            "budget_alert",
            &detail,
        )
        .await
        .map_err(|e| ctx.failure(e))
}
