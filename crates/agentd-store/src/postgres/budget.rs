//! PostgreSQL budgets (per-tenant and per-principal spending and reservations) and shared
//! provider circuits.

use super::*;

/// [`Store::reserve_budget`](crate::Store::reserve_budget) on this backend.
pub(super) async fn reserve_budget(
    store: &PgStore,
    lease: &Lease,
    limits: &BudgetLimits<'_>,
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
    let mut exhausted = None;
    for (owner, limit) in limits.owners() {
        let principal = match owner {
            BudgetOwner::Tenant => None,
            BudgetOwner::Principal(p) => Some(p),
        };
        let (period_sql, reserved_sql) = match principal {
            None => (sql::BUDGET_PERIOD, sql::BUDGET_RESERVED),
            Some(_) => (sql::PRINCIPAL_BUDGET_PERIOD, sql::PRINCIPAL_BUDGET_RESERVED),
        };
        let mut period = sqlx::query(period_sql)
            .bind(lease.tenant.as_str())
            .bind(lease_ms(limit.period).max(1));
        if let Some(p) = principal {
            period = period.bind(p);
        }
        let spent: f64 = period.fetch_one(&mut *tx).await?.try_get(0)?;
        let mut reserved = sqlx::query(reserved_sql)
            .bind(lease.tenant.as_str())
            .bind(lease.run_id.0);
        if let Some(p) = principal {
            reserved = reserved.bind(p);
        }
        let reserved: f64 = reserved.fetch_one(&mut *tx).await?.try_get(0)?;
        if spent + reserved + estimate_usd > limit.limit_usd {
            exhausted = Some(Reservation::Exhausted {
                principal: principal.is_some(),
                spent_usd: spent,
                reserved_usd: reserved,
            });
            break;
        }
    }
    let answer = match exhausted {
        Some(exhausted) => {
            sqlx::query(sql::BUDGET_RELEASE)
                .bind(lease.run_id.0)
                .execute(&mut *tx)
                .await?;
            exhausted
        }
        None => {
            sqlx::query(sql::BUDGET_RESERVE)
                .bind(lease.run_id.0)
                .bind(lease.tenant.as_str())
                .bind(estimate_usd)
                .bind(lease_ms(hold_for))
                .bind(limits.principal.map(|(p, _)| p))
                .execute(&mut *tx)
                .await?;
            Reservation::Granted
        }
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
    owner: BudgetOwner<'_>,
    period: Duration,
) -> Result<f64> {
    let query = match owner {
        BudgetOwner::Tenant => sqlx::query(sql::BUDGET_SPENT)
            .bind(tenant.as_str())
            .bind(lease_ms(period).max(1)),
        BudgetOwner::Principal(p) => sqlx::query(sql::PRINCIPAL_BUDGET_SPENT)
            .bind(tenant.as_str())
            .bind(lease_ms(period).max(1))
            .bind(p),
    };
    Ok(match query.fetch_optional(&store.pool).await? {
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
