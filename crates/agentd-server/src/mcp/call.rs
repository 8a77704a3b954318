//! One tool call: the run it starts, the progress notifications it sends
//! while the run's steps are journaled, and the result it answers with.

use crate::ApiError;
use crate::error::{ErrorBody, ErrorDetail};
use agentd_core::{ConversationId, Identity, Run, RunId, RunStatus, Step, value_as_text};
use agentd_engine::{Engine, RunEventKind, Submit};
use rmcp::model::{
    CallToolResult, ContentBlock, JsonObject, ProgressNotificationParam, ProgressToken,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use serde_json::{Map, Value, json};
use std::time::Duration;
use tokio::sync::broadcast;

/// Steps read from the store at a time.
const PAGE: u32 = 100;

/// A call's arguments.
pub(super) struct Args {
    input: String,
    conversation_id: Option<ConversationId>,
}

impl Args {
    /// Reads `{"input", "conversation_id"?}`; anything else is the
    /// client's mistake, named.
    pub(super) fn parse(args: Option<&JsonObject>) -> Result<Self, McpError> {
        let empty = Map::new();
        let args = args.unwrap_or(&empty);
        if let Some(extra) = args
            .keys()
            .find(|k| !matches!(k.as_str(), "input" | "conversation_id"))
        {
            return Err(McpError::invalid_params(
                format!("unknown argument {extra:?}: expected `input` and `conversation_id`"),
                None,
            ));
        }
        let input = match args.get("input") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(McpError::invalid_params("`input` must be a string", None));
            }
            None => return Err(McpError::invalid_params("`input` is required", None)),
        };
        let conversation_id =
            match args.get("conversation_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(ConversationId::parse(s).map_err(|e| {
                    McpError::invalid_params(format!("`conversation_id`: {e}"), None)
                })?),
                Some(_) => {
                    return Err(McpError::invalid_params(
                        "`conversation_id` must be a string",
                        None,
                    ));
                }
            };
        Ok(Self {
            input,
            conversation_id,
        })
    }
}

/// Starts a run of `agent` and waits up to `wait` for it to pause or end,
/// notifying the client's progress token (if it sent one) as steps are
/// journaled. The run is durable: if the client cancels or leaves, it goes
/// on (cancel it through the API).
pub(super) async fn run(
    engine: &Engine,
    who: &Identity,
    agent: &str,
    args: Args,
    wait: Duration,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let submit = Submit {
        input: Value::String(args.input),
        conversation_id: args.conversation_id,
        metadata: Some(json!({"mcp": {"tool": format!("{}{agent}", super::TOOL_PREFIX)}})),
        origin: agentd_telemetry::run_origin(None),
        ..Submit::default()
    };
    let Some(token) = context.meta.get_progress_token() else {
        let waited = tokio::select! {
            r = engine.submit_wait(who, agent, submit, wait) => r,
            () = context.ct.cancelled() => return Err(McpError::internal_error(
                "the request was cancelled; the run goes on", None)),
        };
        return waited.map(|run| result(&run)).or_else(refused);
    };
    // Subscribed before the run exists, so no step is missed.
    let events = engine.subscribe();
    let run = match engine.submit(who, agent, submit).await {
        Ok(run) => run,
        Err(e) => return refused(e),
    };
    let progress = Progress {
        engine,
        who,
        id: run.id,
        token,
        context,
        reported: 0,
    };
    let settled = progress.follow(events, wait).await;
    Ok(result(&settled.unwrap_or(run)))
}

/// What the run answers: its output, the question it paused on, or its
/// error (a tool error the model calling this tool can read). Every answer
/// names the run.
fn result(run: &Run) -> CallToolResult {
    let mut record = json!({"run_id": run.id.to_string(), "status": run.status});
    let (text, is_error) = match run.status {
        RunStatus::Succeeded => {
            let output = run.output.clone().unwrap_or(Value::Null);
            let text = value_as_text(&output);
            record["output"] = output;
            (text, false)
        }
        RunStatus::Paused => {
            let question = run
                .pause
                .as_ref()
                .map(|p| p.question.clone())
                .unwrap_or_default();
            record["question"] = Value::String(question.clone());
            (
                format!(
                    "{question}\n\n(run {} is paused: answer it at /v1/runs/{}/resume)",
                    run.id, run.id
                ),
                false,
            )
        }
        RunStatus::Queued | RunStatus::Running => (
            format!(
                "run {} is still {}: follow it at /v1/runs/{}",
                run.id,
                run.status.as_str(),
                run.id
            ),
            false,
        ),
        RunStatus::Failed | RunStatus::Dead | RunStatus::Cancelled => {
            let message = run.error.as_ref().map_or_else(
                || format!("the run ended {}", run.status.as_str()),
                |e| e.message.clone(),
            );
            if let Some(e) = &run.error {
                record["error"] = json!({"code": e.code, "message": e.message});
            }
            (
                format!("run {} {}: {message}", run.id, run.status.as_str()),
                true,
            )
        }
    };
    let mut out = CallToolResult::structured(record);
    out.content = vec![ContentBlock::text(text)];
    out.is_error = Some(is_error);
    out
}

/// The engine refused the run (a budget, a busy conversation, a limit):
/// a tool error with the API's code and message, so the model calling the
/// tool reads why. Internal failures are logged and not described.
fn refused(e: agentd_engine::EngineError) -> Result<CallToolResult, McpError> {
    let e = ApiError::from(e);
    if let ApiError::Internal(source) = &e {
        tracing::error!(error = %source, "an MCP tool call failed");
        return Err(McpError::internal_error("internal error", None));
    }
    // The API's own error body, so the two cannot drift apart.
    let body = ErrorBody {
        error: ErrorDetail::new(e.code(), e.to_string()),
    };
    let mut out = CallToolResult::structured_error(serde_json::to_value(body).unwrap_or_default());
    out.content = vec![ContentBlock::text(format!("{}: {e}", e.code().as_str()))];
    Ok(out)
}

/// Follows one run, notifying the client of each journaled step.
struct Progress<'a> {
    engine: &'a Engine,
    who: &'a Identity,
    id: RunId,
    token: ProgressToken,
    context: &'a RequestContext<RoleServer>,
    /// Steps notified so far (the next index to notify).
    reported: u32,
}

impl Progress<'_> {
    /// Notifies steps until the run pauses or ends (answering it), `wait`
    /// passes (answering it as it is then) or the client cancels
    /// (answering `None`). A run executed here settles through its events;
    /// one executed by another process through the change feed's notices
    /// and the store, read at the pace of [`agentd_engine::Follow::poll_due`].
    async fn follow(
        mut self,
        mut events: broadcast::Receiver<agentd_engine::RunEvent>,
        wait: Duration,
    ) -> Option<Run> {
        // On a store with a change feed, the process executing the run
        // says when it journals steps or settles, while the watch is kept
        // fresh; the store is read at the watch's pace all the same.
        let mut watch = self.engine.follow(&self.who.tenant, self.id);
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(agentd_engine::remote::FOLLOW_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let settled = loop {
            tokio::select! {
                () = &mut deadline => break self.read().await,
                () = self.context.ct.cancelled() => return None,
                ev = events.recv() => match ev {
                    Ok(ev) if ev.run_id == self.id && ev.tenant == self.who.tenant => match ev.kind {
                        RunEventKind::StepCompleted { step } => self.notify(&step).await,
                        RunEventKind::Finished { run } => break Some(*run),
                        RunEventKind::Changed => {
                            if let Some(run) = self.settled().await {
                                break Some(run);
                            }
                        }
                        RunEventKind::Status { .. }
                        | RunEventKind::StepStarted { .. }
                        | RunEventKind::Token { .. } => {}
                    },
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Some(run) = self.settled().await {
                            break Some(run);
                        }
                    }
                    // The engine is gone: answer with the run as stored.
                    Err(broadcast::error::RecvError::Closed) => break self.read().await,
                },
                // The feed reconnected: notices may be lost, the store is not.
                () = watch.gap() => {
                    if let Some(run) = self.settled().await {
                        break Some(run);
                    }
                }
                _ = tick.tick() => {
                    watch.keep_watching();
                    if watch.poll_due()
                        && let Some(run) = self.settled().await
                    {
                        break Some(run);
                    }
                }
            }
        };
        // Every step journaled before the run settled is told before the
        // result, whichever process ran it.
        self.catch_up().await;
        settled
    }

    /// Tells the steps journaled so far; the run, once it paused or ended.
    async fn settled(&mut self) -> Option<Run> {
        self.catch_up().await;
        self.read()
            .await
            .filter(|run| agentd_engine::settled(run.status))
    }

    async fn read(&self) -> Option<Run> {
        match self.engine.reads().run(self.who, self.id).await {
            Ok(run) => run,
            Err(e) => {
                tracing::warn!(run_id = %self.id, error = %e, "reading an MCP tool call's run failed");
                None
            }
        }
    }

    async fn notify(&mut self, step: &Step) {
        if step.index < self.reported {
            return;
        }
        self.reported = step.index + 1;
        let param = ProgressNotificationParam::new(self.token.clone(), f64::from(self.reported))
            .with_message(format!(
                "step {}: {} {}",
                step.index,
                step.kind.as_str(),
                step.name
            ));
        // A client that left is no reason to stop: the run goes on.
        let _ = self.context.peer.notify_progress(param).await;
    }

    /// Reads the steps journaled since the last one notified.
    async fn catch_up(&mut self) {
        loop {
            let after = self.reported.checked_sub(1);
            let page = match self
                .engine
                .reads()
                .steps(self.who, self.id, after, PAGE)
                .await
            {
                Ok(Some(page)) => page,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(run_id = %self.id, error = %e, "reading steps for MCP progress failed");
                    return;
                }
            };
            let full = page.items.len() == PAGE as usize;
            for step in &page.items {
                self.notify(step).await;
            }
            if !full {
                return;
            }
        }
    }
}
