//! `--mode inflight`: what one run costs in memory while it waits on its
//! model. `--concurrency` runs of a W1 agent whose mock model takes a second
//! per call are started at once (with as many workers), and the process's
//! RSS while they are all in flight is set against its RSS idle.

use crate::config::config_text;
use crate::stats::{round3, rss_mb};
use crate::target::{InProc, Target};
use crate::{RunArgs, Setup, base, check, input, w1_batch};
use agentd_config::Config;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Model latency of the slow agent: long enough that every run is waiting
/// on its model when RSS is sampled.
const MODEL_LATENCY: Duration = Duration::from_millis(1000);

/// W1 with a model that takes [`MODEL_LATENCY`] per call.
const SLOW_AGENT: &str = r#"
[providers.w1_slow]
kind = "mock"
latency_ms = 1000
script = [
  { tool = "echo", args = { text = "{{input}}" } },
  { reply = "done: {{tool_result}}" },
]

[[agents]]
name = "w1_slow"
providers = ["w1_slow"]
tools = ["echo"]
"#;

/// Runs the in-flight measurement in this process (the engine's memory is
/// this process's memory).
pub async fn bench(args: &RunArgs, s: &Setup) -> anyhow::Result<Value> {
    let n = args.concurrency.max(1);
    let text = format!("{}{SLOW_AGENT}", config_text(&s.url, n, 0, ""));
    let mut config = Config::from_toml_str(&text)?;
    config.store.url = s.url.clone();
    let target = Arc::new(Target::InProc(InProc::start(&config).await?));
    // Warm the allocator, the store's connections and the engine's tasks
    // with fast runs, so the idle figure is a served process's.
    w1_batch(&target, 0, args.warmup.max(n), n).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = target.pid();
    let (idle, _) = rss_mb(pid);

    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let text = input(i);
            let ended = target.run("w1_slow", &text).await?;
            check(&ended, "succeeded", &text)
        }));
    }
    // Each run makes two model calls: sample through both.
    let mut busy = idle;
    while t0.elapsed() < MODEL_LATENCY * 2 - Duration::from_millis(200) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        busy = busy.max(rss_mb(pid).0);
    }
    for t in tasks {
        t.await??;
    }
    let took = t0.elapsed().as_secs_f64();
    if let Ok(Target::InProc(t)) = Arc::try_unwrap(target) {
        t.stop().await;
    }
    let mut m = base(args, n, n);
    m.insert("rss_idle_mb".into(), json!(round3(idle)));
    m.insert("rss_inflight_mb".into(), json!(round3(busy)));
    m.insert(
        "kb_per_inflight_run".into(),
        json!(round3((busy - idle).max(0.0) * 1024.0 / n as f64)),
    );
    m.insert("secs".into(), json!(round3(took)));
    Ok(Value::Object(m))
}
