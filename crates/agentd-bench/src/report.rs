//! `agentd-bench report`: result lines (JSON, one per configuration) as
//! Markdown tables.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;

/// Renders result lines as Markdown tables: W1 runs, then pauses, list
/// queries and start-up.
pub fn report(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut text = String::new();
    if files.is_empty() {
        use std::io::Read;
        std::io::stdin().read_to_string(&mut text)?;
    }
    for f in files {
        text.push_str(&std::fs::read_to_string(f).with_context(|| f.display().to_string())?);
        text.push('\n');
    }
    let mut lines = Vec::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        lines.push(serde_json::from_str::<Value>(line)?);
    }
    let of = |mode: &'static str| lines.iter().filter(move |v| v["mode"] == mode);
    runs_table(lines.iter().filter(|v| {
        !matches!(
            v["mode"].as_str(),
            Some("pause" | "startup" | "list" | "inflight")
        )
    }));
    pause_table(of("pause").collect());
    list_table(of("list").collect());
    for v in of("inflight") {
        println!();
        println!(
            "In flight ({}): {} runs waiting on the model, RSS {} MB against {} MB idle: {} KB per run.",
            v["store"], v["runs"], v["rss_inflight_mb"], v["rss_idle_mb"], v["kb_per_inflight_run"]
        );
    }
    for v in of("startup") {
        println!();
        println!(
            "Start-up to `/health` 200: p50 {} ms (max {} ms over 5 starts); idle RSS {} MB.",
            v["startup_ms"]["p50"], v["startup_ms"]["max"], v["idle_rss_mb"]
        );
    }
    Ok(())
}

/// `v[k]`, or a dash if absent.
fn num(v: &Value, k: &str) -> String {
    v.get(k)
        .filter(|x| !x.is_null())
        .map_or("—".to_string(), |x| x.to_string())
}

/// The latency percentile `k` of `v[group]`, or a dash.
fn pct(v: &Value, group: &str, k: &str) -> String {
    v[group].get(k).map_or("—".to_string(), |x| x.to_string())
}

/// How the bench reached agentd: transport or worker processes, the
/// PostgreSQL link, and the prefill if any.
fn transport(v: &Value) -> String {
    let t = match v["processes"].as_u64() {
        Some(n) => format!("{n} worker processes"),
        None => v["transport"].as_str().unwrap_or("?").to_string(),
    };
    let t = match v["pg"].as_str() {
        Some(link) => format!("{t} ({link})"),
        None => t,
    };
    prefilled(v, t)
}

/// `t`, and the prefill, auth, metrics and rate limits if the line had
/// them.
fn prefilled(v: &Value, t: String) -> String {
    let t = match v["prefill"].as_u64() {
        Some(n) => format!("{t}, prefill {n}"),
        None => t,
    };
    let t = match v["auth"].as_str() {
        Some(mode) => format!("{t}, {mode} auth"),
        None => t,
    };
    let t = match v["metrics"].as_bool() {
        Some(false) => format!("{t}, no metrics recorder"),
        _ => t,
    };
    let t = match v["guardrails"].as_bool() {
        Some(true) => format!("{t}, guardrails on"),
        _ => t,
    };
    match v["rate_limits"].as_str() {
        Some(backend) => format!("{t}, rate limits on ({backend})"),
        None => t,
    }
}

/// The W1 seq and conc lines.
fn runs_table<'a>(lines: impl Iterator<Item = &'a Value>) {
    println!(
        "| store | mode | transport | runs | conc | runs/s | steps/s | p50 ms | p90 ms | p99 ms | max ms | peak RSS MB | bytes/run | rows/run | commits/run | CPU ms/run |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for v in lines {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            v["store"].as_str().unwrap_or("?"),
            v["mode"].as_str().unwrap_or("?"),
            transport(v),
            num(v, "runs"),
            num(v, "concurrency"),
            num(v, "runs_per_s"),
            num(v, "steps_per_s"),
            pct(v, "lat_ms", "p50"),
            pct(v, "lat_ms", "p90"),
            pct(v, "lat_ms", "p99"),
            pct(v, "lat_ms", "max"),
            num(v, "peak_rss_mb"),
            num(v, "bytes_per_run"),
            num(v, "rows_per_run"),
            num(v, "commits_per_run"),
            num(v, "cpu_ms_per_run"),
        );
    }
}

/// The pause lines.
fn pause_table(pauses: Vec<&Value>) {
    if pauses.is_empty() {
        return;
    }
    println!();
    println!(
        "| store | transport | paused runs | create runs/s | resume runs/s | bytes/paused run | RSS MB paused | peak RSS MB | commits/create | commits/resume | finished ok |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for v in pauses {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            v["store"].as_str().unwrap_or("?"),
            prefilled(v, v["transport"].as_str().unwrap_or("?").to_string()),
            num(v, "runs"),
            num(v, "create_runs_per_s"),
            num(v, "resume_runs_per_s"),
            num(v, "bytes_per_paused_run"),
            num(v, "rss_mb_paused"),
            num(v, "peak_rss_mb"),
            num(v, "commits_per_create"),
            num(v, "commits_per_resume"),
            num(v, "finished_ok"),
        );
    }
}

/// The list lines: one row per store and query.
fn list_table(lists: Vec<&Value>) {
    if lists.is_empty() {
        return;
    }
    println!();
    println!("| store | prefilled runs | query | calls | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for v in lists {
        for query in crate::list::names() {
            let group = &v["list_ms"][query];
            println!(
                "| {} | {} | {query} | {} | {} | {} | {} |",
                v["store"].as_str().unwrap_or("?"),
                num(v, "prefill"),
                num(v, "runs"),
                num(group, "p50"),
                num(group, "p99"),
                num(group, "max"),
            );
        }
    }
}
