//! SQL status predicates rendered from the run status machine in
//! `agentd_core::run`, so both backends check the same legal transitions
//! the core defines instead of writing the status lists out again.
//!
//! A statement is written with tokens such as `{cancel}` where a status
//! predicate goes; [`render`] replaces each with `IN ('queued', ...)` (or
//! `= 'running'` for one status) from [`Change::from`]. Statements are
//! rendered once, on first use ([`rendered!`]), so a query pays nothing.

use agentd_core::RunStatus;
use agentd_core::run::Change;

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
        assert!(!render(conversation_turn!()).contains('{'));
    }
}
