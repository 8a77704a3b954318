//! Forking a run from a step: a new run that starts with the original's
//! first steps and executes from there, for debugging and time travel
//! (change the input or the agent's version, replay from where it went
//! wrong).

use crate::{Engine, EngineError, Result, RunEventKind};
use agentd_core::{Identity, NewRun, Run, RunId, RunOrigin};

/// A request to fork a run.
#[derive(Debug, Clone, Default)]
pub struct Fork {
    /// Steps `0..from_step` of the original are kept; the fork executes
    /// from step `from_step`.
    pub from_step: u32,
    /// Replaces the original's input when set.
    pub input: Option<serde_json::Value>,
    /// The agent version the fork runs on; by default the original's, or
    /// the stable one if the config no longer declares it.
    pub agent_version: Option<String>,
    /// The creating request's id and trace context, stored with the run.
    pub origin: RunOrigin,
}

impl Engine {
    /// Forks run `id` of `who`'s tenant: a new queued run of the same agent
    /// whose journal is a copy of the original's first `req.from_step`
    /// steps, so its execution resumes at step `from_step` under the
    /// agent's current configuration. Anyone of the tenant who may create
    /// runs may fork (as anyone may resume); the fork runs with the forking
    /// caller's principal and roles, in no conversation. `None` if the run
    /// does not exist for this tenant. The original is not touched, and a
    /// running original forks from the steps it has journaled so far.
    pub async fn fork(&self, who: &Identity, id: RunId, req: Fork) -> Result<Option<Run>> {
        let Some(source) = self.inner.store.get_run(&who.tenant, id).await? else {
            return Ok(None);
        };
        let catalog = self.catalog();
        let Some(versions) = catalog.agents.get(&source.agent).filter(|v| v.configured()) else {
            return Err(EngineError::UnknownAgent(source.agent));
        };
        let agent_version = match req.agent_version {
            Some(v) if versions.declared.contains(&v) => Some(v),
            Some(v) => {
                return Err(EngineError::Invalid(format!(
                    "agent_version: agent {:?} has no version {v:?} (declared: {})",
                    source.agent,
                    versions.declared.join(", ")
                )));
            }
            // The original's version while the config still declares it.
            None => match source.agent_version {
                Some(v) if versions.declared.contains(&v) => Some(v),
                _ => versions.default_version(),
            },
        };
        let new = NewRun {
            id: RunId::new(),
            agent: source.agent.clone(),
            agent_version,
            principal: who.principal.clone(),
            input: req.input.unwrap_or(source.input),
            conversation_id: None,
            metadata: source.metadata,
            roles: who.roles.clone(),
            idempotency: None,
            origin: req.origin,
            // A fork joins no conversation.
            if_busy: agentd_core::IfBusy::Enqueue,
            callbacks: Vec::new(),
        };
        let Some(run) = self
            .inner
            .store
            .fork_run(&who.tenant, id, req.from_step, &new)
            .await?
        else {
            return Ok(None);
        };
        crate::meter::run_created(&run.agent);
        self.emit(&run, || RunEventKind::Status { status: run.status });
        self.queued();
        Ok(Some(run))
    }
}
