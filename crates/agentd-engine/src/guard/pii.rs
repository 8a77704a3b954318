//! The PII guard: redaction with a per-run vault, block and flag.

use super::source_name;
use agentd_config::guardrails::{GuardSource, PiiAction, PiiConfig, PiiScope};
use agentd_core::{ErrorCode, RunError, value_as_text};
use agentd_guard::pii::{PiiKind, Vault};
use serde_json::{Value, json};

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
        let out = map_strings(v, &mut |s| {
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
    map_strings(v, &mut |s| vault.restore(&s))
}

/// `v` with `f` applied to every string in it.
fn map_strings(v: Value, f: &mut impl FnMut(String) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(|i| map_strings(i, f)).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, map_strings(v, f)))
                .collect(),
        ),
        other => other,
    }
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

/// The PII guard on what a run reads: `text` from its input or a tool.
/// Blocks (an error) or flags (audited once, when `audit`) a value found;
/// redaction is done where the text is stored or sent.
pub(crate) async fn pii_verdict(
    ctx: &crate::ctx::RunCtx<'_>,
    source: GuardSource,
    text: &str,
    step: Option<u32>,
    audit: bool,
) -> Result<Option<RunError>, crate::ctx::Stop> {
    let Some(g) = ctx.agent.guards.pii.as_ref() else {
        return Ok(None);
    };
    if g.action == PiiAction::Redact {
        return Ok(None);
    }
    let kinds = g.found(text);
    if kinds.is_empty() {
        return Ok(None);
    }
    let (kind, done) = match g.action {
        PiiAction::Block => ("guardrail_blocked", "blocked"),
        _ => ("guardrail_flagged", "flagged"),
    };
    if audit || g.action == PiiAction::Block {
        let lease = ctx.lease;
        tracing::warn!(source = source_name(source), action = done, kinds = ?kinds, "the PII guard tripped");
        crate::meter::guardrail_verdict(&ctx.agent.config.name, "pii", source_name(source), done);
        let detail =
            json!({"guard": "pii", "source": source_name(source), "step": step, "kinds": kinds});
        ctx.store
            .audit(&lease.tenant, lease.run_id, "guardrail", kind, &detail)
            .await
            .map_err(|e| ctx.failure(e))?;
    }
    Ok((g.action == PiiAction::Block).then(|| {
        RunError::new(
            ErrorCode::GuardrailBlocked,
            format!(
                "{} carries personal data ({}) and guardrails.pii.action is block",
                match source {
                    GuardSource::Input => "the run's input",
                    GuardSource::ToolResult => "a tool's result",
                },
                kinds.join(", ")
            ),
        )
    }))
}

/// At the start of an attempt: loads the run's PII vault (when the store
/// keeps it) and applies the PII guard's block or flag to the input.
/// `Some(outcome)` ends the run.
pub(crate) async fn enforce_pii_on_input(
    ctx: &crate::ctx::RunCtx<'_>,
    st: &mut crate::state::RunState,
) -> Result<Option<agentd_store::Outcome>, crate::ctx::Stop> {
    let Some(pii) = ctx.agent.guards.pii.as_ref() else {
        return Ok(None);
    };
    if pii.keeps_vault() {
        let lease = ctx.lease;
        let stored = ctx
            .store
            .load_vault(&lease.tenant, lease.run_id)
            .await
            .map_err(|e| ctx.failure(e))?;
        if let Some(v) = stored {
            match vault_from(v) {
                Ok(vault) => st.vault = vault,
                Err(error) => return Ok(Some(agentd_store::Outcome::Failed { error })),
            }
        }
    }
    let first = st.next_index == 0 && st.run.attempt <= 1;
    let text = value_as_text(&st.run.input);
    Ok(pii_verdict(ctx, GuardSource::Input, &text, None, first)
        .await?
        .map(|error| agentd_store::Outcome::Failed { error }))
}

/// Saves the run's vault when the store keeps it and `changed`.
pub(crate) async fn save_vault(
    ctx: &crate::ctx::RunCtx<'_>,
    vault: &Vault,
    changed: bool,
) -> Result<(), crate::ctx::Stop> {
    let keeps = ctx
        .agent
        .guards
        .pii
        .as_ref()
        .is_some_and(PiiGuard::keeps_vault);
    if !(changed && keeps) {
        return Ok(());
    }
    let lease = ctx.lease;
    ctx.store
        .save_vault(&lease.tenant, lease.run_id, &vault_json(vault))
        .await
        .map_err(|e| ctx.failure(e))
}

/// What a model call is sent: the run's messages, with personal data
/// replaced when the PII guard redacts for the model (new values join the
/// vault, saved before the call).
pub(crate) async fn model_messages(
    ctx: &crate::ctx::RunCtx<'_>,
    st: &mut crate::state::RunState,
) -> Result<agentd_llm::Messages, crate::ctx::Stop> {
    let Some(pii) = ctx.agent.guards.pii.as_ref().filter(|p| p.redacts_model()) else {
        return Ok(st.messages.clone());
    };
    let before = st.vault.len();
    let mut sent = Vec::with_capacity(st.messages.len());
    for m in st.messages.iter() {
        let mut m = m.clone();
        let (content, _) = st.vault.redact(&m.content, &pii.kinds);
        m.content = content;
        for call in &mut m.tool_calls {
            call.args = pii.redact(&mut st.vault, std::mem::take(&mut call.args)).0;
        }
        sent.push(m);
    }
    let changed = st.vault.len() > before;
    save_vault(ctx, &st.vault, changed).await?;
    Ok(sent.into())
}
