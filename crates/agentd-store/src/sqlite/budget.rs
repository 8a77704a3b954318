//! SQLite budgets (per-tenant and per-principal spending and reservations) and shared
//! provider circuits.

use super::*;

/// Ends run `id`'s budget reservation, if it has one.
pub(super) fn release_reservation(conn: &Connection, id: &RunId) -> Result<()> {
    conn.prepare_cached("DELETE FROM budget_reservations WHERE run_id = ?1")?
        .execute(params![id.0.as_bytes()])?;
    Ok(())
}

/// [`Store::reserve_budget`](crate::Store::reserve_budget) on this backend.
pub(super) async fn reserve_budget(
    store: &SqliteStore,
    lease: &Lease,
    limits: &BudgetLimits<'_>,
    estimate_usd: f64,
    hold_for: Duration,
) -> Result<Reservation> {
    let lease = lease.clone();
    let owners: Vec<(Option<String>, BudgetLimit)> = limits
        .owners()
        .map(|(owner, limit)| match owner {
            BudgetOwner::Tenant => (None, limit),
            BudgetOwner::Principal(p) => (Some(p.to_owned()), limit),
        })
        .collect();
    let principal = limits.principal.map(|(p, _)| p.to_owned());
    store
        .write(move |conn, now, _| {
            check_lease(conn, &lease)?;
            for (principal, limit) in &owners {
                let (spent, reserved) = period(conn, &lease, now, principal.as_deref(), limit)?;
                if spent + reserved + estimate_usd > limit.limit_usd {
                    release_reservation(conn, &lease.run_id)?;
                    return Ok(Reservation::Exhausted {
                        principal: principal.is_some(),
                        spent_usd: spent,
                        reserved_usd: reserved,
                    });
                }
            }
            conn.prepare_cached(
            "INSERT INTO budget_reservations (run_id, tenant, amount_usd, expires_at, principal) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (run_id) DO UPDATE SET \
             amount_usd = excluded.amount_usd, expires_at = excluded.expires_at, \
             principal = excluded.principal",
        )?
        .execute(params![
            lease.run_id.0.as_bytes(),
            lease.tenant.as_str(),
            estimate_usd,
            now + hold_for.as_millis() as i64,
            principal,
        ])?;
            Ok(Reservation::Granted)
        })
        .await
}

/// Opens or rolls the tenant's budget period (`principal` `None`) or the
/// principal's within it; returns what the period spent and what other
/// runs' calls in flight hold of it.
fn period(
    conn: &Connection,
    lease: &Lease,
    now: Millis,
    principal: Option<&str>,
    limit: &BudgetLimit,
) -> Result<(f64, f64)> {
    let start = agentd_core::period_start(now, limit.period);
    let tenant = lease.tenant.as_str();
    let id = lease.run_id.0.as_bytes();
    // A new period starts from nothing spent.
    let (spent, reserved) = match principal {
        None => (
            conn.prepare_cached(
                "INSERT INTO tenant_budgets (tenant, period_start, spent_usd) VALUES (?1, ?2, 0) \
                 ON CONFLICT (tenant) DO UPDATE SET \
                 spent_usd = CASE WHEN period_start < excluded.period_start THEN 0 ELSE spent_usd END, \
                 period_start = MAX(period_start, excluded.period_start) \
                 RETURNING spent_usd",
            )?
            .query_row(params![tenant, start], |r| r.get(0))?,
            conn.prepare_cached(
                "SELECT COALESCE(SUM(amount_usd), 0) FROM budget_reservations \
                 WHERE tenant = ?1 AND expires_at > ?2 AND run_id <> ?3",
            )?
            .query_row(params![tenant, now, id], |r| r.get(0))?,
        ),
        Some(principal) => (
            conn.prepare_cached(
                "INSERT INTO principal_budgets (tenant, principal, period_start, spent_usd) \
                 VALUES (?1, ?2, ?3, 0) ON CONFLICT (tenant, principal) DO UPDATE SET \
                 spent_usd = CASE WHEN period_start < excluded.period_start THEN 0 ELSE spent_usd END, \
                 period_start = MAX(period_start, excluded.period_start) \
                 RETURNING spent_usd",
            )?
            .query_row(params![tenant, principal, start], |r| r.get(0))?,
            conn.prepare_cached(
                "SELECT COALESCE(SUM(amount_usd), 0) FROM budget_reservations \
                 WHERE tenant = ?1 AND principal = ?2 AND expires_at > ?3 AND run_id <> ?4",
            )?
            .query_row(params![tenant, principal, now, id], |r| r.get(0))?,
        ),
    };
    Ok((spent, reserved))
}

/// [`Store::set_circuit`](crate::Store::set_circuit) on this backend.
pub(super) async fn set_circuit(
    store: &SqliteStore,
    provider: &str,
    open_for: Option<Duration>,
) -> Result<()> {
    let provider = provider.to_string();
    store
        .write(move |conn, now, _| {
            match open_for {
                Some(d) => conn
                    .prepare_cached(
                        "INSERT INTO circuits (provider, open_until) VALUES (?1, ?2) \
                     ON CONFLICT (provider) DO UPDATE SET \
                     open_until = MAX(open_until, excluded.open_until)",
                    )?
                    .execute(params![provider, now + d.as_millis() as i64])?,
                None => conn
                    .prepare_cached("DELETE FROM circuits WHERE provider = ?1")?
                    .execute(params![provider])?,
            };
            Ok(())
        })
        .await
}

/// [`Store::budget_spent`](crate::Store::budget_spent) on this backend.
pub(super) async fn budget_spent(
    store: &SqliteStore,
    tenant: &TenantId,
    owner: BudgetOwner<'_>,
    period: Duration,
) -> Result<f64> {
    let period_start = agentd_core::period_start((store.clock)(), period);
    let tenant = tenant.as_str().to_owned();
    let principal = match owner {
        BudgetOwner::Tenant => None,
        BudgetOwner::Principal(p) => Some(p.to_owned()),
    };
    store
        .read(move |conn, _| {
            // A row of an earlier period is spending that no longer counts.
            let spent = match principal {
                None => conn
                    .prepare_cached(
                        "SELECT spent_usd FROM tenant_budgets \
                         WHERE tenant = ?1 AND period_start >= ?2",
                    )?
                    .query_row(params![tenant, period_start], |r| r.get::<_, f64>(0))
                    .optional()?,
                Some(principal) => conn
                    .prepare_cached(
                        "SELECT spent_usd FROM principal_budgets \
                         WHERE tenant = ?1 AND principal = ?2 AND period_start >= ?3",
                    )?
                    .query_row(params![tenant, principal, period_start], |r| {
                        r.get::<_, f64>(0)
                    })
                    .optional()?,
            };
            Ok(spent.unwrap_or(0.0))
        })
        .await
}

/// [`Store::open_circuits`](crate::Store::open_circuits) on this backend.
pub(super) async fn open_circuits(store: &SqliteStore) -> Result<Vec<(String, Duration)>> {
    let now = (store.clock)();
    store
        .read(move |conn, _| {
            let mut stmt = conn.prepare_cached(
                "SELECT provider, open_until - ?1 FROM circuits WHERE open_until > ?1",
            )?;
            let rows = stmt.query_map(params![now], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            let mut open = Vec::new();
            for row in rows {
                let (provider, ms) = row?;
                open.push((provider, Duration::from_millis(ms.max(0) as u64)));
            }
            Ok(open)
        })
        .await
}
