//! Mapping between rows and domain types.

use crate::Result;
use crate::codec::{Codec, Field};
pub(super) use crate::codec::{corrupt, to_json};
use agentd_core::checkpoint::{StepRecord, migrate_run};
use agentd_core::{
    ConversationId, PrincipalId, Run, RunId, RunStatus, Step, StepKind, StepStatus, TenantId, Usage,
};
use rusqlite::Row;

pub(super) fn run_id(bytes: &[u8]) -> Result<RunId> {
    uuid::Uuid::from_slice(bytes)
        .map(RunId)
        .map_err(|e| corrupt(format_args!("run id: {e}")))
}

/// Reads a run whose columns start at `at` (0 for `SELECT run_cols!()`),
/// migrated to the current record version.
pub(super) fn run(codec: &Codec, row: &Row<'_>, at: usize) -> Result<Run> {
    let status: String = row.get(at + 5)?;
    let conversation: Option<String> = row.get(at + 4)?;
    let version: u32 = row.get(at + 18)?;
    let id = run_id(&row.get::<_, Vec<u8>>(at)?)?;
    let field = |column| Field::of(&id, column);
    let run = Run {
        id,
        tenant: TenantId::parse(row.get::<_, String>(at + 1)?).map_err(corrupt)?,
        agent: row.get(at + 2)?,
        principal: PrincipalId::parse(row.get::<_, String>(at + 3)?).map_err(corrupt)?,
        conversation_id: conversation
            .map(ConversationId::parse)
            .transpose()
            .map_err(corrupt)?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| corrupt(format_args!("unknown run status {status:?}")))?,
        input: codec.parse(field("runs.input"), row.get(at + 6)?)?,
        output: codec.parse_opt(field("runs.output"), row.get(at + 7)?)?,
        error: codec.parse_opt(field("runs.error"), row.get(at + 8)?)?,
        pause: codec.parse_opt(field("runs.pause"), row.get(at + 9)?)?,
        metadata: codec.parse_opt(field("runs.metadata"), row.get(at + 10)?)?,
        steps: row.get::<_, i64>(at + 11)? as u32,
        attempt: row.get::<_, i64>(at + 12)? as u32,
        usage: Usage {
            input_tokens: row.get::<_, i64>(at + 13)? as u64,
            output_tokens: row.get::<_, i64>(at + 14)? as u64,
        },
        cost_usd: row.get(at + 15)?,
        created_at: row.get(at + 16)?,
        updated_at: row.get(at + 17)?,
    };
    Ok(migrate_run(version, run)?)
}

/// Reads a step record of run `run`, as stored, from `SELECT step_cols!()`.
pub(super) fn step(codec: &Codec, run: &RunId, row: &Row<'_>) -> Result<StepRecord> {
    let index = row.get::<_, i64>(0)? as u32;
    let field = |column| Field::step(run, index, column);
    let kind: String = row.get(1)?;
    let status: String = row.get(3)?;
    let input_tokens: Option<i64> = row.get(10)?;
    let output_tokens: Option<i64> = row.get(11)?;
    let step = Step {
        index,
        kind: StepKind::parse(&kind)
            .ok_or_else(|| corrupt(format_args!("unknown step kind {kind:?}")))?,
        name: row.get(2)?,
        call_id: row.get(12)?,
        status: StepStatus::parse(&status)
            .ok_or_else(|| corrupt(format_args!("unknown step status {status:?}")))?,
        attempt: row.get::<_, i64>(4)? as u32,
        started_at: row.get(5)?,
        duration_ms: row.get::<_, i64>(6)? as u64,
        input: codec.parse(field("steps.input"), row.get(7)?)?,
        output: codec.parse(field("steps.output"), row.get(8)?)?,
        error: codec.parse_opt(field("steps.error"), row.get(9)?)?,
        usage: match (input_tokens, output_tokens) {
            (None, None) => None,
            (i, o) => Some(Usage {
                input_tokens: i.unwrap_or(0) as u64,
                output_tokens: o.unwrap_or(0) as u64,
            }),
        },
    };
    Ok(StepRecord {
        version: row.get(13)?,
        step,
    })
}
