//! `[webhooks]`: completion webhooks, the POSTs agentd makes when a run
//! succeeds, fails, is cancelled, dies or pauses (a run's `callback_url`,
//! an agent's `on_finish`).

use serde::{Deserialize, Serialize};

use crate::dur::Dur;

/// `[webhooks]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Environment variable holding the `whsec_` secret that signs
    /// deliveries to a `callback_url` or an `on_finish` URL (an `on_finish`
    /// naming a webhook tool uses that tool's). Unset: runs may not name a
    /// `callback_url`, and `on_finish` may only name a webhook tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Hosts, IPs or CIDRs exempt from the SSRF guard for those URLs (as a
    /// webhook tool's `allow`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Limit of one delivery attempt.
    pub timeout: Dur,
    /// Attempts of one delivery before it is `failed`.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles each time.
    pub backoff_initial: Dur,
    /// Longest delay between attempts.
    pub backoff_max: Dur,
    /// Where budget alerts are POSTed (`budget.alert`), signed with
    /// `secret_env`, through the same outbox as completion webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts_url: Option<String>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            secret_env: None,
            allow: Vec::new(),
            timeout: Dur::from_secs(10),
            max_attempts: 10,
            backoff_initial: Dur::from_secs(5),
            backoff_max: Dur::from_secs(3600),
            alerts_url: None,
        }
    }
}

impl WebhooksConfig {
    pub(crate) fn is_default(&self) -> bool {
        *self == WebhooksConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    const AGENT: &str = "[providers.m]\nkind = \"mock\"\nscript = [{ reply = \"hi\" }]\n\n[[agents]]\nname = \"a\"\nproviders = [\"m\"]\n";

    fn key_of(toml: &str) -> Option<String> {
        Config::from_toml_str(toml)
            .err()
            .and_then(|e| e.key().map(str::to_owned))
    }

    #[test]
    fn defaults_and_keys() {
        let c = Config::from_toml_str(AGENT).unwrap();
        assert_eq!(c.webhooks.max_attempts, 10);
        assert_eq!(c.webhooks.timeout.get().as_secs(), 10);
        assert_eq!(c.webhooks.secret_env, None);
        let c = Config::from_toml_str(&format!(
            "{AGENT}on_finish = \"https://example.com/hook\"\n\
             [webhooks]\nsecret_env = \"S\"\nmax_attempts = 3\nbackoff_initial = \"100ms\"\n"
        ))
        .unwrap();
        assert_eq!(c.webhooks.max_attempts, 3);
        assert_eq!(c.webhooks.backoff_initial.get().as_millis(), 100);
        assert_eq!(
            c.agents[0].on_finish.as_deref(),
            Some("https://example.com/hook")
        );
    }

    #[test]
    fn on_finish_names_a_webhook_tool_or_a_signed_url() {
        let tool = "[tools.notify]\nkind = \"webhook\"\nurl = \"https://example.com/t\"\nsecret_env = \"S\"\n";
        assert!(Config::from_toml_str(&format!("{AGENT}on_finish = \"notify\"\n{tool}")).is_ok());
        // A URL needs the [webhooks] secret; anything else is refused.
        assert_eq!(
            key_of(&format!(
                "{AGENT}on_finish = \"https://example.com/hook\"\n"
            ))
            .as_deref(),
            Some("agents[0].on_finish")
        );
        assert_eq!(
            key_of(&format!(
                "{AGENT}on_finish = \"ghost\"\n[webhooks]\nsecret_env = \"S\"\n"
            ))
            .as_deref(),
            Some("agents[0].on_finish")
        );
        assert_eq!(
            key_of(&format!("{AGENT}[webhooks]\nmax_attempts = 0\n")).as_deref(),
            Some("webhooks.max_attempts")
        );
        assert_eq!(
            key_of(&format!("{AGENT}[webhooks]\nbackoff_initial = \"2h\"\n")).as_deref(),
            Some("webhooks.backoff_initial")
        );
        assert_eq!(
            key_of(&format!("{AGENT}[webhooks]\nretries = 3\n")).as_deref(),
            Some("webhooks.retries")
        );
    }
}
