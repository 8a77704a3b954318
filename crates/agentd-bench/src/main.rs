//! `agentd-bench`: workload W1 ("tool-loop", docs/benchmarks.md) on
//! agentd, in-process or over HTTP, printing one JSON line per
//! configuration; `agentd-bench report` turns those lines into a table.

mod config;
mod fleet;
mod inflight;
mod list;
mod prefill;
mod report;
mod stats;
mod target;
mod usage;

use config::{auth_text, config_text, guardrails_text, rate_limit_text};

use agentd_config::Config;
use agentd_store::PgStore;
use anyhow::bail;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use stats::{cpu_ms, percentiles, round3, rss_mb};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use target::{Http, InProc, Target};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
enum Mode {
    Seq,
    Conc,
    Pause,
    Startup,
    /// List-query latencies on a prefilled store (`--prefill`).
    List,
    /// Memory of runs in flight: `--concurrency` runs waiting on a slow
    /// model at once, in this process.
    Inflight,
    /// Usage-report latencies on a prefilled store (`--prefill`), each
    /// grouping over the whole store and over one day.
    Usage,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
enum Transport {
    Inproc,
    Http,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
enum StoreKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Parser)]
#[command(about = "W1 benchmark of agentd")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print a Markdown table of JSON result lines (files or stdin).
    Report { files: Vec<PathBuf> },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[arg(long, value_enum, default_value = "seq")]
    mode: Mode,
    #[arg(long, value_enum, default_value = "inproc")]
    transport: Transport,
    #[arg(long, value_enum, default_value = "sqlite")]
    store: StoreKind,
    /// Measured runs (default: seq 2,000; conc 5,000; pause 10,000).
    #[arg(long)]
    runs: Option<usize>,
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Runs in flight in conc mode.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Directory for the database and config (default: a temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The agentd binary for HTTP and startup modes (default: next to this one).
    #[arg(long)]
    agentd: Option<PathBuf>,
    /// PostgreSQL server for `--store postgres`; each bench run gets a fresh
    /// schema on it, dropped at the end.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pg_url: String,
    /// conc mode on PostgreSQL: run this many `agentd worker` processes on
    /// the shared store while this process only feeds the queue (0: the
    /// engine runs in this process, as for SQLite).
    #[arg(long, default_value_t = 0)]
    processes: usize,
    /// Fleet mode: the worker processes' `queue.poll_interval` (how long an
    /// idle worker sleeps before looking at the queue again when nothing
    /// wakes it).
    #[arg(long, default_value = "5ms")]
    fleet_poll_interval: String,
    /// Before measuring, fill the store with this many finished W1 runs
    /// (copies of one real run, older than the measured ones).
    #[arg(long, default_value_t = 0)]
    prefill: u64,
    /// list mode: calls of each list query.
    #[arg(long, default_value_t = 300)]
    list_iters: usize,
    /// usage mode: calls of each usage report.
    #[arg(long, default_value_t = 5)]
    usage_iters: usize,
    /// Turn every `[rate_limit]` limit on, high enough never to trigger
    /// (seq and conc modes): what checking them costs.
    #[arg(long)]
    rate_limits: bool,
    /// With `--rate-limits`: keep the request limits on this Redis
    /// (`backend = "redis"`) instead of in the process.
    #[arg(long, requires = "rate_limits")]
    rate_limit_redis: Option<String>,
    /// HTTP transport: serve with `auth.mode = "api_key"` and send a key
    /// minted by `agentd keys create` with every request: what
    /// authenticating costs.
    #[arg(long)]
    api_key: bool,
    /// Turn the guardrails on (seq and conc modes): the injection
    /// heuristics on input and tool results, and PII redaction of the
    /// journal and the model's requests: what checking every step costs.
    #[arg(long)]
    guardrails: bool,
    /// In process: install a no-op metrics recorder before agentd starts,
    /// so no metric is recorded (agentd's Prometheus recorder then cannot
    /// install): the baseline of the metrics' overhead.
    #[arg(long)]
    no_metrics: bool,
}

fn input(i: usize) -> String {
    format!("W1 message #{i}")
}

fn check(ended: &target::Ended, want_status: &str, input: &str) -> anyhow::Result<()> {
    let want_output = (want_status == "succeeded").then(|| Value::String(format!("done: {input}")));
    if ended.status != want_status || ended.output != want_output {
        bail!(
            "run {} ended {} with {:?}, expected {want_status} with {want_output:?}",
            ended.id,
            ended.status,
            ended.output
        );
    }
    Ok(())
}

/// Runs `n` W1 runs from index `start`, `concurrency` at a time; returns
/// their latencies in ms.
async fn w1_batch(
    target: &Arc<Target>,
    start: usize,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<f64>> {
    let next = Arc::new(AtomicUsize::new(start));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let target = target.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= start + n {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let text = input(i);
                let t0 = Instant::now();
                let ended = target.run("w1", &text).await?;
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                check(&ended, "succeeded", &text)?;
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    /// The store URL agentd is given.
    url: String,
    db: Option<PathBuf>,
    /// PostgreSQL: the server URL and the bench run's schema.
    pg: Option<(String, String)>,
}

impl Setup {
    /// Drops the bench run's PostgreSQL schema.
    async fn cleanup(&self) -> anyhow::Result<()> {
        if let Some((url, schema)) = &self.pg {
            let store = PgStore::open_in_schema(url, schema).await?;
            // `schema` was generated by `setup`: a plain identifier.
            let ddl = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            sqlx::query(sqlx::AssertSqlSafe(ddl))
                .execute(store.pool())
                .await?;
            store.close().await;
        }
        Ok(())
    }
}

/// A schema name no earlier bench run used.
fn bench_schema() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("bench_{}_{ms}", std::process::id())
}

fn setup(args: &RunArgs) -> anyhow::Result<Setup> {
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    match args.store {
        StoreKind::Sqlite => {
            let db = dir.join("bench.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            Ok(Setup {
                url: format!("sqlite://{}", db.display()),
                db: Some(db),
                pg: None,
                dir,
                _tmp: tmp,
            })
        }
        StoreKind::Postgres => {
            // agentd creates the schema and keeps its tables there.
            let schema = bench_schema();
            let sep = if args.pg_url.contains('?') { '&' } else { '?' };
            Ok(Setup {
                url: format!("{}{sep}schema={schema}", args.pg_url),
                db: None,
                pg: Some((args.pg_url.clone(), schema)),
                dir,
                _tmp: tmp,
            })
        }
    }
}

async fn start_target(args: &RunArgs, s: &Setup, workers: usize) -> anyhow::Result<Arc<Target>> {
    Ok(Arc::new(match args.transport {
        Transport::Inproc => {
            if args.api_key {
                bail!(
                    "--api-key needs --transport http: in process there is no request to authenticate"
                );
            }
            if args.no_metrics && metrics::set_global_recorder(metrics::NoopRecorder).is_err() {
                bail!("--no-metrics: a metrics recorder is already installed");
            }
            let text = config_text(&s.url, workers, 0, "")
                + &rate_limit_text(args)
                + guardrails_text(args);
            let mut config = Config::from_toml_str(&text)?;
            config.store.url = s.url.clone();
            Target::InProc(InProc::start(&config).await?)
        }
        Transport::Http => {
            if args.no_metrics {
                bail!(
                    "--no-metrics needs --transport inproc: the served process records its metrics"
                );
            }
            let port = target::free_port()?;
            let path = s.dir.join("bench.toml");
            let text = config_text(&s.url, workers, port, "")
                + &rate_limit_text(args)
                + auth_text(args)
                + guardrails_text(args);
            std::fs::write(&path, text)?;
            let bin = args.agentd.clone().unwrap_or_else(target::sibling_agentd);
            let key = if args.api_key {
                Some(target::mint_key(&bin, &path)?)
            } else {
                None
            };
            Target::Http(Http::start(&bin, &path, port, key.as_deref()).await?.0)
        }
    }))
}

/// Stops the target and measures what the store holds.
async fn finish(target: Arc<Target>, s: &Setup) -> anyhow::Result<(u64, u64)> {
    let target = Arc::try_unwrap(target)
        .map_err(|_| anyhow::anyhow!("benchmark tasks still hold the target"))?;
    match target {
        Target::InProc(t) => {
            let bytes = t.store.storage_bytes().await?;
            t.stop().await;
            Ok((bytes, rows(s).await?))
        }
        Target::Http(t) => {
            t.stop()?;
            let store = agentd_store::open(&s.url).await?;
            Ok((store.storage_bytes().await?, rows(s).await?))
        }
    }
}

async fn rows(s: &Setup) -> anyhow::Result<u64> {
    match (&s.db, &s.pg) {
        (Some(db), _) => stats::sqlite_rows(db),
        (None, Some((url, schema))) => {
            let store = PgStore::open_in_schema(url, schema).await?;
            let n = stats::pg_rows(store.pool()).await;
            store.close().await;
            n
        }
        (None, None) => Ok(0),
    }
}

fn base(args: &RunArgs, runs: usize, concurrency: usize) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("peer".into(), json!("agentd"));
    m.insert("workload".into(), json!("W1"));
    m.insert(
        "store".into(),
        json!(format!("{:?}", args.store).to_lowercase()),
    );
    m.insert(
        "mode".into(),
        json!(format!("{:?}", args.mode).to_lowercase()),
    );
    m.insert(
        "transport".into(),
        json!(format!("{:?}", args.transport).to_lowercase()),
    );
    m.insert("runs".into(), json!(runs));
    m.insert("concurrency".into(), json!(concurrency));
    if args.prefill > 0 {
        m.insert("prefill".into(), json!(args.prefill));
    }
    if args.rate_limits {
        let backend = if args.rate_limit_redis.is_some() {
            "redis"
        } else {
            "local"
        };
        m.insert("rate_limits".into(), json!(backend));
    }
    if args.api_key {
        m.insert("auth".into(), json!("api_key"));
    }
    if args.no_metrics {
        m.insert("metrics".into(), json!(false));
    }
    if args.guardrails {
        m.insert("guardrails".into(), json!(true));
    }
    if args.store == StoreKind::Postgres {
        m.insert("pg".into(), json!(pg_link(&args.pg_url)));
    }
    m
}

/// How the bench reaches PostgreSQL: over a unix socket, or over TCP (where
/// sqlx negotiates TLS unless `sslmode=disable`).
fn pg_link(url: &str) -> &'static str {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    if query.split('&').any(|p| p.starts_with("host=/")) {
        "socket"
    } else if query.split('&').any(|p| p == "sslmode=disable") {
        "tcp"
    } else {
        "tcp+tls"
    }
}

async fn bench_runs(args: &RunArgs) -> anyhow::Result<Value> {
    let conc = args.mode == Mode::Conc;
    let runs = args.runs.unwrap_or(if conc { 5_000 } else { 2_000 });
    let concurrency = if conc { args.concurrency } else { 1 };
    let s = setup(args)?;
    let target = start_target(args, &s, concurrency).await?;
    let (bytes0, rows0) = prefill_store(args, &s, &target).await?;
    w1_batch(&target, 0, args.warmup, concurrency).await?;
    let pid = target.pid();
    let commits0 = target.commits().await;
    let cpu0 = cpu_ms(pid);
    let t0 = Instant::now();
    let mut lat = w1_batch(&target, args.warmup, runs, concurrency).await?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_ms(pid) - cpu0;
    let commits = match (commits0, target.commits().await) {
        (Some(a), Some(b)) => Some(round3((b - a) as f64 / runs as f64)),
        _ => None,
    };
    let (_, peak) = rss_mb(pid);
    let (bytes, rows) = finish(target, &s).await?;
    let (bytes, rows) = (bytes.saturating_sub(bytes0), rows.saturating_sub(rows0));
    s.cleanup().await?;
    let total = (runs + args.warmup) as f64;
    let rps = runs as f64 / secs;
    let mut m = base(args, runs, concurrency);
    m.insert("runs_per_s".into(), json!(round3(rps)));
    m.insert("steps_per_s".into(), json!(round3(rps * 3.0)));
    m.insert("lat_ms".into(), percentiles(&mut lat));
    m.insert("peak_rss_mb".into(), json!(round3(peak)));
    m.insert(
        "bytes_per_run".into(),
        json!((bytes as f64 / total).round()),
    );
    m.insert("rows_per_run".into(), json!(round3(rows as f64 / total)));
    m.insert("commits_per_run".into(), json!(commits));
    m.insert("cpu_ms_per_run".into(), json!(round3(cpu / runs as f64)));
    Ok(Value::Object(m))
}

async fn bench_pause(args: &RunArgs) -> anyhow::Result<Value> {
    let runs = args.runs.unwrap_or(10_000);
    let s = setup(args)?;
    let target = start_target(args, &s, 1).await?;
    let (bytes0, rows0) = prefill_store(args, &s, &target).await?;
    let pid = target.pid();
    let commits0 = target.commits().await;
    let cpu0 = cpu_ms(pid);
    let progress = (runs / 10).max(1);

    let mut ids = Vec::with_capacity(runs);
    let t0 = Instant::now();
    for i in 0..runs {
        let text = input(i);
        let ended = target.run("w1_pause", &text).await?;
        check(&ended, "paused", &text)?;
        ids.push(ended.id);
        if (i + 1) % progress == 0 {
            eprintln!("pause: {} of {runs} runs paused", i + 1);
        }
    }
    let create_secs = t0.elapsed().as_secs_f64();
    let commits_mid = target.commits().await;
    let (rss_paused, _) = rss_mb(pid);
    let bytes_paused = store_bytes(&target, &s).await?.saturating_sub(bytes0);

    let mut ok = 0usize;
    let t1 = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        let text = input(i);
        let ended = target.resume(id, &text).await?;
        check(&ended, "succeeded", &text)?;
        ok += 1;
        if (i + 1) % progress == 0 {
            eprintln!("pause: {} of {runs} runs resumed", i + 1);
        }
    }
    let resume_secs = t1.elapsed().as_secs_f64();
    let cpu = cpu_ms(pid) - cpu0;
    let commits_end = target.commits().await;
    let (_, peak) = rss_mb(pid);
    let (bytes, rows) = finish(target, &s).await?;
    let (bytes, rows) = (bytes.saturating_sub(bytes0), rows.saturating_sub(rows0));
    s.cleanup().await?;
    let per = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => json!(round3((b - a) as f64 / runs as f64)),
        _ => Value::Null,
    };
    let mut m = base(args, runs, 1);
    m.insert(
        "create_runs_per_s".into(),
        json!(round3(runs as f64 / create_secs)),
    );
    m.insert(
        "resume_runs_per_s".into(),
        json!(round3(runs as f64 / resume_secs)),
    );
    m.insert(
        "bytes_per_paused_run".into(),
        json!((bytes_paused as f64 / runs as f64).round()),
    );
    m.insert("rss_mb_paused".into(), json!(round3(rss_paused)));
    m.insert("finished_ok".into(), json!(ok));
    m.insert("peak_rss_mb".into(), json!(round3(peak)));
    m.insert(
        "bytes_per_run".into(),
        json!((bytes as f64 / runs as f64).round()),
    );
    m.insert(
        "rows_per_run".into(),
        json!(round3(rows as f64 / runs as f64)),
    );
    m.insert("commits_per_create".into(), per(commits0, commits_mid));
    m.insert("commits_per_resume".into(), per(commits_mid, commits_end));
    m.insert("cpu_ms_per_run".into(), json!(round3(cpu / runs as f64)));
    Ok(Value::Object(m))
}

/// The template of `--prefill`: one real W1 run, finished.
async fn template_run(target: &Target) -> anyhow::Result<String> {
    let text = "W1 prefill template";
    let ended = target.run("w1", text).await?;
    check(&ended, "succeeded", text)?;
    Ok(ended.id)
}

/// `--prefill N` before a W1 mode's warm-up; returns the bytes and rows
/// the store then holds, which the per-run figures leave out.
async fn prefill_store(args: &RunArgs, s: &Setup, target: &Target) -> anyhow::Result<(u64, u64)> {
    if args.prefill == 0 {
        return Ok((0, 0));
    }
    let template = template_run(target).await?;
    prefill::fill(s, &template, args.prefill).await?;
    Ok((store_bytes(target, s).await?, rows(s).await?))
}

/// What the store takes on disk while the target runs.
async fn store_bytes(target: &Target, s: &Setup) -> anyhow::Result<u64> {
    Ok(match target {
        Target::InProc(t) => t.store.storage_bytes().await?,
        // The server holds the file open; a checkpoint from outside is safe.
        Target::Http(_) => agentd_store::open(&s.url).await?.storage_bytes().await?,
    })
}

/// `--mode list`: list-query latencies through the Store API after
/// `--prefill` runs.
async fn bench_list(args: &RunArgs) -> anyhow::Result<Value> {
    let s = setup(args)?;
    let target = start_target(args, &s, 1).await?;
    let template = template_run(&target).await?;
    let filled = prefill::fill(&s, &template, args.prefill).await?;
    let store = agentd_store::open(&s.url).await?;
    let list = list::measure(&store, &filled.tenant, &template, args.list_iters).await;
    drop(store);
    finish(target, &s).await?;
    s.cleanup().await?;
    let mut m = base(args, args.list_iters, 1);
    m.insert("prefill".into(), json!(args.prefill));
    m.insert("list_ms".into(), list?);
    Ok(Value::Object(m))
}

/// `--mode usage`: usage-report latencies through the Store API after
/// `--prefill` runs, spread over days, agents, principals and providers.
async fn bench_usage(args: &RunArgs) -> anyhow::Result<Value> {
    let s = setup(args)?;
    let target = start_target(args, &s, 1).await?;
    let template = template_run(&target).await?;
    let filled = prefill::fill(&s, &template, args.prefill).await?;
    let newest = usage::spread(&s, &filled.tenant, args.prefill).await?;
    let store = agentd_store::open(&s.url).await?;
    let report = usage::measure(&store, &filled.tenant, newest, args.usage_iters).await;
    drop(store);
    finish(target, &s).await?;
    s.cleanup().await?;
    let mut m = base(args, args.usage_iters, 1);
    m.insert("prefill".into(), json!(args.prefill));
    m.insert("usage_ms".into(), report?);
    Ok(Value::Object(m))
}

async fn bench_startup(args: &RunArgs) -> anyhow::Result<Value> {
    let bin = args.agentd.clone().unwrap_or_else(target::sibling_agentd);
    let mut startup = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..5 {
        let s = setup(args)?;
        let port = target::free_port()?;
        let path = s.dir.join("bench.toml");
        std::fs::write(&path, config_text(&s.url, 4, port, ""))?;
        let (http, took) = Http::start(&bin, &path, port, None).await?;
        startup.push(took.as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(500)).await;
        idle.push(rss_mb(http.pid()).0);
        http.stop()?;
        s.cleanup().await?;
    }
    idle.sort_by(f64::total_cmp);
    let mut m = base(args, 5, 0);
    m.insert("transport".into(), json!("http"));
    m.insert("startup_ms".into(), percentiles(&mut startup));
    m.insert("idle_rss_mb".into(), json!(round3(idle[idle.len() / 2])));
    Ok(Value::Object(m))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::Report { files }) = &cli.cmd {
        return report::report(files);
    }
    let args = &cli.run;
    let line = match args.mode {
        Mode::Conc if args.processes > 0 => {
            let s = setup(args)?;
            let line = fleet::bench(args, &s, args.processes).await;
            s.cleanup().await?;
            line?
        }
        Mode::Seq | Mode::Conc => bench_runs(args).await?,
        Mode::Pause => bench_pause(args).await?,
        Mode::Startup => bench_startup(args).await?,
        Mode::List => bench_list(args).await?,
        Mode::Usage => bench_usage(args).await?,
        Mode::Inflight => {
            let s = setup(args)?;
            let line = inflight::bench(args, &s).await;
            s.cleanup().await?;
            line?
        }
    };
    println!("{line}");
    Ok(())
}
