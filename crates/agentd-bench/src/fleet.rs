//! W1 conc on a fleet: `--processes N` `agentd worker` processes share one
//! PostgreSQL, and this process only feeds the queue, keeping
//! `--concurrency` runs queued or running. Throughput counts runs the fleet
//! finished, read from the database, so no process's local notifications
//! are needed.

use crate::stats::round3;
use crate::{RunArgs, Setup};
use agentd_core::{NewRun, PrincipalId, RunId, TenantId};
use agentd_store::{PgStore, Store};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Worker processes, killed when dropped.
struct Fleet(Vec<Child>);

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn_workers(bin: &Path, s: &Setup, n: usize, workers: usize) -> anyhow::Result<Fleet> {
    let mut fleet = Fleet(Vec::new());
    for i in 0..n {
        let path = s.dir.join(format!("worker-{i}.toml"));
        // Distinct node ids: a process releases its node's leases at start.
        let queue = format!("node_id = \"bench-worker-{i}\"\npoll_interval = \"5ms\"");
        let text = crate::config_text(&s.url, workers, 0, &queue);
        std::fs::write(&path, text)?;
        let child = Command::new(bin)
            .args(["worker", "--config"])
            .arg(&path)
            .env("AGENTD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        fleet.0.push(child);
    }
    Ok(fleet)
}

fn new_run(i: usize) -> anyhow::Result<NewRun> {
    Ok(NewRun {
        id: RunId::new(),
        agent: "w1".to_string(),
        principal: PrincipalId::parse("bench")?,
        input: Value::String(crate::input(i)),
        conversation_id: None,
        metadata: None,
        roles: Vec::new(),
        idempotency: None,
    })
}

/// Keeps `concurrency` runs unfinished until `total` were created; returns
/// when all are finished.
async fn feed(
    store: &PgStore,
    tenant: &TenantId,
    start: usize,
    total: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let mut created = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (unfinished, failed): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status IN ('queued', 'running')), \
             count(*) FILTER (WHERE status IN ('failed', 'dead')) FROM runs \
             WHERE status IN ('queued', 'running', 'failed', 'dead')",
        )
        .fetch_one(store.pool())
        .await?;
        if failed > 0 {
            bail!("{failed} runs failed");
        }
        if created == total && unfinished == 0 {
            return Ok(());
        }
        let room = concurrency
            .saturating_sub(unfinished as usize)
            .min(total - created);
        for _ in 0..room {
            store
                .create_run(tenant, &new_run(start + created)?, None)
                .await?;
            created += 1;
        }
        if Instant::now() > deadline {
            bail!("the fleet did not finish {total} runs in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs W1 conc on `processes` worker processes.
pub async fn bench(args: &RunArgs, s: &Setup, processes: usize) -> anyhow::Result<Value> {
    let Some((url, schema)) = &s.pg else {
        bail!("--processes needs --store postgres: processes share the queue through PostgreSQL");
    };
    let runs = args.runs.unwrap_or(5_000);
    let store = PgStore::open_in_schema(url, schema).await?;
    store.migrate().await?;
    let bin = args
        .agentd
        .clone()
        .unwrap_or_else(crate::target::sibling_agentd);
    let _fleet = spawn_workers(&bin, s, processes, args.concurrency)?;
    let tenant = TenantId::parse("bench")?;
    feed(&store, &tenant, 0, args.warmup.max(1), args.concurrency).await?;
    let t0 = Instant::now();
    feed(&store, &tenant, args.warmup.max(1), runs, args.concurrency).await?;
    let secs = t0.elapsed().as_secs_f64();
    let rps = runs as f64 / secs;
    store.close().await;
    let mut m = crate::base(args, runs, args.concurrency);
    m.insert("processes".into(), json!(processes));
    m.insert("transport".into(), json!("fleet"));
    m.insert("runs_per_s".into(), json!(round3(rps)));
    m.insert("steps_per_s".into(), json!(round3(rps * 3.0)));
    Ok(Value::Object(m))
}
