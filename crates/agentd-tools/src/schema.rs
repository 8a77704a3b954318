//! Argument validation: each tool's input schema compiled once into a
//! validator, reporting every violation in words the model can act on.

use std::sync::Arc;

use agentd_core::ToolSpec;
use serde_json::Value;

use crate::{Tool, ToolContext, ToolError, ToolOutput};

/// A compiled input schema. One that failed to compile rejects every call
/// (fail closed) rather than letting unchecked arguments through.
pub(crate) struct ArgsValidator {
    compiled: Result<agentd_guard::schema::Schema, String>,
}

impl ArgsValidator {
    /// Compiles `schema`. Remote `$ref`s are never fetched.
    pub(crate) fn compile(schema: &Value) -> ArgsValidator {
        ArgsValidator {
            compiled: agentd_guard::schema::Schema::compile(schema),
        }
    }

    /// The compile error, if the schema is unusable.
    pub(crate) fn error(&self) -> Option<&str> {
        self.compiled.as_ref().err().map(String::as_str)
    }

    /// Checks `args`; the error lists each violation with its location.
    pub(crate) fn check(&self, tool: &str, args: &Value) -> Result<(), ToolError> {
        let schema = match &self.compiled {
            Ok(s) => s,
            Err(e) => {
                return Err(ToolError::invalid(
                    tool,
                    format!("the tool's input schema is invalid, so no call is accepted: {e}"),
                ));
            }
        };
        let problems = schema.violations(args);
        if problems.is_empty() {
            return Ok(());
        }
        Err(ToolError::invalid(
            tool,
            format!(
                "arguments do not match the tool's schema: {}",
                problems.join("; ")
            ),
        ))
    }
}

/// What is wrong with a tool's input schema, for `agentd test`: it must
/// compile, describe an object, and every `required` field must be among its
/// `properties`. Empty when the schema is sound.
pub fn schema_problems(schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(e) = ArgsValidator::compile(schema).error() {
        problems.push(format!("not a valid JSON Schema: {e}"));
    }
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        problems.push("the schema must describe an object (`type = \"object\"`)".to_string());
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for field in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = field.as_str().unwrap_or_default();
        if !properties.is_some_and(|p| p.contains_key(name)) {
            problems.push(format!("required field {field} is not among `properties`"));
        }
    }
    problems
}

/// A tool wrapped with its compiled input-schema validator: `validate`
/// checks, and `call` checks before running the tool.
pub(crate) struct Checked {
    inner: Arc<dyn Tool>,
    validator: ArgsValidator,
}

impl Checked {
    pub(crate) fn new(inner: Arc<dyn Tool>, validator: ArgsValidator) -> Checked {
        Checked { inner, validator }
    }
}

#[async_trait::async_trait]
impl Tool for Checked {
    fn spec(&self) -> &ToolSpec {
        self.inner.spec()
    }

    fn validate(&self, args: &Value) -> Result<(), ToolError> {
        self.validator.check(&self.inner.spec().name, args)
    }

    fn journal_only(&self) -> bool {
        self.inner.journal_only()
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        self.validate(args)?;
        self.inner.call(ctx, args).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_each_violation() {
        let v = ArgsValidator::compile(&json!({
            "type": "object",
            "properties": { "text": { "type": "string" }, "n": { "type": "integer", "minimum": 1 } },
            "required": ["text"],
            "additionalProperties": false
        }));
        assert!(v.error().is_none());
        v.check("t", &json!({"text": "hi", "n": 2})).unwrap();
        let Err(ToolError::InvalidArgs { tool, message }) =
            v.check("t", &json!({"text": 5, "n": 0, "x": 1}))
        else {
            panic!("expected invalid args");
        };
        assert_eq!(tool, "t");
        assert!(
            message.contains("at /text: 5 is not of type \"string\""),
            "{message}"
        );
        assert!(message.contains("at /n:"), "{message}");
        assert!(message.contains("(root)"), "{message}");
        assert!(v.check("t", &json!("not an object")).is_err());
        assert!(
            v.check("t", &json!({}))
                .unwrap_err()
                .to_string()
                .contains("\"text\" is a required property")
        );
    }

    #[test]
    fn broken_schema_fails_closed() {
        let v = ArgsValidator::compile(&json!({"type": "no-such-type"}));
        assert!(v.error().is_some());
        assert!(v.check("t", &json!({})).is_err());
        // A remote reference is not fetched.
        let v = ArgsValidator::compile(&json!({"$ref": "http://169.254.169.254/schema.json"}));
        assert!(v.error().is_some());
    }

    #[test]
    fn schema_problems_names_each_defect() {
        let sound = serde_json::json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
        assert!(super::schema_problems(&sound).is_empty());
        let bad = serde_json::json!({"type": "array", "required": ["b"]});
        let problems = super::schema_problems(&bad);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[1].contains("\"b\""), "{problems:?}");
        let broken = serde_json::json!({"type": 5});
        assert!(super::schema_problems(&broken)[0].contains("not a valid JSON Schema"));
    }
}
