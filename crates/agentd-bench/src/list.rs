//! `--mode list`: how long each list query the API offers takes through the
//! in-process Store API, on a store prefilled with finished runs
//! (`--prefill`). Filters that match nothing show whether a query scans the
//! table or reads an index range.

use std::sync::Arc;
use std::time::Instant;

use agentd_core::{RunId, RunStatus, TenantId};
use agentd_store::{RunFilter, Store};
use serde_json::{Map, Value};

use crate::stats::percentiles;

/// Items asked for per page, as a client listing runs would.
const PAGE: u32 = 50;

/// One list query under test.
#[derive(Clone, Copy)]
enum Query {
    /// `list_runs` filtered by status.
    Status(RunStatus),
    /// `list_runs` of an agent that has no runs.
    NoAgent,
    /// Dead letters: `list_runs` with status `dead`.
    Dead,
    /// One run's journal.
    Steps,
    /// One run's audit trail.
    Audit,
}

impl Query {
    /// The name in the result line and the table.
    fn name(self) -> &'static str {
        match self {
            Query::Status(RunStatus::Paused) => "status_paused",
            Query::Status(RunStatus::Failed) => "status_failed",
            Query::Status(RunStatus::Succeeded) => "status_succeeded",
            Query::Status(_) => "status_other",
            Query::NoAgent => "agent_without_runs",
            Query::Dead => "dead_letters",
            Query::Steps => "run_steps",
            Query::Audit => "run_audit",
        }
    }
}

/// Every query, in report order.
const QUERIES: [Query; 7] = [
    Query::Status(RunStatus::Paused),
    Query::Status(RunStatus::Failed),
    Query::Status(RunStatus::Succeeded),
    Query::NoAgent,
    Query::Dead,
    Query::Steps,
    Query::Audit,
];

/// Runs each query `iters` times against `store` for `tenant`, using run
/// `run` for the per-run queries; returns `{query: {p50, p90, p99, max}}`
/// in ms.
pub async fn measure(
    store: &Arc<dyn Store>,
    tenant: &str,
    run: &str,
    iters: usize,
) -> anyhow::Result<Value> {
    let tenant = TenantId::parse(tenant)?;
    let run = RunId::parse(run)?;
    let mut out = Map::new();
    for query in QUERIES {
        let mut lat = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t0 = Instant::now();
            once(store.as_ref(), &tenant, run, query).await?;
            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        eprintln!("list: {} done", query.name());
        out.insert(query.name().into(), percentiles(&mut lat));
    }
    Ok(Value::Object(out))
}

/// One call of `query`.
async fn once(
    store: &dyn Store,
    tenant: &TenantId,
    run: RunId,
    query: Query,
) -> anyhow::Result<()> {
    let filter = |agent: Option<&str>, status: Option<RunStatus>| RunFilter {
        agent: agent.map(str::to_owned),
        status,
        limit: PAGE,
        ..RunFilter::default()
    };
    match query {
        Query::Status(status) => {
            store.list_runs(tenant, &filter(None, Some(status))).await?;
        }
        Query::NoAgent => {
            store
                .list_runs(tenant, &filter(Some("agent_without_runs"), None))
                .await?;
        }
        Query::Dead => {
            store
                .list_runs(tenant, &filter(None, Some(RunStatus::Dead)))
                .await?;
        }
        Query::Steps => {
            store.list_steps(tenant, run, None, PAGE).await?;
        }
        Query::Audit => {
            store.list_audit(tenant, run).await?;
        }
    }
    Ok(())
}

/// The query names, in report order, for the table.
pub fn names() -> impl Iterator<Item = &'static str> {
    QUERIES.iter().map(|q| q.name())
}
