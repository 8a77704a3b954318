//! The approval pause of a tool marked `approval = true`: the question a
//! human is asked, and the answer format `{"approve": true}` /
//! `{"approve": false, "reason": "..."}`.

use serde_json::Value;

pub use agentd_core::ApprovalDecision;

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
