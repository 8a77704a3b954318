//! SQL status predicates rendered from the run status machine in
//! `agentd_core::run`, so both backends check the same legal transitions
//! the core defines instead of writing the status lists out again.
//!
//! A statement is written with tokens such as `{cancel}` where a status
//! predicate goes; [`render`] replaces each with `IN ('queued', ...)` (or
//! `= 'running'` for one status) from [`Change::from`]. Statements are
//! rendered once, on first use ([`rendered!`]), so a query pays nothing.
//!
//! The caller-side changes (cancel, requeue, resume) share their checks
//! here too: [`admit`] decides on the locked run in either backend.

use crate::{Claimed, StoreError, Transition};
use agentd_core::run::Change;
use agentd_core::{ConversationId, ErrorCode, PrincipalId, Run, RunError, RunId, RunStatus};

/// Declares a `static` statement rendered from a template on first use.
macro_rules! rendered {
    ($(#[$meta:meta])* $vis:vis static $name:ident = $sql:expr;) => {
        $(#[$meta])*
        $vis static $name: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| $crate::status::render($sql));
    };
}

/// A conversation's runs wait for its older active runs (alias `r` is the
/// candidate run, `o` the others). Backend-neutral SQL.
macro_rules! conversation_turn {
    () => {
        "(r.conversation_id IS NULL OR NOT EXISTS (SELECT 1 FROM runs o \
         WHERE o.tenant = r.tenant AND o.conversation_id = r.conversation_id \
         AND o.id <> r.id AND (o.status {turn} \
         OR (o.status = 'queued' AND o.id < r.id))))"
    };
}

/// The statuses a token stands for.
fn set(token: &str) -> Option<&'static [RunStatus]> {
    Some(match token {
        "claim" => Change::Claim.from(),
        "journal" => Change::Journal.from(),
        "pause" => Change::Pause.from(),
        "finish" => Change::Finish.from(),
        "release" => Change::Release.from(),
        "resume" => Change::Resume.from(),
        "cancel" => Change::Cancel.from(),
        "requeue" => Change::Requeue.from(),
        "purge" => Change::Purge.from(),
        "turn" => RunStatus::HOLDS_TURN,
        "active" => RunStatus::ACTIVE,
        _ => return None,
    })
}

/// `IN ('a', 'b')`, or `= 'a'` for one status (the form partial indexes
/// on one status are written in).
fn predicate(out: &mut String, set: &[RunStatus]) {
    if let [one] = set {
        out.push_str("= '");
        out.push_str(one.as_str());
        out.push('\'');
        return;
    }
    out.push_str("IN (");
    for (i, s) in set.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('\'');
        out.push_str(s.as_str());
        out.push('\'');
    }
    out.push(')');
}

/// `template` with every `{token}` replaced by its status predicate.
/// Braces around anything else are kept as they are.
pub(crate) fn render(template: &str) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let token = after.find('}').map(|close| (&after[..close], close));
        match token.and_then(|(name, close)| set(name).map(|s| (s, close))) {
            Some((statuses, close)) => {
                predicate(&mut out, statuses);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Why a caller's change was not applied: the answer the caller gets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refused {
    NotFound,
    Conflict(RunStatus),
}

impl From<Refused> for Transition {
    fn from(r: Refused) -> Self {
        match r {
            Refused::NotFound => Transition::NotFound,
            Refused::Conflict(status) => Transition::Conflict(status),
        }
    }
}

/// Whether a caller's `change` applies to `run` (read under the write
/// lock or row lock of the transaction that will apply it): the run, or
/// why not.
pub(crate) fn admit(change: Change, run: Option<Run>) -> Result<Run, Refused> {
    match run {
        None => Err(Refused::NotFound),
        Some(run) if change.applies_to(run.status) => Ok(run),
        Some(run) => Err(Refused::Conflict(run.status)),
    }
}

/// For a resume: the journal index of the waiting step the answer
/// completes, or the answer to give instead.
pub(crate) fn waiting_step(run: Option<Run>) -> Result<u32, Refused> {
    let run = admit(Change::Resume, run)?;
    run.pause
        .as_ref()
        .map(|p| p.step)
        .ok_or(Refused::Conflict(run.status))
}

/// The error a cancelled run carries.
pub(crate) fn cancelled_by(actor: &PrincipalId) -> RunError {
    RunError::new(ErrorCode::Cancelled, format!("cancelled by {actor}"))
}

/// Why a run was cancelled to make way for run `by` of its conversation
/// (`if_busy = "interrupt"`).
pub(crate) fn interrupted_by(by: &RunId, actor: &PrincipalId) -> RunError {
    RunError::new(
        ErrorCode::Cancelled,
        format!("interrupted by run {by}, started by {actor} in the same conversation"),
    )
}

/// `if_busy = "reject"` refusing a run because of `busy`, the
/// conversation's oldest unfinished run.
pub(crate) fn conversation_busy(conv: &ConversationId, busy: (RunId, String)) -> StoreError {
    StoreError::ConversationBusy {
        conversation: conv.as_str().to_owned(),
        run: busy.0,
        status: busy.1,
    }
}

/// A paused run whose waiting step is missing: the journal is damaged.
pub(crate) fn no_waiting_step(id: &RunId, step: u32) -> StoreError {
    crate::codec::corrupt(format_args!("paused run {id} has no waiting step {step}"))
}

/// An applied transition: the run as it is now, or as the claim made in
/// the same transaction left it.
pub(crate) fn done(run: Run, claimed: Option<Claimed>) -> Transition {
    match claimed {
        Some(c) => Transition::Done(c.journal.run.clone(), Some(Box::new(c))),
        None => Transition::Done(run, None),
    }
}

impl Claimed {
    /// The claim of `journal`'s run under lease `token`.
    pub(crate) fn new(token: i64, journal: crate::Journal) -> Self {
        Self {
            lease: crate::Lease {
                run_id: journal.run.id,
                tenant: journal.run.tenant.clone(),
                token,
            },
            journal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_status_sets() {
        assert_eq!(
            render("status {cancel} AND x"),
            "status IN ('queued', 'running', 'paused') AND x"
        );
        assert_eq!(render("status {journal}"), "status = 'running'");
        assert_eq!(
            render("status {purge}"),
            "status IN ('succeeded', 'failed', 'cancelled')"
        );
        assert_eq!(render("{unknown} {"), "{unknown} {");
        // The list queries state the partial indexes' predicates, which the
        // migrations spell out: the two must stay the same text.
        let settled = render("WHERE status NOT {active};");
        for migration in [
            include_str!("../migrations/sqlite/0009_list_indexes.sql"),
            include_str!("../migrations/postgres/0009_list_indexes.sql"),
        ] {
            assert_eq!(
                migration.matches(settled.as_str()).count(),
                2,
                "{migration}"
            );
        }
        let runnable = render("WHERE status {claim};");
        assert!(include_str!("../migrations/sqlite/0001_init.sql").contains(runnable.as_str()));
        assert!(!render(conversation_turn!()).contains('{'));
    }
}
