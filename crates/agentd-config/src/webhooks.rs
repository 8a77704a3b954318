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
        }
    }
}

impl WebhooksConfig {
    pub(crate) fn is_default(&self) -> bool {
        *self == WebhooksConfig::default()
    }
}
