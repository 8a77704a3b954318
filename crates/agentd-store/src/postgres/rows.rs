//! Mapping between PostgreSQL rows and domain types, and the array binding
//! of steps.

use crate::codec::{Codec, Field};
use crate::row::RawRow;
pub(super) use crate::row::{run, step};
use crate::{Result, StepWrite};
use agentd_core::{RunId, SCHEMA_VERSION};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Column, Row, TypeInfo};

/// A statement with its arguments, as `sqlx::query` builds it.
pub(super) type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, PgArguments>;

impl RawRow for PgRow {
    fn text(&self, i: usize) -> Result<String> {
        Ok(self.try_get(i)?)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.try_get(i)?)
    }

    fn int(&self, i: usize) -> Result<i64> {
        Ok(match width(self, i) {
            2 => self.try_get::<i16, _>(i)?.into(),
            4 => self.try_get::<i32, _>(i)?.into(),
            _ => self.try_get(i)?,
        })
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(match width(self, i) {
            2 => self.try_get::<Option<i16>, _>(i)?.map(i64::from),
            4 => self.try_get::<Option<i32>, _>(i)?.map(i64::from),
            _ => self.try_get(i)?,
        })
    }

    fn real(&self, i: usize) -> Result<f64> {
        Ok(self.try_get(i)?)
    }

    fn run_id(&self, i: usize) -> Result<RunId> {
        Ok(RunId(self.try_get(i)?))
    }

    fn opt_run_id(&self, i: usize) -> Result<Option<RunId>> {
        Ok(self.try_get::<Option<uuid::Uuid>, _>(i)?.map(RunId))
    }
}

/// The byte width of integer column `i` (`int2`, `int4`; 8 otherwise):
/// sqlx decodes an integer only as the Rust type of its exact width.
fn width(row: &PgRow, i: usize) -> u8 {
    match row.columns().get(i).map(|c| c.type_info().name()) {
        Some("INT2") => 2,
        Some("INT4") => 4,
        _ => 8,
    }
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
#[derive(Debug, Clone, Copy)]
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

/// Steps of any number of runs, sealed, as the column arrays `$1..$14` of
/// `insert_steps!`.
#[derive(Debug, Default)]
pub(super) struct StepColumns {
    run_id: Vec<uuid::Uuid>,
    idx: Vec<i32>,
    kind: Vec<&'static str>,
    name: Vec<String>,
    status: Vec<&'static str>,
    attempt: Vec<i32>,
    started_at: Vec<i64>,
    duration_ms: Vec<i64>,
    input: Vec<String>,
    output: Vec<String>,
    error: Vec<Option<String>>,
    input_tokens: Vec<Option<i64>>,
    output_tokens: Vec<Option<i64>>,
    call_id: Vec<Option<String>>,
    /// What each step cost (bound apart, by the journal's statements only).
    cost_usd: Vec<f64>,
}

impl StepColumns {
    /// The sealed rows of `writes` of run `run`.
    pub(super) fn of(codec: &Codec, run: &RunId, writes: &[StepWrite]) -> Result<Self> {
        let mut c = Self::default();
        for w in writes {
            let s = &w.step;
            let field = |column| Field::step(run, s.index, column);
            c.run_id.push(run.0);
            c.idx.push(int::<i32, _>(s.index));
            c.kind.push(s.kind.as_str());
            c.name.push(s.name.clone());
            c.status.push(s.status.as_str());
            c.attempt.push(int::<i32, _>(s.attempt));
            c.started_at.push(s.started_at);
            c.duration_ms.push(int::<i64, _>(s.duration_ms));
            c.input
                .push(codec.seal_json(field("steps.input"), &s.input)?);
            c.output
                .push(codec.seal_json(field("steps.output"), &s.output)?);
            c.error
                .push(codec.seal_opt(field("steps.error"), s.error.as_ref())?);
            c.input_tokens
                .push(s.usage.map(|u| int::<i64, _>(u.input_tokens)));
            c.output_tokens
                .push(s.usage.map(|u| int::<i64, _>(u.output_tokens)));
            c.call_id.push(s.call_id.clone());
            c.cost_usd.push(w.cost_usd);
        }
        Ok(c)
    }

    /// Binds the steps' costs of `parts`, in the order of [`Self::bind`].
    pub(super) fn bind_costs<'q>(q: Query<'q>, parts: &[&'q Self]) -> Query<'q> {
        q.bind(
            parts
                .iter()
                .flat_map(|p| p.cost_usd.iter().copied())
                .collect::<Vec<f64>>(),
        )
    }

    /// Binds the rows of `parts` (the writes of a batch, in order) as the
    /// arrays `$1..$14`, borrowing their payloads, and the record version
    /// `$15`.
    pub(super) fn bind<'q>(q: Query<'q>, parts: &[&'q Self]) -> Query<'q> {
        fn flat<'q, T: 'q, R>(
            parts: &[&'q StepColumns],
            column: impl Fn(&'q StepColumns) -> &'q [T],
            value: impl Fn(&'q T) -> R,
        ) -> Vec<R> {
            parts.iter().flat_map(|p| column(p)).map(value).collect()
        }
        q.bind(flat(parts, |c| &c.run_id, |v| *v))
            .bind(flat(parts, |c| &c.idx, |v| *v))
            .bind(flat(parts, |c| &c.kind, |v| *v))
            .bind(flat(parts, |c| &c.name, String::as_str))
            .bind(flat(parts, |c| &c.status, |v| *v))
            .bind(flat(parts, |c| &c.attempt, |v| *v))
            .bind(flat(parts, |c| &c.started_at, |v| *v))
            .bind(flat(parts, |c| &c.duration_ms, |v| *v))
            .bind(flat(parts, |c| &c.input, String::as_str))
            .bind(flat(parts, |c| &c.output, String::as_str))
            .bind(flat(parts, |c| &c.error, Option::as_deref))
            .bind(flat(parts, |c| &c.input_tokens, |v| *v))
            .bind(flat(parts, |c| &c.output_tokens, |v| *v))
            .bind(flat(parts, |c| &c.call_id, Option::as_deref))
            .bind(int::<i16, _>(SCHEMA_VERSION))
    }
}

/// The fenced writes of any number of runs, one row each, as the arrays
/// `$16..$22` of `writes!`: the lease, and what the steps add to the run.
#[derive(Debug, Default)]
pub(super) struct WriteColumns<'a> {
    id: Vec<uuid::Uuid>,
    tenant: Vec<&'a str>,
    token: Vec<i64>,
    steps: Vec<Option<i32>>,
    input_tokens: Vec<i64>,
    output_tokens: Vec<i64>,
    cost_usd: Vec<f64>,
}

impl<'a> WriteColumns<'a> {
    /// Adds the write under `lease` whose steps add `t`.
    pub(super) fn push(&mut self, lease: &'a crate::Lease, t: &Totals) {
        self.id.push(lease.run_id.0);
        self.tenant.push(lease.tenant.as_str());
        self.token.push(lease.token);
        self.steps.push(t.steps);
        self.input_tokens.push(t.input_tokens);
        self.output_tokens.push(t.output_tokens);
        self.cost_usd.push(t.cost_usd);
    }

    /// Binds the arrays `$16..$22`.
    pub(super) fn bind(self, q: Query<'a>) -> Query<'a> {
        q.bind(self.id)
            .bind(self.tenant)
            .bind(self.token)
            .bind(self.steps)
            .bind(self.input_tokens)
            .bind(self.output_tokens)
            .bind(self.cost_usd)
    }
}

impl Bounded for i16 {
    const MAX: Self = i16::MAX;
}
