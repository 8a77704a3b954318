//! Tenant and principal budgets: reservations against the period's
//! spending, settled by journaled steps, serialized per tenant.

use crate::harness::{Ctx, claim, new_run, principal, running, step, tenant};
use agentd_core::{ErrorCode, RunError, StepKind};
use agentd_store::{BudgetLimit, BudgetLimits, BudgetOwner, Outcome, Reservation, StoreError};
use std::time::Duration;

const HOLD: Duration = Duration::from_secs(300);

/// Only the tenant's `limit`.
fn tenant_only(limit: BudgetLimit) -> BudgetLimits<'static> {
    BudgetLimits {
        tenant: Some(limit),
        principal: None,
    }
}

/// A run of principal `p` in tenant `t`, claimed.
async fn running_as(ctx: &Ctx, t: &agentd_core::TenantId, p: &str) -> agentd_store::Claimed {
    let run = agentd_core::NewRun {
        principal: principal(p),
        ..new_run("a")
    };
    ctx.store
        .create_run(t, &run, Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap()
}

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
        s.reserve_budget(&a.lease, &tenant_only(limit), 0.6, HOLD)
            .await
            .unwrap(),
        Reservation::Granted
    );
    let Reservation::Exhausted {
        principal: false,
        spent_usd,
        reserved_usd,
    } = s
        .reserve_budget(&b.lease, &tenant_only(limit), 0.6, HOLD)
        .await
        .unwrap()
    else {
        panic!("b overbooked the budget");
    };
    assert_eq!((spent_usd, reserved_usd), (0.0, 0.6));
    // Re-reserving replaces a run's own reservation.
    assert_eq!(
        s.reserve_budget(&a.lease, &tenant_only(limit), 0.5, HOLD)
            .await
            .unwrap(),
        Reservation::Granted
    );

    // a's step costs 0.25 (the fixture's cost): journaled, it is spent and
    // a's reservation ends, so b now fits.
    s.append_steps(&a.lease, &[step(0, StepKind::Llm)], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        s.reserve_budget(&b.lease, &tenant_only(limit), 0.6, HOLD)
            .await
            .unwrap(),
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
        principal: false,
        spent_usd,
        reserved_usd,
    } = s
        .reserve_budget(&a.lease, &tenant_only(limit), 0.6, HOLD)
        .await
        .unwrap()
    else {
        panic!("a overspent");
    };
    assert!((spent_usd - 0.5).abs() < 1e-9, "{spent_usd}");
    assert_eq!(reserved_usd, 0.0);
    assert_eq!(
        s.reserve_budget(&a.lease, &tenant_only(limit), 0.5, HOLD)
            .await
            .unwrap(),
        Reservation::Granted
    );

    // Another tenant has its own budget.
    let other = tenant("other");
    let c = running(s, &other).await;
    assert_eq!(
        s.reserve_budget(&c.lease, &tenant_only(limit), 1.0, HOLD)
            .await
            .unwrap(),
        Reservation::Granted
    );

    // Only the holder of a lease may reserve.
    s.release(&c.lease).await.unwrap();
    assert!(matches!(
        s.reserve_budget(&c.lease, &tenant_only(limit), 0.1, HOLD)
            .await,
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
        s.reserve_budget(
            &a.lease,
            &tenant_only(limit),
            0.2,
            Duration::from_millis(300)
        )
        .await
        .unwrap(),
        Reservation::Granted
    );
    assert!(matches!(
        s.reserve_budget(&b.lease, &tenant_only(limit), 0.2, HOLD)
            .await
            .unwrap(),
        Reservation::Exhausted { .. }
    ));
    ctx.advance(Duration::from_millis(400)).await;
    assert_eq!(
        s.reserve_budget(&b.lease, &tenant_only(limit), 0.2, HOLD)
            .await
            .unwrap(),
        Reservation::Granted
    );
    s.append_steps(&b.lease, &[step(0, StepKind::Llm)], Duration::from_secs(60))
        .await
        .unwrap();
    // 0.25 spent this period: nothing above 0.05 fits...
    assert!(matches!(
        s.reserve_budget(&b.lease, &tenant_only(limit), 0.1, HOLD)
            .await
            .unwrap(),
        Reservation::Exhausted { .. }
    ));
    // ...until the next period starts from nothing.
    ctx.advance(Duration::from_millis(2_000)).await;
    assert_eq!(
        s.reserve_budget(&b.lease, &tenant_only(limit), 0.3, HOLD)
            .await
            .unwrap(),
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
    assert_eq!(
        s.budget_spent(&t, BudgetOwner::Tenant, period)
            .await
            .unwrap(),
        0.0
    );
    let a = running(s, &t).await;
    // Align to the start of a period so the next steps stay inside it.
    let until_next = 2_000 - (agentd_core::now_millis() + ctx.offset_ms()).rem_euclid(2_000);
    ctx.advance(Duration::from_millis(until_next as u64 + 50))
        .await;

    assert_eq!(
        s.reserve_budget(&a.lease, &tenant_only(limit), 1.0, HOLD)
            .await
            .unwrap(),
        Reservation::Granted
    );
    assert_eq!(
        s.budget_spent(&t, BudgetOwner::Tenant, period)
            .await
            .unwrap(),
        0.0,
        "reserved only"
    );
    s.append_steps(&a.lease, &[step(0, StepKind::Llm)], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        s.budget_spent(&t, BudgetOwner::Tenant, period)
            .await
            .unwrap(),
        0.25
    );
    assert_eq!(
        s.budget_spent(&other, BudgetOwner::Tenant, period)
            .await
            .unwrap(),
        0.0
    );

    ctx.advance(period).await;
    assert_eq!(
        s.budget_spent(&t, BudgetOwner::Tenant, period)
            .await
            .unwrap(),
        0.0,
        "a new period"
    );
}

/// A principal's budget is counted per tenant, bounds its own runs only,
/// holds calls in flight, and applies together with the tenant's.
pub async fn principal_budgets_bound_each_principal_per_tenant(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, other) = (tenant("acme"), tenant("globex"));
    let period = Duration::from_secs(86_400);
    let limit = BudgetLimit {
        limit_usd: 0.4,
        period,
    };
    let alice = |l| BudgetLimits {
        tenant: None,
        principal: Some(("alice", l)),
    };
    let a = running_as(ctx, &t, "alice").await;
    let b = running_as(ctx, &t, "alice").await;
    let bob = running_as(ctx, &t, "bob").await;

    // a holds 0.3 of alice's 0.4: b (alice's too) cannot get 0.3 more.
    assert_eq!(
        s.reserve_budget(&a.lease, &alice(limit), 0.3, HOLD)
            .await
            .unwrap(),
        Reservation::Granted
    );
    assert_eq!(
        s.reserve_budget(&b.lease, &alice(limit), 0.3, HOLD)
            .await
            .unwrap(),
        Reservation::Exhausted {
            principal: true,
            spent_usd: 0.0,
            reserved_usd: 0.3
        }
    );
    // bob's budget is his own, and the tenant's (1.0) has room for both.
    let both = BudgetLimits {
        tenant: Some(BudgetLimit {
            limit_usd: 1.0,
            period,
        }),
        principal: Some(("bob", limit)),
    };
    assert_eq!(
        s.reserve_budget(&bob.lease, &both, 0.3, HOLD)
            .await
            .unwrap(),
        Reservation::Granted
    );

    // a's step (0.25) is journaled: spent by alice, and by the tenant.
    s.append_steps(&a.lease, &[step(0, StepKind::Llm)], Duration::from_secs(60))
        .await
        .unwrap();
    let t_ = &t;
    let spent = |p| async move {
        s.budget_spent(t_, BudgetOwner::Principal(p), period)
            .await
            .unwrap()
    };
    assert_eq!(spent("alice").await, 0.25);
    assert_eq!(spent("bob").await, 0.0);
    assert_eq!(
        s.budget_spent(&other, BudgetOwner::Principal("alice"), period)
            .await
            .unwrap(),
        0.0,
        "alice in another tenant spent nothing"
    );
    // 0.15 of alice's budget is left: 0.2 does not fit, 0.1 does.
    let Reservation::Exhausted {
        principal: true,
        spent_usd,
        reserved_usd,
    } = s
        .reserve_budget(&b.lease, &alice(limit), 0.2, HOLD)
        .await
        .unwrap()
    else {
        panic!("alice overspent");
    };
    assert_eq!((spent_usd, reserved_usd), (0.25, 0.0));
    assert_eq!(
        s.reserve_budget(&b.lease, &alice(limit), 0.1, HOLD)
            .await
            .unwrap(),
        Reservation::Granted
    );
    // alice in another tenant starts from nothing.
    let elsewhere = running_as(ctx, &other, "alice").await;
    assert_eq!(
        s.reserve_budget(&elsewhere.lease, &alice(limit), 0.4, HOLD)
            .await
            .unwrap(),
        Reservation::Granted
    );

    // A spent tenant budget refuses bob even with room in his own; the
    // refusal names the tenant's.
    let tight = BudgetLimits {
        tenant: Some(BudgetLimit {
            limit_usd: 0.3,
            period,
        }),
        principal: Some(("bob", limit)),
    };
    assert!(matches!(
        s.reserve_budget(&bob.lease, &tight, 0.1, HOLD)
            .await
            .unwrap(),
        Reservation::Exhausted {
            principal: false,
            ..
        }
    ));
    // bob's run ends spending 0.25: his period has it.
    s.finish_run(
        &bob.lease,
        &[step(0, StepKind::Llm)],
        &Outcome::Failed {
            error: RunError::new(ErrorCode::ProviderError, "x"),
        },
    )
    .await
    .unwrap();
    assert_eq!(spent("bob").await, 0.25);
    assert_eq!(
        s.budget_spent(&t, BudgetOwner::Tenant, period)
            .await
            .unwrap(),
        0.5
    );
}

/// A principal's period rolls as a tenant's does: spending of the last
/// period no longer counts.
pub async fn principal_periods_roll(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let period = Duration::from_secs(2);
    let limit = BudgetLimits {
        tenant: None,
        principal: Some((
            "alice",
            BudgetLimit {
                limit_usd: 0.3,
                period,
            },
        )),
    };
    let a = running_as(ctx, &t, "alice").await;
    // Align to the start of a period so the next steps stay inside it.
    let until_next = 2_000 - (agentd_core::now_millis() + ctx.offset_ms()).rem_euclid(2_000);
    ctx.advance(Duration::from_millis(until_next as u64 + 50))
        .await;
    assert_eq!(
        s.reserve_budget(&a.lease, &limit, 0.2, HOLD).await.unwrap(),
        Reservation::Granted
    );
    s.append_steps(&a.lease, &[step(0, StepKind::Llm)], Duration::from_secs(60))
        .await
        .unwrap();
    let spent = async || {
        s.budget_spent(&t, BudgetOwner::Principal("alice"), period)
            .await
            .unwrap()
    };
    assert_eq!(spent().await, 0.25);
    assert!(matches!(
        s.reserve_budget(&a.lease, &limit, 0.1, HOLD).await.unwrap(),
        Reservation::Exhausted {
            principal: true,
            ..
        }
    ));
    // The next period starts from nothing: the whole budget fits.
    ctx.advance(period).await;
    assert_eq!(spent().await, 0.0);
    assert_eq!(
        s.reserve_budget(&a.lease, &limit, 0.3, HOLD).await.unwrap(),
        Reservation::Granted
    );
}
