//! The calls the API and the CLI make on runs: submit, resume, cancel,
//! the dead letters, and driving one run in the foreground.

use crate::{Engine, EngineError, Result, RunEventKind, Submit, require_admin, settled};
use agentd_core::{Identity, NewRun, Run, RunId, TenantId};
use agentd_store::Transition;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl Engine {
    /// Queues a run of `agent` for `who`; it starts at once if a worker of
    /// this process is free.
    pub async fn submit(&self, who: &Identity, agent: &str, req: Submit) -> Result<Run> {
        self.submit_with_id(who, agent, req, RunId::new()).await
    }

    /// Submits a run and waits until it pauses or ends (or `timeout`
    /// passes). Cheaper than `submit` + `wait`: the waiter is registered
    /// before the run exists, so no store read is needed to close the race.
    pub async fn submit_wait(
        &self,
        who: &Identity,
        agent: &str,
        req: Submit,
        timeout: Duration,
    ) -> Result<Run> {
        let id = RunId::new();
        let mut rx = self.register_waiter(id);
        let result = match self.submit_with_id(who, agent, req, id).await {
            // A replayed idempotency key names an older run: wait for that.
            Ok(run) if run.id != id => self
                .wait(&who.tenant, run.id, timeout)
                .await
                .map(|waited| waited.unwrap_or(run)),
            Ok(run) => self
                .wait_registered(&who.tenant, id, timeout, &mut rx, Some(run.clone()))
                .await
                .map(|waited| waited.unwrap_or(run)),
            Err(e) => Err(e),
        };
        self.unregister_waiter(id);
        result
    }

    async fn submit_with_id(
        &self,
        who: &Identity,
        agent: &str,
        req: Submit,
        id: RunId,
    ) -> Result<Run> {
        let new = self.new_run(who, agent, req, id).await?;
        let slot = self.free_slot();
        // Built only when the run may start here (it copies the node id).
        let claim = slot.as_ref().map(|_| self.claim_request());
        let created = self
            .inner
            .store
            .create_run_capped(
                &who.tenant,
                &new,
                claim.as_ref(),
                self.inner.settings.max_active_runs_per_tenant,
            )
            .await?;
        Ok(self.started(agent, created, slot))
    }

    /// Submits a run for tick `tick_at` of schedule `schedule`, as
    /// [`Engine::submit`] does (version routing, the tenant's cap, a free
    /// slot here), recording the tick with it; `None` when this tick or a
    /// later one already started a run (in any process).
    pub(crate) async fn submit_tick(
        &self,
        who: &Identity,
        agent: &str,
        req: Submit,
        schedule: &str,
        tick_at: agentd_core::Millis,
    ) -> Result<Option<Run>> {
        let new = self.new_run(who, agent, req, RunId::new()).await?;
        let slot = self.free_slot();
        let claim = slot.as_ref().map(|_| self.claim_request());
        let created = self
            .inner
            .store
            .create_scheduled_run(
                &who.tenant,
                schedule,
                tick_at,
                &new,
                claim.as_ref(),
                self.inner.settings.max_active_runs_per_tenant,
            )
            .await?;
        Ok(created.map(|c| self.started(agent, c, slot)))
    }

    /// The run `who` asks for: the agent's version picked by its rollout,
    /// the idempotency fingerprint taken.
    async fn new_run(&self, who: &Identity, agent: &str, req: Submit, id: RunId) -> Result<NewRun> {
        let catalog = self.catalog();
        let Some(versions) = catalog.agents.get(agent).filter(|v| v.configured()) else {
            return Err(EngineError::UnknownAgent(agent.to_string()));
        };
        // A context the run could not be rebuilt with is refused now, not
        // failed later.
        crate::state::seeded_context(req.metadata.as_ref()).map_err(EngineError::Invalid)?;
        // A conversation stays on one version; other runs split by run.
        let key = match &req.conversation_id {
            Some(c) => c.as_str().as_bytes().to_vec(),
            None => id.0.as_bytes().to_vec(),
        };
        let agent_version = self.route(agent, versions, &key).await?;
        let mut callbacks = Vec::new();
        if let Some(target) = versions
            .get(&agent_version)
            .and_then(|a| a.config.on_finish.as_deref())
        {
            callbacks.push(catalog.notifier.on_finish(target));
        }
        if let Some(url) = &req.callback_url {
            catalog
                .notifier
                .check_callback(url)
                .map_err(EngineError::Invalid)?;
            callbacks.push(agentd_core::Callback {
                url: url.clone(),
                tool: None,
            });
        }
        let idempotency = req
            .idempotency_key
            .as_ref()
            .map(|key| agentd_core::IdempotencyKey {
                key: key.clone(),
                fingerprint: req.fingerprint(agent),
            });
        // Cleaned of control and invisible characters before anything
        // reads it; too large is refused, never truncated.
        let definition = versions.get(&agent_version);
        let max_input_bytes = definition.map_or(usize::MAX, |a| a.guards.max_input_bytes);
        let (mut input, removed) = crate::guard::clean_input(agent, max_input_bytes, req.input)?;
        if removed > 0 {
            tracing::debug!(%agent, removed, "control and invisible characters removed from a run's input");
        }
        // Personal data never reaches the store: the values are kept
        // (sealed) before the redacted input is.
        if let Some(pii) = definition
            .and_then(|a| a.guards.pii.as_ref())
            .filter(|p| p.redacts_journal())
        {
            let mut vault = agentd_guard::pii::Vault::default();
            let (redacted, found) = pii.redact(&mut vault, input);
            input = redacted;
            if found > 0 && pii.keeps_vault() {
                self.inner
                    .store
                    .save_vault(&who.tenant, id, &crate::guard::vault_json(&vault))
                    .await?;
            }
        }
        Ok(NewRun {
            id,
            agent: agent.to_string(),
            agent_version,
            principal: who.principal.clone(),
            input,
            conversation_id: req.conversation_id,
            metadata: req.metadata,
            roles: who.roles.clone(),
            idempotency,
            origin: req.origin,
            if_busy: req.if_busy,
            callbacks,
        })
    }

    /// After a create: counts and announces the new run and starts it in
    /// `slot` if the create claimed it, else wakes the claimers.
    fn started(
        &self,
        agent: &str,
        created: agentd_store::Created,
        slot: Option<(tokio::sync::OwnedSemaphorePermit, CancellationToken)>,
    ) -> Run {
        let run = created.run;
        if created.replayed {
            return run;
        }
        for old in &created.interrupted {
            crate::meter::run_settled(old);
            self.settle(old);
        }
        crate::meter::run_created(agent);
        self.emit(&run, || RunEventKind::Status { status: run.status });
        match (created.claimed, slot) {
            (Some(claimed), Some((permit, token))) => self.spawn_execute(claimed, permit, token),
            _ => self.queued(),
        }
        run
    }

    /// Answers a paused run; it continues at once if a worker is free.
    pub async fn resume(
        &self,
        who: &Identity,
        id: RunId,
        answer: &serde_json::Value,
    ) -> Result<Transition> {
        // An approval pause takes only a decision: check its shape before it
        // is journaled as the answer.
        if let Some(run) = self.inner.store.get_run(&who.tenant, id).await?
            && let Some(pause) = &run.pause
            && pause.tool.is_some()
        {
            agentd_tools::ApprovalDecision::from_answer(answer).map_err(EngineError::BadAnswer)?;
        }
        let slot = self.free_slot();
        let claim = slot.as_ref().map(|_| self.claim_request());
        let t = self
            .inner
            .store
            .resume_run(&who.tenant, id, answer, &who.principal, claim.as_ref())
            .await?;
        if let Transition::Done(run, claimed) = t {
            self.emit(&run, || RunEventKind::Status { status: run.status });
            match (claimed, slot) {
                (Some(claimed), Some((permit, token))) => {
                    self.spawn_execute(*claimed, permit, token)
                }
                _ => self.queued(),
            }
            return Ok(Transition::Done(run, None));
        }
        Ok(t)
    }

    /// Answers a paused run, then waits until it stops moving again (paused
    /// or finished) or `timeout` passes. The waiter is registered before
    /// the answer is journaled, so the wait needs no read of the store when
    /// the run continues in this process.
    pub async fn resume_wait(
        &self,
        who: &Identity,
        id: RunId,
        answer: &serde_json::Value,
        timeout: Duration,
    ) -> Result<Transition> {
        let mut rx = self.register_waiter(id);
        let result = match self.resume(who, id, answer).await {
            Ok(Transition::Done(run, _)) => self
                .wait_registered(&who.tenant, id, timeout, &mut rx, Some(run.clone()))
                .await
                .map(|waited| Transition::Done(waited.unwrap_or(run), None)),
            other => other,
        };
        self.unregister_waiter(id);
        result
    }

    /// Cancels a queued, running or paused run.
    pub async fn cancel(&self, who: &Identity, id: RunId) -> Result<Transition> {
        let t = self
            .inner
            .store
            .cancel_run(&who.tenant, id, &who.principal)
            .await?;
        if let Transition::Done(run, _) = &t {
            crate::meter::run_settled(run);
            self.settle(run);
        }
        Ok(t)
    }

    /// The tenant's dead runs (retries exhausted), newest first, for any
    /// identity of the tenant: see [`crate::reads::Reads::dead_letters`].
    pub async fn dead_letters(
        &self,
        who: &Identity,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<agentd_store::Page<Run>> {
        self.reads().dead_letters(who, limit, cursor).await
    }

    /// Queues a dead run again as a first attempt; it continues from its
    /// journal. Needs role `admin`.
    pub async fn requeue_dead(&self, who: &Identity, id: RunId) -> Result<Transition> {
        require_admin(who, "requeueing a dead run")?;
        let t = self
            .inner
            .store
            .requeue_dead(&who.tenant, id, &who.principal)
            .await?;
        if let Transition::Done(run, _) = &t {
            self.emit(run, || RunEventKind::Status { status: run.status });
            self.queued();
        }
        Ok(t)
    }

    /// Executes one run in this process if it is runnable (the CLI's
    /// `agentd run`); if another worker holds it, waits for it instead.
    pub async fn drive(
        &self,
        tenant: &TenantId,
        id: RunId,
        shutdown: &CancellationToken,
    ) -> Result<Option<Run>> {
        loop {
            if let Some(claimed) = self
                .inner
                .store
                .claim_run(tenant, id, &self.claim_request())
                .await?
            {
                self.execute(claimed, shutdown, None).await;
            }
            let Some(run) = self.wait(tenant, id, Duration::from_secs(1)).await? else {
                return Ok(None);
            };
            if settled(run.status) || shutdown.is_cancelled() {
                return Ok(Some(run));
            }
        }
    }

    /// Releases leases this node held before a restart, so its runs continue
    /// at once instead of after their leases expire. Call once at start-up of
    /// a process that runs workers, after [`Engine::join_fleet`] settled
    /// which node id is this process's.
    pub async fn recover(&self) -> Result<u64> {
        Ok(self.inner.store.release_owner(&self.node_id()).await?)
    }
}
