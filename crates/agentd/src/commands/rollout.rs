//! `agentd rollout status|promote|rollback AGENT`: the local CLI acts on
//! the store every process shares, as an operator; serving processes pick
//! a change up within `agentd_engine::rollout::STATE_TTL`.

use super::failure::Failure;
use super::{build_engine, exit, print_json};
use crate::cli::RolloutCommand;
use agentd_config::Config;
use agentd_core::TenantId;
use agentd_engine::RolloutReport;

/// Runs one `agentd rollout` subcommand.
pub(super) async fn rollout(
    config: &Config,
    cmd: &RolloutCommand,
    json: bool,
) -> Result<u8, Failure> {
    let engine = build_engine(config).await?;
    let report = match cmd {
        RolloutCommand::Status { agent } => engine.rollout(None, agent).await?,
        RolloutCommand::Promote { agent, reason, who } => {
            let tenant = tenant(&who.tenant)?;
            engine.promote(None, &tenant, agent, reason.clone()).await?
        }
        RolloutCommand::Rollback { agent, reason, who } => {
            let tenant = tenant(&who.tenant)?;
            engine
                .rollback(None, &tenant, agent, reason.clone())
                .await?
        }
    };
    if json {
        print_json(&report);
    } else {
        print!("{}", render(&report));
    }
    engine.shutdown_tools().await;
    Ok(exit::OK)
}

fn tenant(raw: &str) -> Result<TenantId, Failure> {
    TenantId::parse(raw).map_err(|e| Failure::usage(format!("--tenant: {e}")))
}

/// The report as text: the split, then one row per version.
fn render(r: &RolloutReport) -> String {
    let mut out = format!(
        "agent {}: {} (stable {}{})\n",
        r.agent,
        r.phase.as_str(),
        r.stable,
        match &r.canary {
            Some(c) => format!(", canary {c} at {}%", r.percent),
            None => String::new(),
        }
    );
    out.push_str(&format!(
        "changed by {}{}\n",
        r.updated_by,
        r.reason
            .as_deref()
            .map(|x| format!(": {x}"))
            .unwrap_or_default()
    ));
    out.push_str(&format!(
        "{:<16} {:>6} {:>9} {:>6} {:>9} {:>12} {:>12}\n",
        "VERSION", "RUNS", "SUCCEEDED", "FAILED", "SUCCESS", "MEAN_MS", "MEAN_USD"
    ));
    for v in &r.versions {
        let s = r.stats.iter().find(|s| &s.version == v);
        let (runs, ok, failed, rate, ms, usd) = match s {
            Some(s) => (
                s.runs,
                s.succeeded,
                s.failed,
                s.success_rate
                    .map(|x| format!("{:.1}%", x * 100.0))
                    .unwrap_or_else(|| "-".into()),
                s.mean_duration_ms,
                s.mean_cost_usd,
            ),
            None => (0, 0, 0, "-".into(), 0.0, 0.0),
        };
        out.push_str(&format!(
            "{v:<16} {runs:>6} {ok:>9} {failed:>6} {rate:>9} {ms:>12.0} {usd:>12.6}\n"
        ));
    }
    out
}
