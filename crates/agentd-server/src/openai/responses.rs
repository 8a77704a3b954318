//! OpenAI's Responses API (`POST /v1/responses`, `GET /v1/responses/{id}`)
//! over agentd's runs. A response is a run of the agent `model` names; its
//! `id` is the run id, so `GET /v1/responses/{id}` reads the run from the
//! store and answers in any process, also after a restart.
//!
//! Every response belongs to an agentd conversation, whose memory (the
//! inputs and answers of its runs) the model reads before the input: a
//! response without `previous_response_id` starts one (`resp-<uuid>`), and
//! `previous_response_id` joins the previous run's. So a chain of
//! responses is as durable as the runs, and shared across processes.

use super::{Extension, OpenAiError, created};
use agentd_core::{ConversationId, Message, Role, Run, RunId, RunOrigin, RunStatus, value_as_text};
use agentd_engine::{CONTEXT_KEY, Submit};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// Body of `POST /v1/responses`. OpenAI's sampling, tool and storage fields
/// are accepted and ignored: the agent's configuration decides them, and
/// every response is stored (it is a run).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ResponseRequest {
    /// The agent's name (`[[agents]] name`), as `GET /v1/models` lists it.
    #[schema(example = "demo")]
    pub(crate) model: String,
    /// The run's input: text, or a list of messages (`{"role", "content"}`,
    /// optionally `"type": "message"`) whose last one, a user message, is
    /// the input and whose earlier ones seed this run's context.
    #[schema(schema_with = crate::openapi::responses_input)]
    pub(crate) input: Value,
    /// A system message before the input, for this response only (as in
    /// OpenAI, it does not carry over to a response chained to this one).
    #[serde(default)]
    pub(crate) instructions: Option<String>,
    /// Continue the conversation of this response (a run id): the model
    /// reads the earlier exchanges first.
    #[serde(default)]
    pub(crate) previous_response_id: Option<String>,
    /// Answer at once with status `queued`; poll `GET /v1/responses/{id}`.
    #[serde(default)]
    pub(crate) background: Option<bool>,
    /// Answer with Responses stream events (`response.created`, ...,
    /// `response.completed`).
    #[serde(default)]
    pub(crate) stream: Option<bool>,
    /// The end user, recorded in the run's `metadata.openai.user`.
    #[serde(default)]
    pub(crate) user: Option<String>,
}

/// What a `POST /v1/responses` asks of the engine.
pub(crate) struct ResponseCall {
    pub(crate) agent: String,
    pub(crate) submit: Submit,
    /// The response continued, if any: its conversation is joined.
    pub(crate) previous: Option<RunId>,
    pub(crate) background: bool,
    pub(crate) stream: bool,
}

/// Reads a request into the run it creates. The conversation is left for
/// [`join`] (it needs the previous run).
pub(crate) fn parse(req: ResponseRequest, origin: RunOrigin) -> Result<ResponseCall, OpenAiError> {
    let background = req.background.unwrap_or(false);
    let stream = req.stream.unwrap_or(false);
    if background && stream {
        return Err(OpenAiError::invalid(
            "background and stream cannot both be true: create the response in the background \
             and poll GET /v1/responses/{id}",
            "background",
        ));
    }
    let previous = req
        .previous_response_id
        .as_deref()
        .map(|id| {
            RunId::parse(id).map_err(|_| {
                OpenAiError::invalid(
                    format!("previous_response_id {id:?} is not a response id (a run id, a UUID)"),
                    "previous_response_id",
                )
            })
        })
        .transpose()?;
    let (input, earlier) = input_items(&req.input)?;
    let mut context = Vec::new();
    let mut record = Map::new();
    record.insert("api".into(), json!("responses"));
    if let Some(i) = req.instructions.filter(|i| !i.is_empty()) {
        record.insert("instructions".into(), Value::String(i.clone()));
        context.push(Message::text(Role::System, i));
    }
    context.extend(earlier);
    record.insert("background".into(), json!(background));
    if let Some(p) = &req.previous_response_id {
        record.insert("previous_response_id".into(), Value::String(p.clone()));
    }
    Ok(ResponseCall {
        agent: req.model,
        submit: super::submit(input, record, &context, req.user, origin)?,
        previous,
        background,
        stream,
    })
}

/// Sets the conversation `call` runs in: the previous response's (looked
/// up by the caller: `None` if it does not exist for the tenant), or a new
/// one.
pub(crate) fn join(call: &mut ResponseCall, previous: Option<Run>) -> Result<(), OpenAiError> {
    let conversation = match (call.previous, previous) {
        (None, _) => ConversationId::parse(format!("resp-{}", RunId::new()))
            .map_err(OpenAiError::internal)?,
        (Some(id), None) => {
            return Err(OpenAiError::not_found(
                format!("previous_response_id {id}: no such response"),
                "previous_response_not_found",
                "previous_response_id",
            ));
        }
        (Some(id), Some(run)) => run.conversation_id.ok_or_else(|| {
            OpenAiError::invalid(
                format!(
                    "previous_response_id {id} names a run outside any conversation: continue \
                     a response created by POST /v1/responses, or a run created with a \
                     conversation_id"
                ),
                "previous_response_id",
            )
        })?,
    };
    call.submit.conversation_id = Some(conversation);
    Ok(())
}

/// The input's text and the messages before it.
fn input_items(input: &Value) -> Result<(String, Vec<Message>), OpenAiError> {
    let items = match input {
        Value::String(s) => return Ok((s.clone(), Vec::new())),
        Value::Array(items) => items,
        _ => {
            return Err(OpenAiError::invalid(
                "input must be a string or a list of messages",
                "input",
            ));
        }
    };
    let mut messages = items
        .iter()
        .enumerate()
        .map(|(i, item)| item_message(i, item))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(last) = messages.pop() else {
        return Err(OpenAiError::invalid(
            "input must hold at least one message",
            "input",
        ));
    };
    if last.role != Role::User {
        return Err(OpenAiError::invalid(
            format!(
                "input[{}] must be a user message (the run's input), got role {:?}",
                items.len() - 1,
                last.role
            ),
            "input",
        ));
    }
    Ok((last.content, messages))
}

/// One input item, a message: its role and text.
fn item_message(i: usize, item: &Value) -> Result<Message, OpenAiError> {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    if kind != "message" {
        return Err(OpenAiError::invalid(
            format!(
                "input[{i}].type {kind:?} is not supported: expected message (an agent calls \
                 its own tools)"
            ),
            "input",
        ));
    }
    let role = match item.get("role").and_then(Value::as_str) {
        Some("system" | "developer") => Role::System,
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        other => {
            return Err(OpenAiError::invalid(
                format!(
                    "input[{i}].role {other:?} is not supported: expected system, developer, \
                     user or assistant"
                ),
                "input",
            ));
        }
    };
    let bad = || {
        OpenAiError::invalid(
            format!(
                "input[{i}].content must be a string or a list of {{\"type\": \"input_text\" \
                 (or \"output_text\"), \"text\"}} parts"
            ),
            "input",
        )
    };
    let text = match item.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .map(
                |p| match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("input_text" | "output_text" | "text"), Some(Value::String(s))) => {
                        Ok(s.as_str())
                    }
                    _ => Err(bad()),
                },
            )
            .collect::<Result<Vec<_>, _>>()?
            .concat(),
        Some(_) => return Err(bad()),
    };
    Ok(Message::text(role, text))
}

/// A response: the run as OpenAI's `response` object.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResponseObject {
    /// The run's id.
    id: String,
    /// Always `response`.
    object: &'static str,
    /// When the run was created, in Unix seconds.
    created_at: i64,
    /// `queued`, `in_progress` (running), `completed` (succeeded),
    /// `incomplete` (paused: see `agentd`), `failed` (failed or dead) or
    /// `cancelled`.
    status: &'static str,
    /// The agent.
    model: String,
    /// The answer (or a paused run's question) as one assistant message;
    /// empty while the run is queued or running, or when it ended without
    /// one.
    output: Vec<OutputMessage>,
    /// Token counts from the run's accounting (every model call of it).
    usage: ResponseUsage,
    /// The run's error, when `status` is `failed` or `cancelled`.
    error: Option<ResponseError>,
    previous_response_id: Option<String>,
    instructions: Option<String>,
    background: bool,
    incomplete_details: Option<Value>,
    #[schema(value_type = Object)]
    metadata: Value,
    /// Always `[]`: the agent's tools are its own.
    #[schema(value_type = Vec<Object>)]
    tools: Vec<Value>,
    /// Always `auto`.
    tool_choice: &'static str,
    parallel_tool_calls: bool,
    /// The run behind the response, its conversation, and where to resume
    /// it when `status` is `incomplete` (paused).
    agentd: ResponseExtension,
}

/// agentd's extension of a response.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResponseExtension {
    #[serde(flatten)]
    run: Extension,
    /// The agentd conversation the response belongs to.
    conversation_id: Option<String>,
}

/// The one output item: an assistant message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct OutputMessage {
    /// Always `message`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// `msg_<run id>`.
    id: String,
    /// `completed`, or `incomplete` for a paused run's question.
    status: &'static str,
    /// Always `assistant`.
    role: &'static str,
    content: Vec<OutputText>,
}

/// The message's text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct OutputText {
    /// Always `output_text`.
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
    /// Always `[]`.
    #[schema(value_type = Vec<Object>)]
    annotations: Vec<Value>,
}

/// Usage in the Responses shape.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResponseUsage {
    input_tokens: u64,
    output_tokens: u64,
    total_tokens: u64,
    #[schema(value_type = Object)]
    input_tokens_details: Value,
    #[schema(value_type = Object)]
    output_tokens_details: Value,
}

/// Why a response failed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResponseError {
    /// `server_error`; agentd's own code leads the message.
    code: &'static str,
    message: String,
}

/// The Responses status of a run.
pub(crate) fn status(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Queued => "queued",
        RunStatus::Running => "in_progress",
        RunStatus::Succeeded => "completed",
        RunStatus::Paused => "incomplete",
        RunStatus::Failed | RunStatus::Dead => "failed",
        RunStatus::Cancelled => "cancelled",
    }
}

/// The output message's id for run `id`.
pub(crate) fn message_id(id: RunId) -> String {
    format!("msg_{id}")
}

/// The text a settled run answers with: its output, or a paused run's
/// question; `None` while it runs or when it ended without an answer.
pub(crate) fn text(run: &Run) -> Option<String> {
    match run.status {
        RunStatus::Succeeded => Some(run.output.as_ref().map(value_as_text).unwrap_or_default()),
        RunStatus::Paused => Some(
            run.pause
                .as_ref()
                .map(|p| p.question.clone())
                .unwrap_or_default(),
        ),
        _ => None,
    }
}

/// The output message carrying `text` for `run`.
pub(crate) fn message(run: &Run, text: String) -> OutputMessage {
    OutputMessage {
        kind: "message",
        id: message_id(run.id),
        status: if run.status == RunStatus::Paused {
            "incomplete"
        } else {
            "completed"
        },
        role: "assistant",
        content: vec![output_text(text)],
    }
}

/// An `output_text` part.
pub(crate) fn output_text(text: String) -> OutputText {
    OutputText {
        kind: "output_text",
        text,
        annotations: Vec::new(),
    }
}

/// The `response` object of `run`, as it is now.
pub(crate) fn response(run: &Run) -> ResponseObject {
    let record = run.metadata.as_ref().and_then(|m| m.get(CONTEXT_KEY));
    let field = |k: &str| record.and_then(|r| r.get(k));
    let instructions = field("instructions")
        .and_then(Value::as_str)
        .map(str::to_string);
    let error = match run.status {
        RunStatus::Failed | RunStatus::Dead | RunStatus::Cancelled => Some(ResponseError {
            code: "server_error",
            message: match &run.error {
                Some(e) => format!(
                    "run {} is {}: {}: {}",
                    run.id,
                    run.status.as_str(),
                    e.code.as_str(),
                    e.message
                ),
                None => format!("run {} is {}", run.id, run.status.as_str()),
            },
        }),
        _ => None,
    };
    let (i, o) = (run.usage.input_tokens, run.usage.output_tokens);
    ResponseObject {
        id: run.id.to_string(),
        object: "response",
        created_at: created(run),
        status: status(run.status),
        model: run.agent.clone(),
        output: text(run).map(|t| vec![message(run, t)]).unwrap_or_default(),
        usage: ResponseUsage {
            input_tokens: i,
            output_tokens: o,
            total_tokens: i + o,
            input_tokens_details: json!({"cached_tokens": 0}),
            output_tokens_details: json!({"reasoning_tokens": 0}),
        },
        error,
        previous_response_id: field("previous_response_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        instructions,
        background: field("background")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        incomplete_details: (run.status == RunStatus::Paused).then(|| json!({"reason": "paused"})),
        metadata: json!({}),
        tools: Vec::new(),
        tool_choice: "auto",
        parallel_tool_calls: false,
        agentd: ResponseExtension {
            run: Extension::of(run),
            conversation_id: run.conversation_id.as_ref().map(|c| c.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> Result<ResponseCall, OpenAiError> {
        parse(serde_json::from_value(body).unwrap(), RunOrigin::default())
    }

    #[test]
    fn input_items_seed_the_context_after_the_instructions() {
        let call = request(json!({
            "model": "demo",
            "instructions": "be brief",
            "input": [
                {"role": "user", "content": "hi"},
                {"type": "message", "role": "assistant",
                 "content": [{"type": "output_text", "text": "hello"}]},
                {"role": "user", "content": [{"type": "input_text", "text": "again"}]},
            ],
            "previous_response_id": "0190b6a0-0000-7000-8000-000000000000",
        }))
        .unwrap();
        assert_eq!(call.submit.input, json!("again"));
        assert!(call.previous.is_some());
        let record = &call.submit.metadata.unwrap()[CONTEXT_KEY];
        assert_eq!(record["api"], "responses");
        assert_eq!(record["instructions"], "be brief");
        assert_eq!(
            record["messages"],
            json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
            ])
        );
    }

    #[test]
    fn malformed_requests_name_the_field() {
        for (body, param, needle) in [
            (
                json!({"model": "m", "input": 3}),
                "input",
                "string or a list",
            ),
            (json!({"model": "m", "input": []}), "input", "at least one"),
            (
                json!({"model": "m", "input": [{"role": "assistant", "content": "x"}]}),
                "input",
                "input[0] must be a user message",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call_output"}]}),
                "input",
                "input[0].type",
            ),
            (
                json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
                "previous_response_id",
                "not a response id",
            ),
            (
                json!({"model": "m", "input": "x", "background": true, "stream": true}),
                "background",
                "cannot both",
            ),
        ] {
            let err = request(body.clone()).err().unwrap();
            assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
            assert_eq!(err.body()["error"]["param"], param, "{body}");
            assert!(err.to_string().contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn run_statuses_map_to_response_statuses() {
        assert_eq!(status(RunStatus::Queued), "queued");
        assert_eq!(status(RunStatus::Running), "in_progress");
        assert_eq!(status(RunStatus::Succeeded), "completed");
        assert_eq!(status(RunStatus::Paused), "incomplete");
        assert_eq!(status(RunStatus::Dead), "failed");
        assert_eq!(status(RunStatus::Cancelled), "cancelled");
    }
}
