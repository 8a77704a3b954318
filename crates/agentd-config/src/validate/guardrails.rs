//! `[guardrails]`, each agent's `guardrails`, `max_input_bytes` and output
//! contract (`output_schema`, `output_repair_attempts`, `output_fallback`).

use super::{Invalid, invalid};
use crate::guardrails::{GuardrailsConfig, InjectionConfig, PiiAction, PiiScope};
use crate::keypath::KeyPath;
use crate::types::Config;
use agentd_guard::schema::Schema;

/// Repairs an agent may ask for: each is a model call.
const MAX_REPAIRS: u32 = 10;

pub(super) fn check(config: &Config) -> Result<(), Invalid> {
    check_guardrails(config, &config.guardrails, &KeyPath::of(&["guardrails"]))?;
    for (i, agent) in config.agents.iter().enumerate() {
        let key = KeyPath::of(&["agents"]).index(i);
        if agent.max_input_bytes == 0 {
            invalid(key.key("max_input_bytes"), "expected at least 1, found 0")?;
        }
        if let Some(own) = &agent.guardrails {
            check_guardrails(config, own, &key.key("guardrails"))?;
        }
        if agent.output_repair_attempts > MAX_REPAIRS {
            invalid(
                key.key("output_repair_attempts"),
                format!(
                    "expected at most {MAX_REPAIRS}, found {}",
                    agent.output_repair_attempts
                ),
            )?;
        }
        let Some(schema) = &agent.output_schema else {
            if agent.output_fallback.is_some() {
                invalid(
                    key.key("output_fallback"),
                    "needs `output_schema`: the fallback stands in for an answer that fails it",
                )?;
            }
            continue;
        };
        let compiled = match Schema::compile(schema) {
            Ok(s) => s,
            Err(e) => {
                return invalid(
                    key.key("output_schema"),
                    format!("not a valid JSON Schema: {e}"),
                );
            }
        };
        if let Some(fallback) = &agent.output_fallback {
            let problems = compiled.violations(fallback);
            if !problems.is_empty() {
                invalid(
                    key.key("output_fallback"),
                    format!("does not satisfy `output_schema`: {}", problems.join("; ")),
                )?;
            }
        }
    }
    Ok(())
}

fn check_guardrails(config: &Config, g: &GuardrailsConfig, key: &KeyPath) -> Result<(), Invalid> {
    if let Some(injection) = &g.injection {
        check_injection(config, injection, &key.key("injection"))?;
    }
    if let Some(pii) = &g.pii {
        let key = key.key("pii");
        if pii.detect.is_empty() {
            invalid(key.key("detect"), "no kind to detect: name at least one")?;
        }
        let redacts = pii.action == PiiAction::Redact;
        if redacts && pii.scope.is_empty() {
            invalid(
                key.key("scope"),
                "redaction applies nowhere: name at least one scope",
            )?;
        }
        if redacts
            && pii.restore
            && pii.scope.contains(&PiiScope::Journal)
            && config.store.encryption_key_env.is_none()
        {
            invalid(
                key.key("restore"),
                "keeping the values to restore them needs `store.encryption_key_env` (they \
                 would be stored in plain text); set it, or `restore = false`",
            )?;
        }
    }
    Ok(())
}

fn check_injection(config: &Config, i: &InjectionConfig, key: &KeyPath) -> Result<(), Invalid> {
    if i.detectors.is_empty() && i.detector.is_none() {
        invalid(
            key.key("detectors"),
            "no detector would run: name built-in detectors or set `detector`",
        )?;
    }
    if let Some(classifier) = &i.detector {
        let key = key.key("detector");
        if !config.providers.contains_key(&classifier.provider) {
            let declared: Vec<&str> = config.providers.keys().map(String::as_str).collect();
            invalid(
                key.key("provider"),
                format!(
                    "unknown provider {:?} (declared: {})",
                    classifier.provider,
                    declared.join(", ")
                ),
            )?;
        }
        let t = classifier.threshold;
        if !(t > 0.0 && t <= 1.0) {
            invalid(
                key.key("threshold"),
                format!("expected a score in (0, 1], found {t}"),
            )?;
        }
    }
    Ok(())
}
