//! The OpenAI-compatible API (`POST /v1/chat/completions`, `GET
//! /v1/models`): the translation between OpenAI's wire format and agentd's
//! runs. A chat completion is a run of the agent `model` names, created
//! and waited for like any other (so it can be listed, inspected, resumed
//! and audited); the handlers in `routes::openai` only call in here.
//!
//! The last message (a user message) is the run's input. The earlier ones
//! are stored with the run, in `metadata.openai.messages`, and the engine
//! puts them before the input when it rebuilds the run's context
//! ([`agentd_engine::CONTEXT_KEY`]): every attempt, in any process, sees
//! the same conversation.

pub(crate) mod error;
pub(crate) mod responses;
pub(crate) mod responses_stream;
pub(crate) mod stream;

pub(crate) use error::OpenAiError;

use agentd_core::{Message, Role, Run, RunOrigin, RunStatus, value_as_text};
use agentd_engine::{CONTEXT_KEY, Submit};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// Body of `POST /v1/chat/completions`. OpenAI's sampling and tool fields
/// (`temperature`, `max_tokens`, `tools`, ...) are accepted and ignored:
/// the agent's configuration decides them.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ChatRequest {
    /// The agent's name (`[[agents]] name`), as `GET /v1/models` lists it.
    #[schema(example = "demo")]
    pub(crate) model: String,
    /// The conversation: the last message, a user message, is the run's
    /// input; the earlier ones seed its context.
    pub(crate) messages: Vec<ChatMessage>,
    /// Answer with `chat.completion.chunk` Server-Sent Events, ending with
    /// `data: [DONE]`.
    #[serde(default)]
    pub(crate) stream: Option<bool>,
    #[serde(default)]
    pub(crate) stream_options: Option<StreamOptions>,
    /// The end user, recorded in the run's `metadata.openai.user`.
    #[serde(default)]
    pub(crate) user: Option<String>,
}

/// `stream_options` of a streamed request.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct StreamOptions {
    /// Send a last chunk, before `[DONE]`, with `usage` and no choices.
    #[serde(default)]
    pub(crate) include_usage: Option<bool>,
}

/// One message of the request.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ChatMessage {
    /// `system`, `developer`, `user` or `assistant` (`tool` messages are
    /// refused: an agent calls its own tools).
    pub(crate) role: String,
    /// Text, or a list of `{"type": "text", "text"}` parts.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub(crate) content: Option<Value>,
}

/// What a chat completion request asks of the engine.
pub(crate) struct ChatCall {
    /// The agent to run.
    pub(crate) agent: String,
    pub(crate) submit: Submit,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
}

/// Reads a request into the run it creates: the last message (a user
/// message) is the input, the earlier ones and `user` go to the run's
/// `metadata.openai`.
pub(crate) fn parse(req: ChatRequest, origin: RunOrigin) -> Result<ChatCall, OpenAiError> {
    let Some((last, earlier)) = req.messages.split_last() else {
        return Err(OpenAiError::invalid(
            "messages must hold at least one message",
            "messages",
        ));
    };
    if last.role != "user" {
        return Err(OpenAiError::invalid(
            format!(
                "the last message must be a user message (the run's input), got role {:?}",
                last.role
            ),
            "messages",
        ));
    }
    let input = text(last, earlier.len())?;
    let context = earlier
        .iter()
        .enumerate()
        .map(|(i, m)| Ok(Message::text(role(m, i)?, text(m, i)?)))
        .collect::<Result<Vec<_>, OpenAiError>>()?;
    let mut record = Map::new();
    record.insert("api".into(), json!("chat.completions"));
    let stream = req.stream.unwrap_or(false);
    let include_usage = req
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    Ok(ChatCall {
        agent: req.model,
        submit: submit(input, record, &context, req.user, origin)?,
        stream,
        include_usage,
    })
}

/// The run an OpenAI-style request creates: `input`, with `record` (what
/// the route keeps of the request), the end `user` and the earlier
/// `context` messages under `metadata.openai`, where the engine seeds the
/// run's messages from ([`CONTEXT_KEY`]).
pub(crate) fn submit(
    input: String,
    mut record: Map<String, Value>,
    context: &[Message],
    user: Option<String>,
    origin: RunOrigin,
) -> Result<Submit, OpenAiError> {
    if let Some(user) = user {
        record.insert("user".into(), Value::String(user));
    }
    if !context.is_empty() {
        let messages = serde_json::to_value(context).map_err(OpenAiError::internal)?;
        record.insert("messages".into(), messages);
    }
    Ok(Submit {
        input: Value::String(input),
        metadata: Some(Value::Object(Map::from_iter([(
            CONTEXT_KEY.to_string(),
            Value::Object(record),
        )]))),
        origin,
        ..Submit::default()
    })
}

fn role(m: &ChatMessage, i: usize) -> Result<Role, OpenAiError> {
    match m.role.as_str() {
        "system" | "developer" => Ok(Role::System),
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        other => Err(OpenAiError::invalid(
            format!(
                "messages[{i}].role {other:?} is not supported: expected system, developer, \
                 user or assistant (an agent calls its own tools)"
            ),
            "messages",
        )),
    }
}

/// A message's text: its string content, or its text parts joined.
fn text(m: &ChatMessage, i: usize) -> Result<String, OpenAiError> {
    let bad = || {
        OpenAiError::invalid(
            format!(
                "messages[{i}].content must be a string or a list of {{\"type\": \"text\", \
                 \"text\"}} parts"
            ),
            "messages",
        )
    };
    match &m.content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| match (p.get("type"), p.get("text")) {
                (Some(Value::String(t)), Some(Value::String(s))) if t == "text" => Ok(s.as_str()),
                _ => Err(bad()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| texts.concat()),
        Some(_) => Err(bad()),
    }
}

/// A chat completion: the run as OpenAI's `chat.completion` object.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChatCompletion {
    /// The run's id.
    id: String,
    /// Always `chat.completion`.
    object: &'static str,
    /// When the run was created, in Unix seconds.
    created: i64,
    /// The agent.
    model: String,
    choices: Vec<Choice>,
    usage: ChatUsage,
    agentd: Extension,
}

/// The one choice of a completion.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Choice {
    index: u32,
    message: AssistantMessage,
    /// `stop` once the run finished or paused; null while it still runs
    /// (the wait ran out: read it at `/v1/runs/{id}`).
    finish_reason: Option<&'static str>,
}

/// The assistant's answer: the run's output, or the question of a paused
/// run.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssistantMessage {
    role: &'static str,
    content: Option<String>,
}

/// Token counts from the run's accounting (every model call of the run).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChatUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

/// agentd's extension of a completion: the run behind it. A paused run
/// (`ask_human` or an approval) is answered at `resume`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Extension {
    run_id: String,
    status: RunStatus,
    /// `POST` the answer here (`{"answer": ...}`) when `status` is `paused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    resume: Option<String>,
    /// For an approval pause: the tool waiting to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: Option<String>,
}

impl ChatUsage {
    pub(crate) fn of(run: &Run) -> Self {
        let (p, c) = (run.usage.input_tokens, run.usage.output_tokens);
        Self {
            prompt_tokens: p,
            completion_tokens: c,
            total_tokens: p + c,
        }
    }
}

impl Extension {
    pub(crate) fn of(run: &Run) -> Self {
        let paused = run.status == RunStatus::Paused;
        Self {
            run_id: run.id.to_string(),
            status: run.status,
            resume: paused.then(|| format!("/v1/runs/{}/resume", run.id)),
            tool: run.pause.as_ref().and_then(|p| p.tool.clone()),
        }
    }
}

/// What the run answers, once waited for: its output text, the question
/// it paused on, or nothing yet (still queued or running); a run that
/// failed, died or was cancelled is an error.
pub(crate) fn answer(run: &Run) -> Result<Option<String>, OpenAiError> {
    match run.status {
        RunStatus::Succeeded => Ok(Some(
            run.output.as_ref().map(value_as_text).unwrap_or_default(),
        )),
        RunStatus::Paused => Ok(Some(
            run.pause
                .as_ref()
                .map(|p| p.question.clone())
                .unwrap_or_default(),
        )),
        RunStatus::Queued | RunStatus::Running => Ok(None),
        RunStatus::Failed | RunStatus::Dead | RunStatus::Cancelled => {
            Err(OpenAiError::run_ended(run))
        }
    }
}

/// Unix seconds of a run's creation.
pub(crate) fn created(run: &Run) -> i64 {
    run.created_at.div_euclid(1000)
}

/// The `chat.completion` answering `run`.
pub(crate) fn completion(run: &Run) -> Result<ChatCompletion, OpenAiError> {
    let content = answer(run)?;
    Ok(ChatCompletion {
        id: run.id.to_string(),
        object: "chat.completion",
        created: created(run),
        model: run.agent.clone(),
        choices: vec![Choice {
            index: 0,
            finish_reason: content.is_some().then_some("stop"),
            message: AssistantMessage {
                role: "assistant",
                content,
            },
        }],
        usage: ChatUsage::of(run),
        agentd: Extension::of(run),
    })
}

/// `GET /v1/models`: OpenAI's list of models, one per agent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ModelList {
    /// Always `list`.
    object: &'static str,
    data: Vec<Model>,
}

/// An agent, as a model.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Model {
    /// The agent's name: pass it as `model`.
    id: String,
    /// Always `model`.
    object: &'static str,
    /// When this process loaded its configuration, in Unix seconds.
    created: i64,
    /// Always `agentd`.
    owned_by: &'static str,
}

/// The models list of `agents`, stamped `created`.
pub(crate) fn models(agents: Vec<String>, created: i64) -> ModelList {
    ModelList {
        object: "list",
        data: agents
            .into_iter()
            .map(|id| Model {
                id,
                object: "model",
                created,
                owned_by: "agentd",
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(messages: Value) -> ChatRequest {
        serde_json::from_value(json!({"model": "demo", "messages": messages, "user": "u1"}))
            .unwrap()
    }

    #[test]
    fn the_last_user_message_is_the_input_and_earlier_ones_seed_the_context() {
        let call = parse(
            request(json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "again"},
            ])),
            RunOrigin::default(),
        )
        .unwrap();
        assert_eq!(call.agent, "demo");
        assert_eq!(call.submit.input, json!("again"));
        let record = &call.submit.metadata.unwrap()[CONTEXT_KEY];
        assert_eq!(record["user"], "u1");
        assert_eq!(record["api"], "chat.completions");
        assert_eq!(
            record["messages"],
            json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
            ])
        );
        assert!(!call.stream);
    }

    #[test]
    fn malformed_conversations_are_invalid_requests_naming_the_message() {
        for (messages, needle) in [
            (json!([]), "at least one"),
            (
                json!([{"role": "assistant", "content": "x"}]),
                "last message",
            ),
            (
                json!([{"role": "tool", "content": "x"}, {"role": "user", "content": "y"}]),
                "messages[0].role",
            ),
            (
                json!([{"role": "user", "content": [{"type": "image_url"}]}]),
                "messages[0].content",
            ),
        ] {
            let err = parse(request(messages.clone()), RunOrigin::default())
                .err()
                .unwrap();
            assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
            assert!(err.to_string().contains(needle), "{messages}: {err}");
        }
    }
}
