//! `agentd runs`: list, show, resume, fork, cancel and purge runs. Reads go
//! through the engine's read facade over the store, without starting the
//! agents' tools.

use super::failure::Failure;
use super::print::{print_runs, step_line};
use super::run::{drive_and_report, print_run_json};
use super::{
    build_engine, exit, identity, json_or_text, open_store, parse_run_id, shutdown_on_signal,
};
use crate::cli::{RunsCommand, Who};
use agentd_config::Config;
use agentd_core::RunStatus;
use agentd_engine::Fork;
use agentd_engine::reads::Reads;
use agentd_engine::retention::{DEFAULT_BATCH, purge_pass};
use agentd_store::{RunFilter, Transition};
use std::time::Duration;

/// Runs one `agentd runs` subcommand.
pub(super) async fn runs(config: &Config, cmd: &RunsCommand, json: bool) -> Result<u8, Failure> {
    match cmd {
        RunsCommand::List {
            agent,
            status,
            conversation,
            since,
            until,
            limit,
            cursor,
            who,
        } => {
            if !agentd_core::ordered_range(*since, *until) {
                return Err(Failure::usage("--since is after --until"));
            }
            let conversation_id = conversation
                .as_deref()
                .map(|c| {
                    agentd_core::ConversationId::parse(c)
                        .map_err(|e| Failure::usage(format!("--conversation: {e}")))
                })
                .transpose()?;
            let filter = RunFilter {
                agent: agent.clone(),
                status: status.as_deref().map(parse_status).transpose()?,
                conversation_id,
                since: *since,
                until: *until,
                limit: *limit,
                cursor: cursor.clone(),
            };
            list(config, who, &filter, json).await
        }
        RunsCommand::Show { id, who } => show(config, who, id, json).await,
        RunsCommand::Resume { id, answer, who } => resume(config, who, id, answer, json).await,
        RunsCommand::Fork {
            id,
            from_step,
            input,
            agent_version,
            who,
        } => {
            let req = Fork {
                from_step: *from_step,
                input: input.as_deref().map(json_or_text),
                agent_version: agent_version.clone(),
                origin: Default::default(),
            };
            fork(config, who, id, req, json).await
        }
        RunsCommand::Cancel { id, who } => cancel(config, who, id, json).await,
        RunsCommand::Purge { older_than } => purge(config, *older_than, json).await,
    }
}

fn parse_status(s: &str) -> Result<RunStatus, Failure> {
    RunStatus::parse(s).ok_or_else(|| {
        Failure::usage(format!(
            "--status: unknown status {s:?} (expected one of {})",
            RunStatus::ALL.map(|s| s.as_str()).join(", ")
        ))
    })
}

async fn list(config: &Config, who: &Who, filter: &RunFilter, json: bool) -> Result<u8, Failure> {
    let who = identity(who)?;
    let store = open_store(config).await?;
    let page = Reads::new(store.as_ref()).runs(&who, filter).await?;
    print_runs(page, json, false);
    Ok(exit::OK)
}

async fn show(config: &Config, who: &Who, id: &str, json: bool) -> Result<u8, Failure> {
    let who = identity(who)?;
    let id = parse_run_id(id)?;
    let store = open_store(config).await?;
    let reads = Reads::new(store.as_ref());
    let run = reads
        .run(&who, id)
        .await?
        .ok_or_else(|| Failure::failed(format!("run {id} not found")))?;
    let steps = reads
        .steps(&who, id, None, 1000)
        .await?
        .map(|p| p.items)
        .unwrap_or_default();
    if json {
        let v = serde_json::json!({ "run": run, "steps": steps });
        println!("{v:#}");
    } else {
        println!("{}", serde_json::to_string_pretty(&run).unwrap_or_default());
        for s in &steps {
            println!("{}", step_line(s, ""));
        }
    }
    Ok(exit::OK)
}

async fn resume(
    config: &Config,
    who: &Who,
    id: &str,
    answer: &str,
    json: bool,
) -> Result<u8, Failure> {
    let who = identity(who)?;
    let id = parse_run_id(id)?;
    let engine = build_engine(config).await?;
    match engine.resume(&who, id, &json_or_text(answer)).await? {
        Transition::Done(..) => drive_and_report(&engine, &who.tenant, id, json).await,
        Transition::NotFound => Err(Failure::failed(format!("run {id} not found"))),
        Transition::Conflict(s) => Err(Failure::failed(format!(
            "run {id} is {s}; only a paused run can be resumed"
        ))),
    }
}

/// Forks a run and drives the fork here, as `resume` does.
async fn fork(config: &Config, who: &Who, id: &str, req: Fork, json: bool) -> Result<u8, Failure> {
    let who = identity(who)?;
    let id = parse_run_id(id)?;
    let engine = build_engine(config).await?;
    let from_step = req.from_step;
    let fork = engine
        .fork(&who, id, req)
        .await?
        .ok_or_else(|| Failure::failed(format!("run {id} not found")))?;
    eprintln!("run {} forked from run {id} at step {from_step}", fork.id);
    drive_and_report(&engine, &who.tenant, fork.id, json).await
}

async fn cancel(config: &Config, who: &Who, id: &str, json: bool) -> Result<u8, Failure> {
    let who = identity(who)?;
    let id = parse_run_id(id)?;
    let engine = build_engine(config).await?;
    match engine.cancel(&who, id).await? {
        Transition::Done(run, _) => {
            print_run_json(&run, json);
            eprintln!("run {id} cancelled");
            Ok(exit::OK)
        }
        Transition::NotFound => Err(Failure::failed(format!("run {id} not found"))),
        Transition::Conflict(s) => Err(Failure::failed(format!(
            "run {id} is {s}; only a queued, running or paused run can be cancelled"
        ))),
    }
}

async fn purge(config: &Config, older_than: Option<Duration>, json: bool) -> Result<u8, Failure> {
    let older_than = older_than
        .or(config.store.checkpoint_ttl.map(|d| d.get()))
        .ok_or_else(|| {
            Failure::usage("runs purge: pass --older-than DURATION or set store.checkpoint_ttl")
        })?;
    let store = open_store(config).await?;
    let mut purge = |older_than, batch| {
        let store = store.clone();
        async move { store.purge_finished(older_than, batch).await }
    };
    let shutdown = shutdown_on_signal();
    let purged = purge_pass(&mut purge, older_than, DEFAULT_BATCH, &shutdown).await?;
    if json {
        println!("{}", serde_json::json!({ "purged": purged }));
    } else {
        println!("{purged}");
    }
    eprintln!(
        "purged {purged} finished runs last updated more than {} ago (all tenants)",
        agentd_config::Dur(older_than)
    );
    Ok(exit::OK)
}
