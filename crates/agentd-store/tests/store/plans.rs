//! Costs that do not grow with the store: every list query reads a range
//! of an index that holds its filters, in the order it returns, so a
//! filter that matches nothing is as cheap as one that matches.

use crate::harness::{Backend, Ctx};

/// The columns each list query must find through its index (not by
/// filtering the rows an index returned).
fn indexed(name: &str) -> &'static [&'static str] {
    match name {
        "runs" => &["tenant", "id"],
        "runs by agent" => &["tenant", "agent", "id"],
        // With both filters, the agent's range (or the status's) is read
        // and its runs filtered by the other: see `either`.
        "runs by agent and status" => &["tenant", "id"],
        "runs by status" => &["tenant", "status", "id"],
        "steps of a run" => &["run_id", "idx"],
        "messages of a conversation" => &["tenant", "conversation_id", "seq"],
        "runs of a conversation" => &["tenant", "conversation_id", "id"],
        "audit of a run" => &["run_id"],
        "audit log" => &["tenant", "at"],
        // Actor and kind filter the tenant's range (migration 0012: an
        // index each would cost every run's writes).
        "audit log by actor" | "audit log by kind" => &["tenant", "at"],
        "audit log since" => &["tenant", "at"],
        // SQLite's claim: the runnable partial index, by status.
        "runs by active status" | "runs by agent and active status" | "runnable runs" => {
            &["status"]
        }
        other => panic!("no expectation for list query {other:?}"),
    }
}

/// Columns of which a list query must find at least one through its index.
fn either(name: &str) -> &'static [&'static str] {
    match name {
        "runs by agent and status" => &["agent", "status"],
        _ => &[],
    }
}

pub async fn every_list_query_reads_an_index_range(ctx: &Ctx) {
    let plans = ctx.list_query_plans().await;
    // PostgreSQL's claims are checked by their own partial indexes
    // (migration 8); SQLite adds its claim query to the list.
    let want = match ctx.backend {
        Backend::Sqlite => 15,
        Backend::Postgres => 14,
    };
    assert_eq!(plans.len(), want, "{plans:#?}");
    for (name, plan) in &plans {
        if ctx.backend == Backend::Postgres && finds_active_runs(name) {
            check_postgres_active(name, plan);
            continue;
        }
        let found = match ctx.backend {
            Backend::Sqlite => check_sqlite(name, plan),
            Backend::Postgres => check_postgres(name, plan),
        };
        for column in indexed(name) {
            assert!(
                found(column),
                "{name} does not find {column} through its index:\n{plan}"
            );
        }
        let any = either(name);
        assert!(
            any.is_empty() || any.iter().any(|c| found(c)),
            "{name} finds none of {any:?} through its index:\n{plan}"
        );
    }
}

/// `SEARCH t USING [COVERING] INDEX i (a=? AND b<?)` (or the primary key),
/// no table scan and no sort.
fn check_sqlite(name: &str, plan: &str) -> Box<dyn Fn(&str) -> bool> {
    // The claim sorts the runnable runs it found, which are bounded by the
    // runs in flight, not by the store.
    assert!(
        sorts_only_active_runs(Backend::Sqlite, name) || !plan.contains("TEMP B-TREE"),
        "{name} sorts:\n{plan}"
    );
    for line in plan.lines() {
        // A co-routine's rows (a merged branch) are not a table.
        assert!(
            !line.starts_with("SCAN")
                || line.contains("USING")
                || line.starts_with("SCAN (subquery"),
            "{name} scans a table:\n{plan}"
        );
    }
    // Only the unfiltered list may read a tenant's whole range.
    assert!(
        name == "runs" || !plan.contains("runs_by_tenant"),
        "{name} reads every run of the tenant:\n{plan}"
    );
    let search = plan
        .lines()
        .find(|l| l.starts_with("SEARCH"))
        .unwrap_or_else(|| panic!("{name} reads no index range:\n{plan}"));
    let constraint = search
        .split_once('(')
        .map(|(_, c)| format!(" {c}"))
        .unwrap_or_else(|| panic!("{name}: no index constraint:\n{plan}"));
    Box::new(move |column| {
        ["=", "<", ">"]
            .iter()
            .any(|op| constraint.contains(&format!(" {column}{op}")))
    })
}

/// An index scan whose `Index Cond` holds the filters, no sequential scan
/// and no sort. The store's connections plan with `enable_seqscan = off`,
/// so a missing index shows as an index scan that filters rows: hence
/// the check of the condition, not only of the scan.
fn check_postgres(name: &str, plan: &str) -> Box<dyn Fn(&str) -> bool> {
    assert!(!plan.contains("Seq Scan"), "{name} scans a table:\n{plan}");
    assert!(
        !plan.contains("runs_pkey"),
        "{name} walks every run by id:\n{plan}"
    );
    // A run's audit trail is read whole (no page): PostgreSQL may sort
    // its few records; every paged list must come in index order.
    let sorts = plan.lines().any(|l| {
        let node = l.trim_start().trim_start_matches("->").trim_start();
        node.starts_with("Sort  (") || node.starts_with("Incremental Sort")
    });
    assert!(
        name == "audit of a run" || sorts_only_active_runs(Backend::Postgres, name) || !sorts,
        "{name} sorts:\n{plan}"
    );
    let cond = plan
        .lines()
        .find(|l| l.trim_start().starts_with("Index Cond:"))
        .unwrap_or_else(|| panic!("{name} reads no index range:\n{plan}"))
        .to_string();
    // A cursor over two columns shows as `ROW(at, id) < ROW(...)`.
    Box::new(move |column| {
        cond.contains(&format!("({column} ")) || cond.contains(&format!("ROW({column},"))
    })
}

/// Queries whose only sort is of active (queued or running) runs, which
/// the list indexes leave out: bounded by the runs in flight, not by the
/// store. The claim sorts the runnable runs it found; an agent's whole list
/// merges its active runs, sorted, with its index range, and so does a
/// tenant's on PostgreSQL (SQLite reads `runs_by_tenant` in order).
fn sorts_only_active_runs(backend: Backend, name: &str) -> bool {
    finds_active_runs(name)
        || match backend {
            Backend::Sqlite => matches!(name, "runnable runs" | "runs by agent"),
            Backend::Postgres => matches!(name, "runs" | "runs by agent"),
        }
}

/// Lists of active runs only.
fn finds_active_runs(name: &str) -> bool {
    matches!(
        name,
        "runs by active status" | "runs by agent and active status"
    )
}

/// PostgreSQL finds active runs through the queue's partial indexes
/// (`runs_queued`, `runs_leased`), never by reading the table.
fn check_postgres_active(name: &str, plan: &str) {
    assert!(!plan.contains("Seq Scan"), "{name} scans a table:\n{plan}");
    assert!(
        !plan.contains("runs_pkey"),
        "{name} walks every run by id:\n{plan}"
    );
    for index in ["runs_queued", "runs_leased"] {
        assert!(
            plan.contains(index),
            "{name} does not read {index}:\n{plan}"
        );
    }
}
