//! What `/ready` answers, decided without HTTP: a process is unready (503)
//! only while it cannot serve — its store does not answer or lacks its
//! migrations, or it is draining after a shutdown signal. Open provider
//! circuits and disconnected MCP servers leave it ready but `degraded`:
//! circuits are shared through the store, so treating an outage as
//! unreadiness would take every replica out of the load balancer at once,
//! with the API for runs that need no model.

use agentd_engine::{BreakerState, CircuitStatus, McpServerStatus};
use serde::Serialize;
use utoipa::ToSchema;

/// What the store check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StoreCheck {
    /// It answered, with every migration applied.
    Ok,
    /// It answered, but its migrations are not all applied.
    MigrationsPending,
    /// It could not be reached or answered with an error.
    Error,
    /// It did not answer within the probe's timeout.
    Timeout,
}

/// The verdict of `/ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    /// Everything this process depends on works.
    Ok,
    /// The process serves, but a provider circuit is open or an MCP server
    /// is down; runs that need them may fail or fall back.
    Degraded,
    /// The process cannot serve: 503.
    NotReady,
}

/// Everything `/ready` reports, and the verdict drawn from it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Report {
    pub(crate) status: Status,
    pub(crate) checks: Checks,
    /// Why the process is degraded or not ready, one line each (empty when
    /// `ok`).
    pub(crate) reasons: Vec<String>,
}

/// The checks behind a [`Report`], sent as they are.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Checks {
    pub(crate) store: StoreCheck,
    /// The process received its shutdown signal and is finishing requests.
    pub(crate) draining: bool,
    /// Every provider circuit (only agents with `circuit_breaker` have one).
    pub(crate) providers: Vec<CircuitStatus>,
    pub(crate) mcp: Vec<McpServerStatus>,
    /// Agents none of whose providers would take a call now.
    pub(crate) unavailable_agents: Vec<String>,
}

impl Report {
    /// Draws the verdict from the checks.
    pub(crate) fn assess(
        store: StoreCheck,
        draining: bool,
        more: agentd_engine::Readiness,
    ) -> Self {
        let mut unready = Vec::new();
        if draining {
            unready.push("draining: the process is shutting down".to_string());
        }
        match store {
            StoreCheck::Ok => {}
            StoreCheck::MigrationsPending => {
                unready.push("store check failed: migrations are not applied".to_string());
            }
            StoreCheck::Error => unready.push("store check failed: error".to_string()),
            StoreCheck::Timeout => unready.push("store check failed: timeout".to_string()),
        }
        let (status, reasons) = if !unready.is_empty() {
            (Status::NotReady, unready)
        } else {
            let mut degraded: Vec<String> = more
                .circuits
                .iter()
                .filter(|c| c.state != BreakerState::Closed)
                .map(|c| format!("provider circuit {}: {}", state_name(c.state), c.provider))
                .collect();
            degraded.extend(
                more.mcp
                    .iter()
                    .filter(|m| !m.healthy)
                    .map(|m| format!("MCP server not connected: {}", m.name)),
            );
            if degraded.is_empty() {
                (Status::Ok, degraded)
            } else {
                (Status::Degraded, degraded)
            }
        };
        Self {
            status,
            reasons,
            checks: Checks {
                store,
                draining,
                providers: more.circuits,
                mcp: more.mcp,
                unavailable_agents: more.unavailable_agents,
            },
        }
    }

    /// Whether load balancers should send this process traffic.
    pub(crate) fn is_ready(&self) -> bool {
        self.status != Status::NotReady
    }
}

fn state_name(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuit(provider: &str, state: BreakerState) -> CircuitStatus {
        CircuitStatus {
            provider: provider.into(),
            state,
        }
    }

    fn mcp(name: &str, healthy: bool) -> McpServerStatus {
        McpServerStatus {
            name: name.into(),
            healthy,
            detail: String::new(),
            tools: 0,
            restarts: 0,
        }
    }

    fn engine(
        circuits: Vec<CircuitStatus>,
        mcp: Vec<McpServerStatus>,
        unavailable_agents: Vec<String>,
    ) -> agentd_engine::Readiness {
        agentd_engine::Readiness {
            circuits,
            mcp,
            unavailable_agents,
        }
    }

    #[test]
    fn a_healthy_process_is_ok() {
        let r = Report::assess(
            StoreCheck::Ok,
            false,
            engine(
                vec![circuit("main", BreakerState::Closed)],
                vec![mcp("files", true)],
                vec![],
            ),
        );
        assert_eq!(r.status, Status::Ok);
        assert!(r.is_ready());
        assert!(r.reasons.is_empty());
    }

    #[test]
    fn open_circuits_and_down_mcp_servers_degrade_but_keep_it_ready() {
        // Every provider of agent `a` is open: still ready, since the
        // circuit is shared by every replica and the API serves without it.
        let r = Report::assess(
            StoreCheck::Ok,
            false,
            engine(
                vec![
                    circuit("main", BreakerState::Open),
                    circuit("backup", BreakerState::HalfOpen),
                    circuit("other", BreakerState::Closed),
                ],
                vec![mcp("files", false), mcp("git", true)],
                vec!["a".into()],
            ),
        );
        assert_eq!(r.status, Status::Degraded);
        assert!(r.is_ready());
        assert_eq!(
            r.reasons,
            [
                "provider circuit open: main",
                "provider circuit half_open: backup",
                "MCP server not connected: files",
            ]
        );
        assert_eq!(r.checks.unavailable_agents, ["a"]);
    }

    #[test]
    fn a_failing_store_or_draining_makes_it_unready_whatever_else_holds() {
        for (store, draining) in [
            (StoreCheck::Error, false),
            (StoreCheck::MigrationsPending, false),
            (StoreCheck::Timeout, false),
            (StoreCheck::Ok, true),
            (StoreCheck::Error, true),
        ] {
            let r = Report::assess(
                store,
                draining,
                engine(vec![circuit("main", BreakerState::Open)], vec![], vec![]),
            );
            assert_eq!(r.status, Status::NotReady, "{store:?} draining={draining}");
            assert!(!r.is_ready());
            assert_eq!(r.checks.draining, draining);
            // Only the causes of unreadiness are named, not the degradation.
            assert!(
                r.reasons.iter().all(|m| !m.contains("circuit")),
                "{:?}",
                r.reasons
            );
        }
        let r = Report::assess(StoreCheck::Timeout, true, engine(vec![], vec![], vec![]));
        assert_eq!(
            r.reasons,
            [
                "draining: the process is shutting down",
                "store check failed: timeout"
            ]
        );
    }
}
