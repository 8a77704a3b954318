//! `agentd-bench`: workload W1 ("tool-loop", shared/bench/WORKLOAD.md)
//! against the engine in-process. Prints one JSON line per configuration.

use agentd_config::Config;
use agentd_core::{Identity, PrincipalId, RunStatus, TenantId};
use agentd_engine::{Engine, Submit};
use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
enum Mode {
    Seq,
    Conc,
}

#[derive(Debug, Parser)]
#[command(about = "W1 benchmark of agentd (in-process, SQLite)")]
struct Args {
    #[arg(long, value_enum, default_value = "seq")]
    mode: Mode,
    /// Measured runs (default: 2,000 seq, 5,000 conc).
    #[arg(long)]
    runs: Option<usize>,
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Runs in flight in conc mode.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Directory for the database (default: a temp dir).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

const W1: &str = r#"
[providers.w1]
kind = "mock"
script = [
  { tool = "echo", args = { text = "{{input}}" } },
  { reply = "done: {{tool_result}}" },
]
[[agents]]
name = "w1"
providers = ["w1"]
tools = ["echo"]
"#;

fn peak_rss_mb() -> f64 {
    // SAFETY-free: getrusage through libc's safe-to-call wrapper is unsafe in
    // Rust, so read /proc instead.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) * 1000.0 / 100.0)
        })
        .unwrap_or(0.0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn one_run(engine: &Engine, who: &Identity, i: usize) -> anyhow::Result<f64> {
    let input = format!("W1 message #{i}");
    let t0 = Instant::now();
    let run = engine
        .submit(
            who,
            "w1",
            Submit {
                input: serde_json::Value::String(input.clone()),
                ..Submit::default()
            },
        )
        .await?;
    let done = engine
        .wait(&who.tenant, run.id, Duration::from_secs(60))
        .await?
        .context("run vanished")?;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    if done.status != RunStatus::Succeeded
        || done.output != Some(serde_json::Value::String(format!("done: {input}")))
    {
        bail!(
            "run {} ended {:?} with {:?}",
            done.id,
            done.status,
            done.output
        );
    }
    Ok(ms)
}

async fn batch(
    engine: &Engine,
    who: &Identity,
    start: usize,
    n: usize,
    mode: Mode,
    concurrency: usize,
) -> anyhow::Result<Vec<f64>> {
    match mode {
        Mode::Seq => {
            let mut lat = Vec::with_capacity(n);
            for i in start..start + n {
                lat.push(one_run(engine, who, i).await?);
            }
            Ok(lat)
        }
        Mode::Conc => {
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(start));
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let engine = engine.clone();
                let who = who.clone();
                let next = next.clone();
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= start + n {
                            return Ok::<_, anyhow::Error>(lat);
                        }
                        lat.push(one_run(&engine, &who, i).await?);
                    }
                }));
            }
            let mut all = Vec::with_capacity(n);
            for t in tasks {
                all.extend(t.await??);
            }
            Ok(all)
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runs = args.runs.unwrap_or(match args.mode {
        Mode::Seq => 2_000,
        Mode::Conc => 5_000,
    });
    let concurrency = if args.mode == Mode::Seq {
        1
    } else {
        args.concurrency
    };
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let db = dir.join("bench.db");
    let _ = std::fs::remove_file(&db);
    let url = format!("sqlite://{}", db.display());

    let mut config = Config::from_toml_str(W1)?;
    config.store.url = url.clone();
    config.queue.workers = concurrency as u32;
    let store = agentd_store::open(&url).await?;
    store.migrate().await?;
    let engine = Engine::new(&config, store.clone())?;
    let shutdown = CancellationToken::new();
    let workers = {
        let e = engine.clone();
        let t = shutdown.clone();
        tokio::spawn(async move { e.run_workers(t).await })
    };
    let who = Identity {
        tenant: TenantId::parse("bench")?,
        principal: PrincipalId::parse("bench")?,
        roles: vec![],
    };

    batch(&engine, &who, 0, args.warmup, args.mode, concurrency).await?;
    let commits0 = store.commits();
    let cpu0 = cpu_ms();
    let t0 = Instant::now();
    let mut lat = batch(&engine, &who, args.warmup, runs, args.mode, concurrency).await?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_ms() - cpu0;
    let commits = store.commits() - commits0;
    shutdown.cancel();
    let _ = workers.await;

    lat.sort_by(f64::total_cmp);
    let total_runs = (runs + args.warmup) as f64;
    let bytes = store.storage_bytes().await? as f64;
    let runs_per_s = runs as f64 / secs;
    let line = serde_json::json!({
        "peer": "agentd",
        "workload": "W1",
        "store": "sqlite",
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "transport": "inproc",
        "runs": runs,
        "concurrency": concurrency,
        "runs_per_s": (runs_per_s * 10.0).round() / 10.0,
        "steps_per_s": (runs_per_s * 30.0).round() / 10.0,
        "lat_ms": {
            "p50": pct(&lat, 50.0), "p90": pct(&lat, 90.0),
            "p99": pct(&lat, 99.0), "max": pct(&lat, 100.0),
        },
        "peak_rss_mb": (peak_rss_mb() * 10.0).round() / 10.0,
        "bytes_per_run": (bytes / total_runs).round(),
        "commits_per_run": commits as f64 / runs as f64,
        "cpu_ms_per_run": cpu / runs as f64,
    });
    println!("{line}");
    Ok(())
}
