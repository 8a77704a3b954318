//! `agentd check`: the production-readiness score. The criteria live in
//! [`agentd_config::check`]; this module runs the live probes and prints.

use super::exit;
use super::failure::Failure;
use crate::cli::{CheckArgs, LogFormat};
use agentd_config::Config;
use agentd_config::check::{self, CheckEnv, Probe, ProbeTarget, Report};
use std::time::Duration;

/// How long one probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Scores the config, prints the report, and exits 1 below `--min`.
pub(super) async fn check(
    config: &Config,
    args: &CheckArgs,
    log_format: Option<LogFormat>,
    json: bool,
) -> Result<u8, Failure> {
    let env = CheckEnv {
        otel_endpoint_env: agentd_telemetry::OTLP_ENDPOINT_VARS
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty())),
        // `main` resolved `--log-format` and `AGENTD_LOG_FORMAT` into this.
        log_format_text: matches!(log_format, Some(LogFormat::Text)),
    };
    let probes = if args.offline {
        None
    } else {
        // As every command that opens the store: the key variable the
        // config names must be there (exit 2). `--offline` reads only the
        // file, so a CI job without the production secrets can gate on it.
        agentd_store::StoreOptions::from_key_env(config.store.encryption_key_env.as_deref())
            .map_err(|e| Failure::from(agentd_server::AppError::Keyring(e)))?;
        Some(run_probes(config).await?)
    };
    let report = check::assess(config, &env, probes);
    if json {
        super::print_json(&report);
    } else {
        print_table(&report);
    }
    Ok(match args.min {
        Some(min) if report.score < min => {
            eprintln!("score {} is below --min {min}", report.score);
            exit::FAILED
        }
        _ => exit::OK,
    })
}

/// Runs every probe at once, each bounded by [`PROBE_TIMEOUT`].
async fn run_probes(config: &Config) -> Result<Vec<Probe>, Failure> {
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .build()
        .map_err(|e| Failure::failed(format!("cannot build an HTTP client: {e}")))?;
    let mut tasks = Vec::new();
    for target in check::probe_targets(config) {
        let url = config.store.url.clone();
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let outcome = tokio::time::timeout(PROBE_TIMEOUT, probe(&target, &url, &client))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {PROBE_TIMEOUT:?}")));
            Probe {
                target,
                ok: outcome.is_ok(),
                detail: outcome.unwrap_or_else(|e| e),
            }
        }));
    }
    let mut probes = Vec::with_capacity(tasks.len());
    for task in tasks {
        probes.push(
            task.await
                .map_err(|e| Failure::failed(format!("probe: {e}")))?,
        );
    }
    Ok(probes)
}

/// One probe: `Ok(detail)` when it passes, `Err(detail)` when not.
async fn probe(
    target: &ProbeTarget,
    store_url: &str,
    client: &reqwest::Client,
) -> Result<String, String> {
    match target {
        ProbeTarget::Store => probe_store(store_url).await,
        ProbeTarget::Provider { url: None, .. } => Ok("mock: never calls out".to_owned()),
        // Any answer below 500 shows the endpoint is up; no credential is
        // sent, so 401 is the usual one.
        ProbeTarget::Provider { url: Some(url), .. } => match client.get(url).send().await {
            Ok(resp) if resp.status().is_server_error() => Err(format!("HTTP {}", resp.status())),
            Ok(resp) => Ok(format!("HTTP {}", resp.status())),
            Err(e) => Err(error_chain(&e)),
        },
    }
}

/// The store answers and its migrations are applied. A SQLite file that
/// does not exist fails without being created: a check changes nothing.
async fn probe_store(url: &str) -> Result<String, String> {
    if let Some(path) = agentd_config::sqlite_file(url)
        && !path.exists()
    {
        return Err(format!("no database file at {}", path.display()));
    }
    // No keyring (checked before the probes): a ping reads no encrypted
    // column.
    let store = agentd_store::open(url).await.map_err(|e| e.to_string())?;
    store.ping().await.map_err(|e| e.to_string())?;
    Ok(format!("{} reachable and migrated", store.backend()))
}

/// An error and its causes on one line (reqwest's own message omits the
/// cause, e.g. "connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn print_table(report: &Report) {
    println!("{:<15} score", "area");
    for a in &report.areas {
        println!("{:<15} {}/{}", a.area.as_str(), a.score, a.max);
    }
    println!("{:<15} {}/{}", "total", report.score, report.max);
    if !report.findings.is_empty() {
        println!();
        println!("to gain points:");
        for f in &report.findings {
            println!("  [{}] {}: {}", f.area.as_str(), f.key, f.advice);
        }
    }
    println!();
    if report.offline {
        println!("live probes skipped (--offline)");
    }
    for p in &report.probes {
        let mark = if p.ok { "ok  " } else { "FAIL" };
        println!("{mark} {}: {}", p.target.label(), p.detail);
    }
}
