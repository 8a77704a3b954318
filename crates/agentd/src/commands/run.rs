//! `agentd run`: executes one run in this process, printing each step as
//! it happens, then reports its outcome.

use super::failure::Failure;
use super::print::step_line;
use super::{build_engine, exit, identity, json_or_text, print_json, shutdown_on_signal};
use crate::cli::RunArgs;
use agentd_config::Config;
use agentd_core::{ConversationId, Run, RunId, RunStatus, TenantId, value_as_text};
use agentd_engine::{Engine, EngineError, RunEventKind, Submit};
use std::time::Duration;

/// `agentd run AGENT INPUT`.
pub(super) async fn run_once(config: &Config, args: &RunArgs, json: bool) -> Result<u8, Failure> {
    let who = identity(&args.who)?;
    let engine = build_engine(config).await?;
    let conversation_id = args
        .conversation
        .as_deref()
        .map(ConversationId::parse)
        .transpose()
        .map_err(|e| Failure::usage(format!("--conversation: {e}")))?;
    // With tracing on, the run's attempts are children of this command's
    // span, which lasts until the command returns: one trace per run.
    let command = tracing::info_span!("cli_run", otel.name = "agentd run");
    let submit = Submit {
        input: json_or_text(&args.input),
        conversation_id,
        metadata: None,
        idempotency_key: None,
        origin: command.in_scope(|| agentd_telemetry::run_origin(None)),
        if_busy: Default::default(),
        callback_url: None,
    };
    let run = engine
        .submit(&who, &args.agent, submit)
        .await
        .map_err(|e| match e {
            EngineError::UnknownAgent(a) => {
                let known: Vec<&str> = config.agents.iter().map(|a| a.name.as_str()).collect();
                Failure::usage(format!(
                    "unknown agent {a:?} (configured: {})",
                    known.join(", ")
                ))
            }
            other => other.into(),
        })?;
    eprintln!("run {} ({}) queued", run.id, run.agent);
    drive_and_report(&engine, &who.tenant, run.id, json).await
}

/// Executes the run here, printing each step as it happens, then reports.
pub(super) async fn drive_and_report(
    engine: &Engine,
    tenant: &TenantId,
    id: RunId,
    json: bool,
) -> Result<u8, Failure> {
    let mut events = engine.subscribe();
    let printer = tokio::spawn(async move {
        while let Ok(ev) = events.recv().await {
            if ev.run_id != id {
                continue;
            }
            match ev.kind {
                RunEventKind::StepStarted { index, kind, name } => {
                    eprintln!("  [{index}] {} {name} ...", kind.as_str());
                }
                RunEventKind::StepCompleted { step } => {
                    eprintln!("{}", step_line(&step, "in "));
                }
                RunEventKind::Finished { .. } => break,
                RunEventKind::Status { .. }
                | RunEventKind::Token { .. }
                | RunEventKind::Changed => {}
            }
        }
    });
    let shutdown = shutdown_on_signal();
    let run = engine.drive(tenant, id, &shutdown).await?;
    // The printer ends at the Finished event; give it a moment to flush.
    let _ = tokio::time::timeout(Duration::from_millis(200), printer).await;
    let run = run.ok_or_else(|| Failure::failed(format!("run {id} disappeared")))?;
    Ok(report(&run, json))
}

/// Prints a run's outcome: data to stdout, the rest to stderr.
fn report(run: &Run, json: bool) -> u8 {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(run).unwrap_or_else(|_| "{}".into())
        );
    }
    match run.status {
        RunStatus::Succeeded => {
            if !json {
                println!(
                    "{}",
                    run.output.as_ref().map(value_as_text).unwrap_or_default()
                );
            }
            eprintln!(
                "succeeded: {} steps, {} tokens in / {} out, ${:.6}",
                run.steps, run.usage.input_tokens, run.usage.output_tokens, run.cost_usd
            );
            exit::OK
        }
        RunStatus::Paused => {
            let q = run.pause.as_ref().map_or("", |p| p.question.as_str());
            eprintln!("paused: {q}");
            eprintln!(
                "resume with: agentd runs resume {} --tenant {} --answer '...'",
                run.id, run.tenant
            );
            exit::PAUSED
        }
        status => {
            match &run.error {
                Some(e) => eprintln!("{status}: {}: {}", e.code, e.message),
                None => eprintln!("{status}"),
            }
            exit::FAILED
        }
    }
}

/// Prints a run as pretty JSON when `json`.
pub(super) fn print_run_json(run: &Run, json: bool) {
    if json {
        print_json(run);
    }
}
