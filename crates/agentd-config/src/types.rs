//! The typed configuration tree, as written in `agentd.toml`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::access::{AuthConfig, RateLimitConfig};
use crate::dur::Dur;
use crate::tooling::{McpConfig, PolicyConfig, ToolConfig};

/// The whole `agentd.toml`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: the HTTP listener.
    pub server: ServerConfig,
    /// `[store]`: where runs, journals and the queue live.
    pub store: StoreConfig,
    /// `[queue]`: workers, leases and retries.
    pub queue: QueueConfig,
    /// `[auth]`: how callers are identified.
    pub auth: AuthConfig,
    /// `[providers.NAME]`: model providers, by name.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// `[pricing."MODEL"]`: USD prices per million tokens, by model name.
    pub pricing: BTreeMap<String, Pricing>,
    /// `[[agents]]`: the declared agents, in file order.
    pub agents: Vec<AgentConfig>,
    /// `[tools.NAME]`: built-in tool settings and webhook tools, by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, ToolConfig>,
    /// `[[mcp]]`: MCP servers whose tools agents may list as `mcp:<name>/<tool>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mcp: Vec<McpConfig>,
    /// `[[policies]]`: which roles may call which tools; none allows all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyConfig>,
    /// `[tenants."ID"]`: per-tenant limits, by tenant id.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tenants: BTreeMap<String, BudgetConfig>,
    /// `[principals."ID"]`: per-principal limits, by principal id; the
    /// entry `"*"` is every principal without one of its own. A
    /// principal's spending is counted in each tenant apart.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub principals: BTreeMap<String, BudgetConfig>,
    /// `[rate_limit]`: request rates and active runs per caller; absent
    /// means no limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitConfig>,
    /// `[telemetry]`: where traces go.
    #[serde(skip_serializing_if = "TelemetryConfig::is_default")]
    pub telemetry: TelemetryConfig,
    /// `[rollout."AGENT"]`: which version of a versioned agent new runs
    /// start on, by agent name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rollout: BTreeMap<String, crate::rollout::RolloutConfig>,
    /// `[[schedules]]`: agents started on a cron expression.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<crate::schedule::ScheduleConfig>,
    /// `[webhooks]`: completion webhooks' secret, guard and retries.
    #[serde(skip_serializing_if = "crate::webhooks::WebhooksConfig::is_default")]
    pub webhooks: crate::webhooks::WebhooksConfig,
    /// `[guardrails]`: the guardrails of every agent that sets none of
    /// its own.
    #[serde(skip_serializing_if = "crate::guardrails::GuardrailsConfig::is_default")]
    pub guardrails: crate::guardrails::GuardrailsConfig,
}

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP collector (`http://127.0.0.1:4318`); traces
    /// are sent to its `/v1/traces`. Unset (and no `OTEL_EXPORTER_OTLP_*`
    /// endpoint variable): no traces are recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    fn is_default(&self) -> bool {
        *self == TelemetryConfig::default()
    }
}

/// The `[principals."*"]` entry: the budget of every principal without an
/// entry of its own.
pub const ANY_PRINCIPAL: &str = "*";

impl Config {
    /// The budget `principal` spends against: its own entry, else `"*"`;
    /// `None` without either or when neither sets `budget_usd`.
    pub fn principal_budget(&self, principal: &str) -> Option<&BudgetConfig> {
        self.principals
            .get(principal)
            .or_else(|| self.principals.get(ANY_PRINCIPAL))
            .filter(|b| b.budget_usd.is_some())
    }
}

/// `[tenants."ID"]` and `[principals."ID"]`: the spending limit of one
/// tenant, or of one principal within each tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// USD the tenant's (or principal's) runs may spend on models and
    /// priced tools per `period`, across all agents and processes; `None`
    /// means no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// Length of a budget period; periods are aligned to the Unix epoch
    /// (`1d` resets at 00:00 UTC).
    pub period: Dur,
    /// Shares of `budget_usd` (in (0, 1]) whose crossing in a period is
    /// announced once: an audit record `budget_alert`, a metric, a log line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<f64>,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            budget_usd: None,
            period: Dur::from_secs(86_400),
            alerts: Vec::new(),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Socket address to listen on, e.g. `"127.0.0.1:8080"`.
    pub listen: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// How long `POST .../runs` with `wait = true` blocks before answering 202.
    pub wait_timeout: Dur,
    /// PEM certificate chain; with `tls_key`, the API is served over HTTPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Whether `/metrics` needs a credential like the rest of the API.
    pub metrics_auth: bool,
    /// After SIGTERM, how long the listener still accepts connections
    /// while `/ready` answers 503, so load balancers take the process out
    /// before its port refuses them (0: stop accepting at once).
    pub drain_delay: Dur,
    /// A second, plain-HTTP listener serving only `/health`, `/ready` and
    /// `/metrics` without a credential, e.g. `"0.0.0.0:9090"`: how an
    /// `agentd worker`, which serves no API, is probed and scraped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".to_owned(),
            max_body_bytes: 1_048_576,
            wait_timeout: Dur::from_secs(30),
            tls_cert: None,
            tls_key: None,
            metrics_auth: false,
            drain_delay: Dur::from_secs(0),
            metrics_listen: None,
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://...` or `postgres://...` / `postgresql://...`.
    pub url: String,
    /// Name of the environment variable holding the at-rest encryption key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key_env: Option<String>,
    /// Finished runs are purged after this long; `None` keeps them forever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_ttl: Option<Dur>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://agentd.db".to_owned(),
            encryption_key_env: None,
            checkpoint_ttl: None,
        }
    }
}

/// `[queue]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Concurrent runs per process (at least 1). A run spends most of its
    /// life waiting on a model, so the bound is memory, not cores.
    pub workers: u32,
    /// How long a claimed run stays leased without a heartbeat.
    pub lease: Dur,
    /// Attempts before a run goes to the dead-letter list.
    pub max_attempts: u32,
    /// Delay between attempts.
    pub backoff: Backoff,
    /// Identity of this process in leases; `None` means generated at start-up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// How often an idle worker polls the queue.
    pub poll_interval: Dur,
    /// On SIGTERM, how long steps in flight may take to finish before they
    /// are abandoned and their runs handed back to the queue.
    pub shutdown_grace: Dur,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            workers: 256,
            lease: Dur::from_secs(30),
            max_attempts: 5,
            backoff: Backoff::default(),
            node_id: None,
            poll_interval: Dur::from_millis(200),
            shutdown_grace: Dur::from_secs(30),
        }
    }
}

/// `queue.backoff`: exponential backoff between attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Backoff {
    /// Delay before the second attempt.
    pub initial: Dur,
    /// Upper bound of the delay.
    pub max: Dur,
    /// Randomize delays so retries of many runs do not align.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Dur::from_secs(1),
            max: Dur::from_secs(60),
            jitter: true,
        }
    }
}

/// `[providers.NAME]`: one model provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Which implementation; required.
    pub kind: ProviderKind,
    /// Mock only: the scripted replies, one per model call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub script: Vec<ScriptEntry>,
    /// Mock only: artificial latency per call, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Mock only: a file every request is appended to, one JSON line each
    /// (`{"system", "messages"}`), to check what a model was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// Model name sent to the provider and looked up in `[pricing]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Endpoint for OpenAI-compatible / Anthropic providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Name of the environment variable holding the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Per-call timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// OpenAI / Anthropic: the most tokens the model may generate per call
    /// (Anthropic requires one; agentd sends 4096 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            kind: ProviderKind::Mock,
            script: Vec::new(),
            latency_ms: 0,
            record: None,
            model: None,
            base_url: None,
            api_key_env: None,
            timeout: None,
            max_tokens: None,
        }
    }
}

/// `providers.NAME.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProviderKind {
    /// The built-in scripted provider.
    #[serde(rename = "mock")]
    Mock,
    /// OpenAI or any OpenAI-compatible endpoint.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic's Messages API.
    #[serde(rename = "anthropic")]
    Anthropic,
}

impl ProviderKind {
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Mock => "mock",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }

    /// The endpoint used when a provider sets no `base_url`: the vendor's
    /// public API. The mock never calls out; it shares OpenAI's so that
    /// every kind has one.
    pub const fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "https://api.anthropic.com",
            ProviderKind::Mock | ProviderKind::OpenAi => "https://api.openai.com/v1",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a mock provider's `script`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, try_from = "RawScriptEntry")]
pub enum ScriptEntry {
    /// `{ reply = "text" }`: a final answer.
    Reply {
        /// The reply text (templates `{{input}}`, `{{tool_result}}`).
        reply: String,
    },
    /// `{ tool = "name", args = {...} }`: a tool call.
    Tool {
        /// Tool name.
        tool: String,
        /// Tool arguments; `{}` when omitted.
        args: serde_json::Value,
    },
    /// `{ error = "rate_limit" }`: a provider failure.
    Error {
        /// Which failure.
        error: ScriptError,
    },
    /// `{ obey = true }`: a naive model that does what the last tool result
    /// says: a line `CALL <tool> <json args>` in it becomes that tool call
    /// (else it replies `nothing to do`). It disregards such a line inside
    /// text the injection guard quoted as untrusted data, as a model that
    /// heeds the guard's notice would.
    Obey { obey: bool },
}

/// The accepted shape of a script entry, checked field by field so errors
/// name the offending key instead of serde's "did not match any variant".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScriptEntry {
    reply: Option<String>,
    tool: Option<String>,
    args: Option<serde_json::Value>,
    error: Option<ScriptError>,
    obey: Option<bool>,
}

impl TryFrom<RawScriptEntry> for ScriptEntry {
    type Error = String;

    fn try_from(raw: RawScriptEntry) -> Result<ScriptEntry, String> {
        match raw {
            RawScriptEntry {
                reply: Some(reply),
                tool: None,
                args: None,
                error: None,
                obey: None,
            } => Ok(ScriptEntry::Reply { reply }),
            RawScriptEntry {
                reply: None,
                tool: Some(tool),
                args,
                error: None,
                obey: None,
            } => {
                let args = args.unwrap_or_else(|| serde_json::Value::Object(Default::default()));
                if !args.is_object() {
                    return Err("`args` must be a table".to_owned());
                }
                Ok(ScriptEntry::Tool { tool, args })
            }
            RawScriptEntry {
                reply: None,
                tool: None,
                args: None,
                error: Some(error),
                obey: None,
            } => Ok(ScriptEntry::Error { error }),
            RawScriptEntry {
                reply: None,
                tool: None,
                args: None,
                error: None,
                obey: Some(obey),
            } => Ok(ScriptEntry::Obey { obey }),
            _ => Err(
                "a script entry must have exactly one of `reply`, `tool` (with optional \
                 `args`), `error` or `obey`"
                    .to_owned(),
            ),
        }
    }
}

/// `{ error = ... }` in a mock script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptError {
    /// A 429 from the provider.
    RateLimit,
    /// The call timed out.
    Timeout,
    /// A 5xx from the provider.
    Server,
}

/// `[pricing."MODEL"]`: USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// USD per million input (prompt) tokens.
    pub input_per_mtok: f64,
    /// USD per million output (completion) tokens.
    pub output_per_mtok: f64,
}

pub use crate::agent::{
    AgentConfig, AgentTest, CircuitBreakerConfig, Memory, MemoryStrategy, RetryConfig,
};
