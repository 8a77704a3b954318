//! `GET /v1/runs/{id}/events`: a run's progress as Server-Sent Events.
//!
//! The stream first replays the journal (one `step.completed` per step, its
//! index as the event id, so `Last-Event-ID` resumes after it), then follows
//! live events (`step.started`, `token`, `step.completed`, `run.status`)
//! and ends with `run.finished` once the run pauses or ends.
//!
//! A run executed by another process is followed through the store's change
//! feed where it has one (PostgreSQL; see `agentd_engine::remote`): that
//! process publishes the run's status, started steps and model text, and
//! says when steps were journaled, which the stream then reads from the
//! store. The store is also polled, as a safety net: every few seconds
//! while the feed listens, every second when it does not (SQLite, or a lost
//! connection), and at once after the feed reconnects.
//!
//! When the process shuts down, an open stream ends at once with a
//! `shutdown` event (and a `retry` hint) telling the client to reconnect,
//! with its `Last-Event-ID`, to another instance: a stream never holds the
//! process past its grace.

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Caller, RunPath};
use crate::routes::runs::RunIdParam;
use agentd_core::{Identity, Run, RunId, Step};
use agentd_engine::{Follow, RunEventKind, settled};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

/// The reconnection delay the `shutdown` event suggests to the client.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

type EventStream = axum::response::sse::KeepAliveStream<ReceiverStream<Result<Event, Infallible>>>;

/// One event of the stream, its fields named as the SSE wire format names
/// them: the OpenAPI document's schema of each event.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // read by the OpenAPI document only
pub(crate) struct StreamEvent {
    event: EventName,
    /// JSON: `run.status` `{"status"}`; `step.started` `{"index", "kind",
    /// "name"}`; `token` `{"index", "text"}`; `step.completed` a step;
    /// `run.finished` the run; `shutdown` `{"message"}`.
    data: String,
    /// A `step.completed` event's step index: send it back as
    /// `Last-Event-ID` to resume after it.
    id: Option<String>,
    /// With `shutdown`: the milliseconds to wait before reconnecting.
    retry: Option<u64>,
}

/// The events of a run's stream, by their SSE `event` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub(crate) enum EventName {
    #[serde(rename = "run.status")]
    RunStatus,
    #[serde(rename = "step.started")]
    StepStarted,
    #[serde(rename = "token")]
    Token,
    #[serde(rename = "step.completed")]
    StepCompleted,
    #[serde(rename = "run.finished")]
    RunFinished,
    #[serde(rename = "shutdown")]
    Shutdown,
}

impl EventName {
    /// The name on the wire (the serde name, which the document shows).
    fn as_str(self) -> &'static str {
        match self {
            Self::RunStatus => "run.status",
            Self::StepStarted => "step.started",
            Self::Token => "token",
            Self::StepCompleted => "step.completed",
            Self::RunFinished => "run.finished",
            Self::Shutdown => "shutdown",
        }
    }
}

/// `GET /v1/runs/{id}/events`.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}/events",
    operation_id = "run_events",
    tag = "runs",
    params(
        RunIdParam,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this step \
            index (the `id` of the last `step.completed` received)."),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: `run.status`, the journal as \
            `step.completed` (its index as the event id), then live `step.started`, `token`, \
            `step.completed` and `run.status`, ending with `run.finished` once the run pauses \
            or ends, or with `shutdown` (and a `retry` hint) when the server stops.",
            content_type = "text/event-stream", body = StreamEvent),
        (status = 404, description = "No such run in the caller's tenant.", body = ErrorBody),
    ),
)]
pub(crate) async fn events(
    State(app): State<AppState>,
    Caller(who): Caller,
    RunPath(id): RunPath,
    headers: HeaderMap,
) -> ApiResult<Sse<EventStream>> {
    // Subscribe before reading, so nothing falls between the two.
    let live = app.engine.subscribe();
    let run = app
        .engine
        .reads()
        .run(&who, id)
        .await?
        .ok_or_else(|| ApiError::run_not_found(id))?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(follow(app, who, run, after, live, tx));
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default()))
}

fn json_event(name: EventName, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name.as_str())
        .json_data(data)
        .unwrap_or_else(|_| Event::default().event(name.as_str()))
}

/// The last event of a stream cut by shutdown. It carries no `id`, so the
/// client's `Last-Event-ID` stays that of the last step it received.
fn shutdown_event() -> Event {
    let data = serde_json::json!({
        "message": "the server is shutting down; reconnect with Last-Event-ID to continue",
    });
    json_event(EventName::Shutdown, &data).retry(RECONNECT_AFTER)
}

fn step_event(step: &Step) -> Event {
    json_event(EventName::StepCompleted, step).id(step.index.to_string())
}

struct Follower {
    app: AppState,
    who: Identity,
    id: RunId,
    /// Index of the next step to send.
    next: u32,
    tx: mpsc::Sender<Result<Event, Infallible>>,
}

impl Follower {
    /// Sends; false when the client went away.
    async fn send(&self, e: Event) -> bool {
        self.tx.send(Ok(e)).await.is_ok()
    }

    /// Sends journaled steps not sent yet.
    async fn catch_up(&mut self) -> Result<bool, ApiError> {
        let after = self.next.checked_sub(1);
        let Some(page) = self
            .app
            .engine
            .reads()
            .steps(&self.who, self.id, after, 1000)
            .await?
        else {
            return Ok(false);
        };
        for step in page.items {
            self.next = step.index + 1;
            if !self.send(step_event(&step)).await {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn finish(&mut self, run: &Run) -> bool {
        matches!(self.catch_up().await, Ok(true))
            && self.send(json_event(EventName::RunFinished, run)).await
    }

    /// Forwards a live event of the run; false when the stream is over.
    async fn live(&mut self, kind: RunEventKind) -> bool {
        match kind {
            RunEventKind::Status { status } => {
                let data = serde_json::json!({ "status": status });
                self.send(json_event(EventName::RunStatus, &data)).await
            }
            RunEventKind::StepStarted { index, kind, name } => {
                let data = serde_json::json!({ "index": index, "kind": kind, "name": name });
                self.send(json_event(EventName::StepStarted, &data)).await
            }
            RunEventKind::Token { index, text } => {
                let data = serde_json::json!({ "index": index, "text": text });
                self.send(json_event(EventName::Token, &data)).await
            }
            RunEventKind::StepCompleted { step } => {
                if step.index < self.next {
                    true
                } else {
                    self.next = step.index + 1;
                    self.send(step_event(&step)).await
                }
            }
            RunEventKind::Finished { run } => {
                self.finish(&run).await;
                false
            }
            // Another process journaled steps or settled the run.
            RunEventKind::Changed => self.poll().await,
        }
    }

    /// Re-reads the run from the store, for runs another process executes;
    /// false when the stream is over.
    async fn poll(&mut self) -> bool {
        if self.tx.is_closed() {
            return false;
        }
        match self.app.engine.reads().run(&self.who, self.id).await {
            Ok(Some(run)) if settled(run.status) => {
                self.finish(&run).await;
                false
            }
            Ok(Some(_)) => matches!(self.catch_up().await, Ok(true)),
            _ => false,
        }
    }
}

async fn follow(
    app: AppState,
    who: Identity,
    run: Run,
    after: Option<u32>,
    mut live: broadcast::Receiver<agentd_engine::RunEvent>,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let mut f = Follower {
        app,
        who,
        id: run.id,
        // Saturating: `Last-Event-ID` is client input, and u32::MAX is
        // past every step all the same.
        next: after.map_or(0, |a| a.saturating_add(1)),
        tx,
    };
    let status = serde_json::json!({ "status": run.status });
    if !f.send(json_event(EventName::RunStatus, &status)).await {
        return;
    }
    if settled(run.status) {
        f.finish(&run).await;
        return;
    }
    if !matches!(f.catch_up().await, Ok(true)) {
        return;
    }
    // Only now, the run being the caller's: another process executing it
    // publishes its events while this stream follows.
    let mut watch: Follow = f.app.engine.follow(&f.who.tenant, f.id);
    let shutdown = f.app.shutdown.clone();
    let mut tick = tokio::time::interval(agentd_engine::remote::FOLLOW_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let more = tokio::select! {
            _ = shutdown.cancelled() => {
                f.send(shutdown_event()).await;
                false
            },
            ev = live.recv() => match ev {
                // Events of this run and tenant only: other processes'
                // notices name both.
                Ok(ev) if ev.run_id == f.id && ev.tenant == f.who.tenant => f.live(ev.kind).await,
                Ok(_) => true,
                // Missed events: the store has the journal.
                Err(broadcast::error::RecvError::Lagged(_)) => matches!(f.catch_up().await, Ok(true)),
                Err(broadcast::error::RecvError::Closed) => false,
            },
            // The feed reconnected: notices may be lost, the store is not.
            _ = watch.gap() => f.poll().await,
            _ = tick.tick() => {
                watch.keep_watching();
                if watch.poll_due() { f.poll().await } else { !f.tx.is_closed() }
            }
        };
        if !more {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_on_the_wire_are_the_documented_ones() {
        use EventName::*;
        for name in [
            RunStatus,
            StepStarted,
            Token,
            StepCompleted,
            RunFinished,
            Shutdown,
        ] {
            assert_eq!(serde_json::to_value(name).unwrap(), name.as_str());
        }
    }
}
