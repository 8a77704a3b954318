//! The usage report: exact sums per group, tenant isolation, the range's
//! bounds, and runs in flight counted beside finished ones.

use crate::harness::{Ctx, claim, new_run, principal, tenant};
use agentd_core::{
    ErrorCode, Millis, RunError, RunId, Step, StepKind, StepStatus, TenantId, Usage,
};
use agentd_store::{Outcome, StepWrite, Store, UsageGroup, UsageQuery, UsageRow};
use std::sync::Arc;
use std::time::Duration;

const DAY: Millis = 86_400_000;
const HOUR: Millis = 3_600_000;
/// 2026-11-30T00:00:00Z and the next day.
const D1: Millis = 20_787 * DAY;
const D2: Millis = D1 + DAY;

/// Step `index`: a model call to `provider` (its tokens and cost), or with
/// `None` a tool call that used no model.
fn step(index: u32, provider: Option<(&str, u64, u64, f64)>) -> StepWrite {
    let (kind, name, usage, cost) = match provider {
        Some((name, i, o, cost)) => (
            StepKind::Llm,
            name,
            Usage {
                input_tokens: i,
                output_tokens: o,
            },
            cost,
        ),
        None => (StepKind::Tool, "echo", Usage::default(), 0.0),
    };
    StepWrite {
        step: Step {
            index,
            kind,
            name: name.to_string(),
            call_id: (kind == StepKind::Tool).then(|| format!("call_{index}")),
            status: StepStatus::Completed,
            attempt: 1,
            started_at: agentd_core::now_millis(),
            duration_ms: 1,
            input: serde_json::json!({}),
            output: serde_json::json!({ "content": "x" }),
            error: None,
            usage: (kind == StepKind::Llm).then_some(usage),
        },
        usage,
        cost_usd: cost,
    }
}

fn fail(code: ErrorCode) -> RunError {
    RunError::new(code, "x")
}

/// How a seeded run ends up.
enum End {
    Succeeded,
    Failed,
    Dead,
    /// Claimed, its steps journaled, still running.
    Running,
    /// Never claimed.
    Queued,
}

/// Creates a run of `agent` by `who` in `t`, journals `steps`, ends it as
/// `end` says and dates it `created_at`.
#[allow(clippy::too_many_arguments)]
async fn seed(
    ctx: &Ctx,
    t: &TenantId,
    agent: &str,
    who: &str,
    created_at: Millis,
    steps: &[StepWrite],
    end: End,
) -> RunId {
    let s: &Arc<dyn Store> = &ctx.store;
    let mut run = new_run(agent);
    run.principal = principal(who);
    let id = run.id;
    if let End::Queued = end {
        s.create_run(t, &run, None).await.unwrap();
        return date(ctx, id, created_at).await;
    }
    let lease = s
        .create_run(t, &run, Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap()
        .lease;
    // Dated before its steps: the journal copies the run's creation time
    // into the sums per provider.
    date(ctx, id, created_at).await;
    let outcome = match end {
        End::Succeeded => Outcome::Succeeded {
            output: serde_json::json!("ok"),
            output_json: None,
            messages: Vec::new(),
        },
        End::Failed => Outcome::Failed {
            error: fail(ErrorCode::ProviderError),
        },
        End::Dead => Outcome::Dead {
            error: fail(ErrorCode::Timeout),
        },
        End::Running | End::Queued => {
            s.append_steps(&lease, steps, Duration::from_secs(60))
                .await
                .unwrap();
            return id;
        }
    };
    s.finish_run(&lease, steps, &outcome).await.unwrap();
    id
}

/// Backdates run `id` (the store stamps creation with its own clock).
async fn date(ctx: &Ctx, id: RunId, created_at: Millis) -> RunId {
    ctx.exec(&format!(
        "UPDATE runs SET created_at = {created_at} WHERE id = {}",
        ctx.id_sql(id)
    ))
    .await;
    id
}

async fn report(
    ctx: &Ctx,
    t: &TenantId,
    group_by: UsageGroup,
    since: Option<Millis>,
    until: Option<Millis>,
) -> Vec<UsageRow> {
    let q = UsageQuery {
        group_by,
        since,
        until,
    };
    ctx.store.usage(t, &q).await.unwrap()
}

/// `(key, runs, failed, input_tokens, output_tokens)` of each row, and
/// its cost.
fn sums(rows: &[UsageRow]) -> Vec<(&str, u64, u64, u64, u64)> {
    rows.iter()
        .map(|r| {
            (
                r.key.as_str(),
                r.runs,
                r.failed,
                r.input_tokens,
                r.output_tokens,
            )
        })
        .collect()
}

fn costs(rows: &[UsageRow]) -> Vec<f64> {
    // Rounded: the sums are of binary fractions.
    rows.iter()
        .map(|r| (r.cost_usd * 1e6).round() / 1e6)
        .collect()
}

pub async fn usage_by_group_and_range(ctx: &Ctx) {
    let acme = tenant("acme");
    let other = tenant("other");
    // acme, day 1: one success on openai (two calls around a tool call),
    // a failure on anthropic in the day's last millisecond.
    seed(
        ctx,
        &acme,
        "support",
        "alice",
        D1 + HOUR,
        &[
            step(0, Some(("openai", 100, 10, 0.1))),
            step(1, None),
            step(2, Some(("openai", 50, 5, 0.05))),
        ],
        End::Succeeded,
    )
    .await;
    seed(
        ctx,
        &acme,
        "support",
        "bob",
        D2 - 1,
        &[step(0, Some(("anthropic", 200, 20, 0.2)))],
        End::Failed,
    )
    .await;
    // Day 2: a dead run that called both providers, at its first
    // millisecond; a run still running; a run still queued.
    seed(
        ctx,
        &acme,
        "triage",
        "alice",
        D2,
        &[
            step(0, Some(("openai", 10, 1, 0.01))),
            step(1, Some(("anthropic", 20, 2, 0.02))),
        ],
        End::Dead,
    )
    .await;
    seed(
        ctx,
        &acme,
        "triage",
        "bob",
        D2 + 2 * HOUR,
        &[step(0, Some(("openai", 30, 3, 0.03)))],
        End::Running,
    )
    .await;
    seed(
        ctx,
        &acme,
        "support",
        "alice",
        D2 + 3 * HOUR,
        &[],
        End::Queued,
    )
    .await;
    // Another tenant's run, the same agent, principal, provider and day.
    seed(
        ctx,
        &other,
        "support",
        "alice",
        D1 + HOUR,
        &[step(0, Some(("openai", 1000, 100, 1.0)))],
        End::Failed,
    )
    .await;

    let by_agent = report(ctx, &acme, UsageGroup::Agent, None, None).await;
    assert_eq!(
        sums(&by_agent),
        [("support", 3, 1, 350, 35), ("triage", 2, 1, 60, 6)]
    );
    assert_eq!(costs(&by_agent), [0.35, 0.06]);

    let by_principal = report(ctx, &acme, UsageGroup::Principal, None, None).await;
    assert_eq!(
        sums(&by_principal),
        [("alice", 3, 1, 180, 18), ("bob", 2, 1, 230, 23)]
    );
    assert_eq!(costs(&by_principal), [0.18, 0.23]);

    let by_day = report(ctx, &acme, UsageGroup::Day, None, None).await;
    assert_eq!(
        sums(&by_day),
        [("2026-11-30", 2, 1, 350, 35), ("2026-12-01", 3, 1, 60, 6)]
    );
    assert_eq!(costs(&by_day), [0.35, 0.06]);

    // A run counts under each provider it called; the tool call under none.
    let by_provider = report(ctx, &acme, UsageGroup::Provider, None, None).await;
    assert_eq!(
        sums(&by_provider),
        [("anthropic", 2, 2, 220, 22), ("openai", 3, 1, 190, 19)]
    );
    // Each provider's share of the cost: its calls', not the runs'.
    assert_eq!(costs(&by_provider), [0.22, 0.19]);

    // `since` is inclusive, `until` exclusive.
    let day2 = report(ctx, &acme, UsageGroup::Agent, Some(D2), Some(D2 + 2 * HOUR)).await;
    assert_eq!(sums(&day2), [("triage", 1, 1, 30, 3)]);
    let day1 = report(ctx, &acme, UsageGroup::Day, Some(D1 + HOUR), Some(D2)).await;
    assert_eq!(sums(&day1), [("2026-11-30", 2, 1, 350, 35)]);
    let late = report(
        ctx,
        &acme,
        UsageGroup::Provider,
        Some(D1 + HOUR + 1),
        Some(D2),
    )
    .await;
    assert_eq!(sums(&late), [("anthropic", 1, 1, 200, 20)]);
    assert_eq!(costs(&late), [0.2]);
    let after = report(ctx, &acme, UsageGroup::Principal, Some(D2 + 2 * HOUR), None).await;
    assert_eq!(sums(&after), [("alice", 1, 0, 0, 0), ("bob", 1, 0, 30, 3)]);
    assert!(
        report(ctx, &acme, UsageGroup::Agent, Some(D2), Some(D2))
            .await
            .is_empty()
    );

    // The other tenant sees only its own run; a tenant without runs, none.
    let theirs = report(ctx, &other, UsageGroup::Provider, None, None).await;
    assert_eq!(sums(&theirs), [("openai", 1, 1, 1000, 100)]);
    let theirs = report(ctx, &other, UsageGroup::Day, None, None).await;
    assert_eq!(sums(&theirs), [("2026-11-30", 1, 1, 1000, 100)]);
    assert_eq!(costs(&theirs), [1.0]);
    for g in UsageGroup::ALL {
        assert!(
            report(ctx, &tenant("nobody"), g, None, None)
                .await
                .is_empty()
        );
    }
}

/// By provider, a run's model calls count as they are journaled: while it
/// runs, paused, and not again in a fork that copies them (the original
/// paid for them).
pub async fn provider_usage_follows_the_journal(ctx: &Ctx) {
    let s = &ctx.store;
    let t = tenant("acme");
    let lease = s
        .create_run(&t, &new_run("a"), Some(&claim("w")))
        .await
        .unwrap()
        .claimed
        .unwrap()
        .lease;
    let by_provider = async || report(ctx, &t, UsageGroup::Provider, None, None).await;

    s.append_steps(
        &lease,
        &[step(0, Some(("openai", 100, 10, 0.1))), step(1, None)],
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(sums(&by_provider().await), [("openai", 1, 0, 100, 10)]);
    // The same provider again adds to the run's sums; another is a row.
    s.append_steps(
        &lease,
        &[
            step(2, Some(("openai", 50, 5, 0.05))),
            step(3, Some(("anthropic", 7, 1, 0.5))),
        ],
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    // The pause's write carries the model reply that asked the question.
    let mut waiting = step(5, None);
    waiting.step.status = StepStatus::Waiting;
    s.pause_run(
        &lease,
        &[step(4, Some(("openai", 5, 1, 0.01))), waiting],
        &agentd_core::Pause {
            question: "ok?".into(),
            step: 5,
            tool: None,
            args: None,
        },
    )
    .await
    .unwrap();
    let paused = by_provider().await;
    assert_eq!(
        sums(&paused),
        [("anthropic", 1, 0, 7, 1), ("openai", 1, 0, 155, 16)]
    );
    assert_eq!(costs(&paused), [0.5, 0.16]);

    s.fork_run(&t, lease.run_id, 5, &new_run("a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_provider().await, paused, "a fork's copies count once");
}
