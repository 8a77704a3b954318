//! Chat messages: the agent's memory and what providers receive.

use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// A tool invocation requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolCall {
    /// Provider-assigned id; the tool result message refers to it.
    pub id: String,
    pub name: String,
    pub args: serde_json::Value,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    pub role: Role,
    #[serde(default)]
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the id of the call this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with only text content.
    pub fn text(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A tool result answering `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
        }
    }
}

/// Renders a JSON value as the text a model sees: strings verbatim, anything
/// else as compact JSON.
pub fn value_as_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What a model is told about a tool: its name, purpose and argument schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub input_schema: serde_json::Value,
}

/// `v` with `f` applied to every string in it (values, not keys), at any
/// depth: how guardrails clean, redact and restore a JSON input or tool
/// result.
pub fn map_strings(
    v: serde_json::Value,
    f: &mut impl FnMut(String) -> String,
) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(f(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(|i| map_strings(i, f)).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, map_strings(v, f)))
                .collect(),
        ),
        other => other,
    }
}

/// How the engine's request to repair an answer that failed the agent's
/// `output_schema` begins. The request is a user message that continues
/// the run's turn (the scripted mock provider counts it so).
pub const REPAIR_REQUEST_PREFIX: &str = "Your answer does not satisfy the required JSON Schema";

/// The markers the prompt-injection guard puts around text it quotes as
/// untrusted data.
pub const UNTRUSTED_BEGIN: &str = "<<<BEGIN UNTRUSTED DATA";
pub const UNTRUSTED_END: &str = "END UNTRUSTED DATA>>>";
