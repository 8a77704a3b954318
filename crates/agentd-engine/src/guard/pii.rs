//! The PII guard: redaction with a per-run vault, block and flag.

use agentd_config::guardrails::{PiiAction, PiiConfig, PiiScope};
use agentd_core::{ErrorCode, RunError};
use agentd_guard::pii::{PiiKind, Vault};
use serde_json::Value;

/// `guardrails.pii`, as the engine applies it.
pub(crate) struct PiiGuard {
    kinds: Vec<PiiKind>,
    pub(crate) action: PiiAction,
    model: bool,
    journal: bool,
    pub(crate) restore: bool,
}

impl PiiGuard {
    pub(super) fn new(c: &PiiConfig) -> Self {
        Self {
            kinds: c.detect.clone(),
            action: c.action,
            model: c.scope.contains(&PiiScope::Model),
            journal: c.scope.contains(&PiiScope::Journal),
            restore: c.restore,
        }
    }

    /// Values are replaced before the input and tool results are stored.
    pub(crate) fn redacts_journal(&self) -> bool {
        self.action == PiiAction::Redact && self.journal
    }

    /// Values are replaced in what each model call is sent.
    pub(crate) fn redacts_model(&self) -> bool {
        self.action == PiiAction::Redact && (self.model || self.journal)
    }

    /// The vault is kept in the store (to restore values a redacted
    /// journal no longer holds).
    pub(crate) fn keeps_vault(&self) -> bool {
        self.redacts_journal() && self.restore
    }

    /// The kinds it looks for.
    pub(crate) fn kinds(&self) -> &[PiiKind] {
        &self.kinds
    }

    /// The kinds found in `text`, each once, in order.
    pub(crate) fn found(&self, text: &str) -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = agentd_guard::pii::find(text, &self.kinds)
            .iter()
            .map(|m| m.kind.as_str())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }

    /// `v` with every value in its strings replaced by its placeholder in
    /// `vault`; how many were replaced.
    pub(crate) fn redact(&self, vault: &mut Vault, v: Value) -> (Value, usize) {
        let mut n = 0;
        let out = agentd_core::map_strings(v, &mut |s| {
            let (text, found) = vault.redact(&s, &self.kinds);
            n += found;
            if found > 0 { text } else { s }
        });
        (out, n)
    }
}

/// `v` with `vault`'s placeholders in its strings replaced by their values.
pub(crate) fn restore(vault: &Vault, v: Value) -> Value {
    if vault.is_empty() {
        return v;
    }
    agentd_core::map_strings(v, &mut |s| vault.restore(&s))
}

/// A vault as the store keeps it.
pub(crate) fn vault_json(vault: &Vault) -> Value {
    serde_json::to_value(vault).unwrap_or(Value::Null)
}

/// A vault read back from the store.
pub(crate) fn vault_from(v: Value) -> Result<Vault, RunError> {
    serde_json::from_value::<Vault>(v)
        .map(Vault::reindexed)
        .map_err(|e| {
            RunError::new(
                ErrorCode::Internal,
                format!("the run's PII vault is unreadable: {e}"),
            )
        })
}
