//! Built-in tools.

use crate::{Tool, ToolContext, ToolError, ToolOutput};
use agentd_core::ToolSpec;
use serde_json::{Value, json};

fn string_arg<'a>(tool: &str, args: &'a Value, key: &str) -> Result<&'a str, ToolError> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::InvalidArgs {
            tool: tool.to_string(),
            message: format!("expected an object with a string field {key:?}, got {args}"),
        })
}

/// `echo {text}`: returns `text`.
pub struct Echo {
    spec: ToolSpec,
}

impl Echo {
    /// The tool with its spec.
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: "echo".into(),
                description: "Returns the given text unchanged.".into(),
                input_schema: json!({
                    "type": "object",
                    "properties": { "text": { "type": "string" } },
                    "required": ["text"]
                }),
            },
        }
    }
}

impl Default for Echo {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Tool for Echo {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, _ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let text = string_arg("echo", args, "text")?;
        Ok(ToolOutput::Value(Value::String(text.to_string())))
    }
}

/// `ask_human {question}`: pauses the run until a human answers.
pub struct AskHuman {
    spec: ToolSpec,
}

impl AskHuman {
    /// The tool with its spec.
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: "ask_human".into(),
                description: "Asks a human a question and waits for the answer.".into(),
                input_schema: json!({
                    "type": "object",
                    "properties": { "question": { "type": "string" } },
                    "required": ["question"]
                }),
            },
        }
    }
}

impl Default for AskHuman {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Tool for AskHuman {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn journal_only(&self) -> bool {
        true
    }

    async fn call(&self, _ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let question = string_arg("ask_human", args, "question")?;
        Ok(ToolOutput::Pause {
            question: question.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_core::{RunId, TenantId};

    fn ctx() -> ToolContext {
        ToolContext {
            tenant: TenantId::parse("t").unwrap(),
            run_id: RunId::new(),
            step_index: 3,
        }
    }

    #[tokio::test]
    async fn echo_and_ask_human() {
        let c = ctx();
        assert_eq!(
            Echo::new().call(&c, &json!({"text": "hi"})).await.unwrap(),
            ToolOutput::Value(json!("hi"))
        );
        assert!(matches!(
            Echo::new().call(&c, &json!({"txt": "hi"})).await,
            Err(ToolError::InvalidArgs { .. })
        ));
        assert_eq!(
            AskHuman::new()
                .call(&c, &json!({"question": "ok?"}))
                .await
                .unwrap(),
            ToolOutput::Pause {
                question: "ok?".into()
            }
        );
        assert_eq!(c.idempotency_key(), format!("{}:3", c.run_id));
    }
}
