//! PostgreSQL budgets (per-tenant spending and reservations) and shared
//! provider circuits.

use super::*;

/// [`Store::reserve_budget`](crate::Store::reserve_budget) on this backend.
pub(super) async fn reserve_budget(
    store: &PgStore,
    lease: &Lease,
    limit: &BudgetLimit,
    estimate_usd: f64,
    hold_for: Duration,
) -> Result<Reservation> {
    let mut tx = store.pool.begin().await?;
    let held = sqlx::query(sql::LEASE_HELD.as_str())
        .bind(lease.run_id.0)
        .bind(lease.tenant.as_str())
        .bind(lease.token)
        .fetch_optional(&mut *tx)
        .await?;
    if held.is_none() {
        return Err(StoreError::LeaseLost { run: lease.run_id });
    }
    let spent: f64 = sqlx::query(sql::BUDGET_PERIOD)
        .bind(lease.tenant.as_str())
        .bind(lease_ms(limit.period).max(1))
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let reserved: f64 = sqlx::query(sql::BUDGET_RESERVED)
        .bind(lease.tenant.as_str())
        .bind(lease.run_id.0)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let answer = if spent + reserved + estimate_usd > limit.limit_usd {
        sqlx::query(sql::BUDGET_RELEASE)
            .bind(lease.run_id.0)
            .execute(&mut *tx)
            .await?;
        Reservation::Exhausted {
            spent_usd: spent,
            reserved_usd: reserved,
        }
    } else {
        sqlx::query(sql::BUDGET_RESERVE)
            .bind(lease.run_id.0)
            .bind(lease.tenant.as_str())
            .bind(estimate_usd)
            .bind(lease_ms(hold_for))
            .execute(&mut *tx)
            .await?;
        Reservation::Granted
    };
    // Noted before the commit: a reservation that exists is never
    // missing from the set (a spurious entry only costs a settle).
    store.set_reserved(lease.run_id, answer == Reservation::Granted);
    store.commit(tx).await?;
    Ok(answer)
}

/// [`Store::set_circuit`](crate::Store::set_circuit) on this backend.
pub(super) async fn set_circuit(
    store: &PgStore,
    provider: &str,
    open_for: Option<Duration>,
) -> Result<()> {
    match open_for {
        Some(d) => {
            sqlx::query(sql::CIRCUIT_OPEN)
                .bind(provider)
                .bind(lease_ms(d))
                .execute(&store.pool)
                .await?
        }
        None => {
            sqlx::query(sql::CIRCUIT_CLOSE)
                .bind(provider)
                .execute(&store.pool)
                .await?
        }
    };
    store.committed();
    Ok(())
}

/// [`Store::budget_spent`](crate::Store::budget_spent) on this backend.
pub(super) async fn budget_spent(
    store: &PgStore,
    tenant: &TenantId,
    period: Duration,
) -> Result<f64> {
    let row = sqlx::query(sql::BUDGET_SPENT)
        .bind(tenant.as_str())
        .bind(lease_ms(period).max(1))
        .fetch_optional(&store.pool)
        .await?;
    Ok(match row {
        Some(r) => r.try_get(0)?,
        None => 0.0,
    })
}

/// [`Store::open_circuits`](crate::Store::open_circuits) on this backend.
pub(super) async fn open_circuits(store: &PgStore) -> Result<Vec<(String, Duration)>> {
    let rows = sqlx::query(sql::CIRCUITS_OPEN)
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            let ms: i64 = r.try_get(1)?;
            Ok((r.try_get(0)?, Duration::from_millis(ms.max(0) as u64)))
        })
        .collect()
}
