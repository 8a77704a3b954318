//! Hot reload: a new catalog (agents, providers, tools, policies, pricing,
//! budgets, rollouts) replaces the one in force without stopping the
//! process. Attempts in flight keep the catalog they started with; a run
//! pinned to a version the new config drops still finishes on it here.

use crate::catalog::Catalog;
use crate::{Engine, EngineError, Result};
use agentd_config::Config;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// What a reload did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reloaded {
    /// The agents new runs may start on, as `name` or `name@version`.
    pub agents: Vec<String>,
    /// Changed keys that apply only at the next start (`server.listen`,
    /// `store.url`, ...); the old values stay in force.
    pub restart_required: Vec<String>,
    /// Whether `[tools]` or `[[mcp]]` changed, so the tool registry (and
    /// its MCP servers) was rebuilt.
    pub tools_rebuilt: bool,
}

impl Engine {
    /// Replaces the catalog with one built from `config`, which the caller
    /// has loaded and validated. On any error the old catalog stays in
    /// force.
    pub async fn reload(&self, config: &Config) -> Result<Reloaded> {
        let _one_at_a_time = self.inner.reload_lock.lock().await;
        let old = self.catalog();
        let tools_rebuilt = old.config.tools != config.tools || old.config.mcp != config.mcp;
        let tools = if tools_rebuilt {
            agentd_tools::Registry::from_config(config)
                .await
                .map_err(|e| EngineError::Config(e.to_string()))?
        } else {
            old.tools.clone()
        };
        let catalog = match Catalog::build(config, tools.clone(), &self.inner.breakers, Some(&old))
        {
            Ok(c) => c,
            Err(e) => {
                if tools_rebuilt {
                    tools.shutdown().await;
                }
                return Err(e);
            }
        };
        let mut agents: Vec<String> = config
            .agents
            .iter()
            .map(|a| match &a.version {
                Some(v) => format!("{}@{v}", a.name),
                None => a.name.clone(),
            })
            .collect();
        agents.sort();
        let mut restart_required = agentd_config::reload::restart_required(&old.config, config);
        restart_required.extend(breaker_changes(&self.inner.breakers, config));
        match self.inner.catalog.write() {
            Ok(mut c) => *c = Arc::new(catalog),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(catalog),
        }
        self.inner.schedules_changed.notify_one();
        if tools_rebuilt {
            retire_tools(old);
        } else {
            drop(old);
        }
        Ok(Reloaded {
            agents,
            restart_required,
            tools_rebuilt,
        })
    }
}

/// `agents[i].circuit_breaker` keys whose settings differ from those of a
/// breaker this process already runs: a breaker keeps its state and
/// settings for the life of the process, so those apply after a restart.
fn breaker_changes(breakers: &agentd_llm::BreakerRegistry, config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in config.agents.iter().enumerate() {
        let Some(cb) = &a.circuit_breaker else {
            continue;
        };
        let wanted = agentd_llm::BreakerSettings::from(cb);
        let differs = a
            .providers
            .iter()
            .filter_map(|p| breakers.get(p))
            .any(|b| b.settings() != wanted);
        if differs {
            out.push(format!("agents[{i}].circuit_breaker"));
        }
    }
    out
}

/// Stops the MCP servers of a replaced registry once no attempt uses its
/// catalog any more.
fn retire_tools(old: Arc<Catalog>) {
    tokio::spawn(async move {
        let mut old = old;
        loop {
            match Arc::try_unwrap(old) {
                Ok(catalog) => {
                    catalog.tools.shutdown().await;
                    return;
                }
                Err(shared) => old = shared,
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

/// Why a reload was refused; the config in force stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file does not load or validate.
    #[error("{0}")]
    Config(#[from] agentd_config::ConfigError),
    /// The config validates but the engine cannot build it (an unknown
    /// tool, an MCP server that does not start).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Reloads an engine from the source its config came from: SIGHUP and
/// `POST /v1/admin/reload` both end here.
#[derive(Clone)]
pub struct Reloader {
    engine: Engine,
    source: agentd_config::ConfigSource,
}

impl Reloader {
    pub fn new(engine: Engine, source: agentd_config::ConfigSource) -> Self {
        Self { engine, source }
    }

    /// Loads and validates the config again (file and environment, as at
    /// start) and swaps it in; logs the outcome, naming changed keys that
    /// need a restart. `trigger` says who asked, for the log.
    pub async fn reload(&self, trigger: &str) -> Result<Reloaded, ReloadError> {
        let path = match &self.source {
            agentd_config::ConfigSource::File(p) => Some(p.as_path()),
            agentd_config::ConfigSource::Embedded => None,
        };
        let result = match Config::load(path) {
            Ok((config, _)) => self.engine.reload(&config).await.map_err(ReloadError::from),
            Err(e) => Err(e.into()),
        };
        match &result {
            Ok(done) => {
                tracing::info!(
                    config = %self.source, trigger, agents = ?done.agents,
                    tools_rebuilt = done.tools_rebuilt, "configuration reloaded"
                );
                if !done.restart_required.is_empty() {
                    tracing::warn!(
                        config = %self.source, keys = ?done.restart_required,
                        "changed keys apply only after a restart; their old values stay in force"
                    );
                }
            }
            Err(e) => tracing::error!(
                config = %self.source, trigger, error = %e,
                "configuration rejected; the previous one stays in force"
            ),
        }
        result
    }
}
