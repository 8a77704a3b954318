//! The config texts the bench serves: the W1 agents, and the `[auth]`
//! and `[rate_limit]` tables its flags turn on.

use crate::RunArgs;

/// The `[auth]` table `--api-key` asks for, or nothing.
pub(crate) fn auth_text(args: &RunArgs) -> &'static str {
    if args.api_key {
        "\n[auth]\nmode = \"api_key\"\n"
    } else {
        ""
    }
}

/// Limits no W1 run comes near: 100 million requests a minute per
/// principal and tenant, a million active runs per tenant.
const HIGH_LIMITS: &str = "per_principal_rpm = 100000000\nper_tenant_rpm = 100000000\n\
                           max_concurrent_runs_per_tenant = 1000000\n";

/// The `[rate_limit]` table `--rate-limits` asks for, or nothing.
pub(crate) fn rate_limit_text(args: &RunArgs) -> String {
    if !args.rate_limits {
        return String::new();
    }
    let backend = match &args.rate_limit_redis {
        Some(url) => format!("backend = \"redis\"\nredis_url = \"{url}\"\n"),
        None => String::new(),
    };
    format!("\n[rate_limit]\n{HIGH_LIMITS}{backend}")
}

/// The `[guardrails]` table `--guardrails` asks for, or nothing: the
/// injection heuristics on the input and every tool result, and PII
/// redaction of the journal, the model's requests and the logs.
pub(crate) fn guardrails_text(args: &RunArgs) -> &'static str {
    if args.guardrails {
        "
[guardrails]
injection = { on = [\"input\", \"tool_result\"], action = \"block\" }
         pii = { action = \"redact\", scope = [\"model\", \"journal\", \"logs\"], restore = false }
"
    } else {
        ""
    }
}

/// The W1 agent and its pausing twin (echo replaced by ask_human).
const AGENTS: &str = r#"
[providers.w1]
kind = "mock"
script = [
  { tool = "echo", args = { text = "{{input}}" } },
  { reply = "done: {{tool_result}}" },
]

[providers.w1_pause]
kind = "mock"
script = [
  { tool = "ask_human", args = { question = "{{input}}" } },
  { reply = "done: {{tool_result}}" },
]

[[agents]]
name = "w1"
providers = ["w1"]
tools = ["echo"]

[[agents]]
name = "w1_pause"
providers = ["w1_pause"]
tools = ["ask_human"]
"#;

/// The bench config; `queue_extra` is added to its `[queue]` section.
pub(crate) fn config_text(url: &str, workers: usize, port: u16, queue_extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[store]\nurl = \"{url}\"\n\n\
         [queue]\nworkers = {workers}\n{queue_extra}\n{AGENTS}"
    )
}
