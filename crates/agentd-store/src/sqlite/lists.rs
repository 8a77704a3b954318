//! The statements of the SQLite store's lists: a tenant's runs by
//! filter, a run's steps and audit trail, a conversation's messages.
//! Each reads index ranges only (`tests/store/plans.rs` checks).

/// The tenant's runs below a cursor, newest first: `?1` tenant, `?2`
/// cursor (exclusive), `?3` limit, then the agent and status filters that
/// are set. Settled runs are ranges of the partial indexes `runs_by_agent`
/// and `runs_by_status` (migration 9), whose predicate `status NOT
/// {active}` each query states so SQLite can use them; active runs come
/// from `runs_runnable`. Without a filter: `runs_by_tenant`.
macro_rules! list_runs {
    ($filter:expr) => {
        list_runs!("", $filter)
    };
    ($hint:literal, $filter:expr) => {
        concat!(
            "SELECT ",
            run_cols!(),
            " FROM runs",
            $hint,
            " WHERE tenant = ?1 AND id < ?2",
            $filter,
            " ORDER BY id DESC LIMIT ?3"
        )
    };
}

/// Active runs are read from the queue's index, never from a tenant's
/// range of `runs_by_tenant`, which would hold every run the tenant has.
macro_rules! active {
    ($filter:literal) => {
        list_runs!(
            " INDEXED BY runs_runnable",
            concat!($filter, " AND status {active}")
        )
    };
}

rendered! {
    static LIST_ALL = list_runs!("");
}
rendered! {
    /// An agent's settled runs (a range of `runs_by_agent`) merged with its
    /// active ones.
    static LIST_BY_AGENT = concat!(
        "SELECT * FROM (",
        list_runs!(" AND agent = ?4 AND status NOT {active}"),
        ") UNION ALL SELECT * FROM (",
        active!(" AND agent = ?4"),
        ") ORDER BY id DESC LIMIT ?3"
    );
}
rendered! {
    static LIST_BY_STATUS = list_runs!(" AND status = ?4 AND status NOT {active}");
}
rendered! {
    static LIST_BY_AGENT_STATUS =
        list_runs!(" AND agent = ?4 AND status = ?5 AND status NOT {active}");
}
rendered! {
    static LIST_BY_ACTIVE_STATUS = active!(" AND status = ?4");
}
rendered! {
    static LIST_BY_AGENT_ACTIVE_STATUS = active!(" AND agent = ?4 AND status = ?5");
}

/// A conversation's runs below a cursor, newest first: a range of
/// `runs_by_conversation` (a conversation holds few runs), `?4` the
/// conversation, `?5` and `?6` the agent and status filters or NULL.
pub(super) const LIST_BY_CONVERSATION: &str = concat!(
    "SELECT ",
    run_cols!(),
    " FROM runs WHERE tenant = ?1 AND conversation_id = ?4 AND id < ?2 \
     AND (?5 IS NULL OR agent = ?5) AND (?6 IS NULL OR status = ?6) \
     ORDER BY id DESC LIMIT ?3"
);

/// The `list_runs` statement `index` (see
/// [`list_runs_index`](crate::codec::list_runs_index)).
pub(super) fn list_runs_sql(index: usize) -> &'static str {
    match index {
        0 => LIST_ALL.as_str(),
        1 => LIST_BY_AGENT.as_str(),
        2 => LIST_BY_STATUS.as_str(),
        3 => LIST_BY_AGENT_STATUS.as_str(),
        4 => LIST_BY_ACTIVE_STATUS.as_str(),
        _ => LIST_BY_AGENT_ACTIVE_STATUS.as_str(),
    }
}

/// A page of a run's journal: `?1` run, `?2` after this index, `?3` limit.
pub(super) const LIST_STEPS: &str = concat!(
    "SELECT ",
    step_cols!(),
    " FROM steps WHERE run_id = ?1 AND idx > ?2 ORDER BY idx LIMIT ?3"
);

/// A page of a conversation: `?1` tenant, `?2` conversation, `?3` after
/// this seq, `?4` limit.
pub(super) const LIST_MESSAGES: &str = "SELECT seq, run_id, message, created_at FROM messages \
     WHERE tenant = ?1 AND conversation_id = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4";

/// A run's audit trail: `?1` tenant, `?2` run.
pub(super) const LIST_AUDIT: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit WHERE tenant = ?1 AND run_id = ?2 ORDER BY id"
);
