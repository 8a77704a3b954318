//! `budget_usd` halts a run before the model call that would exceed it.

use crate::helpers::{SETTLE, kinds, spawn_engine};
use agentd_core::{ErrorCode, RunStatus, StepKind};

/// A model that never stops calling echo, priced so each call costs about
/// $0.0001 or more; the budget allows a few calls only.
const CONFIG: &str = r#"
[pricing."pricey"]
input_per_mtok = 10000.0
output_per_mtok = 10000.0

[providers.loop]
kind = "mock"
model = "pricey"
script = [{ tool = "echo", args = { text = "again" } }]

[[agents]]
name = "spender"
providers = ["loop"]
tools = ["echo"]
max_steps = 100
budget_usd = 0.5
"#;

#[tokio::test]
async fn a_spent_budget_fails_the_run_before_the_next_model_call() -> anyhow::Result<()> {
    // Arrange
    let t = spawn_engine(CONFIG).await?;
    let run = t.submit("spender", "go").await?;

    // Act
    let run = t.drive(run.id).await?;

    // Assert: failed with budget_exceeded, having spent at least the budget
    // but never starting a model call after it was spent.
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.clone().expect("an error");
    assert_eq!(error.code, ErrorCode::BudgetExceeded, "{error:?}");
    assert!(run.cost_usd >= 0.5, "{}", run.cost_usd);
    let steps = t.steps(run.id).await?;
    assert!(steps.len() < 100, "the budget did not stop the loop");
    // The last step is a tool step: the model was not called once spent.
    assert_eq!(kinds(&steps).last(), Some(&StepKind::Tool));
    let before_last_llm: f64 = run.cost_usd;
    assert!(
        before_last_llm < 0.5 + 0.5,
        "overspent by more than one call"
    );
    Ok(())
}

/// The issue's concurrency test: 64 runs of one tenant at once, on two
/// engines (two processes' worth of workers) sharing PostgreSQL, against a
/// tenant budget of about twenty model calls. The tenant's spending may not exceed
/// the budget by more than one step's cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_runs_cannot_overspend_a_tenant_budget_across_processes()
-> anyhow::Result<()> {
    use crate::helpers::{build_engine, drop_schema, identity, postgres_url, start_workers};
    use agentd_engine::Submit;

    let Some(pg) = postgres_url() else {
        return Ok(());
    };
    let schema = format!("budget_{}", std::process::id());
    let url = format!("{pg}?schema={schema}");
    // $0.01 per input token; the 400-character system prompt makes each
    // model call cost about $1, so a run of two calls about $2.
    let system = "x".repeat(400);
    let toml = format!(
        r#"
[queue]
workers = 32

[tenants.t1]
budget_usd = 20.0
period = "1d"

[pricing."pricey"]
input_per_mtok = 10000.0
output_per_mtok = 0.0

[providers.m]
kind = "mock"
model = "pricey"
latency_ms = 50
script = [
  {{ tool = "echo", args = {{ text = "{{{{input}}}}" }} }},
  {{ reply = "done: {{{{tool_result}}}}" }},
]

[[agents]]
name = "a"
providers = ["m"]
tools = ["echo"]
system_prompt = "{system}"
"#
    );
    let mut engines = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let store = agentd_store::open(&url).await?;
        store.migrate().await?;
        let engine = build_engine(&toml, store).await?;
        workers.push(start_workers(&engine));
        engines.push(engine);
    }
    let (t1, t2) = (identity("t1")?, identity("t2")?);

    // Act: 64 runs at once, half submitted to each engine; one run of a
    // tenant without a budget.
    let submit = |i: usize, who| {
        let engine = engines[i % 2].clone();
        async move {
            let req = Submit {
                input: serde_json::json!(format!("r{i}")),
                ..Submit::default()
            };
            engine.submit(who, "a", req).await
        }
    };
    let runs = futures::future::try_join_all((0..64).map(|i| submit(i, &t1))).await?;
    let free = submit(0, &t2).await?;
    let mut finished = Vec::new();
    for run in &runs {
        let done = engines[0]
            .wait(&t1.tenant, run.id, SETTLE)
            .await?
            .expect("run exists");
        finished.push(done);
    }
    let free = engines[0]
        .wait(&t2.tenant, free.id, SETTLE)
        .await?
        .expect("run exists");
    for w in workers {
        w.stop().await?;
    }
    let store = engines[0].store().clone();

    // Assert
    let mut max_step = 0.0f64;
    for run in &finished {
        let steps = store
            .list_steps(&t1.tenant, run.id, None, 100)
            .await?
            .expect("journal");
        for s in steps.items.iter().filter_map(|s| s.usage) {
            max_step = max_step.max(s.input_tokens as f64 * 0.01);
        }
    }
    let spent: f64 = finished.iter().map(|r| r.cost_usd).sum();
    let succeeded = finished
        .iter()
        .filter(|r| r.status == RunStatus::Succeeded)
        .count();
    let refused = finished
        .iter()
        .filter(|r| {
            r.error
                .as_ref()
                .is_some_and(|e| e.code == ErrorCode::BudgetExceeded)
        })
        .count();
    eprintln!(
        "tenant budget on PostgreSQL, 64 concurrent runs on 2 engines: spent ${spent:.4} of $20.00 \
         (overspend ${:.4}; largest step ${max_step:.4}); {succeeded} succeeded, {refused} refused",
        (spent - 20.0).max(0.0)
    );
    assert_eq!(
        succeeded + refused,
        64,
        "every run either finished or was refused"
    );
    // Runs take turns at the budget, so most spend their first call and
    // are refused their second.
    assert!(refused >= 30, "the budget must bite: {refused}");
    // The reservations are not so cautious that much budget is left unused.
    assert!(spent >= 20.0 - 2.0 * max_step, "only ${spent} of $20 spent");
    assert!(max_step > 0.9, "{max_step}");
    assert!(
        spent <= 20.0 + max_step,
        "overspent: ${spent} of $20 with steps of ${max_step}"
    );
    assert_eq!(free.status, RunStatus::Succeeded, "{:?}", free.error);
    drop(engines);
    drop(store);
    drop_schema(&pg, &schema).await?;
    Ok(())
}

/// Free model calls and an echo priced $0.25 a call: agent `once` calls
/// it once, provider `loop` forever.
const PRICED_ECHO: &str = r#"
[tools.echo]
cost_usd = 0.25

[providers.once]
kind = "mock"
script = [{ tool = "echo", args = { text = "x" } }, { reply = "done" }]

[providers.loop]
kind = "mock"
script = [{ tool = "echo", args = { text = "again" } }]

[[agents]]
name = "once"
providers = ["once"]
tools = ["echo"]
"#;

/// `[tools.NAME] cost_usd`: each call that returns a result is charged to
/// the run (journaled on its step) and counts toward its budget.
#[tokio::test]
async fn a_priced_tool_counts_toward_the_run_cost_and_its_budget() -> anyhow::Result<()> {
    // Arrange: free model calls; echo costs $0.25 a call.
    let t = spawn_engine(&format!(
        "{PRICED_ECHO}\n[[agents]]\nname = \"looper\"\nproviders = [\"loop\"]\n\
         tools = [\"echo\"]\nbudget_usd = 0.6\n"
    ))
    .await?;

    // Act
    let once = t.submit("once", "hi").await?;
    let once = t.drive(once.id).await?;
    let looper = t.submit("looper", "hi").await?;
    let looper = t.drive(looper.id).await?;

    // Assert
    assert_eq!(once.status, RunStatus::Succeeded);
    assert!((once.cost_usd - 0.25).abs() < 1e-9, "{}", once.cost_usd);
    assert_eq!(looper.status, RunStatus::Failed);
    assert_eq!(
        looper.error.as_ref().map(|e| e.code),
        Some(ErrorCode::BudgetExceeded)
    );
    // Three calls ($0.75) pass the $0.60 budget; the fourth model call is
    // refused before it is made.
    assert!((looper.cost_usd - 0.75).abs() < 1e-9, "{}", looper.cost_usd);
    let steps = t.steps(looper.id).await?;
    assert_eq!(steps.iter().filter(|s| s.kind == StepKind::Tool).count(), 3);
    Ok(())
}

/// Budget alerts: each share of a run's budget, and of its tenant's for
/// the period, is announced once, on the run whose spending crossed it.
#[tokio::test]
async fn each_budget_threshold_is_announced_once() -> anyhow::Result<()> {
    // Arrange: echo costs $0.25; runs of `looper` may spend $1, tenant t1
    // $0.6 a day.
    let t = spawn_engine(&format!(
        "{PRICED_ECHO}\n[[agents]]\nname = \"looper\"\nproviders = [\"loop\"]\n\
         tools = [\"echo\"]\nbudget_usd = 1.0\nbudget_alerts = [0.5, 1.0]\n\n\
         [tenants.t1]\nbudget_usd = 0.6\nalerts = [0.5]\n"
    ))
    .await?;
    let alerts = |audit: &[agentd_store::AuditEntry]| -> Vec<serde_json::Value> {
        audit
            .iter()
            .filter(|a| a.event == "budget_alert")
            .map(|a| a.detail.clone())
            .collect()
    };

    // Act: two runs of `once` spend the tenant's $0.50 (its 0.5 share of
    // $0.6 is $0.30: crossed by the second).
    let mut once = Vec::new();
    for _ in 0..3 {
        let run = t.submit("once", "hi").await?;
        once.push(t.drive(run.id).await?);
    }
    // In a tenant without a budget of its own.
    let other = agentd_test_support::identity("t2")?;
    let looper = t.submit_as(&other, "looper", "hi", None).await?;
    let looper = t.drive_as(&other.tenant, looper.id).await?;
    let looper_audit = t.store.list_audit(&other.tenant, looper.id).await?;

    // Assert: the tenant's share, once, on the run that crossed it
    assert_eq!(
        alerts(&t.audit(once[0].id).await?),
        Vec::<serde_json::Value>::new()
    );
    let crossed = alerts(&t.audit(once[1].id).await?);
    assert_eq!(crossed.len(), 1, "{crossed:?}");
    assert_eq!(crossed[0]["scope"], "tenant");
    assert_eq!(crossed[0]["threshold"], 0.5);
    assert_eq!(crossed[0]["limit_usd"], 0.6);
    assert!(alerts(&t.audit(once[2].id).await?).is_empty());
    // The run's own shares: $0.50 and $1.00, each once.
    let own: Vec<_> = alerts(&looper_audit)
        .into_iter()
        .filter(|a| a["scope"] == "run")
        .map(|a| a["threshold"].as_f64().unwrap_or_default())
        .collect();
    assert_eq!(own, [0.5, 1.0]);
    Ok(())
}

/// `[webhooks] alerts_url`: each alert is also POSTed, signed, through the
/// completion webhooks' outbox, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_alerts_are_posted_through_the_outbox() -> anyhow::Result<()> {
    // Arrange
    let hook = agentd_test_support::WebhookReceiver::start(|| ("200 OK", "{}"));
    let t = spawn_engine(&format!(
        "{PRICED_ECHO}\n[[agents]]\nname = \"looper\"\nproviders = [\"loop\"]\n\
         tools = [\"echo\"]\nbudget_usd = 1.0\nbudget_alerts = [0.5, 1.0]\n\n\
         [webhooks]\n# Set by .cargo/config.toml.\nsecret_env = \"AGENTD_TEST_WEBHOOK_SECRET\"\n\
         allow = [\"127.0.0.1\"]\nalerts_url = \"http://127.0.0.1:{}/alerts\"\n",
        hook.port
    ))
    .await?;
    let workers = crate::helpers::start_workers(&t.engine);

    // Act
    let run = t.submit("looper", "hi").await?;
    let run = t.settle(run.id).await?;
    let deadline = std::time::Instant::now() + SETTLE;
    let listed = loop {
        let page = t
            .store
            .list_deliveries(&run.tenant, run.id, 10, None)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no such run"))?;
        let delivered = page
            .items
            .iter()
            .filter(|d| d.event == "budget.alert" && d.delivered_at.is_some())
            .count();
        if delivered == 2 || std::time::Instant::now() > deadline {
            break page.items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    workers.stop().await?;

    // Assert: two alerts, each delivered once, with their own body
    let alerts: Vec<_> = listed
        .iter()
        .filter(|d| d.event == "budget.alert")
        .collect();
    assert_eq!(alerts.len(), 2, "{listed:?}");
    assert!(
        alerts.iter().all(|d| d.delivered_at.is_some()),
        "{listed:?}"
    );
    assert_eq!(hook.keys().len(), 2);
    let thresholds: Vec<f64> = alerts
        .iter()
        .filter_map(|d| d.payload.as_ref()?["threshold"].as_f64())
        .collect();
    assert_eq!(thresholds, [0.5, 1.0]);
    assert!(alerts.iter().all(|d| d.url.ends_with("/alerts")));
    Ok(())
}

/// `[principals."ID"]`: a principal's spending per period is bounded in
/// each tenant apart, announced at its shares, and an entry without a
/// budget exempts that principal from `"*"`.
#[tokio::test]
async fn a_principal_budget_bounds_that_principal_in_each_tenant() -> anyhow::Result<()> {
    // Arrange: echo costs $0.25; every principal may spend $0.6 a day per
    // tenant, except `vip`.
    let t = spawn_engine(&format!(
        "{PRICED_ECHO}\n[[agents]]\nname = \"looper\"\nproviders = [\"loop\"]\n\
         tools = [\"echo\"]\nmax_steps = 8\n\n\
         [principals.\"*\"]\nbudget_usd = 0.6\nalerts = [0.5, 1.0]\n\n[principals.vip]\n"
    ))
    .await?;
    let who = |tenant: &str, principal: &str| -> anyhow::Result<agentd_core::Identity> {
        Ok(agentd_core::Identity {
            tenant: agentd_core::TenantId::parse(tenant)?,
            principal: agentd_core::PrincipalId::parse(principal)?,
            roles: vec!["user".into()],
        })
    };
    let run_as = async |who: &agentd_core::Identity, agent: &str| -> anyhow::Result<_> {
        let run = t.submit_as(who, agent, "hi", None).await?;
        t.drive_as(&who.tenant, run.id).await
    };
    let alice = who("t1", "alice")?;

    // Act
    let spent = run_as(&alice, "looper").await?;
    let refused = run_as(&alice, "once").await?;
    let bob = run_as(&who("t1", "bob")?, "once").await?;
    let elsewhere = run_as(&who("t2", "alice")?, "once").await?;
    let vip = run_as(&who("t1", "vip")?, "looper").await?;

    // Assert: alice's third echo ($0.75) passed her $0.6, so her fourth
    // model call, and her next run's first, were refused.
    let error = spent.error.clone().expect("an error");
    assert_eq!(error.code, ErrorCode::BudgetExceeded, "{error:?}");
    assert!(
        error.message.contains("principal alice of tenant t1"),
        "{error:?}"
    );
    assert!((spent.cost_usd - 0.75).abs() < 1e-9, "{}", spent.cost_usd);
    assert_eq!(
        refused.error.as_ref().map(|e| e.code),
        Some(ErrorCode::BudgetExceeded)
    );
    assert_eq!(refused.cost_usd, 0.0);
    // Others' budgets are their own; alice's in t2 is apart from t1's.
    assert_eq!(bob.status, RunStatus::Succeeded);
    assert_eq!(elsewhere.status, RunStatus::Succeeded);
    // vip's own entry sets no budget: $1.00, stopped by max_steps only.
    assert_eq!(
        vip.error.as_ref().map(|e| e.code),
        Some(ErrorCode::MaxStepsExceeded)
    );
    assert!((vip.cost_usd - 1.0).abs() < 1e-9, "{}", vip.cost_usd);
    // Both of alice's shares, once each, on the run that crossed them.
    let alerts: Vec<_> = t
        .audit(spent.id)
        .await?
        .into_iter()
        .filter(|a| a.event == "budget_alert")
        .map(|a| a.detail)
        .collect();
    let shares: Vec<f64> = alerts
        .iter()
        .filter_map(|a| a["threshold"].as_f64())
        .collect();
    assert_eq!(shares, [0.5, 1.0], "{alerts:?}");
    assert!(
        alerts
            .iter()
            .all(|a| a["scope"] == "principal" && a["subject"] == "alice"),
        "{alerts:?}"
    );
    assert!(
        t.audit(refused.id)
            .await?
            .iter()
            .all(|a| a.event != "budget_alert")
    );
    Ok(())
}
