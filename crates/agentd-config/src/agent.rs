//! `[[agents]]`: an agent's definition, its retries, circuit breaker,
//! memory and contract tests.

use serde::{Deserialize, Serialize};

use crate::dur::Dur;
use crate::types::ScriptEntry;

/// `[[agents]]`: one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Name, `[A-Za-z0-9_-]+`; used in URLs. Unique, except that several
    /// versions of one agent share it.
    pub name: String,
    /// This definition's version, `[A-Za-z0-9._-]+`; several `[[agents]]`
    /// of one name must each have a distinct one. Runs record the version
    /// they started on and finish on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What the agent does, in a sentence or two: the description clients
    /// see where the agent is offered as a tool (`/mcp`, `agentd mcp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Provider names: a fallback chain, first healthy wins.
    pub providers: Vec<String>,
    /// System prompt, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Tool names the agent may call (checked by the engine, not here).
    #[serde(default)]
    pub tools: Vec<String>,
    /// Journal steps (model, tool and human) per run before the run fails
    /// with `max_steps_exceeded`.
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    /// Wall-clock limit of one run.
    #[serde(default = "default_agent_timeout")]
    pub timeout: Dur,
    /// Spend limit of one run, in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// Shares of `budget_usd` (in (0, 1]) whose crossing by a run is
    /// announced once: an audit record `budget_alert`, a metric, a log line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budget_alerts: Vec<f64>,
    /// Conversation memory strategy.
    #[serde(default)]
    pub memory: Memory,
    /// Retries of a failed model call on the same provider; `None` means one
    /// attempt per provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    /// Circuit breaker of each provider in the chain; `None` means no breaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreakerConfig>,
    /// Contract test cases `agentd test` runs on the mock provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<AgentTest>,
    /// A completion webhook of every run of this agent: the name of a
    /// `kind = "webhook"` tool (its URL and secret), or a URL (signed with
    /// `[webhooks] secret_env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_finish: Option<String>,
    /// The largest input a run of this agent takes, in bytes (its text, or
    /// its JSON); a larger one is refused when the run is created, never
    /// truncated.
    #[serde(default = "default_max_input_bytes")]
    pub max_input_bytes: usize,
    /// This agent's guardrails, replacing `[guardrails]`' sections it sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<crate::guardrails::GuardrailsConfig>,
    /// A JSON Schema the final answer must satisfy (parsed as JSON); the
    /// run then carries it as `output_json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<serde_json::Value>,
    /// Times the model is asked to repair an answer that fails
    /// `output_schema`, with the validation errors.
    #[serde(default = "default_output_repair_attempts")]
    pub output_repair_attempts: u32,
    /// The answer used when the repairs fail too (it must satisfy the
    /// schema); unset, the run fails with `output_invalid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_fallback: Option<serde_json::Value>,
}

fn default_max_input_bytes() -> usize {
    256 * 1024
}

fn default_output_repair_attempts() -> u32 {
    2
}

/// `[[agents.tests]]`: one contract test case of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentTest {
    /// Name in reports (default: the case's position).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The run's input.
    pub input: serde_json::Value,
    /// A mock script standing in for the agent's providers; empty: the
    /// agent's own chain, which must then be mock providers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub script: Vec<ScriptEntry>,
    /// A substring the output must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_output: Option<String>,
    /// The tools the run must call, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_tools: Option<Vec<String>>,
    /// The final status (default `succeeded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<String>,
}

/// `agents[].retry`: exponential backoff with jitter between attempts of one
/// model call on one provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts per provider, the first included (at least 1).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles after each failure.
    pub initial: Dur,
    /// Upper bound of the delay; a provider asking (`Retry-After`) for a
    /// longer wait is not retried but left for the next in the chain.
    pub max: Dur,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            initial: Dur::from_millis(500),
            max: Dur::from_secs(30),
        }
    }
}

/// `agents[].circuit_breaker`: per provider, shared by every agent using it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitBreakerConfig {
    /// Consecutive failed calls that open the circuit (at least 1).
    pub failures: u32,
    /// How long an open circuit rejects calls before one probe is let through.
    pub reset: Dur,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failures: 5,
            reset: Dur::from_secs(30),
        }
    }
}

fn default_max_steps() -> u32 {
    20
}

fn default_agent_timeout() -> Dur {
    Dur::from_secs(300)
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            name: String::new(),
            version: None,
            description: None,
            providers: Vec::new(),
            system_prompt: None,
            tools: Vec::new(),
            max_steps: default_max_steps(),
            timeout: default_agent_timeout(),
            budget_usd: None,
            budget_alerts: Vec::new(),
            memory: Memory::default(),
            retry: None,
            circuit_breaker: None,
            tests: Vec::new(),
            on_finish: None,
            max_input_bytes: default_max_input_bytes(),
            guardrails: None,
            output_schema: None,
            output_repair_attempts: default_output_repair_attempts(),
            output_fallback: None,
        }
    }
}

/// `agents[].memory`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Memory {
    /// Which messages of the conversation are sent to the model.
    pub strategy: MemoryStrategy,
    /// With `window`: how many of the latest messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_messages: Option<u32>,
}

/// `agents[].memory.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryStrategy {
    /// The latest `max_messages` messages.
    Window,
    /// The whole conversation.
    #[default]
    All,
}
