//! `agentd test`: the contract checks and the agents' test cases.

use super::exit;
use super::failure::Failure;
use agentd_config::Config;
use agentd_engine::EngineError;

/// Runs the contract tests on a scratch in-memory store and prints them.
pub(super) async fn contract_tests(config: &Config, json: bool) -> Result<u8, Failure> {
    // The scratch store needs no keyring, but the one the config names must
    // still be there.
    agentd_store::StoreOptions::from_key_env(config.store.encryption_key_env.as_deref())
        .map_err(|e| Failure::from(agentd_server::AppError::Keyring(e)))?;
    let report = agentd_engine::contract::run_contract_tests(config)
        .await
        .map_err(|e| match e {
            EngineError::Config(msg) => Failure::usage(msg),
            other => other.into(),
        })?;
    if json {
        super::print_json(&report);
    } else {
        for c in &report.checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            println!("{mark} {}: {}", c.what, c.detail);
        }
        for c in &report.cases {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            println!("{mark} agent {} / {}", c.agent, c.case);
            for line in &c.diff {
                println!("       {line}");
            }
        }
        let failed = report.checks.iter().filter(|c| !c.ok).count()
            + report.cases.iter().filter(|c| !c.passed).count();
        eprintln!(
            "{} checks, {} cases, {failed} failed",
            report.checks.len(),
            report.cases.len()
        );
    }
    Ok(if report.passed() {
        exit::OK
    } else {
        exit::FAILED
    })
}
