//! agentd-llm integration tests: the HTTP clients against local servers
//! replaying each provider's wire format, and the resilience decorators
//! under paused time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod anthropic;
mod config;
mod fake;
mod metered;
mod openai;
mod resilience;

use agentd_config::{ProviderConfig, ProviderKind};
use agentd_core::{Message, Role, ToolCall, ToolSpec};
use agentd_llm::{CompletionRequest, Provider};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::MockServer;

/// The fake key every HTTP test uses; it must never show up in errors.
pub const KEY: &str = "sk-test-abcdefghijkl3456";
pub const KEY_VAR: &str = "AGENTD_TEST_LLM_KEY";

/// Builds a provider of `kind` pointing at `server`, through `build_with_env`
/// (so the config path and the key lookup are exercised too).
pub fn provider(kind: ProviderKind, base_url: &str, timeout: Duration) -> Arc<dyn Provider> {
    let cfg = ProviderConfig {
        kind,
        base_url: Some(base_url.to_owned()),
        api_key_env: Some(KEY_VAR.to_owned()),
        model: Some(match kind {
            ProviderKind::Anthropic => "claude-sonnet-4-5".to_owned(),
            _ => "gpt-4o-mini".to_owned(),
        }),
        timeout: Some(timeout.into()),
        ..ProviderConfig::default()
    };
    agentd_llm::build_with_env("main", &cfg, &|v| (v == KEY_VAR).then(|| KEY.to_owned())).unwrap()
}

/// A conversation with every message kind: user, assistant tool call, tool
/// result, and a tool to offer.
pub fn full_request() -> CompletionRequest {
    CompletionRequest {
        system: Some("You are a weather bot.".into()),
        messages: vec![
            Message::text(Role::User, "Weather in Paris and Bogotá?"),
            Message {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![
                    ToolCall {
                        id: "call_1".into(),
                        name: "get_weather".into(),
                        args: json!({"location": "Paris"}),
                    },
                    ToolCall {
                        id: "call_2".into(),
                        name: "get_weather".into(),
                        args: json!({"location": "Bogotá"}),
                    },
                ],
                tool_call_id: None,
            },
            Message::tool_result("call_1", "18C"),
            Message::tool_result("call_2", "22C"),
        ]
        .into(),
        tools: vec![weather_tool()],
    }
}

pub fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "Current weather of a city".into(),
        input_schema: json!({
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"]
        }),
    }
}

pub fn hello() -> CompletionRequest {
    CompletionRequest {
        system: None,
        messages: vec![Message::text(Role::User, "Hello")].into(),
        tools: vec![],
    }
}

/// The JSON bodies the server received, in order.
pub async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// Collects streamed tokens.
#[derive(Default, Clone)]
pub struct Tokens(pub Arc<Mutex<Vec<String>>>);

impl Tokens {
    pub fn sink(&self) -> impl Fn(&str) + Send + Sync + 'static {
        let v = self.0.clone();
        move |t: &str| v.lock().unwrap().push(t.to_owned())
    }
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// An address nothing listens on.
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}
