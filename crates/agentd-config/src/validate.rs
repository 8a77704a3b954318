//! Structural checks that serde cannot express (ranges, cross-references).

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::keypath::KeyPath;
use crate::types::{Config, MemoryStrategy, ProviderKind};

/// A failed check: the full key and what is wrong; the caller adds the source.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub(crate) key: KeyPath,
    pub(crate) message: String,
}

fn invalid(key: KeyPath, message: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid {
        key,
        message: message.into(),
    })
}

/// `x >= 0`, rejecting NaN (TOML can spell `nan`).
fn non_negative(x: f64) -> bool {
    x >= 0.0 && x.is_finite()
}

fn valid_agent_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub(crate) fn check(config: &Config) -> Result<(), Invalid> {
    let server = &config.server;
    if server.listen.parse::<SocketAddr>().is_err() {
        invalid(
            KeyPath::of(&["server", "listen"]),
            format!(
                "expected a socket address like \"127.0.0.1:8080\", found {:?}",
                server.listen
            ),
        )?;
    }
    if server.max_body_bytes == 0 {
        invalid(
            KeyPath::of(&["server", "max_body_bytes"]),
            "must be at least 1",
        )?;
    }

    let url = &config.store.url;
    if !["sqlite:", "postgres:", "postgresql:"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        invalid(
            KeyPath::of(&["store", "url"]),
            format!(
                "expected a URL starting with `sqlite:`, `postgres:` or `postgresql:`, found {url:?}"
            ),
        )?;
    }

    let queue = &config.queue;
    if queue.workers < 1 {
        invalid(KeyPath::of(&["queue", "workers"]), "must be at least 1")?;
    }
    if queue.max_attempts < 1 {
        invalid(
            KeyPath::of(&["queue", "max_attempts"]),
            "must be at least 1",
        )?;
    }
    if queue.lease.is_zero() {
        invalid(KeyPath::of(&["queue", "lease"]), "must be longer than 0s")?;
    }
    if queue.poll_interval.is_zero() {
        invalid(
            KeyPath::of(&["queue", "poll_interval"]),
            "must be longer than 0s",
        )?;
    }
    if queue.backoff.initial > queue.backoff.max {
        invalid(
            KeyPath::of(&["queue", "backoff", "initial"]),
            format!(
                "must not exceed `queue.backoff.max` ({} > {})",
                queue.backoff.initial, queue.backoff.max
            ),
        )?;
    }

    for (name, provider) in &config.providers {
        if provider.kind == ProviderKind::Mock && provider.script.is_empty() {
            invalid(
                KeyPath::of(&["providers", name, "script"]),
                "a mock provider needs a non-empty `script`",
            )?;
        }
    }

    for (model, pricing) in &config.pricing {
        if !non_negative(pricing.input_per_mtok) {
            invalid(
                KeyPath::of(&["pricing", model, "input_per_mtok"]),
                format!("must be >= 0, found {}", pricing.input_per_mtok),
            )?;
        }
        if !non_negative(pricing.output_per_mtok) {
            invalid(
                KeyPath::of(&["pricing", model, "output_per_mtok"]),
                format!("must be >= 0, found {}", pricing.output_per_mtok),
            )?;
        }
    }

    let declared = if config.providers.is_empty() {
        "none".to_owned()
    } else {
        config
            .providers
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut seen = BTreeSet::new();
    for (i, agent) in config.agents.iter().enumerate() {
        let agent_key = KeyPath::of(&["agents"]).index(i);
        let key = |field: &str| agent_key.key(field);
        if !valid_agent_name(&agent.name) {
            invalid(
                key("name"),
                format!(
                    "expected a non-empty name of letters, digits, `_` and `-`, found {:?}",
                    agent.name
                ),
            )?;
        }
        if !seen.insert(agent.name.as_str()) {
            invalid(
                key("name"),
                format!("duplicate agent name {:?}", agent.name),
            )?;
        }
        if agent.providers.is_empty() {
            invalid(key("providers"), "an agent needs at least one provider")?;
        }
        for provider in &agent.providers {
            if !config.providers.contains_key(provider) {
                invalid(
                    key("providers"),
                    format!("unknown provider {provider:?} (declared: {declared})"),
                )?;
            }
        }
        if agent.max_steps < 1 {
            invalid(key("max_steps"), "must be at least 1")?;
        }
        if agent.timeout.is_zero() {
            invalid(key("timeout"), "must be longer than 0s")?;
        }
        if let Some(budget) = agent.budget_usd
            && !non_negative(budget)
        {
            invalid(key("budget_usd"), format!("must be >= 0, found {budget}"))?;
        }
        if agent.memory.strategy == MemoryStrategy::Window
            && agent.memory.max_messages.unwrap_or(0) < 1
        {
            invalid(
                key("memory").key("max_messages"),
                "strategy `window` needs `max_messages` of at least 1",
            )?;
        }
    }
    Ok(())
}
