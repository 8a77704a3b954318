//! `agentd dlq`: the dead-letter list and requeueing dead runs.

use super::failure::Failure;
use super::print::print_runs;
use super::run::print_run_json;
use super::{build_engine, exit, identity, open_store, parse_run_id};
use crate::cli::DlqCommand;
use agentd_config::Config;
use agentd_engine::reads::Reads;
use agentd_store::Transition;

/// Runs one `agentd dlq` subcommand.
pub(super) async fn dlq(config: &Config, cmd: &DlqCommand, json: bool) -> Result<u8, Failure> {
    match cmd {
        DlqCommand::List { limit, cursor, who } => {
            let who = identity(who)?;
            let store = open_store(config).await?;
            let page = Reads::new(store.as_ref())
                .dead_letters(&who, *limit, cursor.clone())
                .await?;
            print_runs(page, json, true);
            Ok(exit::OK)
        }
        DlqCommand::Requeue { id, who } => {
            let who = identity(who)?;
            let id = parse_run_id(id)?;
            let engine = build_engine(config).await?;
            match engine.requeue_dead(&who, id).await? {
                Transition::Done(run, _) => {
                    print_run_json(&run, json);
                    eprintln!(
                        "run {id} queued again; a worker continues it from step {}",
                        run.steps
                    );
                    Ok(exit::OK)
                }
                Transition::NotFound => Err(Failure::failed(format!("run {id} not found"))),
                Transition::Conflict(s) => Err(Failure::failed(format!(
                    "run {id} is {s}; only a dead run can be requeued"
                ))),
            }
        }
    }
}
