//! `[[schedules]]`: each tick starts one run, on one process or three
//! sharing PostgreSQL, and ticks missed while no process ran follow
//! `missed`.

use crate::helpers::{
    SETTLE, build_engine, drop_schema, identity, open_store, postgres_url, spawn_engine,
    start_workers,
};
use agentd_config::CronSchedule;
use agentd_core::{Identity, NewRun, PrincipalId, Run, RunId, RunStatus, now_millis};
use agentd_store::{RunFilter, Store};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A mock agent and one schedule of tenant `t1` (`extra` adds keys to it).
fn config(cron: &str, extra: &str) -> String {
    format!(
        r#"
[providers.m]
kind = "mock"
script = [{{ reply = "ran {{{{input}}}}" }}]

[[agents]]
name = "bot"
providers = ["m"]

[[schedules]]
name = "every"
agent = "bot"
cron = "{cron}"
input = "tick"
tenant = "t1"
{extra}
"#
    )
}

async fn runs(store: &Arc<dyn Store>, who: &Identity) -> Result<Vec<Run>> {
    let filter = RunFilter {
        limit: 1000,
        ..RunFilter::default()
    };
    Ok(store.list_runs(&who.tenant, &filter).await?.items)
}

/// Polls until tenant `t1` has at least `n` runs.
async fn until_runs(store: &Arc<dyn Store>, who: &Identity, n: usize) -> Result<Vec<Run>> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let found = runs(store, who).await?;
        if found.len() >= n || tokio::time::Instant::now() > deadline {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tick each run was started for, checking it came from the schedule;
/// fails if two runs share a tick.
fn ticks(runs: &[Run]) -> Result<BTreeMap<String, RunId>> {
    let mut by_tick = BTreeMap::new();
    for run in runs {
        assert_eq!(run.principal.as_str(), "schedule:every");
        let meta = run.metadata.as_ref().context("scheduled run metadata")?;
        assert_eq!(meta["schedule"], "every");
        let tick = meta["tick"].as_str().context("tick")?.to_owned();
        assert!(
            tick.ends_with(".000Z"),
            "ticks fall on whole seconds: {tick}"
        );
        if let Some(other) = by_tick.insert(tick.clone(), run.id) {
            anyhow::bail!("tick {tick} started two runs: {other} and {}", run.id);
        }
    }
    Ok(by_tick)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_second_cron_starts_one_run_per_tick() -> Result<()> {
    let t = spawn_engine(&config("*/1 * * * * *", "")).await?;
    let workers = start_workers(&t.engine);

    let found = until_runs(&t.store, &t.who, 3).await?;
    workers.stop().await?;

    assert!(found.len() >= 3, "runs after {SETTLE:?}: {}", found.len());
    let by_tick = ticks(&runs(&t.store, &t.who).await?)?;
    // Listed: the latest tick and its run, and a next tick after it.
    let listed = t.engine.schedules(&t.who).await?;
    let [every] = &listed[..] else {
        anyhow::bail!("one schedule expected: {listed:?}")
    };
    let (last_tick, last_run) = by_tick.iter().next_back().context("a tick")?;
    assert_eq!(every.last_tick.as_deref(), Some(last_tick.as_str()));
    assert_eq!(every.last_run_id, Some(*last_run));
    assert!(every.next_tick.as_deref() > Some(last_tick.as_str()));
    assert_eq!(
        (every.cron.as_str(), every.timezone.as_str()),
        ("*/1 * * * * *", "UTC")
    );
    // Another tenant sees none of it.
    assert!(t.engine.schedules(&identity("t2")?).await?.is_empty());
    // The runs ran like any other.
    let done = t
        .engine
        .wait(&t.who.tenant, *last_run, SETTLE)
        .await?
        .context("run")?;
    assert_eq!(done.status, RunStatus::Succeeded, "{done:?}");
    Ok(())
}

/// Three processes (engines with their own store handles and node ids) on
/// one PostgreSQL schema, all running the schedule: each tick starts
/// exactly one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_postgres_start_one_run_per_tick() -> Result<()> {
    let Some(pg) = postgres_url() else {
        return Ok(());
    };
    let schema = agentd_test_support::unique_name("sched");
    let url = format!("{pg}?schema={schema}");
    let mut engines = Vec::new();
    for i in 0..3 {
        let store = agentd_store::open(&url).await?;
        store.migrate().await?;
        let toml = format!(
            "[queue]\nnode_id = \"node-{i}\"\n{}",
            config("*/1 * * * * *", "")
        );
        engines.push(build_engine(&toml, store).await?);
    }
    let workers: Vec<_> = engines.iter().map(start_workers).collect();
    let who = identity("t1")?;
    let store = engines[0].store().clone();

    let found = until_runs(&store, &who, 4).await?;
    for w in workers {
        w.stop().await?;
    }

    let all = runs(&store, &who).await?;
    let by_tick = ticks(&all)?;
    assert!(found.len() >= 4, "runs after {SETTLE:?}: {}", found.len());
    assert_eq!(by_tick.len(), all.len());
    // Every process sees the same latest tick and run.
    let (last_tick, last_run) = by_tick.iter().next_back().context("a tick")?;
    for engine in &engines {
        let listed = engine.schedules(&who).await?;
        assert_eq!(listed[0].last_tick.as_deref(), Some(last_tick.as_str()));
        assert_eq!(listed[0].last_run_id, Some(*last_run));
    }
    drop_schema(&pg, &schema).await?;
    Ok(())
}

/// A yearly schedule whose last recorded tick is two years back: on start,
/// `run_once` starts one run for the latest missed tick (not one per
/// missed tick); `skip` starts none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_ticks_follow_the_missed_setting() -> Result<()> {
    let cron = CronSchedule::parse("0 0 1 1 *", "UTC")?;
    let latest = cron
        .latest_at_or_before(now_millis())
        .context("this year's tick")?;
    let before = cron
        .latest_at_or_before(latest - 1)
        .context("last year's")?;
    let long_ago = cron
        .latest_at_or_before(before - 1)
        .context("two years back")?;

    for (missed, expect_run) in [("run_once", true), ("skip", false)] {
        let dir = tempfile::tempdir()?;
        let store = open_store(&dir).await?;
        let who = identity("t1")?;
        // Arrange: the store says the schedule last ran two years ago.
        let old = NewRun {
            id: RunId::new(),
            agent: "bot".into(),
            agent_version: None,
            principal: PrincipalId::parse("schedule:every")?,
            input: serde_json::json!("tick"),
            conversation_id: None,
            metadata: None,
            roles: Vec::new(),
            idempotency: None,
            origin: Default::default(),
            if_busy: Default::default(),
            callbacks: Vec::new(),
        };
        store
            .create_scheduled_run(&who.tenant, "every", long_ago, &old, None, None)
            .await?
            .context("the old tick")?;
        let toml = config("0 0 1 1 *", &format!("missed = \"{missed}\""));
        let engine = build_engine(&toml, store.clone()).await?;

        // Act: a process starts.
        let workers = start_workers(&engine);
        let found = if expect_run {
            until_runs(&store, &who, 2).await?
        } else {
            // The scheduler looks at start-up: give it time to (wrongly) fire.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            runs(&store, &who).await?
        };
        workers.stop().await?;

        // Assert
        let ticks = store.schedule_ticks(&who.tenant).await?;
        if expect_run {
            assert_eq!(found.len(), 2, "{missed}: one run for the missed ticks");
            assert_eq!(ticks[0].tick_at, latest, "{missed}: the latest missed tick");
            assert_ne!(ticks[0].run_id, old.id);
            let run = found
                .iter()
                .find(|r| r.id == ticks[0].run_id)
                .context("run")?;
            assert_eq!(
                run.metadata.as_ref().map(|m| m["tick"].clone()),
                Some(serde_json::json!(agentd_core::rfc3339(latest)))
            );
        } else {
            assert_eq!(found.len(), 1, "{missed}: no run for missed ticks");
            assert_eq!((ticks[0].tick_at, ticks[0].run_id), (long_ago, old.id));
        }
        let listed = engine.schedules(&who).await?;
        assert_eq!(listed[0].missed, missed);
    }
    Ok(())
}
