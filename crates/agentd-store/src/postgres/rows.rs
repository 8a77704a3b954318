//! Mapping between PostgreSQL rows and domain types, and the array binding
//! of steps.

use crate::codec::{Codec, Field, corrupt};
use crate::{Result, StepWrite};
use agentd_core::checkpoint::{StepRecord, migrate_run};
use agentd_core::{
    ConversationId, PrincipalId, Run, RunId, RunStatus, SCHEMA_VERSION, Step, StepKind, StepStatus,
    TenantId, Usage,
};
use sqlx::Row;
use sqlx::postgres::{PgArguments, PgRow};

/// A statement with its arguments, as `sqlx::query` builds it.
pub(super) type Query = sqlx::query::Query<'static, sqlx::Postgres, PgArguments>;

/// Reads a run whose columns (`run_cols!`) start at `at`, migrated to the
/// current record version.
pub(super) fn run(codec: &Codec, row: &PgRow, at: usize) -> Result<Run> {
    let status: String = row.try_get(at + 5)?;
    let conversation: Option<String> = row.try_get(at + 4)?;
    let version = count(row.try_get::<i16, _>(at + 18)?)?;
    let id = RunId(row.try_get(at)?);
    let field = |column| Field::of(&id, column);
    let run = Run {
        id,
        tenant: TenantId::parse(row.try_get::<String, _>(at + 1)?).map_err(corrupt)?,
        agent: row.try_get(at + 2)?,
        principal: PrincipalId::parse(row.try_get::<String, _>(at + 3)?).map_err(corrupt)?,
        conversation_id: conversation
            .map(ConversationId::parse)
            .transpose()
            .map_err(corrupt)?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| corrupt(format_args!("unknown run status {status:?}")))?,
        input: codec.parse(field("runs.input"), row.try_get(at + 6)?)?,
        output: codec.parse_opt(field("runs.output"), row.try_get(at + 7)?)?,
        error: codec.parse_opt(field("runs.error"), row.try_get(at + 8)?)?,
        pause: codec.parse_opt(field("runs.pause"), row.try_get(at + 9)?)?,
        metadata: codec.parse_opt(field("runs.metadata"), row.try_get(at + 10)?)?,
        steps: count(row.try_get::<i32, _>(at + 11)?)?,
        attempt: count(row.try_get::<i32, _>(at + 12)?)?,
        usage: Usage {
            input_tokens: count(row.try_get::<i64, _>(at + 13)?)?,
            output_tokens: count(row.try_get::<i64, _>(at + 14)?)?,
        },
        cost_usd: row.try_get(at + 15)?,
        created_at: row.try_get(at + 16)?,
        updated_at: row.try_get(at + 17)?,
    };
    Ok(migrate_run(version, run)?)
}

/// Reads a step record of run `run`, as stored, from `SELECT step_cols!()`.
pub(super) fn step(codec: &Codec, run: &RunId, row: &PgRow) -> Result<StepRecord> {
    let index = count(row.try_get::<i32, _>(0)?)?;
    let field = |column| Field::step(run, index, column);
    let kind: String = row.try_get(1)?;
    let status: String = row.try_get(3)?;
    let input_tokens: Option<i64> = row.try_get(10)?;
    let output_tokens: Option<i64> = row.try_get(11)?;
    let step = Step {
        index,
        kind: StepKind::parse(&kind)
            .ok_or_else(|| corrupt(format_args!("unknown step kind {kind:?}")))?,
        name: row.try_get(2)?,
        call_id: row.try_get(12)?,
        status: StepStatus::parse(&status)
            .ok_or_else(|| corrupt(format_args!("unknown step status {status:?}")))?,
        attempt: count(row.try_get::<i32, _>(4)?)?,
        started_at: row.try_get(5)?,
        duration_ms: count(row.try_get::<i64, _>(6)?)?,
        input: codec.parse(field("steps.input"), row.try_get(7)?)?,
        output: codec.parse(field("steps.output"), row.try_get(8)?)?,
        error: codec.parse_opt(field("steps.error"), row.try_get(9)?)?,
        usage: match (input_tokens, output_tokens) {
            (None, None) => None,
            (i, o) => Some(Usage {
                input_tokens: count(i.unwrap_or(0))?,
                output_tokens: count(o.unwrap_or(0))?,
            }),
        },
    };
    Ok(StepRecord {
        version: count(row.try_get::<i16, _>(13)?)?,
        step,
    })
}

/// A non-negative database integer as an unsigned count.
fn count<T, U>(v: T) -> Result<U>
where
    T: Copy + std::fmt::Display,
    U: TryFrom<T>,
{
    U::try_from(v).map_err(|_| corrupt(format_args!("negative or oversized count {v}")))
}

/// A count as a database integer. Counts past the column's range never
/// occur in a journal; saturating is only a guard.
pub(super) fn int<T: TryFrom<U> + Bounded, U>(v: U) -> T {
    T::try_from(v).unwrap_or(T::MAX)
}

/// Integer column types, for [`int`].
pub(super) trait Bounded {
    const MAX: Self;
}

impl Bounded for i32 {
    const MAX: Self = i32::MAX;
}

impl Bounded for i64 {
    const MAX: Self = i64::MAX;
}

/// What a batch of step writes adds to the run's row.
pub(super) struct Totals {
    /// The run's step count after the batch; `None` for no steps.
    pub steps: Option<i32>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
}

impl Totals {
    pub(super) fn of(writes: &[StepWrite]) -> Self {
        let (i, o, c) = writes.iter().fold((0i64, 0i64, 0f64), |(i, o, c), w| {
            (
                i.saturating_add(int::<i64, _>(w.usage.input_tokens)),
                o.saturating_add(int::<i64, _>(w.usage.output_tokens)),
                c + w.cost_usd,
            )
        });
        Self {
            steps: writes
                .last()
                .map(|w| int::<i32, _>(i64::from(w.step.index) + 1)),
            input_tokens: i,
            output_tokens: o,
            cost_usd: c,
        }
    }
}

/// Binds `writes` of run `run` as the arrays `$1..$13` and the record
/// version `$14` of `insert_steps!`, then the totals `$15..$18` of
/// `add_totals!`.
pub(super) fn bind_steps(
    codec: &Codec,
    q: Query,
    run: &RunId,
    writes: &[StepWrite],
) -> Result<Query> {
    let n = writes.len();
    let mut idx = Vec::with_capacity(n);
    let mut kind = Vec::with_capacity(n);
    let mut name = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut attempt = Vec::with_capacity(n);
    let mut started_at = Vec::with_capacity(n);
    let mut duration_ms = Vec::with_capacity(n);
    let mut input = Vec::with_capacity(n);
    let mut output = Vec::with_capacity(n);
    let mut error = Vec::with_capacity(n);
    let mut input_tokens = Vec::with_capacity(n);
    let mut output_tokens = Vec::with_capacity(n);
    let mut call_id = Vec::with_capacity(n);
    for w in writes {
        let s = &w.step;
        idx.push(int::<i32, _>(s.index));
        kind.push(s.kind.as_str());
        name.push(s.name.clone());
        status.push(s.status.as_str());
        attempt.push(int::<i32, _>(s.attempt));
        started_at.push(s.started_at);
        duration_ms.push(int::<i64, _>(s.duration_ms));
        let field = |column| Field::step(run, s.index, column);
        input.push(codec.seal_json(field("steps.input"), &s.input)?);
        output.push(codec.seal_json(field("steps.output"), &s.output)?);
        error.push(codec.seal_opt(field("steps.error"), s.error.as_ref())?);
        input_tokens.push(s.usage.map(|u| int::<i64, _>(u.input_tokens)));
        output_tokens.push(s.usage.map(|u| int::<i64, _>(u.output_tokens)));
        call_id.push(s.call_id.clone());
    }
    let totals = Totals::of(writes);
    Ok(q.bind(idx)
        .bind(kind)
        .bind(name)
        .bind(status)
        .bind(attempt)
        .bind(started_at)
        .bind(duration_ms)
        .bind(input)
        .bind(output)
        .bind(error)
        .bind(input_tokens)
        .bind(output_tokens)
        .bind(call_id)
        .bind(int::<i16, _>(SCHEMA_VERSION))
        .bind(totals.steps)
        .bind(totals.input_tokens)
        .bind(totals.output_tokens)
        .bind(totals.cost_usd))
}

impl Bounded for i16 {
    const MAX: Self = i16::MAX;
}
