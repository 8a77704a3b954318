//! The checkpoint schema: the shape of the journal records each version of
//! agentd wrote, and the explicit migrations that bring an older record to
//! the current shape. Pure functions: the store reads rows and hands them
//! here, so a run journaled by an older agentd resumes under this one.
//!
//! # Versions
//!
//! - **v1**: a `tool` or `human` step did not record which tool call of the
//!   model step before it it answers. Readers paired them by position: the
//!   first call of the last model step without an answer yet (an approval
//!   step refers to that call without answering it, unless it rejects it).
//! - **v2**: such a step carries [`Step::call_id`], the id the model gave the
//!   call it answers (an approval step: the call waiting for the decision).
//!   The run loop checks the pairing when it rebuilds a run instead of
//!   trusting the order, and the journal API shows which call each result
//!   belongs to. Run records are unchanged between v1 and v2.
//!
//! A record newer than [`SCHEMA_VERSION`] is refused: an older agentd must
//! not guess at fields it does not know.

use crate::{ApprovalDecision, Message, Run, RunId, Step, StepKind, StepStatus};
use std::collections::VecDeque;

/// Version of the journal records this agentd writes (the `v` column of
/// runs and steps). Bumped whenever a record's shape or meaning changes,
/// with a migration from the previous version here.
pub const SCHEMA_VERSION: u32 = 2;

/// A stored record this agentd cannot bring to the current version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "{what} has record version {version}: it was written by a newer agentd (this one \
         reads versions 1 to {SCHEMA_VERSION}); upgrade agentd"
    )]
    Newer { what: String, version: u32 },
    #[error("{what} has record version {version}, which no agentd writes")]
    Unknown { what: String, version: u32 },
}

/// A journal step as stored: the record version it was written under, and
/// its fields as read (`call_id` is `None` in a v1 record).
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub version: u32,
    pub step: Step,
}

/// Brings a run record of `version` to the current one. Runs did not change
/// between v1 and v2, so this only refuses versions it does not know.
pub fn migrate_run(version: u32, run: Run) -> Result<Run, MigrationError> {
    check(version, || format!("run {}", run.id))?;
    Ok(run)
}

/// Brings the journal of run `run`, read in index order from its first
/// step, to the current version. Older records need the steps before them
/// (a v1 step's tool call is derived from the model step it follows), so
/// pass the journal from its start.
pub fn migrate_journal(run: RunId, records: Vec<StepRecord>) -> Result<Vec<Step>, MigrationError> {
    let mut links = CallLinks::default();
    let mut steps = Vec::with_capacity(records.len());
    for record in records {
        let index = record.step.index;
        check(record.version, || format!("step {index} of run {run}"))?;
        let step = match record.version {
            1 => step_v1_to_v2(record.step, &links),
            _ => record.step,
        };
        links.observe(&step);
        steps.push(step);
    }
    Ok(steps)
}

/// v1 → v2 of one step: every v1 field carries over unchanged, and a `tool`
/// or `human` step gets the `call_id` v1 readers implied: the first call of
/// the last model step still without an answer, as `links` (the journal
/// before this step) knows it. `None` if no call was waiting, which the run
/// loop then reports as an inconsistent journal, as it did for v1.
pub fn step_v1_to_v2(mut step: Step, links: &CallLinks) -> Step {
    step.call_id = match step.kind {
        StepKind::Llm => None,
        StepKind::Tool | StepKind::Human => links.next().map(str::to_owned),
    };
    step
}

/// Which tool calls of a journal's last model step still wait for an
/// answer, in the order the model made them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallLinks {
    pending: VecDeque<String>,
}

impl CallLinks {
    /// The call the next `tool` or `human` step answers (or asks approval
    /// for).
    pub fn next(&self) -> Option<&str> {
        self.pending.front().map(String::as_str)
    }

    /// Accounts for a current-version `step`, in journal order.
    pub fn observe(&mut self, step: &Step) {
        match step.kind {
            StepKind::Llm => {
                // A failed model call journals no message: nothing pending.
                self.pending = <Message as serde::Deserialize>::deserialize(&step.output)
                    .map(|m| m.tool_calls.into_iter().map(|c| c.id).collect())
                    .unwrap_or_default();
            }
            StepKind::Tool | StepKind::Human => {
                let approval = step.input.get("approval").is_some();
                // An approval answers its call only by rejecting it; an
                // approved call is answered by the tool step that follows.
                let answered = !approval
                    || (step.status == StepStatus::Completed
                        && matches!(
                            ApprovalDecision::from_answer(&step.output),
                            Ok(ApprovalDecision::Rejected { .. })
                        ));
                if !answered {
                    return;
                }
                match &step.call_id {
                    Some(id) => self.pending.retain(|p| p != id),
                    None => {
                        self.pending.pop_front();
                    }
                }
            }
        }
    }
}

fn check(version: u32, what: impl FnOnce() -> String) -> Result<(), MigrationError> {
    match version {
        1..=SCHEMA_VERSION => Ok(()),
        0 => Err(MigrationError::Unknown {
            what: what(),
            version,
        }),
        _ => Err(MigrationError::Newer {
            what: what(),
            version,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RunError, Usage};
    use serde_json::json;

    fn v1(index: u32, kind: StepKind, name: &str, input: serde_json::Value) -> StepRecord {
        StepRecord {
            version: 1,
            step: Step {
                index,
                kind,
                name: name.into(),
                call_id: None,
                status: StepStatus::Completed,
                attempt: 2,
                started_at: 1_700_000_000_000 + i64::from(index),
                duration_ms: 40 + u64::from(index),
                input,
                output: json!(null),
                error: None,
                usage: None,
            },
        }
    }

    fn calls(ids: &[&str]) -> serde_json::Value {
        let calls: Vec<_> = ids
            .iter()
            .map(|id| json!({ "id": id, "name": "echo", "args": { "text": id } }))
            .collect();
        json!({ "role": "assistant", "content": "", "tool_calls": calls })
    }

    #[test]
    fn a_v1_tool_step_becomes_v2_field_by_field() {
        let mut links = CallLinks::default();
        let mut llm = v1(0, StepKind::Llm, "main", json!(null));
        llm.step.output = calls(&["call_a", "call_b"]);
        llm.step.usage = Some(Usage {
            input_tokens: 12,
            output_tokens: 3,
        });
        links.observe(&llm.step);
        let mut tool = v1(1, StepKind::Tool, "echo", json!({ "text": "call_a" }));
        tool.step.status = StepStatus::Failed;
        tool.step.output = json!({ "error": "boom" });
        tool.step.error = Some(RunError::new(crate::ErrorCode::ToolError, "boom"));
        let before = tool.step.clone();

        let after = step_v1_to_v2(tool.step, &links);

        // The one field v2 adds is derived; every v1 field carries over.
        assert_eq!(after.call_id.as_deref(), Some("call_a"));
        assert_eq!(after.index, before.index);
        assert_eq!(after.kind, before.kind);
        assert_eq!(after.name, before.name);
        assert_eq!(after.status, before.status);
        assert_eq!(after.attempt, before.attempt);
        assert_eq!(after.started_at, before.started_at);
        assert_eq!(after.duration_ms, before.duration_ms);
        assert_eq!(after.input, before.input);
        assert_eq!(after.output, before.output);
        assert_eq!(after.error, before.error);
        assert_eq!(after.usage, before.usage);
        assert_eq!(
            Step {
                call_id: None,
                ..after
            },
            before
        );
        // A model step has no call to answer.
        assert_eq!(step_v1_to_v2(llm.step.clone(), &links), llm.step);
    }

    #[test]
    fn a_v1_journal_gets_the_pairing_v1_readers_implied() {
        let mut records = Vec::new();
        let mut llm = v1(0, StepKind::Llm, "main", json!(null));
        llm.step.output = calls(&["c1", "c2"]);
        records.push(llm);
        records.push(v1(1, StepKind::Tool, "echo", json!({ "text": "c1" })));
        // An approval of c2, approved: c2 is still to be answered...
        let mut approval = v1(2, StepKind::Human, "echo", json!({ "approval": {} }));
        approval.step.output = json!({ "approve": true });
        records.push(approval);
        // ...by the tool step after it.
        records.push(v1(3, StepKind::Tool, "echo", json!({ "text": "c2" })));
        let mut llm = v1(4, StepKind::Llm, "main", json!(null));
        llm.step.output = calls(&["c3", "c4"]);
        records.push(llm);
        // c3 rejected: that answers it, so the next step answers c4.
        let mut rejected = v1(5, StepKind::Human, "echo", json!({ "approval": {} }));
        rejected.step.output = json!({ "approve": false });
        records.push(rejected);
        // A v2 step (written after an upgrade) keeps its own call id.
        let mut current = v1(6, StepKind::Human, "ask_human", json!({ "question": "?" }));
        current.version = 2;
        current.step.call_id = Some("c4".into());
        current.step.status = StepStatus::Waiting;
        records.push(current);

        let run = RunId::new();
        let steps = migrate_journal(run, records).unwrap();

        let ids: Vec<_> = steps.iter().map(|s| s.call_id.as_deref()).collect();
        assert_eq!(
            ids,
            [
                None,
                Some("c1"),
                Some("c2"),
                Some("c2"),
                None,
                Some("c3"),
                Some("c4")
            ]
        );
        // A tool step with no call waiting stays unpaired.
        let orphan = vec![v1(0, StepKind::Tool, "echo", json!({}))];
        assert_eq!(migrate_journal(run, orphan).unwrap()[0].call_id, None);
    }

    #[test]
    fn unknown_and_newer_versions_are_refused() {
        let run = RunId::new();
        let mut newer = v1(0, StepKind::Llm, "main", json!(null));
        newer.version = SCHEMA_VERSION + 1;
        let err = migrate_journal(run, vec![newer]).unwrap_err();
        assert!(
            matches!(err, MigrationError::Newer { version, .. } if version == SCHEMA_VERSION + 1)
        );
        assert!(err.to_string().contains("newer agentd"), "{err}");
        assert!(
            err.to_string().contains(&format!("step 0 of run {run}")),
            "{err}"
        );
        let mut zero = v1(0, StepKind::Llm, "main", json!(null));
        zero.version = 0;
        assert!(matches!(
            migrate_journal(run, vec![zero]),
            Err(MigrationError::Unknown { version: 0, .. })
        ));
    }
}
