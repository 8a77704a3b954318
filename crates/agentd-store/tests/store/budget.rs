//! Tenant budgets: reservations against the period's spending, settled by
//! journaled steps, serialized per tenant.

use crate::harness::{Ctx, running, step, tenant};
use agentd_core::{ErrorCode, RunError, StepKind};
use agentd_store::{BudgetLimit, Outcome, Reservation, StoreError};
use std::time::Duration;

const HOLD: Duration = Duration::from_secs(300);

pub async fn reservations_settle_and_bound_spending(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let limit = BudgetLimit {
        limit_usd: 1.0,
        period: Duration::from_secs(86_400),
    };
    let a = running(s, &t).await;
    let b = running(s, &t).await;

    // a holds 0.6; b cannot get 0.6 more while a's call is in flight.
    assert_eq!(
        s.reserve_budget(&a.lease, &limit, 0.6, HOLD).await.unwrap(),
        Reservation::Granted
    );
    let Reservation::Exhausted {
        spent_usd,
        reserved_usd,
    } = s.reserve_budget(&b.lease, &limit, 0.6, HOLD).await.unwrap()
    else {
        panic!("b overbooked the budget");
    };
    assert_eq!((spent_usd, reserved_usd), (0.0, 0.6));
    // Re-reserving replaces a run's own reservation.
    assert_eq!(
        s.reserve_budget(&a.lease, &limit, 0.5, HOLD).await.unwrap(),
        Reservation::Granted
    );

    // a's step costs 0.25 (the fixture's cost): journaled, it is spent and
    // a's reservation ends, so b now fits.
    s.append_steps(&a.lease, &[step(0, StepKind::Llm)], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        s.reserve_budget(&b.lease, &limit, 0.6, HOLD).await.unwrap(),
        Reservation::Granted
    );
    // b ends (its reservation with it) having spent 0.25 too.
    s.finish_run(
        &b.lease,
        &[step(0, StepKind::Llm)],
        &Outcome::Failed {
            error: RunError::new(ErrorCode::ProviderError, "x"),
        },
    )
    .await
    .unwrap();
    // Spent 0.5: 0.5 more fits, 0.6 does not.
    let Reservation::Exhausted {
        spent_usd,
        reserved_usd,
    } = s.reserve_budget(&a.lease, &limit, 0.6, HOLD).await.unwrap()
    else {
        panic!("a overspent");
    };
    assert!((spent_usd - 0.5).abs() < 1e-9, "{spent_usd}");
    assert_eq!(reserved_usd, 0.0);
    assert_eq!(
        s.reserve_budget(&a.lease, &limit, 0.5, HOLD).await.unwrap(),
        Reservation::Granted
    );

    // Another tenant has its own budget.
    let other = tenant("other");
    let c = running(s, &other).await;
    assert_eq!(
        s.reserve_budget(&c.lease, &limit, 1.0, HOLD).await.unwrap(),
        Reservation::Granted
    );

    // Only the holder of a lease may reserve.
    s.release(&c.lease).await.unwrap();
    assert!(matches!(
        s.reserve_budget(&c.lease, &limit, 0.1, HOLD).await,
        Err(StoreError::LeaseLost { .. })
    ));
}

pub async fn reservations_expire_and_periods_roll(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let limit = BudgetLimit {
        limit_usd: 0.3,
        period: Duration::from_secs(2),
    };
    let a = running(s, &t).await;
    let b = running(s, &t).await;
    // Align to the start of a period so the next steps stay inside it.
    let until_next = 2_000 - (agentd_core::now_millis() + ctx.offset_ms()).rem_euclid(2_000);
    ctx.advance(Duration::from_millis(until_next as u64 + 50))
        .await;

    // A reservation held by a dead worker blocks only until it expires.
    assert_eq!(
        s.reserve_budget(&a.lease, &limit, 0.2, Duration::from_millis(300))
            .await
            .unwrap(),
        Reservation::Granted
    );
    assert!(matches!(
        s.reserve_budget(&b.lease, &limit, 0.2, HOLD).await.unwrap(),
        Reservation::Exhausted { .. }
    ));
    ctx.advance(Duration::from_millis(400)).await;
    assert_eq!(
        s.reserve_budget(&b.lease, &limit, 0.2, HOLD).await.unwrap(),
        Reservation::Granted
    );
    s.append_steps(&b.lease, &[step(0, StepKind::Llm)], Duration::from_secs(60))
        .await
        .unwrap();
    // 0.25 spent this period: nothing above 0.05 fits...
    assert!(matches!(
        s.reserve_budget(&b.lease, &limit, 0.1, HOLD).await.unwrap(),
        Reservation::Exhausted { .. }
    ));
    // ...until the next period starts from nothing.
    ctx.advance(Duration::from_millis(2_000)).await;
    assert_eq!(
        s.reserve_budget(&b.lease, &limit, 0.3, HOLD).await.unwrap(),
        Reservation::Granted
    );
}

/// `budget_spent`, the `/metrics` read: what was journaled in the current
/// period, per tenant, never what is only reserved, and nothing once the
/// period has rolled.
pub async fn spending_is_read_per_tenant_and_period(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, other) = (tenant("acme"), tenant("globex"));
    let period = Duration::from_secs(2);
    let limit = BudgetLimit {
        limit_usd: 10.0,
        period,
    };
    assert_eq!(s.budget_spent(&t, period).await.unwrap(), 0.0);
    let a = running(s, &t).await;
    // Align to the start of a period so the next steps stay inside it.
    let until_next = 2_000 - (agentd_core::now_millis() + ctx.offset_ms()).rem_euclid(2_000);
    ctx.advance(Duration::from_millis(until_next as u64 + 50))
        .await;

    assert_eq!(
        s.reserve_budget(&a.lease, &limit, 1.0, HOLD).await.unwrap(),
        Reservation::Granted
    );
    assert_eq!(
        s.budget_spent(&t, period).await.unwrap(),
        0.0,
        "reserved only"
    );
    s.append_steps(&a.lease, &[step(0, StepKind::Llm)], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(s.budget_spent(&t, period).await.unwrap(), 0.25);
    assert_eq!(s.budget_spent(&other, period).await.unwrap(), 0.0);

    ctx.advance(period).await;
    assert_eq!(
        s.budget_spent(&t, period).await.unwrap(),
        0.0,
        "a new period"
    );
}
