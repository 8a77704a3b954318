//! `agentd check`: the production-readiness score. The criteria live in
//! [`agentd_config::check`]; this module runs the live probes and prints.

use super::exit;
use super::failure::Failure;
use crate::cli::{CheckArgs, LogFormat};
use agentd_config::Config;
use agentd_config::check::{self, CheckEnv, Probe, ProbeTarget, Report};
use agentd_store::Store;
use std::sync::Arc;
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

/// Runs every probe at once, each bounded by [`PROBE_TIMEOUT`]. The
/// store's probes share one connection: opened once, it answers whether it
/// is migrated, who runs workers on it and when it was last backed up.
async fn run_probes(config: &Config) -> Result<Vec<Probe>, Failure> {
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .build()
        .map_err(|e| Failure::failed(format!("cannot build an HTTP client: {e}")))?;
    let (of_store, of_providers): (Vec<_>, Vec<_>) = check::probe_targets(config)
        .into_iter()
        .partition(|t| !matches!(t, ProbeTarget::Provider { .. }));
    let url = config.store.url.clone();
    let store_task = tokio::spawn(async move {
        match tokio::time::timeout(PROBE_TIMEOUT, probe_store(&url, &of_store)).await {
            Ok(probes) => probes,
            Err(_) => of_store
                .into_iter()
                .map(|target| Probe {
                    target,
                    ok: false,
                    detail: format!("no answer within {PROBE_TIMEOUT:?}"),
                })
                .collect(),
        }
    });
    let mut tasks = Vec::new();
    for target in of_providers {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let outcome = tokio::time::timeout(PROBE_TIMEOUT, probe_provider(&target, &client))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {PROBE_TIMEOUT:?}")));
            Probe {
                target,
                ok: outcome.is_ok(),
                detail: outcome.unwrap_or_else(|e| e),
            }
        }));
    }
    let mut probes = store_task
        .await
        .map_err(|e| Failure::failed(format!("probe: {e}")))?;
    for task in tasks {
        probes.push(
            task.await
                .map_err(|e| Failure::failed(format!("probe: {e}")))?,
        );
    }
    Ok(probes)
}

/// One provider: `Ok(detail)` when it passes, `Err(detail)` when not.
async fn probe_provider(target: &ProbeTarget, client: &reqwest::Client) -> Result<String, String> {
    match target {
        ProbeTarget::Provider { url: None, .. } => Ok("mock: never calls out".to_owned()),
        // Any answer below 500 shows the endpoint is up; no credential is
        // sent, so 401 is the usual one.
        ProbeTarget::Provider { url: Some(url), .. } => match client.get(url).send().await {
            Ok(resp) if resp.status().is_server_error() => Err(format!("HTTP {}", resp.status())),
            Ok(resp) => Ok(format!("HTTP {}", resp.status())),
            Err(e) => Err(error_chain(&e)),
        },
        other => Err(format!("{} is not a provider", other.label())),
    }
}

/// The store's probes (`targets`: the store, its workers, its backups). A
/// store that cannot be opened fails them all: what it cannot show, it
/// does not get the point for.
async fn probe_store(url: &str, targets: &[ProbeTarget]) -> Vec<Probe> {
    let opened = open_store(url).await;
    let mut probes = Vec::with_capacity(targets.len());
    for target in targets {
        let outcome = match &opened {
            Err(e) => Err(e.clone()),
            Ok(store) => match target {
                ProbeTarget::Store => store
                    .ping()
                    .await
                    .map(|()| format!("{} reachable and migrated", store.backend()))
                    .map_err(|e| e.to_string()),
                ProbeTarget::Workers => probe_workers(store.as_ref()).await,
                ProbeTarget::Backups => probe_backups(store.as_ref()).await,
                ProbeTarget::Provider { .. } => Err("not a store probe".to_owned()),
            },
        };
        probes.push(Probe {
            target: target.clone(),
            ok: outcome.is_ok(),
            detail: outcome.unwrap_or_else(|e| e),
        });
    }
    probes
}

/// Opens the store without creating anything: a SQLite file that does not
/// exist fails, since a check changes nothing. No keyring (checked before
/// the probes): no probe reads an encrypted column.
async fn open_store(url: &str) -> Result<Arc<dyn Store>, String> {
    if let Some(path) = agentd_config::sqlite_file(url)
        && !path.exists()
    {
        return Err(format!("no database file at {}", path.display()));
    }
    agentd_store::open(url).await.map_err(|e| e.to_string())
}

/// `reliability.workers`: processes in the worker registry seen lately.
async fn probe_workers(store: &dyn Store) -> Result<String, String> {
    let seen = store
        .list_workers(check::WORKERS_SEEN_WITHIN)
        .await
        .map_err(|e| e.to_string())?;
    let within = check::WORKERS_SEEN_WITHIN.as_secs() / 60;
    let names: Vec<String> = seen
        .iter()
        .map(|w| format!("{} ({} pid {})", w.node_id, w.host, w.pid))
        .collect();
    let detail = format!(
        "{} worker process(es) seen in the last {within} min{}{}",
        seen.len(),
        if names.is_empty() { "" } else { ": " },
        names.join(", ")
    );
    if seen.len() >= check::MIN_WORKERS {
        Ok(detail)
    } else {
        Err(detail)
    }
}

/// `data.backups`: the newest backup `agentd backup` recorded.
async fn probe_backups(store: &dyn Store) -> Result<String, String> {
    let max_h = check::BACKUP_MAX_AGE.as_secs() / 3600;
    match store.last_backup().await.map_err(|e| e.to_string())? {
        None => Err("no backup recorded in this store".to_owned()),
        Some(b) => {
            let detail = format!(
                "last backup {} h {} min ago: {} ({} bytes, {})",
                b.age.as_secs() / 3600,
                b.age.as_secs() % 3600 / 60,
                b.file,
                b.bytes,
                b.backend
            );
            if b.age <= check::BACKUP_MAX_AGE {
                Ok(detail)
            } else {
                Err(format!("{detail}, more than {max_h} h"))
            }
        }
    }
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
        let skipped: Vec<String> = report
            .not_checked
            .iter()
            .map(|t| format!("{} ({})", t.check(), t.label()))
            .collect();
        println!(
            "live probes skipped (--offline); not checked: {}",
            skipped.join(", ")
        );
    }
    for p in &report.probes {
        let mark = if p.ok { "ok  " } else { "FAIL" };
        println!("{mark} {}: {}", p.target.label(), p.detail);
    }
}
