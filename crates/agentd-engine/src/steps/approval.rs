//! The approval step: before a tool marked `approval = true` runs, the run
//! pauses on a waiting human step whose answer is the decision. Nothing ran
//! yet, so the model step before it is committed together with the pause.

use super::Happened;
use crate::state::{Approval, RunState, new_step};
use agentd_core::{Pause, StepKind, StepStatus, now_millis};
use agentd_tools::approval_question;

/// Asks for the approval of `a`'s call: the pause to commit.
pub(crate) fn ask(st: &RunState, a: Approval) -> Happened {
    let Approval { call, name } = a;
    let index = st.next_index;
    let mut step = new_step(index, StepKind::Human, &name, st.run.attempt, now_millis());
    step.status = StepStatus::Waiting;
    step.call_id = Some(call.id);
    step.input = serde_json::json!({ "approval": { "tool": name, "args": call.args } });
    let pause = Pause {
        question: approval_question(&name, &call.args),
        step: index,
        tool: Some(name),
        args: Some(call.args),
    };
    Happened::Paused { step, pause }
}
