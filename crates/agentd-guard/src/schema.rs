//! JSON Schema checks in words a model (or a caller) can act on: a schema
//! compiled once, and each violation with where it is. Tool arguments and
//! output contracts are both checked this way.

use serde_json::Value;

/// Violations listed per check; the rest are counted.
const MAX_REPORTED: usize = 8;

/// A compiled JSON Schema. Remote `$ref`s are never fetched (jsonschema
/// is built without `resolve-http`/`resolve-file`).
pub struct Schema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema")
    }
}

impl Schema {
    /// Compiles `schema`.
    ///
    /// # Errors
    ///
    /// What makes `schema` unusable, in the validator's words.
    pub fn compile(schema: &Value) -> Result<Schema, String> {
        jsonschema::validator_for(schema)
            .map(|validator| Schema { validator })
            .map_err(|e| e.to_string())
    }

    /// Each violation of `value`, as `at /path: what` (`(root)` for the
    /// value itself), at most [`MAX_REPORTED`] of them and a count of the
    /// rest. Empty when `value` is valid.
    pub fn violations(&self, value: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        let mut total = 0usize;
        for error in self.validator.iter_errors(value) {
            total += 1;
            if problems.len() < MAX_REPORTED {
                let path = error.instance_path().to_string();
                let at = if path.is_empty() { "(root)" } else { &path };
                problems.push(format!("at {at}: {error}"));
            }
        }
        if total > problems.len() {
            problems.push(format!("and {} more", total - problems.len()));
        }
        problems
    }
}

/// An answer read as JSON: the text itself, or the one fenced code block
/// (```` ```json ... ``` ````) models often wrap it in.
///
/// # Errors
///
/// The parser's message when neither is JSON.
pub fn parse_answer(text: &str) -> Result<Value, String> {
    let trimmed = text.trim();
    match serde_json::from_str(trimmed) {
        Ok(v) => Ok(v),
        Err(e) => fenced(trimmed)
            .and_then(|inner| serde_json::from_str(inner).ok())
            .ok_or_else(|| format!("the answer is not JSON: {e}")),
    }
}

fn fenced(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("```")?;
    let body = rest.split_once('\n')?.1;
    Some(body.trim_end().strip_suffix("```")?.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn violations_name_where_they_are_and_count_past_the_limit() {
        let schema = Schema::compile(&json!({
            "type": "object",
            "required": ["a"],
            "properties": {"b": {"type": "integer"}},
        }))
        .unwrap();
        assert!(schema.violations(&json!({"a": 1, "b": 2})).is_empty());
        let v = schema.violations(&json!({"b": "x"}));
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(
            v.iter()
                .any(|p| p.starts_with("at (root):") && p.contains("\"a\""))
        );
        assert!(v.iter().any(|p| p.starts_with("at /b:")));
        let many = Schema::compile(&json!({"type": "array", "items": {"type": "string"}})).unwrap();
        let v = many.violations(&json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
        assert_eq!(v.len(), MAX_REPORTED + 1);
        assert_eq!(v.last().unwrap(), "and 2 more");
    }

    #[test]
    fn a_bad_schema_does_not_compile() {
        assert!(Schema::compile(&json!({"type": "nonsense"})).is_err());
    }

    #[test]
    fn answers_parse_bare_or_fenced() {
        assert_eq!(parse_answer(" {\"a\": 1} ").unwrap(), json!({"a": 1}));
        assert_eq!(
            parse_answer("```json\n{\"a\": 1}\n```").unwrap(),
            json!({"a": 1})
        );
        assert_eq!(parse_answer("```\n[1]\n```").unwrap(), json!([1]));
        assert!(parse_answer("Sure! {\"a\": 1}").is_err());
    }
}
