//! W1 conc on a fleet: `--processes N` `agentd worker` processes share one
//! PostgreSQL, and this process only feeds the queue, keeping
//! `--concurrency` runs queued or running. Throughput counts runs the fleet
//! finished, read from the database, so no process's local notifications
//! are needed; latency is a run's creation to its finish on the database's
//! clock, queueing included. Every run's output is checked at the end.

use crate::stats::{cpu_ms, percentiles, round3, rss_mb};
use crate::{RunArgs, Setup};
use agentd_core::{NewRun, PrincipalId, RunId, TenantId};
use agentd_store::{PgStore, Store};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
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

fn spawn_workers(
    bin: &Path,
    s: &Setup,
    n: usize,
    workers: usize,
    poll_interval: &str,
) -> anyhow::Result<Fleet> {
    let mut fleet = Fleet(Vec::new());
    for i in 0..n {
        let path = s.dir.join(format!("worker-{i}.toml"));
        // Distinct node ids: a process releases its node's leases at start.
        let queue = format!("node_id = \"bench-worker-{i}\"\npoll_interval = \"{poll_interval}\"");
        let text = crate::config::config_text(&s.url, workers, 0, &queue);
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
        agent_version: None,
        id: RunId::new(),
        agent: "w1".to_string(),
        principal: PrincipalId::parse("bench")?,
        input: Value::String(crate::input(i)),
        conversation_id: None,
        metadata: None,
        roles: Vec::new(),
        idempotency: None,
        origin: Default::default(),
        if_busy: Default::default(),
        callbacks: Vec::new(),
    })
}

/// Keeps `concurrency` runs unfinished until `total` were created; returns
/// when all are finished. The runs of one refill are created concurrently,
/// as that many clients would, so they share the store's group commit.
async fn feed(
    store: &Arc<PgStore>,
    tenant: &TenantId,
    start: usize,
    total: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let mut created = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        // Queued and running runs, counted through the queue and lease
        // indexes: cheap at any table size.
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM runs WHERE status = 'queued') \
             + (SELECT count(*) FROM runs WHERE lease_owner IS NOT NULL)",
        )
        .fetch_one(store.pool())
        .await?;
        if created == total && unfinished == 0 {
            return Ok(());
        }
        let room = concurrency
            .saturating_sub(unfinished as usize)
            .min(total - created);
        let mut creating = tokio::task::JoinSet::new();
        for _ in 0..room {
            let (store, tenant) = (store.clone(), tenant.clone());
            let run = new_run(start + created)?;
            creating.spawn(async move { store.create_run(&tenant, &run, None).await });
            created += 1;
        }
        while let Some(done) = creating.join_next().await {
            done??;
        }
        if Instant::now() > deadline {
            bail!("the fleet did not finish {total} runs in 10 minutes");
        }
        // Clients arrive together, not one poll at a time: a millisecond
        // between refills keeps the count query off the server's back.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Checks every run ended as W1 says (succeeded, `"done: " + input`) and
/// returns the latencies, creation to finish on the database's clock, of
/// the runs created at or after `since` (epoch ms).
async fn check_runs(store: &PgStore, expected: usize, since: i64) -> anyhow::Result<Vec<f64>> {
    let rows: Vec<(String, String, Option<String>, i64, i64)> =
        sqlx::query_as("SELECT status, input, output, created_at, updated_at FROM runs")
            .fetch_all(store.pool())
            .await?;
    if rows.len() != expected {
        bail!("{} runs in the store, expected {expected}", rows.len());
    }
    let mut lat = Vec::new();
    for (status, input, output, created, updated) in rows {
        let input: Value = serde_json::from_str(&input)?;
        let want = input.as_str().map(|t| Value::String(format!("done: {t}")));
        let got = output
            .map(|o| serde_json::from_str::<Value>(&o))
            .transpose()?;
        if status != "succeeded" || got.is_none() || got != want {
            bail!("a run ended {status} with {got:?}, expected succeeded with {want:?}");
        }
        if created >= since {
            lat.push((updated - created) as f64);
        }
    }
    Ok(lat)
}

/// How long the runs created at or after `since` waited in the queue:
/// their first claim's audit record minus their creation, in ms.
async fn queue_waits(store: &PgStore, since: i64) -> anyhow::Result<Vec<f64>> {
    let waits: Vec<i64> = sqlx::query_scalar(
        "SELECT min(a.at) - r.created_at FROM runs r JOIN audit a ON a.run_id = r.id \
         WHERE a.event = 'running' AND r.created_at >= $1 GROUP BY r.id, r.created_at",
    )
    .bind(since)
    .fetch_all(store.pool())
    .await?;
    Ok(waits.into_iter().map(|w| w as f64).collect())
}

/// WAL flushes to disk the server made so far (`pg_stat_wal`, every
/// database): the durable syncs the fleet's commits cost.
async fn wal_syncs(store: &PgStore) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT wal_sync FROM pg_stat_wal")
        .fetch_one(store.pool())
        .await?)
}

/// The database clock, epoch ms.
async fn db_now(store: &PgStore) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT floor(extract(epoch FROM now()) * 1000)::int8")
            .fetch_one(store.pool())
            .await?,
    )
}

/// Runs W1 conc on `processes` worker processes.
pub async fn bench(args: &RunArgs, s: &Setup, processes: usize) -> anyhow::Result<Value> {
    let Some((url, schema)) = &s.pg else {
        bail!("--processes needs --store postgres: processes share the queue through PostgreSQL");
    };
    let runs = args.runs.unwrap_or(5_000);
    let warmup = args.warmup.max(1);
    let store = Arc::new(PgStore::open_in_schema(url, schema).await?);
    store.migrate().await?;
    let bin = args
        .agentd
        .clone()
        .unwrap_or_else(crate::target::sibling_agentd);
    let fleet = spawn_workers(
        &bin,
        s,
        processes,
        args.concurrency,
        &args.fleet_poll_interval,
    )?;
    let tenant = TenantId::parse("bench")?;
    feed(&store, &tenant, 0, warmup, args.concurrency).await?;
    let since = db_now(&store).await?;
    let syncs0 = wal_syncs(&store).await?;
    let cpu0: f64 = fleet.0.iter().map(|c| cpu_ms(c.id())).sum();
    let t0 = Instant::now();
    feed(&store, &tenant, warmup, runs, args.concurrency).await?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu: f64 = fleet.0.iter().map(|c| cpu_ms(c.id())).sum::<f64>() - cpu0;
    let syncs = wal_syncs(&store).await? - syncs0;
    let peak = fleet.0.iter().map(|c| rss_mb(c.id()).1).fold(0.0, f64::max);
    drop(fleet);
    let mut lat = check_runs(&store, warmup + runs, since).await?;
    let mut waits = queue_waits(&store, since).await?;
    let bytes = store.storage_bytes().await?;
    let rows = crate::stats::pg_rows(store.pool()).await?;
    store.close().await;
    let total = (warmup + runs) as f64;
    let rps = runs as f64 / secs;
    let mut m = crate::base(args, runs, args.concurrency);
    m.insert("processes".into(), json!(processes));
    m.insert("poll_interval".into(), json!(args.fleet_poll_interval));
    m.insert("transport".into(), json!("fleet"));
    m.insert("runs_per_s".into(), json!(round3(rps)));
    m.insert("steps_per_s".into(), json!(round3(rps * 3.0)));
    m.insert("lat_ms".into(), percentiles(&mut lat));
    m.insert("queue_wait_ms".into(), percentiles(&mut waits));
    m.insert("peak_rss_mb".into(), json!(round3(peak)));
    m.insert(
        "bytes_per_run".into(),
        json!((bytes as f64 / total).round()),
    );
    m.insert("rows_per_run".into(), json!(round3(rows as f64 / total)));
    // WAL flushes, not transactions: idle workers' empty claims commit too.
    m.insert(
        "wal_syncs_per_run".into(),
        json!(round3(syncs as f64 / runs as f64)),
    );
    m.insert("cpu_ms_per_run".into(), json!(round3(cpu / runs as f64)));
    Ok(Value::Object(m))
}
