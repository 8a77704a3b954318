//! The guardrails of an agent, compiled: the input's bounds and hygiene
//! (applied when a run is created), the prompt-injection guard
//! ([`injection`]), the PII guard ([`pii`]) and the output contract. Pure:
//! `crate::steps::guard` applies them at the run's step boundaries, and
//! `crate::state` checks the contract on the final answer.

mod injection;
mod pii;

pub(crate) use injection::{InjectionGuard, Verdict, blocked, quote, source_name};
pub(crate) use pii::{PiiGuard, restore, vault_from, vault_json};

use agentd_config::{AgentConfig, Config};
use agentd_guard::schema::Schema;
use agentd_llm::BreakerRegistry;
use serde_json::Value;

/// An agent's compiled guardrails.
pub(crate) struct Guards {
    pub(crate) max_input_bytes: usize,
    pub(crate) injection: Option<InjectionGuard>,
    pub(crate) pii: Option<PiiGuard>,
    pub(crate) contract: Option<OutputContract>,
}

impl Guards {
    /// Compiles agent `a`'s guardrails (its own, else `[guardrails]`).
    pub(crate) fn build(
        index: usize,
        a: &AgentConfig,
        config: &Config,
        breakers: &BreakerRegistry,
    ) -> Result<Self, crate::EngineError> {
        let own = config.guardrails.for_agent(a.guardrails.as_ref());
        let injection = own
            .injection
            .filter(|i| !i.on.is_empty())
            .map(|i| InjectionGuard::build(index, a, &i, config, breakers))
            .transpose()?;
        let contract = a
            .output_schema
            .as_ref()
            .map(|schema| {
                Schema::compile(schema)
                    .map(|schema| OutputContract {
                        schema,
                        repairs: a.output_repair_attempts,
                        fallback: a.output_fallback.clone(),
                    })
                    .map_err(|e| {
                        crate::EngineError::Config(format!("agents[{index}].output_schema: {e}"))
                    })
            })
            .transpose()?;
        if own.pii.is_some() {
            // Loads the phone metadata now, not on a run's first step.
            agentd_guard::pii::warm_up();
        }
        Ok(Self {
            max_input_bytes: a.max_input_bytes,
            injection,
            pii: own.pii.as_ref().map(PiiGuard::new),
            contract,
        })
    }
}

/// The input a run is created with, cleaned of control and invisible
/// characters (every string in it, for JSON input); an input over
/// `max_input_bytes` is refused, never truncated. Answers the cleaned
/// input and how many characters went.
pub(crate) fn clean_input(
    agent: &str,
    max_input_bytes: usize,
    input: Value,
) -> Result<(Value, usize), crate::EngineError> {
    let mut removed = 0;
    let input = clean_value(input, &mut removed);
    let size = match &input {
        Value::String(s) => s.len(),
        other => other.to_string().len(),
    };
    if size > max_input_bytes {
        return Err(crate::EngineError::Invalid(format!(
            "input is {size} bytes; agent {agent:?} accepts at most {max_input_bytes} \
             (agents[].max_input_bytes)"
        )));
    }
    Ok((input, removed))
}

fn clean_value(v: Value, removed: &mut usize) -> Value {
    agentd_core::map_strings(v, &mut |s| {
        let c = agentd_guard::hygiene::clean(&s);
        if !c.changed() {
            return s;
        }
        *removed += c.control + c.invisible;
        c.text.into_owned()
    })
}

/// An agent's output contract.
pub(crate) struct OutputContract {
    pub(crate) schema: Schema,
    pub(crate) repairs: u32,
    pub(crate) fallback: Option<Value>,
}

impl OutputContract {
    /// The answer as JSON satisfying the schema, or what is wrong with it.
    pub(crate) fn check(&self, answer: &str) -> Result<Value, Vec<String>> {
        let value = agentd_guard::schema::parse_answer(answer).map_err(|e| vec![e])?;
        let problems = self.schema.violations(&value);
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(problems)
        }
    }
}
