//! The columns of the rows both backends read, by name, and the one
//! decoder from a raw row to a domain value. Each backend only says how to
//! read a plain value from its driver's row ([`RawRow`]); everything else
//! (column order, checked conversions, record migration, unsealing) is
//! here, once.

use crate::codec::{Codec, Field, corrupt};
use crate::{AuditEntry, ConversationMessage, Result};
use agentd_core::checkpoint::{StepRecord, migrate_run};
use agentd_core::{
    ConversationId, PrincipalId, Run, RunId, RunStatus, Step, StepKind, StepStatus, TenantId, Usage,
};

/// Columns of a run, in the order of the [`run_col`] indexes. A macro, so
/// statements stay `&'static str`s built at compile time.
macro_rules! run_cols {
    () => {
        "id, tenant, agent, principal, conversation_id, status, input, output, error, pause, \
         metadata, steps, attempt, input_tokens, output_tokens, cost_usd, created_at, updated_at, v, \
         forked_from, fork_step, agent_version, output_json"
    };
}

/// Columns of a step, in the order of the [`step_col`] indexes.
macro_rules! step_cols {
    () => {
        "idx, kind, name, status, attempt, started_at, duration_ms, input, output, error, \
         input_tokens, output_tokens, call_id, v"
    };
}

/// Where each column of `run_cols!()` is, counted from its first.
pub(crate) mod run_col {
    pub(crate) const ID: usize = 0;
    pub(crate) const TENANT: usize = 1;
    pub(crate) const AGENT: usize = 2;
    pub(crate) const PRINCIPAL: usize = 3;
    pub(crate) const CONVERSATION: usize = 4;
    pub(crate) const STATUS: usize = 5;
    pub(crate) const INPUT: usize = 6;
    pub(crate) const OUTPUT: usize = 7;
    pub(crate) const ERROR: usize = 8;
    pub(crate) const PAUSE: usize = 9;
    pub(crate) const METADATA: usize = 10;
    pub(crate) const STEPS: usize = 11;
    pub(crate) const ATTEMPT: usize = 12;
    pub(crate) const INPUT_TOKENS: usize = 13;
    pub(crate) const OUTPUT_TOKENS: usize = 14;
    pub(crate) const COST_USD: usize = 15;
    pub(crate) const CREATED_AT: usize = 16;
    pub(crate) const UPDATED_AT: usize = 17;
    pub(crate) const VERSION: usize = 18;
    pub(crate) const FORKED_FROM: usize = 19;
    pub(crate) const FORK_STEP: usize = 20;
    pub(crate) const AGENT_VERSION: usize = 21;
    pub(crate) const OUTPUT_JSON: usize = 22;
}

/// Where each column of `step_cols!()` is.
pub(crate) mod step_col {
    pub(crate) const INDEX: usize = 0;
    pub(crate) const KIND: usize = 1;
    pub(crate) const NAME: usize = 2;
    pub(crate) const STATUS: usize = 3;
    pub(crate) const ATTEMPT: usize = 4;
    pub(crate) const STARTED_AT: usize = 5;
    pub(crate) const DURATION_MS: usize = 6;
    pub(crate) const INPUT: usize = 7;
    pub(crate) const OUTPUT: usize = 8;
    pub(crate) const ERROR: usize = 9;
    pub(crate) const INPUT_TOKENS: usize = 10;
    pub(crate) const OUTPUT_TOKENS: usize = 11;
    pub(crate) const CALL_ID: usize = 12;
    pub(crate) const VERSION: usize = 13;
}

/// Plain values of a driver's row, by position. Integers of any width come
/// back as `i64`; the decoders below check they fit.
pub(crate) trait RawRow {
    fn text(&self, i: usize) -> Result<String>;
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    fn int(&self, i: usize) -> Result<i64>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
    fn real(&self, i: usize) -> Result<f64>;
    fn run_id(&self, i: usize) -> Result<RunId>;
    fn opt_run_id(&self, i: usize) -> Result<Option<RunId>>;
}

/// A stored integer as the unsigned count `column` of run `run` holds.
fn count<U: TryFrom<i64>>(run: &RunId, column: &str, v: i64) -> Result<U> {
    U::try_from(v).map_err(|_| {
        corrupt(format_args!(
            "{column} of run {run}: negative or oversized count {v}"
        ))
    })
}

/// Reads a run whose columns (`run_cols!()`) start at `at`, migrated to
/// the current record version.
pub(crate) fn run(codec: &Codec, row: &impl RawRow, at: usize) -> Result<Run> {
    use run_col as c;
    let id = row.run_id(at + c::ID)?;
    let field = |column| Field::of(&id, column);
    let bad = |column: &str, e: &dyn std::fmt::Display| {
        corrupt(format_args!("{column} of run {id}: {e}"))
    };
    let status = row.text(at + c::STATUS)?;
    let version = count(&id, "runs.v", row.int(at + c::VERSION)?)?;
    let run = Run {
        tenant: TenantId::parse(row.text(at + c::TENANT)?).map_err(|e| bad("runs.tenant", &e))?,
        agent: row.text(at + c::AGENT)?,
        agent_version: row.opt_text(at + c::AGENT_VERSION)?,
        principal: PrincipalId::parse(row.text(at + c::PRINCIPAL)?)
            .map_err(|e| bad("runs.principal", &e))?,
        conversation_id: row
            .opt_text(at + c::CONVERSATION)?
            .map(ConversationId::parse)
            .transpose()
            .map_err(|e| bad("runs.conversation_id", &e))?,
        status: RunStatus::parse(&status).ok_or_else(|| {
            bad(
                "runs.status",
                &format_args!("unknown run status {status:?}"),
            )
        })?,
        input: codec.parse(field("runs.input"), row.text(at + c::INPUT)?)?,
        output: codec.parse_opt(field("runs.output"), row.opt_text(at + c::OUTPUT)?)?,
        output_json: codec.parse_opt(
            field("runs.output_json"),
            row.opt_text(at + c::OUTPUT_JSON)?,
        )?,
        error: codec.parse_opt(field("runs.error"), row.opt_text(at + c::ERROR)?)?,
        pause: codec.parse_opt(field("runs.pause"), row.opt_text(at + c::PAUSE)?)?,
        metadata: codec.parse_opt(field("runs.metadata"), row.opt_text(at + c::METADATA)?)?,
        steps: count(&id, "runs.steps", row.int(at + c::STEPS)?)?,
        attempt: count(&id, "runs.attempt", row.int(at + c::ATTEMPT)?)?,
        usage: Usage {
            input_tokens: count(&id, "runs.input_tokens", row.int(at + c::INPUT_TOKENS)?)?,
            output_tokens: count(&id, "runs.output_tokens", row.int(at + c::OUTPUT_TOKENS)?)?,
        },
        cost_usd: row.real(at + c::COST_USD)?,
        created_at: row.int(at + c::CREATED_AT)?,
        updated_at: row.int(at + c::UPDATED_AT)?,
        forked_from: match row.opt_run_id(at + c::FORKED_FROM)? {
            Some(run_id) => Some(agentd_core::ForkOrigin {
                run_id,
                step: count(
                    &id,
                    "runs.fork_step",
                    row.opt_int(at + c::FORK_STEP)?.unwrap_or(0),
                )?,
            }),
            None => None,
        },
        id,
    };
    Ok(migrate_run(version, run)?)
}

/// Reads a step record of run `run`, as stored, from `SELECT step_cols!()`.
pub(crate) fn step(codec: &Codec, run: &RunId, row: &impl RawRow) -> Result<StepRecord> {
    use step_col as c;
    let index: u32 = count(run, "steps.idx", row.int(c::INDEX)?)?;
    let field = |column| Field::step(run, index, column);
    let bad = |what: String| corrupt(format_args!("step {index} of run {run}: {what}"));
    let kind = row.text(c::KIND)?;
    let status = row.text(c::STATUS)?;
    let tokens = (
        row.opt_int(c::INPUT_TOKENS)?,
        row.opt_int(c::OUTPUT_TOKENS)?,
    );
    let step = Step {
        index,
        kind: StepKind::parse(&kind).ok_or_else(|| bad(format!("unknown step kind {kind:?}")))?,
        name: row.text(c::NAME)?,
        call_id: row.opt_text(c::CALL_ID)?,
        status: StepStatus::parse(&status)
            .ok_or_else(|| bad(format!("unknown step status {status:?}")))?,
        attempt: count(run, "steps.attempt", row.int(c::ATTEMPT)?)?,
        started_at: row.int(c::STARTED_AT)?,
        duration_ms: count(run, "steps.duration_ms", row.int(c::DURATION_MS)?)?,
        input: codec.parse(field("steps.input"), row.text(c::INPUT)?)?,
        output: codec.parse(field("steps.output"), row.text(c::OUTPUT)?)?,
        error: codec.parse_opt(field("steps.error"), row.opt_text(c::ERROR)?)?,
        usage: match tokens {
            (None, None) => None,
            (i, o) => Some(Usage {
                input_tokens: count(run, "steps.input_tokens", i.unwrap_or(0))?,
                output_tokens: count(run, "steps.output_tokens", o.unwrap_or(0))?,
            }),
        },
    };
    Ok(StepRecord {
        version: count(run, "steps.v", row.int(c::VERSION)?)?,
        step,
    })
}

/// Reads a conversation message from `SELECT seq, run_id, message,
/// created_at`.
pub(crate) fn message(codec: &Codec, row: &impl RawRow) -> Result<ConversationMessage> {
    let run_id = row.run_id(1)?;
    Ok(ConversationMessage {
        seq: count(&run_id, "messages.seq", row.int(0)?)?,
        message: codec.parse(Field::of(&run_id, "messages.message"), row.text(2)?)?,
        run_id,
        created_at: row.int(3)?,
    })
}

/// Reads an audit record from `SELECT audit_columns!()`.
pub(crate) fn audit(codec: &Codec, row: &impl RawRow) -> Result<AuditEntry> {
    let run_id = row.opt_run_id(1)?;
    Ok(AuditEntry {
        id: row.int(0)?,
        at: row.int(2)?,
        actor: row.text(3)?,
        event: row.text(4)?,
        detail: codec
            .parse_opt(
                Field::of_opt(run_id.as_ref(), "audit.detail"),
                row.opt_text(5)?,
            )?
            .unwrap_or_default(),
        run_id,
    })
}
