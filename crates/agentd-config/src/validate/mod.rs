//! Structural checks that serde cannot express (ranges, cross-references).

use std::net::SocketAddr;

mod budgets;
use budgets::{check_alerts, check_principals, check_tenants};
mod guardrails;
mod rollout;
mod schedules;
mod tools;
mod webhooks;

use crate::access::{AuthMode, JWT_ALGORITHMS, RateLimitBackend};
use crate::keypath::KeyPath;
use crate::types::{AgentConfig, Config, MemoryStrategy, ProviderConfig, ProviderKind};

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

/// Checks every section; the first problem found is the error.
pub(crate) fn check(config: &Config) -> Result<(), Invalid> {
    check_server(config)?;
    check_auth(config)?;
    check_rate_limit(config)?;
    check_store(config)?;
    check_queue(config)?;
    check_providers(config)?;
    check_pricing(config)?;
    check_tenants(config)?;
    check_principals(config)?;
    check_agents(config)?;
    check_telemetry(config)?;
    rollout::check(config)?;
    schedules::check(config)?;
    webhooks::check(config)?;
    guardrails::check(config)?;
    tools::check(config)
}

/// `[telemetry]`: the collector's base URL, over HTTP (OTLP/HTTP).
fn check_telemetry(config: &Config) -> Result<(), Invalid> {
    let Some(endpoint) = &config.telemetry.otlp_endpoint else {
        return Ok(());
    };
    let key = KeyPath::of(&["telemetry", "otlp_endpoint"]);
    match url::Url::parse(endpoint) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => invalid(
            key,
            format!(
                "expected an OTLP/HTTP collector URL such as \"http://127.0.0.1:4318\", found {endpoint:?}"
            ),
        ),
    }
}

/// `[server]`.
fn check_server(config: &Config) -> Result<(), Invalid> {
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
    check_tls(config)
}

/// `server.tls_*`: both or neither (whether the files load is checked when
/// the server starts, which reports the same key).
fn check_tls(config: &Config) -> Result<(), Invalid> {
    let server = &config.server;
    match (&server.tls_cert, &server.tls_key) {
        (Some(_), None) => invalid(
            KeyPath::of(&["server", "tls_key"]),
            "is required when `server.tls_cert` is set (the certificate's PEM private key)",
        ),
        (None, Some(_)) => invalid(
            KeyPath::of(&["server", "tls_cert"]),
            "is required when `server.tls_key` is set (the PEM certificate chain)",
        ),
        _ => Ok(()),
    }
}

/// `[auth]`.
fn check_auth(config: &Config) -> Result<(), Invalid> {
    let auth = &config.auth;
    for (i, principal) in auth.operators.iter().enumerate() {
        if principal.trim().is_empty() {
            invalid(
                KeyPath::of(&["auth", "operators"]).index(i),
                "must name a principal",
            )?;
        }
    }
    let Some(jwt) = &auth.jwt else {
        if auth.mode == AuthMode::Jwt {
            invalid(
                KeyPath::of(&["auth", "jwt"]),
                "is required when `auth.mode = \"jwt\"`: at least `issuer`, `audience` and `jwks_url` or `jwks_file`",
            )?;
        }
        return Ok(());
    };
    let key = |k: &str| KeyPath::of(&["auth", "jwt", k]);
    if jwt.issuer.trim().is_empty() {
        invalid(key("issuer"), "must not be empty")?;
    }
    let audience = jwt.audience.to_vec();
    if audience.is_empty() || audience.iter().any(|a| a.trim().is_empty()) {
        invalid(
            key("audience"),
            "expected a non-empty string or list of strings",
        )?;
    }
    match (&jwt.jwks_url, &jwt.jwks_file) {
        (None, None) => invalid(
            KeyPath::of(&["auth", "jwt"]),
            "needs `jwks_url` or `jwks_file`: where the signing keys are",
        )?,
        (Some(_), Some(_)) => invalid(
            key("jwks_file"),
            "cannot be set together with `jwks_url`; choose one",
        )?,
        (Some(url), None) => check_jwks_url(url).or_else(|why| invalid(key("jwks_url"), why))?,
        (None, Some(_)) => {}
    }
    if jwt.algorithms.is_empty() {
        invalid(key("algorithms"), "must list at least one algorithm")?;
    }
    for (i, alg) in jwt.algorithms.iter().enumerate() {
        if !JWT_ALGORITHMS.contains(&alg.as_str()) {
            let why = if alg.eq_ignore_ascii_case("none")
                || alg.to_ascii_uppercase().starts_with("HS")
            {
                format!(
                    "{alg:?} is refused: an unsigned or HMAC token could be forged by anyone holding the public key; "
                )
            } else {
                format!("unknown algorithm {alg:?}; ")
            };
            invalid(
                key("algorithms").index(i),
                format!("{why}expected one of {}", JWT_ALGORITHMS.join(", ")),
            )?;
        }
    }
    for name in ["tenant_claim", "principal_claim", "roles_claim"] {
        let value = match name {
            "tenant_claim" => &jwt.tenant_claim,
            "principal_claim" => &jwt.principal_claim,
            _ => &jwt.roles_claim,
        };
        if value.split('.').any(|seg| seg.is_empty()) {
            invalid(
                key(name),
                format!(
                    "expected a claim name or a dotted path like \"realm_access.roles\", found {value:?}"
                ),
            )?;
        }
    }
    Ok(())
}

/// A JWKS URL is fetched with no credential, so only TLS keeps a network
/// attacker from swapping the keys; plain http is allowed to loopback only.
fn check_jwks_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("expected a URL, found {url:?}: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "must be https (plain http only to a loopback address), found {url:?}"
                ))
            }
        }
        other => Err(format!("expected an https URL, found scheme {other:?}")),
    }
}

/// `[rate_limit]`.
fn check_rate_limit(config: &Config) -> Result<(), Invalid> {
    let Some(limits) = &config.rate_limit else {
        return Ok(());
    };
    let key = |k: &str| KeyPath::of(&["rate_limit", k]);
    for (name, value) in [
        ("per_principal_rpm", limits.per_principal_rpm),
        ("per_tenant_rpm", limits.per_tenant_rpm),
        (
            "max_concurrent_runs_per_tenant",
            limits.max_concurrent_runs_per_tenant,
        ),
    ] {
        if value == Some(0) {
            invalid(key(name), "must be at least 1 (leave it out for no limit)")?;
        }
    }
    match (limits.backend, &limits.redis_url) {
        (RateLimitBackend::Redis, None) => invalid(
            key("redis_url"),
            "is required when `backend = \"redis\"`, e.g. \"redis://127.0.0.1:6379\"",
        )?,
        (RateLimitBackend::Redis, Some(url))
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) =>
        {
            invalid(
                key("redis_url"),
                format!("expected a URL starting with `redis://` or `rediss://`, found {url:?}"),
            )?
        }
        (RateLimitBackend::Local, Some(_)) => invalid(
            key("redis_url"),
            "is only used with `backend = \"redis\"`; set the backend or remove the URL",
        )?,
        _ => {}
    }
    Ok(())
}

/// `[store]`.
fn check_store(config: &Config) -> Result<(), Invalid> {
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

    if config.store.checkpoint_ttl.is_some_and(|ttl| ttl.is_zero()) {
        invalid(
            KeyPath::of(&["store", "checkpoint_ttl"]),
            "must be longer than 0s (leave it out to keep finished runs)",
        )?;
    }
    if config
        .store
        .encryption_key_env
        .as_deref()
        .is_some_and(|v| v.trim().is_empty())
    {
        invalid(
            KeyPath::of(&["store", "encryption_key_env"]),
            "must name the environment variable that holds the keyring",
        )?;
    }
    Ok(())
}

/// `[queue]`.
fn check_queue(config: &Config) -> Result<(), Invalid> {
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
    Ok(())
}

/// `[providers.NAME]`.
fn check_providers(config: &Config) -> Result<(), Invalid> {
    for (name, provider) in &config.providers {
        if provider.kind == ProviderKind::Mock && provider.script.is_empty() {
            invalid(
                KeyPath::of(&["providers", name, "script"]),
                "a mock provider needs a non-empty `script`",
            )?;
        }
        if provider.kind != ProviderKind::Mock && provider.record.is_some() {
            invalid(
                KeyPath::of(&["providers", name, "record"]),
                "only a mock provider records its requests",
            )?;
        }
        check_provider(name, provider)?;
    }
    Ok(())
}

/// `[pricing.MODEL]`.
fn check_pricing(config: &Config) -> Result<(), Invalid> {
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
    Ok(())
}

/// `[[agents]]`: each agent, and that names are unique.
fn check_agents(config: &Config) -> Result<(), Invalid> {
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
    for (i, agent) in config.agents.iter().enumerate() {
        let key = KeyPath::of(&["agents"]).index(i);
        check_agent_refs(config, &key, agent, &declared)?;
        check_agent_limits(&key, agent)?;
    }
    Ok(())
}

/// An agent's name (valid; uniqueness is checked with versions, in
/// `rollout.rs`) and its providers (declared); `declared` lists the
/// providers for messages.
fn check_agent_refs(
    config: &Config,
    agent_key: &KeyPath,
    agent: &AgentConfig,
    declared: &str,
) -> Result<(), Invalid> {
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
    Ok(())
}

/// An agent's limits: steps, timeout, budget, retry, breaker and memory.
fn check_agent_limits(agent_key: &KeyPath, agent: &AgentConfig) -> Result<(), Invalid> {
    let key = |field: &str| agent_key.key(field);
    if agent.max_steps < 1 {
        invalid(key("max_steps"), "must be at least 1")?;
    }
    if agent
        .description
        .as_deref()
        .is_some_and(|d| d.trim().is_empty())
    {
        invalid(
            key("description"),
            "must not be empty (leave it out for the default)",
        )?;
    }
    if agent.timeout.is_zero() {
        invalid(key("timeout"), "must be longer than 0s")?;
    }
    if let Some(budget) = agent.budget_usd
        && !non_negative(budget)
    {
        invalid(key("budget_usd"), format!("must be >= 0, found {budget}"))?;
    }
    check_alerts(
        key("budget_alerts"),
        &agent.budget_alerts,
        agent.budget_usd.is_some(),
    )?;
    if let Some(retry) = &agent.retry {
        if retry.max_attempts < 1 {
            invalid(key("retry").key("max_attempts"), "must be at least 1")?;
        }
        if retry.initial > retry.max {
            invalid(
                key("retry").key("initial"),
                format!(
                    "must not exceed `retry.max` ({} > {})",
                    retry.initial, retry.max
                ),
            )?;
        }
    }
    if let Some(breaker) = &agent.circuit_breaker {
        if breaker.failures < 1 {
            invalid(key("circuit_breaker").key("failures"), "must be at least 1")?;
        }
        if breaker.reset.is_zero() {
            invalid(
                key("circuit_breaker").key("reset"),
                "must be longer than 0s",
            )?;
        }
    }
    if agent.memory.strategy == MemoryStrategy::Window && agent.memory.max_messages.unwrap_or(0) < 1
    {
        invalid(
            key("memory").key("max_messages"),
            "strategy `window` needs `max_messages` of at least 1",
        )?;
    }
    Ok(())
}

/// Checks of one `[providers.NAME]` table beyond the mock's script.
fn check_provider(name: &str, provider: &ProviderConfig) -> Result<(), Invalid> {
    let key = |field: &str| KeyPath::of(&["providers", name, field]);
    if let Some(timeout) = provider.timeout
        && timeout.is_zero()
    {
        invalid(key("timeout"), "must be longer than 0s")?;
    }
    if provider.kind == ProviderKind::Mock {
        return Ok(());
    }
    let kind = provider.kind;
    if !provider.script.is_empty() {
        invalid(
            key("script"),
            format!("only a mock provider has a `script` (this one is kind \"{kind}\")"),
        )?;
    }
    if provider
        .model
        .as_deref()
        .is_none_or(|m| m.trim().is_empty())
    {
        invalid(
            key("model"),
            format!("a provider of kind \"{kind}\" needs `model`, the model name sent to the API"),
        )?;
    }
    if let Some(url) = &provider.base_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        invalid(
            key("base_url"),
            format!("expected a URL starting with `http://` or `https://`, found {url:?}"),
        )?;
    }
    if let Some(var) = &provider.api_key_env
        && var.trim().is_empty()
    {
        invalid(
            key("api_key_env"),
            "expected the name of an environment variable, found an empty string",
        )?;
    }
    // A local OpenAI-compatible server may need no key; the hosted APIs do.
    let hosted = provider.base_url.is_none() || kind == ProviderKind::Anthropic;
    if hosted && provider.api_key_env.is_none() {
        let api = match kind {
            ProviderKind::Anthropic => "the Anthropic API",
            _ => "the OpenAI API (the default `base_url`)",
        };
        invalid(
            key("api_key_env"),
            format!("{api} needs `api_key_env`, the environment variable holding the API key"),
        )?;
    }
    if provider.max_tokens == Some(0) {
        invalid(key("max_tokens"), "must be at least 1")?;
    }
    Ok(())
}
