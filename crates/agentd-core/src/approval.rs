//! The answer to an approval pause: `{"approve": true}` or `{"approve":
//! false, "reason": "..."}`. Here, not with the tools, because a journal's
//! meaning depends on it (see [`crate::checkpoint`]).

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
