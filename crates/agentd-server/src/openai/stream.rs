//! `stream: true`: a chat completion as `chat.completion.chunk` events.
//! The model's text is forwarded as the run's token events arrive; once the
//! run settles, whatever of its answer was not streamed (all of it when the
//! provider does not stream, or the run executed in another process, or it
//! paused) follows in one chunk, then the finishing chunk, the usage chunk
//! if asked for, and `data: [DONE]`.

use super::{ChatUsage, Extension, OpenAiError, answer, created};
use agentd_core::{Run, RunId, TenantId};
use agentd_engine::{Engine, RunEvent, RunEventKind};
use axum::response::sse::Event;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// What the chunks are stamped with.
struct Stamp {
    id: String,
    created: i64,
    model: String,
}

impl Stamp {
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        })
    }
}

/// Streams run `run` (just submitted; `events` subscribed before it was)
/// into the returned channel until it settles or `wait` runs out. The run
/// goes on if the client leaves.
pub(crate) fn spawn(
    engine: Engine,
    events: broadcast::Receiver<RunEvent>,
    run: &Run,
    wait: Duration,
    include_usage: bool,
) -> mpsc::Receiver<Result<Event, Infallible>> {
    let (tx, rx) = mpsc::channel(64);
    let stamp = Stamp {
        id: run.id.to_string(),
        created: created(run),
        model: run.agent.clone(),
    };
    let (tenant, id) = (run.tenant.clone(), run.id);
    tokio::spawn(async move {
        let out = Out(tx);
        let _ = follow(
            &engine,
            events,
            &tenant,
            id,
            wait,
            include_usage,
            &stamp,
            &out,
        )
        .await;
    });
    rx
}

/// The stream's sender; an error means the client left.
struct Out(mpsc::Sender<Result<Event, Infallible>>);

/// The client left: stop streaming (the run itself goes on).
struct Gone;

impl Out {
    async fn send(&self, data: String) -> Result<(), Gone> {
        self.0
            .send(Ok(Event::default().data(data)))
            .await
            .map_err(|_| Gone)
    }
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
async fn follow(
    engine: &Engine,
    mut events: broadcast::Receiver<RunEvent>,
    tenant: &TenantId,
    id: RunId,
    wait: Duration,
    include_usage: bool,
    stamp: &Stamp,
    out: &Out,
) -> Result<(), Gone> {
    out.send(
        stamp
            .chunk(json!({"role": "assistant", "content": ""}), None)
            .to_string(),
    )
    .await?;
    let mut streamed = String::new();
    let settled = {
        let waited = engine.wait(tenant, id, wait);
        tokio::pin!(waited);
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => token(ev, id, &mut streamed, stamp, out).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break (&mut waited).await,
                },
                r = &mut waited => break r,
            }
        }
    };
    // Tokens sent before the run settled may still be queued.
    while let Ok(ev) = events.try_recv() {
        token(ev, id, &mut streamed, stamp, out).await?;
    }
    let run = match settled {
        Ok(Some(run)) => run,
        Ok(None) => return Ok(()),
        Err(e) => {
            let e = OpenAiError::from(e);
            return out.send(e.body().to_string()).await;
        }
    };
    let text = match answer(&run) {
        Ok(text) => text,
        Err(e) => return out.send(e.body().to_string()).await,
    };
    if let Some(text) = &text {
        // The model's text was streamed in full unless the answer says
        // otherwise: send what is missing (a question, or all of it). Text
        // a model wrote before calling a tool was streamed too and cannot
        // be taken back; the answer then follows it whole.
        let rest = text.strip_prefix(streamed.as_str()).unwrap_or(text);
        if !rest.is_empty() {
            out.send(stamp.chunk(json!({"content": rest}), None).to_string())
                .await?;
        }
    }
    let mut last = stamp.chunk(json!({}), text.is_some().then_some("stop"));
    last["agentd"] = json!(Extension::of(&run));
    out.send(last.to_string()).await?;
    if include_usage {
        let mut usage = stamp.chunk(json!({}), None);
        usage["choices"] = json!([]);
        usage["usage"] = json!(ChatUsage::of(&run));
        out.send(usage.to_string()).await?;
    }
    out.send("[DONE]".to_string()).await
}

/// Forwards a token event of run `id` as a content chunk.
async fn token(
    ev: RunEvent,
    id: RunId,
    streamed: &mut String,
    stamp: &Stamp,
    out: &Out,
) -> Result<(), Gone> {
    if ev.run_id != id {
        return Ok(());
    }
    if let RunEventKind::Token { text, .. } = ev.kind {
        streamed.push_str(&text);
        out.send(stamp.chunk(json!({"content": text}), None).to_string())
            .await?;
    }
    Ok(())
}
