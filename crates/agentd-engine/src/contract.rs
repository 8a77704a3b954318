//! `agentd test`: contract tests of a configuration. Checks every agent's
//! tools (resolvable, sound schemas), that MCP servers answer, and runs each
//! agent's `[[agents.tests]]` cases on the mock provider, reporting a diff
//! for each case that fails.

use crate::{Engine, EngineError, Submit};
use agentd_config::{AgentConfig, AgentTest, Config, ProviderConfig, ProviderKind};
use agentd_core::{Identity, PrincipalId, Run, Step, StepKind, TenantId, value_as_text};
use agentd_store::Store;
use serde::Serialize;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// One check and what it found.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

/// One test case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub agent: String,
    pub case: String,
    pub passed: bool,
    /// Expected-versus-actual lines, empty when it passed.
    pub diff: Vec<String>,
}

/// Everything `agentd test` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ContractReport {
    pub checks: Vec<Check>,
    pub cases: Vec<CaseResult>,
}

impl ContractReport {
    /// True when every check and case passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok) && self.cases.iter().all(|c| c.passed)
    }
}

/// Name of the synthetic agent running case `case` of agent `agent`.
fn case_agent(agent: usize, case: usize) -> String {
    format!("__test_{agent}_{case}")
}

/// The config the cases run under: each case becomes an agent of its own,
/// on a mock provider with the case's script (or the agent's own chain).
fn case_config(config: &Config) -> Config {
    let mut derived = config.clone();
    derived.store.url = "sqlite::memory:".to_string();
    derived.agents.clear();
    derived.rollout.clear();
    for (i, agent) in config.agents.iter().enumerate() {
        for (j, case) in agent.tests.iter().enumerate() {
            let name = case_agent(i, j);
            let providers = if case.script.is_empty() {
                agent.providers.clone()
            } else {
                derived.providers.insert(
                    name.clone(),
                    ProviderConfig {
                        kind: ProviderKind::Mock,
                        script: case.script.clone(),
                        ..ProviderConfig::default()
                    },
                );
                vec![name.clone()]
            };
            derived.agents.push(AgentConfig {
                name,
                providers,
                tests: Vec::new(),
                // Contract tests never call anyone back.
                on_finish: None,
                ..agent.clone()
            });
        }
    }
    derived
}

/// Runs the contract tests of `config`.
pub async fn run_contract_tests(config: &Config) -> Result<ContractReport, EngineError> {
    let mut report = ContractReport::default();
    let store = agentd_store::open("sqlite::memory:").await?;
    store.migrate().await?;
    if !check_agents(config, store.clone(), &mut report).await? {
        return Ok(report);
    }
    if config.agents.iter().all(|a| a.tests.is_empty()) {
        return Ok(report);
    }
    let derived = case_config(config);
    let engine = Engine::new(&derived, store).await?;
    let who = Identity {
        tenant: TenantId::parse("agentd-test").map_err(|e| EngineError::Config(e.to_string()))?,
        principal: PrincipalId::parse("agentd-test")
            .map_err(|e| EngineError::Config(e.to_string()))?,
        roles: vec!["admin".into()],
    };
    for (i, agent) in config.agents.iter().enumerate() {
        for (j, case) in agent.tests.iter().enumerate() {
            if let Some(result) = run_case(&engine, &who, (i, j), agent, case).await? {
                report.cases.push(result);
            }
        }
    }
    engine.shutdown_tools().await;
    Ok(report)
}

/// Checks the agents as configured: tools resolve, schemas are sound, MCP
/// servers answer. False when the agents do not even resolve.
async fn check_agents(
    config: &Config,
    store: Arc<dyn Store>,
    report: &mut ContractReport,
) -> Result<bool, EngineError> {
    let what = "agents resolve their providers and tools";
    let engine = match Engine::new(config, store).await {
        Ok(engine) => engine,
        Err(EngineError::Config(message)) => {
            report.checks.push(Check {
                what: what.into(),
                ok: false,
                detail: message,
            });
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    report.checks.push(Check {
        what: what.into(),
        ok: true,
        detail: format!("{} agents", config.agents.len()),
    });
    let catalog = engine.catalog();
    for agent in &config.agents {
        let version = &agent.version;
        if let Some(a) = catalog.agents.get(&agent.name).and_then(|v| v.get(version)) {
            for spec in a.tools.specs() {
                let problems = agentd_tools::schema_problems(&spec.input_schema);
                report.checks.push(Check {
                    what: format!("agent {}: tool {} schema", agent.name, spec.name),
                    ok: problems.is_empty(),
                    detail: if problems.is_empty() {
                        "ok".into()
                    } else {
                        problems.join("; ")
                    },
                });
            }
        }
    }
    for mcp in engine.readiness().mcp {
        report.checks.push(Check {
            what: format!("MCP server {}", mcp.name),
            ok: mcp.healthy,
            detail: mcp.detail,
        });
    }
    engine.shutdown_tools().await;
    Ok(true)
}

/// Runs case `j` of agent number `i` to its end; `None` if its run
/// vanished.
async fn run_case(
    engine: &Engine,
    who: &Identity,
    (i, j): (usize, usize),
    agent: &AgentConfig,
    case: &AgentTest,
) -> Result<Option<CaseResult>, EngineError> {
    let label = case
        .name
        .clone()
        .unwrap_or_else(|| format!("case {}", j + 1));
    let submit = Submit {
        input: case.input.clone(),
        ..Submit::default()
    };
    let run = engine.submit(who, &case_agent(i, j), submit).await?;
    let stop = CancellationToken::new();
    let Some(run) = engine.drive(&who.tenant, run.id, &stop).await? else {
        return Ok(None);
    };
    let steps = engine
        .store()
        .list_steps(&who.tenant, run.id, None, 1000)
        .await?
        .map(|p| p.items)
        .unwrap_or_default();
    let diff = case_diff(case, &run, &steps);
    Ok(Some(CaseResult {
        agent: agent.name.clone(),
        case: label,
        passed: diff.is_empty(),
        diff,
    }))
}

/// Expected-versus-actual lines of a case's run, empty when it passed.
fn case_diff(case: &AgentTest, run: &Run, steps: &[Step]) -> Vec<String> {
    let mut diff = Vec::new();
    let want_status = case.expect_status.as_deref().unwrap_or("succeeded");
    if run.status.as_str() != want_status {
        let why = run
            .error
            .as_ref()
            .map(|e| format!(" ({}: {})", e.code, e.message))
            .unwrap_or_default();
        diff.push(format!("- status: {want_status}"));
        diff.push(format!("+ status: {}{why}", run.status));
    }
    if let Some(want) = &case.expect_output {
        let got = run.output.as_ref().map(value_as_text).unwrap_or_default();
        if !got.contains(want.as_str()) {
            diff.push(format!("- output containing: {want:?}"));
            diff.push(format!("+ output: {got:?}"));
        }
    }
    if let Some(want) = &case.expect_tools {
        let got: Vec<String> = steps
            .iter()
            .filter(|s| s.kind == StepKind::Tool)
            .map(|s| s.name.clone())
            .collect();
        if &got != want {
            diff.push(format!("- tools: [{}]", want.join(", ")));
            diff.push(format!("+ tools: [{}]", got.join(", ")));
        }
    }
    diff
}
