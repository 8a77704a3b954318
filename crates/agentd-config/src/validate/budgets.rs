//! `[tenants."ID"]` and `[principals."ID"]`: period budgets, and the
//! alert shares of every budget.

use super::{Invalid, invalid, non_negative};
use crate::keypath::KeyPath;
use crate::types::Config;

/// `[tenants.ID]`.
pub(super) fn check_tenants(config: &Config) -> Result<(), Invalid> {
    for (id, tenant) in &config.tenants {
        if let Err(e) = agentd_core::TenantId::parse(id.as_str()) {
            invalid(KeyPath::of(&["tenants", id]), e.to_string())?;
        }
        check_budget("tenants", id, tenant)?;
    }
    Ok(())
}

/// `[principals.ID]`: ids as a credential carries them, or `"*"`.
pub(super) fn check_principals(config: &Config) -> Result<(), Invalid> {
    for (id, principal) in &config.principals {
        if id != crate::ANY_PRINCIPAL
            && let Err(e) = agentd_core::PrincipalId::parse(id.as_str())
        {
            invalid(
                KeyPath::of(&["principals", id]),
                format!("{e} (or \"*\": every principal without an entry)"),
            )?;
        }
        check_budget("principals", id, principal)?;
    }
    Ok(())
}

/// One `[tenants.ID]` or `[principals.ID]` budget.
fn check_budget(table: &str, id: &str, budget: &crate::BudgetConfig) -> Result<(), Invalid> {
    if let Some(b) = budget.budget_usd
        && !non_negative(b)
    {
        invalid(
            KeyPath::of(&[table, id, "budget_usd"]),
            format!("must be >= 0, found {b}"),
        )?;
    }
    if budget.period.get() < std::time::Duration::from_secs(1) {
        invalid(KeyPath::of(&[table, id, "period"]), "must be at least 1s")?;
    }
    check_alerts(
        KeyPath::of(&[table, id, "alerts"]),
        &budget.alerts,
        budget.budget_usd.is_some(),
    )
}

/// Budget alert shares: each in (0, 1], listed once, on a budget.
pub(super) fn check_alerts(key: KeyPath, alerts: &[f64], budgeted: bool) -> Result<(), Invalid> {
    if alerts.is_empty() {
        return Ok(());
    }
    if !budgeted {
        invalid(key.clone(), "alerts need a budget_usd to be shares of")?;
    }
    for (i, a) in alerts.iter().enumerate() {
        if !(*a > 0.0 && *a <= 1.0) {
            invalid(
                key.clone().index(i),
                format!("must be a share of the budget in (0, 1], found {a}"),
            )?;
        }
        if alerts[..i].contains(a) {
            invalid(key.clone().index(i), format!("{a} is listed twice"))?;
        }
    }
    Ok(())
}
