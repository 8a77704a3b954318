//! The guardrails at the run's step boundaries: the compiled guards
//! ([`crate::guard`]) applied to the input at the start of each attempt,
//! to what each model call is sent and to each tool result, with each
//! verdict audited, logged and counted, and the PII vault kept in the
//! store.

use crate::ctx::{RunCtx, Stop};
use crate::guard::{PiiGuard, Verdict, blocked, quote, source_name, vault_from, vault_json};
use crate::state::RunState;
use agentd_config::guardrails::{GuardSource, InjectionAction, PiiAction};
use agentd_core::{ErrorCode, Message, Role, RunError, value_as_text};
use agentd_guard::pii::Vault;
use serde_json::{Value, json};

/// The injection guard on a run's input, at the start of an attempt:
/// `Some(outcome)` ends the run (blocked); quoting rewrites the input
/// message the model sees (on every attempt alike, the journal keeps the
/// input as given). Audited on the run's first attempt, and always when it
/// blocks.
pub(crate) async fn enforce_on_input(
    ctx: &RunCtx<'_>,
    st: &mut RunState,
) -> Result<Option<agentd_store::Outcome>, Stop> {
    let Some(g) = ctx
        .agent
        .guards
        .injection
        .as_ref()
        .filter(|g| g.watches(GuardSource::Input))
    else {
        return Ok(None);
    };
    let first = st.next_index == 0 && st.run.attempt <= 1;
    // A flag was recorded on the first attempt and changes nothing: a
    // later attempt (a resume, a retry) need not scan, nor ask a
    // classifier, again.
    if !first && g.action == InjectionAction::Flag {
        return Ok(None);
    }
    let text = value_as_text(&st.run.input);
    let Some(verdict) = g.check(&text).await else {
        return Ok(None);
    };
    if first || g.action == InjectionAction::Block {
        record(ctx, GuardSource::Input, g.action, &verdict, None).await?;
    }
    Ok(match g.action {
        InjectionAction::Block => Some(agentd_store::Outcome::Failed {
            error: blocked(GuardSource::Input, &verdict),
        }),
        InjectionAction::Flag => None,
        InjectionAction::Quote => {
            let quoted = quote(GuardSource::Input, &verdict, &text);
            st.messages
                .replace(st.run_start, Message::text(Role::User, quoted));
            // Redacted again from the quoted text at the next call.
            st.redacted = Default::default();
            None
        }
    })
}

/// The injection guard on tool step `step`'s result `output`: the value
/// the model reads (quoted, or as it was), or the error that blocks the
/// run. The verdict is audited.
pub(crate) async fn enforce_on_tool_result(
    ctx: &RunCtx<'_>,
    step: u32,
    output: Value,
) -> Result<Result<Value, (Value, RunError)>, Stop> {
    let Some(g) = ctx
        .agent
        .guards
        .injection
        .as_ref()
        .filter(|g| g.watches(GuardSource::ToolResult))
    else {
        return Ok(Ok(output));
    };
    let text = value_as_text(&output);
    let Some(verdict) = g.check(&text).await else {
        return Ok(Ok(output));
    };
    record(ctx, GuardSource::ToolResult, g.action, &verdict, Some(step)).await?;
    Ok(match g.action {
        InjectionAction::Block => Err((output, blocked(GuardSource::ToolResult, &verdict))),
        InjectionAction::Flag => Ok(output),
        InjectionAction::Quote => Ok(Value::String(quote(
            GuardSource::ToolResult,
            &verdict,
            &text,
        ))),
    })
}

/// Audits an injection verdict, logs it and counts it.
async fn record(
    ctx: &RunCtx<'_>,
    source: GuardSource,
    action: InjectionAction,
    verdict: &Verdict,
    step: Option<u32>,
) -> Result<(), Stop> {
    let done = match action {
        InjectionAction::Block => Done::Blocked,
        InjectionAction::Flag => Done::Flagged,
        InjectionAction::Quote => Done::Quoted,
    };
    let why = verdict.summary();
    record_verdict(
        ctx,
        "injection",
        source,
        done,
        &why,
        verdict.detail(source, step),
    )
    .await
}

/// What a guard did with a text it tripped on.
#[derive(Clone, Copy)]
enum Done {
    Blocked,
    Flagged,
    Quoted,
}

impl Done {
    /// The metric's `action` and, prefixed, the audit record's kind.
    fn as_str(self) -> &'static str {
        match self {
            Done::Blocked => "blocked",
            Done::Flagged => "flagged",
            Done::Quoted => "quoted",
        }
    }
}

/// Every guard's verdict, the one way: a warning naming `why`, the
/// `agentd_guardrail_verdicts_total` count and a `guardrail_<done>` audit
/// record with `detail`.
async fn record_verdict(
    ctx: &RunCtx<'_>,
    guard: &'static str,
    source: GuardSource,
    done: Done,
    why: &str,
    detail: Value,
) -> Result<(), Stop> {
    let lease = ctx.lease;
    tracing::warn!(
        guard,
        source = source_name(source),
        action = done.as_str(),
        why,
        "a guardrail tripped"
    );
    crate::meter::guardrail_verdict(
        &ctx.agent.config.name,
        guard,
        source_name(source),
        done.as_str(),
    );
    let kind = format!("guardrail_{}", done.as_str());
    ctx.store
        .audit(&lease.tenant, lease.run_id, "guardrail", &kind, &detail)
        .await
        .map_err(|e| ctx.failure(e))
}

/// The PII guard on what a run reads: `text` from its input or a tool.
/// Blocks (an error) or flags (audited once, when `audit`) a value found;
/// redaction is done where the text is stored or sent.
pub(crate) async fn pii_verdict(
    ctx: &RunCtx<'_>,
    source: GuardSource,
    text: &str,
    step: Option<u32>,
    audit: bool,
) -> Result<Option<RunError>, Stop> {
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
    let done = match g.action {
        PiiAction::Block => Done::Blocked,
        _ => Done::Flagged,
    };
    if audit || g.action == PiiAction::Block {
        let detail =
            json!({"guard": "pii", "source": source_name(source), "step": step, "kinds": kinds});
        record_verdict(ctx, "pii", source, done, &kinds.join(", "), detail).await?;
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
    ctx: &RunCtx<'_>,
    st: &mut RunState,
) -> Result<Option<agentd_store::Outcome>, Stop> {
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
    // Only a block acts on a later attempt; a flag was recorded on the
    // first, and redaction happens where text is stored or sent.
    if !first && pii.action != PiiAction::Block {
        return Ok(None);
    }
    let text = value_as_text(&st.run.input);
    Ok(pii_verdict(ctx, GuardSource::Input, &text, None, first)
        .await?
        .map(|error| agentd_store::Outcome::Failed { error }))
}

/// Saves the run's vault when the store keeps it and `changed`.
pub(crate) async fn save_vault(ctx: &RunCtx<'_>, vault: &Vault, changed: bool) -> Result<(), Stop> {
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
    ctx: &RunCtx<'_>,
    st: &mut RunState,
) -> Result<agentd_llm::Messages, Stop> {
    let Some(pii) = ctx.agent.guards.pii.as_ref().filter(|p| p.redacts_model()) else {
        return Ok(st.messages.clone());
    };
    let before = st.vault.len();
    // Messages are only appended once a model has seen them.
    for m in st.messages.iter().skip(st.redacted.len()) {
        let mut m = m.clone();
        let (content, _) = st.vault.redact(&m.content, pii.kinds());
        m.content = content;
        for call in &mut m.tool_calls {
            call.args = pii.redact(&mut st.vault, std::mem::take(&mut call.args)).0;
        }
        st.redacted.push(m);
    }
    let changed = st.vault.len() > before;
    save_vault(ctx, &st.vault, changed).await?;
    Ok(st.redacted.clone())
}
