//! What both backends share about the audit log as a list: the kinds of
//! record the store writes, the one statement builder for a filter (each
//! backend only says how it numbers parameters), and the list cursor.

use crate::{Result, StoreError};
use agentd_core::{Millis, RunId};

/// Every kind of audit record the store and the engine write.
pub const AUDIT_KINDS: &[&str] = &[
    "created",
    "claimed",
    "reclaimed",
    "paused",
    "resumed",
    "retry",
    "dead",
    "requeued",
    "succeeded",
    "failed",
    "cancelled",
    "forked",
    "tool_denied",
    "key_created",
    "key_revoked",
    "rollout_promoted",
    "rollout_rolled_back",
    "guardrail_blocked",
    "guardrail_flagged",
    "guardrail_quoted",
    "budget_alert",
];

/// The columns every audit query reads, in the order `row::audit` decodes.
macro_rules! audit_columns {
    () => {
        "id, run_id, at, actor, event, detail"
    };
}

/// A value bound to an audit list statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Text(String),
    Run(RunId),
    Int(i64),
}

/// The statement serving `filter` for `tenant`, and its arguments in order.
/// `param(n)` writes the backend's n-th placeholder (`?n`, `$n`).
///
/// Newest first by `(at, id)`, below the cursor: with an actor or a kind
/// (and no run), a range of `audit_by_actor` / `audit_by_kind`; otherwise
/// of `audit_by_time`; `since` cuts the same range. A run's trail is read
/// through its own index and sorted: it is short.
pub(crate) fn list_sql(
    tenant: &str,
    filter: &AuditFilter,
    limit: u32,
    param: fn(usize) -> String,
) -> Result<(String, Vec<Arg>)> {
    let (at, id) = bound(filter.cursor.as_deref())?;
    let mut args = vec![Arg::Text(tenant.to_string())];
    let mut sql = format!(
        concat!("SELECT ", audit_columns!(), " FROM audit WHERE tenant = {}"),
        param(1)
    );
    let mut push = |sql: &mut String, clause: &str, arg: Arg| {
        args.push(arg);
        sql.push_str(&format!(" AND {clause} {}", param(args.len())));
    };
    if let Some(run) = filter.run_id {
        push(&mut sql, "run_id =", Arg::Run(run));
    }
    if let Some(actor) = &filter.actor {
        push(&mut sql, "actor =", Arg::Text(actor.clone()));
    }
    if let Some(kind) = &filter.kind {
        push(&mut sql, "event =", Arg::Text(kind.clone()));
    }
    if let Some(since) = filter.since {
        push(&mut sql, "at >=", Arg::Int(since));
    }
    args.push(Arg::Int(at));
    args.push(Arg::Int(id));
    args.push(Arg::Int(i64::from(limit) + 1));
    let n = args.len();
    sql.push_str(&format!(
        " AND (at, id) < ({}, {}) ORDER BY at DESC, id DESC LIMIT {}",
        param(n - 2),
        param(n - 1),
        param(n)
    ));
    Ok((sql, args))
}

/// The cursor after `entry` in a list, newest first: its time and record
/// id, which order records written in the same millisecond too.
pub(crate) fn cursor_of(entry: &AuditEntry) -> String {
    format!("{}.{}", entry.at, entry.id)
}

/// The exclusive `(at, id)` bound a cursor names; above every record for
/// the first page.
fn bound(cursor: Option<&str>) -> Result<(Millis, i64)> {
    let Some(c) = cursor else {
        return Ok((Millis::MAX, i64::MAX));
    };
    let bad = || StoreError::BadCursor(c.to_string());
    let (at, id) = c.split_once('.').ok_or_else(bad)?;
    Ok((
        at.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    ))
}

/// The audit log's statements for each kind of filter, with the
/// arguments they bind (placeholders written by `param`).
pub(crate) fn plan_samples(
    param: fn(usize) -> String,
) -> Result<Vec<(&'static str, String, Vec<Arg>)>> {
    let filters = [
        ("audit log", AuditFilter::default()),
        (
            "audit log by actor",
            AuditFilter {
                actor: Some("alice".into()),
                ..AuditFilter::default()
            },
        ),
        (
            "audit log by kind",
            AuditFilter {
                kind: Some("created".into()),
                ..AuditFilter::default()
            },
        ),
        (
            "audit log since",
            AuditFilter {
                since: Some(0),
                ..AuditFilter::default()
            },
        ),
    ];
    filters
        .into_iter()
        .map(|(name, f)| {
            let (sql, args) = list_sql("t", &f, 50, param)?;
            Ok((name, sql, args))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_bind_each_filter_once_in_order() {
        let filter = AuditFilter {
            actor: Some("alice".into()),
            kind: Some("created".into()),
            since: Some(5),
            cursor: Some("9.3".into()),
            ..AuditFilter::default()
        };
        let (sql, args) = list_sql("t", &filter, 10, |n| format!("${n}")).unwrap();
        assert!(sql.contains("tenant = $1 AND actor = $2 AND event = $3 AND at >= $4"));
        assert!(sql.ends_with("(at, id) < ($5, $6) ORDER BY at DESC, id DESC LIMIT $7"));
        assert_eq!(args.len(), 7);
        assert_eq!(args[4..], [Arg::Int(9), Arg::Int(3), Arg::Int(11)]);
    }

    #[test]
    fn foreign_cursors_are_refused() {
        assert_eq!(bound(None).unwrap(), (Millis::MAX, i64::MAX));
        assert_eq!(bound(Some("17.4")).unwrap(), (17, 4));
        for bad in ["", "17", "x.4", "17.y", "17.4.5"] {
            assert!(
                matches!(bound(Some(bad)), Err(StoreError::BadCursor(_))),
                "{bad}"
            );
        }
    }
}

/// One audit record: a state transition or a change of the tenant's keys,
/// who caused it and when. Serialized as the API and the CLI show it:
/// `{time, actor, kind, run_id, details}`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// The record's id in the store: orders records written in the same
    /// millisecond, for list cursors.
    #[serde(skip)]
    pub id: i64,
    #[serde(rename = "time", with = "agentd_core::run::ts")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Millis,
    /// The principal (or the engine's part: `agent`, `policy`, a worker's
    /// node id) that caused it.
    pub actor: String,
    /// What happened: one of [`AUDIT_KINDS`].
    #[serde(rename = "kind")]
    pub event: String,
    /// The run it concerns; `None` for a tenant's records (API keys).
    pub run_id: Option<RunId>,
    #[serde(rename = "details")]
    pub detail: serde_json::Value,
}

/// Filters for listing a tenant's audit log, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub run_id: Option<RunId>,
    pub actor: Option<String>,
    /// One of [`AUDIT_KINDS`].
    pub kind: Option<String>,
    /// Records at or after this time (epoch ms).
    pub since: Option<Millis>,
    pub limit: u32,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}
