//! OpenAI-compatible chat completions (`kind = "openai"`): OpenAI itself and
//! any server speaking `POST {base_url}/chat/completions` (vLLM, Ollama,
//! LiteLLM proxy...), with function calling, SSE streaming and usage.

use crate::http::{ApiKey, HttpSettings, estimate_tokens};
use crate::{BuildError, Completion, CompletionRequest, OnToken, Provider, ProviderError};
use agentd_config::ProviderKind;
use agentd_core::{Message, Role, ToolCall, Usage};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

/// `base_url` when the config has none.
pub const DEFAULT_BASE_URL: &str = ProviderKind::OpenAi.default_base_url();

/// A client of one OpenAI-compatible endpoint and model.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    settings: HttpSettings,
    client: reqwest::Client,
    url: String,
}

impl OpenAiProvider {
    /// A client for `settings` (see [`crate::build`] to start from config).
    ///
    /// # Errors
    /// The HTTP client cannot be created.
    pub fn new(settings: HttpSettings) -> Result<Self, BuildError> {
        let client = settings.client()?;
        let url = format!("{}/chat/completions", settings.base_url);
        Ok(Self {
            settings,
            client,
            url,
        })
    }

    /// The JSON body of a chat completions request.
    pub fn request_body(&self, req: &CompletionRequest, stream: bool) -> Value {
        let mut messages = Vec::with_capacity(req.messages.len() + 1);
        if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.extend(req.messages.iter().map(wire_message));
        let mut body = json!({
            "model": self.settings.model,
            "messages": messages,
            "stream": stream,
        });
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| {
                    json!({
                        "type": "function",
                        "function": {
                            "name": t.name,
                            "description": t.description,
                            "parameters": t.input_schema,
                        }
                    })
                })
                .collect();
        }
        if let Some(max) = self.settings.max_tokens {
            body["max_tokens"] = json!(max);
        }
        if stream {
            // Without this the stream carries no token counts.
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    fn post(&self, body: &Value) -> Result<reqwest::RequestBuilder, ProviderError> {
        let mut req = self.client.post(&self.url).json(body);
        if let Some(key) = &self.settings.api_key {
            req = req.header(reqwest::header::AUTHORIZATION, self.auth(key)?);
        }
        Ok(req)
    }

    fn auth(&self, key: &ApiKey) -> Result<reqwest::header::HeaderValue, ProviderError> {
        key.header("Bearer ")
            .map_err(|message| ProviderError::Auth {
                provider: self.settings.name.clone(),
                message,
            })
    }

    async fn call(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let resp = self
            .settings
            .send(self.post(&self.request_body(req, false))?)
            .await?;
        let body: ChatResponse = self.settings.json(resp).await?;
        if let Some(e) = body.error {
            return Err(self.settings.classify(500, None, &e.to_string()));
        }
        let Some(choice) = body.choices.into_iter().next() else {
            return Err(self.settings.invalid("the response has no choices"));
        };
        let m = choice.message;
        let tool_calls = m
            .tool_calls
            .into_iter()
            .enumerate()
            .map(|(i, c)| ToolCall {
                id: c.id.unwrap_or_else(|| format!("call_{i}")),
                name: c.function.name,
                args: parse_args(c.function.arguments),
            })
            .collect();
        let message = Message {
            role: Role::Assistant,
            content: m.content.or(m.refusal).unwrap_or_default(),
            tool_calls,
            tool_call_id: None,
        };
        Ok(self.finish(req, message, body.usage))
    }

    async fn call_streaming(
        &self,
        req: &CompletionRequest,
        on_token: OnToken<'_>,
    ) -> Result<Completion, ProviderError> {
        let resp = self
            .settings
            .send(self.post(&self.request_body(req, true))?)
            .await?;
        let mut events = std::pin::pin!(self.settings.events(resp));
        let mut acc = StreamAcc::default();
        while let Some(event) = events.next().await {
            let data = event?.data;
            let data = data.trim();
            if data.is_empty() {
                continue;
            }
            if data == "[DONE]" {
                acc.done = true;
                break;
            }
            let chunk: Chunk = serde_json::from_str(data)
                .map_err(|e| self.settings.invalid(format!("bad stream chunk: {e}")))?;
            if let Some(e) = chunk.error {
                return Err(self
                    .settings
                    .classify(stream_error_status(&e), None, &e.to_string()));
            }
            acc.apply(chunk, on_token);
        }
        if !acc.done && acc.finish_reason.is_none() {
            return Err(ProviderError::Connection {
                provider: self.settings.name.clone(),
                message: "the stream ended before the completion finished".to_owned(),
            });
        }
        let message = Message {
            role: Role::Assistant,
            content: acc.content,
            tool_calls: acc
                .calls
                .into_iter()
                .enumerate()
                .map(|(i, c)| ToolCall {
                    id: c.id.unwrap_or_else(|| format!("call_{i}")),
                    name: c.name,
                    args: parse_args(Some(Value::String(c.args))),
                })
                .collect(),
            tool_call_id: None,
        };
        Ok(self.finish(req, message, acc.usage))
    }

    fn finish(
        &self,
        req: &CompletionRequest,
        message: Message,
        usage: Option<WireUsage>,
    ) -> Completion {
        let usage = match usage {
            Some(u) => Usage {
                input_tokens: u.prompt_tokens,
                output_tokens: u.completion_tokens,
            },
            None => estimate_usage(req, &message),
        };
        Completion {
            message,
            usage,
            model: self.settings.model.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.settings.name
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        self.settings.with_deadline(self.call(req)).await
    }

    async fn complete_streaming(
        &self,
        req: &CompletionRequest,
        on_token: OnToken<'_>,
    ) -> Result<Completion, ProviderError> {
        self.settings
            .with_deadline(self.call_streaming(req, on_token))
            .await
    }
}

fn wire_message(m: &Message) -> Value {
    match m.role {
        Role::System => json!({"role": "system", "content": m.content}),
        Role::User => json!({"role": "user", "content": m.content}),
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": m.tool_call_id.clone().unwrap_or_default(),
            "content": m.content,
        }),
        Role::Assistant => {
            let mut v = json!({"role": "assistant"});
            v["content"] = if m.content.is_empty() && !m.tool_calls.is_empty() {
                Value::Null
            } else {
                json!(m.content)
            };
            if !m.tool_calls.is_empty() {
                v["tool_calls"] = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            "function": {
                                "name": c.name,
                                // The wire format wants the arguments as a JSON string.
                                "arguments": match &c.args {
                                    Value::String(raw) => raw.clone(),
                                    args => args.to_string(),
                                },
                            }
                        })
                    })
                    .collect();
            }
            v
        }
    }
}

/// Tool arguments arrive as a JSON string; a model may produce invalid JSON,
/// which is kept as the raw string so the tool's schema check reports it.
fn parse_args(raw: Option<Value>) -> Value {
    match raw {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        // Some compatible servers send an object instead of a string.
        Some(other) => other,
    }
}

fn estimate_usage(req: &CompletionRequest, message: &Message) -> Usage {
    let chars = |m: &Message| {
        m.content.chars().count()
            + m.tool_calls
                .iter()
                .map(|c| c.name.len() + c.args.to_string().len())
                .sum::<usize>()
    };
    let input = req.system.as_deref().map_or(0, |s| s.chars().count())
        + req.messages.iter().map(chars).sum::<usize>();
    Usage {
        input_tokens: estimate_tokens(input),
        output_tokens: estimate_tokens(chars(message)),
    }
}

/// An error object inside a stream has no HTTP status; guess one from it.
fn stream_error_status(e: &Value) -> u16 {
    let text = e.to_string();
    if text.contains("rate_limit") {
        429
    } else if text.contains("invalid_request") || text.contains("context_length") {
        400
    } else {
        500
    }
}

#[derive(Debug, Deserialize)]
struct ChatResponse {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: WireMessage,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    content: Option<String>,
    refusal: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    id: Option<String>,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: String,
    arguments: Option<Value>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default, deserialize_with = "null_as_default")]
    choices: Vec<ChunkChoice>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default, deserialize_with = "null_as_default")]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    content: Option<String>,
    refusal: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    tool_calls: Vec<DeltaToolCall>,
}

#[derive(Debug, Deserialize)]
struct DeltaToolCall {
    index: Option<usize>,
    id: Option<String>,
    function: Option<DeltaFunction>,
}

#[derive(Debug, Deserialize)]
struct DeltaFunction {
    name: Option<String>,
    arguments: Option<Value>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Default)]
struct PartialCall {
    id: Option<String>,
    name: String,
    args: String,
}

/// A streamed completion being assembled.
#[derive(Debug, Default)]
struct StreamAcc {
    content: String,
    calls: Vec<PartialCall>,
    usage: Option<WireUsage>,
    finish_reason: Option<String>,
    done: bool,
}

impl StreamAcc {
    fn apply(&mut self, chunk: Chunk, on_token: OnToken<'_>) {
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let delta = choice.delta;
            if let Some(text) = delta.content.or(delta.refusal).filter(|t| !t.is_empty()) {
                on_token(&text);
                self.content.push_str(&text);
            }
            for (pos, d) in delta.tool_calls.into_iter().enumerate() {
                let slot = self.slot(&d, pos);
                let call = &mut self.calls[slot];
                if let Some(id) = d.id.filter(|id| !id.is_empty()) {
                    call.id = Some(id);
                }
                if let Some(f) = d.function {
                    if let Some(name) = f.name {
                        call.name.push_str(&name);
                    }
                    match f.arguments {
                        Some(Value::String(s)) => call.args.push_str(&s),
                        Some(Value::Null) | None => {}
                        Some(other) => call.args = other.to_string(),
                    }
                }
            }
            if choice.finish_reason.is_some() {
                self.finish_reason = choice.finish_reason;
            }
        }
    }

    /// Which call a delta extends: by `index` (OpenAI, vLLM); without one,
    /// a new id starts a new call and anything else extends the last.
    fn slot(&mut self, d: &DeltaToolCall, pos: usize) -> usize {
        let slot = match (d.index, &d.id) {
            (Some(i), _) => i.min(self.calls.len()),
            (None, Some(id)) if !id.is_empty() => self
                .calls
                .iter()
                .position(|c| c.id.as_deref() == Some(id))
                .unwrap_or(self.calls.len()),
            (None, _) => self.calls.len().saturating_sub(1).max(pos),
        };
        while self.calls.len() <= slot {
            self.calls.push(PartialCall::default());
        }
        slot
    }
}
