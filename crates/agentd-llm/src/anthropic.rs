//! Anthropic Messages API (`kind = "anthropic"`): `POST {base_url}/v1/messages`
//! with a top-level system prompt, `tool_use` / `tool_result` content blocks,
//! streaming events and usage.

use crate::http::HttpSettings;
use crate::{BuildError, Completion, CompletionRequest, OnToken, Provider, ProviderError};
use agentd_config::ProviderKind;
use agentd_core::{Message, Role, ToolCall, Usage};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `base_url` when the config has none.
pub const DEFAULT_BASE_URL: &str = ProviderKind::Anthropic.default_base_url();

/// The API version agentd speaks (`anthropic-version` header).
pub const API_VERSION: &str = "2023-06-01";

/// `max_tokens` when the config has none; the API requires one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A client of the Anthropic Messages API for one model.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    settings: HttpSettings,
    client: reqwest::Client,
    url: String,
}

impl AnthropicProvider {
    /// A client for `settings` (see [`crate::build`] to start from config).
    ///
    /// # Errors
    /// The HTTP client cannot be created.
    pub fn new(settings: HttpSettings) -> Result<Self, BuildError> {
        let client = settings.client()?;
        let url = format!("{}/v1/messages", settings.base_url);
        Ok(Self {
            settings,
            client,
            url,
        })
    }

    /// The JSON body of a Messages request.
    pub fn request_body(&self, req: &CompletionRequest, stream: bool) -> Value {
        let mut system: Vec<&str> = req.system.iter().map(String::as_str).collect();
        // The API takes one system prompt and user/assistant turns that
        // alternate; tool results travel as user turns, and consecutive turns
        // of one role are merged (all results of one tool-use turn must come
        // in the next user message).
        let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
        for m in &req.messages {
            let (role, blocks) = match m.role {
                Role::System => {
                    system.push(&m.content);
                    continue;
                }
                Role::User => ("user", text_block(&m.content)),
                Role::Tool => (
                    "user",
                    vec![json!({
                        "type": "tool_result",
                        "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                        "content": m.content,
                    })],
                ),
                Role::Assistant => {
                    let mut blocks = text_block(&m.content);
                    blocks.extend(m.tool_calls.iter().map(|c| {
                        json!({
                            "type": "tool_use",
                            "id": c.id,
                            "name": c.name,
                            "input": if c.args.is_object() { c.args.clone() } else { json!({"input": c.args}) },
                        })
                    }));
                    ("assistant", blocks)
                }
            };
            if blocks.is_empty() {
                continue;
            }
            match turns.last_mut() {
                Some((last, content)) if *last == role => content.extend(blocks),
                _ => turns.push((role, blocks)),
            }
        }
        let messages: Vec<Value> = turns
            .into_iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect();
        let mut body = json!({
            "model": self.settings.model,
            "max_tokens": self.settings.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            "messages": messages,
            "stream": stream,
        });
        let system: Vec<&str> = system.into_iter().filter(|s| !s.is_empty()).collect();
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| {
                    json!({
                        "name": t.name,
                        "description": t.description,
                        "input_schema": t.input_schema,
                    })
                })
                .collect();
        }
        body
    }

    fn post(&self, body: &Value) -> Result<reqwest::RequestBuilder, ProviderError> {
        let mut req = self
            .client
            .post(&self.url)
            .header("anthropic-version", API_VERSION)
            .json(body);
        if let Some(key) = &self.settings.api_key {
            let value = key.header("").map_err(|message| ProviderError::Auth {
                provider: self.settings.name.clone(),
                message,
            })?;
            req = req.header("x-api-key", value);
        }
        Ok(req)
    }

    async fn call(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let resp = self
            .settings
            .send(self.post(&self.request_body(req, false))?)
            .await?;
        let body: MessageResponse = self.settings.json(resp).await?;
        let mut content = String::new();
        let mut tool_calls = Vec::new();
        for block in body.content {
            match block {
                Block::Text { text } => content.push_str(&text),
                Block::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                    id,
                    name,
                    args: input,
                }),
                Block::Other => {}
            }
        }
        Ok(self.completion(content, tool_calls, body.usage.into()))
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
        let mut reply = StreamReply::default();
        while let Some(event) = events.next().await {
            let event = event?;
            if event.data.trim().is_empty() {
                continue;
            }
            let parsed: StreamEvent = serde_json::from_str(&event.data)
                .map_err(|e| self.settings.invalid(format!("bad stream event: {e}")))?;
            match parsed {
                StreamEvent::MessageStart { message } => reply.start(message.usage.into()),
                StreamEvent::ContentBlockStart {
                    index,
                    content_block,
                } => reply.start_block(index, content_block, on_token),
                StreamEvent::ContentBlockDelta { index, delta } => {
                    reply.delta(index, delta, on_token);
                }
                StreamEvent::MessageDelta { usage: Some(u) } => reply.message_delta(&u),
                StreamEvent::MessageStop {} => {
                    let (content, tool_calls, usage) = reply.finish();
                    return Ok(self.completion(content, tool_calls, usage));
                }
                StreamEvent::Error { error } => {
                    return Err(self.settings.classify(
                        error_type_status(&error),
                        None,
                        &json!({ "error": error }).to_string(),
                    ));
                }
                StreamEvent::MessageDelta { usage: None }
                | StreamEvent::ContentBlockStop {}
                | StreamEvent::Ping {}
                | StreamEvent::Other => {}
            }
        }
        Err(ProviderError::Connection {
            provider: self.settings.name.clone(),
            message: "the stream ended before message_stop".to_owned(),
        })
    }

    fn completion(&self, content: String, tool_calls: Vec<ToolCall>, usage: Usage) -> Completion {
        Completion {
            message: Message {
                role: Role::Assistant,
                content,
                tool_calls,
                tool_call_id: None,
            },
            usage,
            model: self.settings.model.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Provider for AnthropicProvider {
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

/// Text blocks must not be empty.
fn text_block(text: &str) -> Vec<Value> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "text", "text": text})]
    }
}

/// The HTTP status an error event's `type` stands for.
fn error_type_status(error: &Value) -> u16 {
    match error.get("type").and_then(Value::as_str).unwrap_or("") {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    }
}

#[derive(Debug, Deserialize)]
struct MessageResponse {
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
}

impl From<WireUsage> for Usage {
    /// Cached prompt tokens are still prompt tokens.
    fn from(u: WireUsage) -> Usage {
        Usage {
            input_tokens: u.input_tokens
                + u.cache_creation_input_tokens
                + u.cache_read_input_tokens,
            output_tokens: u.output_tokens,
        }
    }
}

#[derive(Debug, Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: Block,
    },
    ContentBlockDelta {
        index: usize,
        delta: BlockDelta,
    },
    ContentBlockStop {},
    MessageDelta {
        usage: Option<WireUsage>,
    },
    MessageStop {},
    Ping {},
    Error {
        error: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug)]
enum StreamBlock {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        json: String,
        input: Value,
    },
    Other,
}

/// A streamed reply as its events arrive: the content blocks by index and
/// the usage counts so far.
#[derive(Default)]
struct StreamReply {
    blocks: BTreeMap<usize, StreamBlock>,
    usage: Usage,
}

impl StreamReply {
    /// `message_start`: the input count, and any output counted so far.
    fn start(&mut self, u: Usage) {
        self.usage.input_tokens = u.input_tokens;
        self.usage.output_tokens = self.usage.output_tokens.max(u.output_tokens);
    }

    /// `content_block_start`: a block opens, maybe with its first text.
    fn start_block(&mut self, index: usize, block: Block, on_token: OnToken<'_>) {
        let block = match block {
            Block::Text { text } => {
                if !text.is_empty() {
                    on_token(&text);
                }
                StreamBlock::Text(text)
            }
            Block::ToolUse { id, name, input } => StreamBlock::ToolUse {
                id,
                name,
                json: String::new(),
                input,
            },
            Block::Other => StreamBlock::Other,
        };
        self.blocks.insert(index, block);
    }

    /// `content_block_delta`: text or tool-input JSON added to a block.
    fn delta(&mut self, index: usize, delta: BlockDelta, on_token: OnToken<'_>) {
        match (self.blocks.get_mut(&index), delta) {
            (Some(StreamBlock::Text(text)), BlockDelta::TextDelta { text: t }) => {
                if !t.is_empty() {
                    on_token(&t);
                }
                text.push_str(&t);
            }
            (
                Some(StreamBlock::ToolUse { json, .. }),
                BlockDelta::InputJsonDelta { partial_json },
            ) => {
                json.push_str(&partial_json);
            }
            // Thinking, citations, signatures: not part of the reply.
            _ => {}
        }
    }

    /// `message_delta`: cumulative counts; input appears here on some
    /// versions.
    fn message_delta(&mut self, u: &WireUsage) {
        self.usage.output_tokens = u.output_tokens;
        let input = u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens;
        if input > 0 {
            self.usage.input_tokens = input;
        }
    }

    /// The text, the tool calls (arguments parsed from their JSON, or the
    /// start block's input when no JSON streamed) and the usage.
    fn finish(self) -> (String, Vec<ToolCall>, Usage) {
        let mut content = String::new();
        let mut tool_calls = Vec::new();
        for block in self.blocks.into_values() {
            match block {
                StreamBlock::Text(t) => content.push_str(&t),
                StreamBlock::ToolUse {
                    id,
                    name,
                    json,
                    input,
                } => {
                    let args = if json.trim().is_empty() {
                        input
                    } else {
                        serde_json::from_str(&json).unwrap_or(Value::String(json))
                    };
                    tool_calls.push(ToolCall { id, name, args });
                }
                StreamBlock::Other => {}
            }
        }
        (content, tool_calls, self.usage)
    }
}
