//! `[guardrails]` (the default of every agent) and `agents[].guardrails`
//! (an agent's own, replacing the default's sections it sets): prompt-
//! injection defence and PII protection, enforced by the engine at step
//! boundaries. Input hygiene needs no config: it is always on, bounded by
//! `agents[].max_input_bytes`.

use agentd_guard::injection::Detector;
use agentd_guard::pii::PiiKind;
use serde::{Deserialize, Serialize};

/// `[guardrails]` or `agents[].guardrails`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardrailsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injection: Option<InjectionConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pii: Option<PiiConfig>,
}

impl GuardrailsConfig {
    pub(crate) fn is_default(&self) -> bool {
        *self == GuardrailsConfig::default()
    }

    /// An agent's guardrails: its own sections, else the default's.
    pub fn for_agent(&self, own: Option<&GuardrailsConfig>) -> GuardrailsConfig {
        let own = own.cloned().unwrap_or_default();
        GuardrailsConfig {
            injection: own.injection.or_else(|| self.injection.clone()),
            pii: own.pii.or_else(|| self.pii.clone()),
        }
    }
}

/// Where the injection guard looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardSource {
    /// The run's input (and the context seeded with it).
    Input,
    /// What each tool call returns: a fetched page, a file, an MCP result.
    ToolResult,
}

/// What a tripped injection guard does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectionAction {
    /// Fail the run with `guardrail_blocked`.
    #[default]
    Block,
    /// Keep the text; record an audit event and a metric.
    Flag,
    /// Hand the text to the model as inert, quoted data, with a notice.
    Quote,
}

/// `guardrails.injection`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InjectionConfig {
    /// What to scan (default: both).
    pub on: Vec<GuardSource>,
    pub action: InjectionAction,
    /// Built-in heuristics to run (default: all of them; `[]` runs none,
    /// leaving only a classifier).
    pub detectors: Vec<Detector>,
    /// A provider asked to classify the text as well.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector: Option<ClassifierConfig>,
}

impl Default for InjectionConfig {
    fn default() -> Self {
        InjectionConfig {
            on: vec![GuardSource::Input, GuardSource::ToolResult],
            action: InjectionAction::default(),
            detectors: Detector::ALL.to_vec(),
            detector: None,
        }
    }
}

/// `guardrails.injection.detector`: a model that scores text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// A `[providers.NAME]`. It is asked for `{"score": 0..1}`.
    pub provider: String,
    /// Scores at or above this trip the guard.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_threshold() -> f64 {
    0.8
}

impl crate::Config {
    /// The PII kinds log lines are masked of: those of every guardrail
    /// (the default's and each agent's) with `logs` in its scope.
    pub fn pii_log_kinds(&self) -> Vec<PiiKind> {
        let mut guards: Vec<PiiConfig> = self.guardrails.pii.iter().cloned().collect();
        for a in &self.agents {
            guards.extend(self.guardrails.for_agent(a.guardrails.as_ref()).pii);
        }
        let mut kinds: Vec<PiiKind> = guards
            .iter()
            .filter(|p| p.scope.contains(&PiiScope::Logs))
            .flat_map(|p| p.detect.iter().copied())
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

/// What the PII guard does with a value it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiAction {
    /// Replace it with a placeholder (`[EMAIL_1]`).
    #[default]
    Redact,
    /// Fail the run with `guardrail_blocked`.
    Block,
    /// Keep it; record an audit event and a metric.
    Flag,
}

/// Where redaction applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiScope {
    /// What is sent to a model provider.
    Model,
    /// What is stored: the run's input and tool results (and so what the
    /// model sees, too).
    Journal,
    /// Log lines.
    Logs,
}

/// `guardrails.pii`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// What to look for (default: every kind).
    pub detect: Vec<PiiKind>,
    pub action: PiiAction,
    /// Where redaction applies (default: all three).
    pub scope: Vec<PiiScope>,
    /// Put the real values back into the final output and into tool
    /// calls' arguments. With `journal` in scope this keeps the values, so
    /// it needs `store.encryption_key_env`.
    pub restore: bool,
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig {
            detect: PiiKind::ALL.to_vec(),
            action: PiiAction::default(),
            scope: vec![PiiScope::Model, PiiScope::Journal, PiiScope::Logs],
            restore: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    const AGENT: &str = "[providers.m]\nkind = \"mock\"\nscript = [{ reply = \"hi\" }]\n\n[[agents]]\nname = \"a\"\nproviders = [\"m\"]\n";

    fn error_of(toml: &str) -> (Option<String>, String) {
        let e = Config::from_toml_str(toml).unwrap_err();
        (e.key().map(str::to_owned), e.to_string())
    }

    #[test]
    fn an_agent_inherits_the_default_sections_it_does_not_set() {
        let c = Config::from_toml_str(&format!(
            "{AGENT}guardrails = {{ injection = {{ action = \"quote\", on = [\"tool_result\"] }} }}\n\
             [guardrails]\ninjection = {{ detectors = [\"override\"] }}\n"
        ))
        .unwrap();
        let own = c.guardrails.for_agent(c.agents[0].guardrails.as_ref());
        let injection = own.injection.unwrap();
        assert_eq!(injection.action, InjectionAction::Quote);
        assert_eq!(injection.on, [GuardSource::ToolResult]);
        assert_eq!(injection.detectors, Detector::ALL.to_vec());
        let inherited = c.guardrails.for_agent(None).injection.unwrap();
        assert_eq!(inherited.detectors, [Detector::Override]);
        assert_eq!(inherited.action, InjectionAction::Block);
        assert_eq!(c.agents[0].max_input_bytes, 256 * 1024);
        assert_eq!(c.agents[0].output_repair_attempts, 2);
    }

    #[test]
    fn mistakes_name_their_key() {
        for (extra, key, needle) in [
            (
                "[guardrails]\ninjection = { detectors = [\"nope\"] }\n",
                None,
                "expected one of: override, reveal",
            ),
            (
                "[guardrails]\ninjection = { detectors = [] }\n",
                Some("guardrails.injection.detectors"),
                "no detector would run",
            ),
            (
                "[guardrails]\ninjection = { detector = { provider = \"ghost\" } }\n",
                Some("guardrails.injection.detector.provider"),
                "unknown provider",
            ),
            (
                "[guardrails]\ninjection = { detector = { provider = \"m\", threshold = 1.5 } }\n",
                Some("guardrails.injection.detector.threshold"),
                "(0, 1]",
            ),
            (
                "max_input_bytes = 0\n",
                Some("agents[0].max_input_bytes"),
                "at least 1",
            ),
            (
                "output_schema = { type = \"nonsense\" }\n",
                Some("agents[0].output_schema"),
                "not a valid JSON Schema",
            ),
            (
                "output_fallback = { a = 1 }\n",
                Some("agents[0].output_fallback"),
                "needs `output_schema`",
            ),
            (
                "output_schema = { type = \"object\", required = [\"answer\"] }\noutput_fallback = { a = 1 }\n",
                Some("agents[0].output_fallback"),
                "does not satisfy",
            ),
            (
                "output_repair_attempts = 11\n",
                Some("agents[0].output_repair_attempts"),
                "at most 10",
            ),
        ] {
            let (k, message) = error_of(&format!("{AGENT}{extra}"));
            if let Some(key) = key {
                assert_eq!(k.as_deref(), Some(key), "{extra}: {message}");
            }
            assert!(message.contains(needle), "{extra}: {message}");
        }
    }

    #[test]
    fn log_lines_are_masked_of_the_kinds_of_guardrails_with_logs_in_scope() {
        let c = Config::from_toml_str(&format!(
            "{AGENT}guardrails = {{ pii = {{ detect = [\"card\", \"email\"], restore = false }} }}\n\
             [[agents]]\nname = \"b\"\nproviders = [\"m\"]\n\
             guardrails = {{ pii = {{ detect = [\"ip\"], scope = [\"model\"] }} }}\n"
        ))
        .unwrap();
        assert_eq!(c.pii_log_kinds(), [PiiKind::Email, PiiKind::Card]);
        assert!(
            Config::from_toml_str(AGENT)
                .unwrap()
                .pii_log_kinds()
                .is_empty()
        );
    }
}
