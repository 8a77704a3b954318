//! The approval pause of a tool marked `approval = true`: the question a
//! human is asked, and the answer format `{"approve": true}` /
//! `{"approve": false, "reason": "..."}`.

use serde_json::Value;

/// A human's answer to an approval pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalDecision {
    /// Run the tool call as the model asked.
    Approved,
    /// Do not run it; the model is told `reason`.
    Rejected { reason: Option<String> },
}

impl ApprovalDecision {
    /// Parses a resume answer: `{"approve": true}` or `{"approve": false,
    /// "reason": "..."}`. `true`/`false` alone are accepted too.
    ///
    /// # Errors
    /// A message for the caller (HTTP 400) when the answer has another shape.
    pub fn from_answer(answer: &Value) -> Result<ApprovalDecision, String> {
        let approve = match answer {
            Value::Bool(b) => Some(*b),
            Value::Object(map) => map.get("approve").and_then(Value::as_bool),
            _ => None,
        };
        match approve {
            Some(true) => Ok(ApprovalDecision::Approved),
            Some(false) => Ok(ApprovalDecision::Rejected {
                reason: answer
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }),
            None => Err(
                "an approval answer must be {\"approve\": true} or {\"approve\": false, \
                 \"reason\": \"...\"}"
                    .to_owned(),
            ),
        }
    }

    /// The tool result the model sees after a rejection.
    pub fn rejection_result(&self) -> Option<Value> {
        match self {
            ApprovalDecision::Approved => None,
            ApprovalDecision::Rejected { reason } => Some(serde_json::json!({
                "error": match reason {
                    Some(r) => format!("a human rejected this tool call: {r}"),
                    None => "a human rejected this tool call".to_owned(),
                }
            })),
        }
    }
}

/// The question shown to a human before `tool` runs with `args`.
pub fn approval_question(tool: &str, args: &Value) -> String {
    format!(
        "Approve the call of tool `{tool}` with arguments {args}? Answer {{\"approve\": true}} \
         or {{\"approve\": false, \"reason\": \"...\"}}."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_answers() {
        assert_eq!(
            ApprovalDecision::from_answer(&json!({"approve": true})),
            Ok(ApprovalDecision::Approved)
        );
        assert_eq!(
            ApprovalDecision::from_answer(&json!(true)),
            Ok(ApprovalDecision::Approved)
        );
        let rejected =
            ApprovalDecision::from_answer(&json!({"approve": false, "reason": "no"})).unwrap();
        assert_eq!(
            rejected,
            ApprovalDecision::Rejected {
                reason: Some("no".into())
            }
        );
        assert_eq!(
            rejected.rejection_result(),
            Some(json!({"error": "a human rejected this tool call: no"}))
        );
        assert_eq!(ApprovalDecision::Approved.rejection_result(), None);
        for bad in [
            json!("yes"),
            json!({"approve": "true"}),
            json!({}),
            json!(null),
        ] {
            assert!(ApprovalDecision::from_answer(&bad).is_err(), "{bad}");
        }
        let q = approval_question("notify", &json!({"text": "hi"}));
        assert!(
            q.contains("`notify`") && q.contains("{\"text\":\"hi\"}"),
            "{q}"
        );
    }
}
