//! `stream: true` on `POST /v1/responses`: the run as Responses stream
//! events (`event: <type>` / `data: <json>`, each with a
//! `sequence_number`). `response.created` and `response.in_progress`
//! come first; the message item and its text part open with the first
//! text, the model's tokens follow as `response.output_text.delta` as the
//! run's token events arrive, and once the run settles whatever of its
//! answer was not streamed (all of it when the provider does not stream,
//! or the run executed in another process, or it paused) follows as one
//! delta. Then the text, part and item close, and `response.completed`
//! (`response.incomplete` for a paused run, `response.failed` for a run
//! that failed, died or was cancelled) carries the whole response with
//! its usage.

use super::OpenAiError;
use super::responses::{message, message_id, output_text, response, text};
use agentd_core::{Run, RunId, RunStatus, TenantId};
use agentd_engine::{Engine, RunEvent, RunEventKind};
use axum::response::sse::Event;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// One event of the stream, its fields named as the SSE wire format names
/// them: the OpenAPI document's schema of each event.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // read by the OpenAPI document only
pub(crate) struct ResponseStreamEvent {
    /// The event's type: `response.created`, `response.in_progress`,
    /// `response.output_item.added`, `response.content_part.added`,
    /// `response.output_text.delta`, `response.output_text.done`,
    /// `response.content_part.done`, `response.output_item.done`, then
    /// `response.completed`, `response.incomplete` or `response.failed`
    /// (or `error`).
    event: String,
    /// JSON: the event, with its `type` and `sequence_number`.
    data: String,
}

/// Streams run `run` (just submitted; `events` subscribed before it was)
/// into the returned channel until it settles or `wait` runs out. The run
/// goes on if the client leaves.
pub(crate) fn spawn(
    engine: Engine,
    events: broadcast::Receiver<RunEvent>,
    run: Run,
    wait: Duration,
) -> mpsc::Receiver<Result<Event, Infallible>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut out = Out { tx, seq: 0 };
        let _ = follow(&engine, events, run, wait, &mut out).await;
    });
    rx
}

/// The client left: stop streaming (the run itself goes on).
struct Gone;

/// The stream's sender, numbering the events.
struct Out {
    tx: mpsc::Sender<Result<Event, Infallible>>,
    seq: u64,
}

impl Out {
    /// Sends event `kind` with `fields` (an object), stamped with its type
    /// and sequence number.
    async fn send(&mut self, kind: &str, mut fields: Value) -> Result<(), Gone> {
        fields["type"] = json!(kind);
        fields["sequence_number"] = json!(self.seq);
        self.seq += 1;
        let ev = Event::default().event(kind).data(fields.to_string());
        self.tx.send(Ok(ev)).await.map_err(|_| Gone)
    }
}

/// The message item being streamed, once opened.
struct Item {
    id: String,
    text: String,
    open: bool,
}

impl Item {
    /// Opens the item and its text part on the first text.
    async fn open(&mut self, out: &mut Out) -> Result<(), Gone> {
        if self.open {
            return Ok(());
        }
        self.open = true;
        let item = json!({"type": "message", "id": self.id, "status": "in_progress",
            "role": "assistant", "content": []});
        out.send(
            "response.output_item.added",
            json!({"output_index": 0, "item": item}),
        )
        .await?;
        out.send(
            "response.content_part.added",
            json!({"item_id": self.id, "output_index": 0, "content_index": 0,
                "part": output_text(String::new())}),
        )
        .await
    }

    async fn delta(&mut self, delta: &str, out: &mut Out) -> Result<(), Gone> {
        self.open(out).await?;
        self.text.push_str(delta);
        out.send(
            "response.output_text.delta",
            json!({"item_id": self.id, "output_index": 0, "content_index": 0,
                "delta": delta, "logprobs": []}),
        )
        .await
    }
}

async fn follow(
    engine: &Engine,
    mut events: broadcast::Receiver<RunEvent>,
    run: Run,
    wait: Duration,
    out: &mut Out,
) -> Result<(), Gone> {
    let (tenant, id): (TenantId, RunId) = (run.tenant.clone(), run.id);
    out.send("response.created", json!({"response": response(&run)}))
        .await?;
    let mut started = run.clone();
    started.status = RunStatus::Running;
    out.send(
        "response.in_progress",
        json!({"response": response(&started)}),
    )
    .await?;
    let mut item = Item {
        id: message_id(id),
        text: String::new(),
        open: false,
    };
    let settled = {
        let waited = engine.wait(&tenant, id, wait);
        tokio::pin!(waited);
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => token(ev, id, &mut item, out).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break (&mut waited).await,
                },
                r = &mut waited => break r,
            }
        }
    };
    // Tokens sent before the run settled may still be queued.
    while let Ok(ev) = events.try_recv() {
        token(ev, id, &mut item, out).await?;
    }
    let run = match settled {
        Ok(Some(run)) => run,
        // Still running when the wait ran out: the client polls
        // GET /v1/responses/{id}.
        Ok(None) => return Ok(()),
        Err(e) => {
            let e = OpenAiError::from(e).body();
            let err = &e["error"];
            return out
                .send(
                    "error",
                    json!({"code": err["code"], "message": err["message"], "param": err["param"]}),
                )
                .await;
        }
    };
    if let Some(answer) = text(&run) {
        // As in the chat stream: send what the tokens did not (a question,
        // or all of it).
        let streamed = item.text.clone();
        let rest = answer.strip_prefix(streamed.as_str()).unwrap_or(&answer);
        if !rest.is_empty() || !item.open {
            item.delta(rest, out).await?;
        }
        let full = format!("{streamed}{rest}");
        out.send(
            "response.output_text.done",
            json!({"item_id": item.id, "output_index": 0, "content_index": 0,
                "text": full, "logprobs": []}),
        )
        .await?;
        out.send(
            "response.content_part.done",
            json!({"item_id": item.id, "output_index": 0, "content_index": 0,
                "part": output_text(full.clone())}),
        )
        .await?;
        out.send(
            "response.output_item.done",
            json!({"output_index": 0, "item": message(&run, full)}),
        )
        .await?;
    }
    let last = match run.status {
        RunStatus::Succeeded => "response.completed",
        RunStatus::Paused => "response.incomplete",
        _ => "response.failed",
    };
    out.send(last, json!({"response": response(&run)})).await
}

/// Forwards a token event of run `id` as a text delta.
async fn token(ev: RunEvent, id: RunId, item: &mut Item, out: &mut Out) -> Result<(), Gone> {
    if ev.run_id != id {
        return Ok(());
    }
    if let RunEventKind::Token { text, .. } = ev.kind {
        item.delta(&text, out).await?;
    }
    Ok(())
}
