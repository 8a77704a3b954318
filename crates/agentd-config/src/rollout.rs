//! `[rollout."AGENT"]`: how new runs of a versioned agent are split between
//! its stable version and a canary.

use serde::{Deserialize, Serialize};

/// `[rollout."AGENT"]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// The version most runs start on.
    pub stable: String,
    /// The version under trial, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<String>,
    /// Share of new runs, 0–100, that start on the canary. The split is by
    /// conversation when the run has one (a conversation stays on one
    /// version), else by run.
    #[serde(default)]
    pub percent: f64,
    /// Sends new runs back to stable when the canary fails too often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_rollback: Option<AutoRollback>,
}

/// `[rollout."AGENT"].auto_rollback`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoRollback {
    /// How many of the canary's latest finished runs are judged; no verdict
    /// before that many have finished.
    #[serde(default = "default_window")]
    pub window: u32,
    /// Share of those runs, 0–1, that may end `failed` or `dead` before the
    /// canary is rolled back (more than this rolls back).
    pub max_failure_rate: f64,
}

fn default_window() -> u32 {
    20
}

impl RolloutConfig {
    /// Whether any new run goes to the canary.
    pub fn has_canary(&self) -> bool {
        self.canary.is_some() && self.percent > 0.0
    }

    /// A stable digest of the split this config asks for. An operator's
    /// promote or rollback applies to the split it was made on; a config
    /// that asks for another one starts afresh.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}",
            self.stable,
            self.canary.as_deref().unwrap_or(""),
            self.percent
        )
    }
}
