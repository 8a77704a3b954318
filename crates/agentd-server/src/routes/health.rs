//! `/health` (liveness) and `/ready` (readiness). Neither needs a credential:
//! orchestrators probe them.

use crate::error::{CauseChain, ErrorDetail};
use crate::probe::Probe;
use crate::readiness::{Report, StoreCheck};
use agentd_core::ErrorCode;
use agentd_engine::EngineError;
use agentd_store::StoreError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// A probe must answer before the orchestrator's own timeout, even when the
/// database hangs (a locked file, an unreachable server).
const STORE_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The body of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`: a process that answers is alive.
    #[schema(example = "ok")]
    status: &'static str,
    /// The agentd version serving.
    version: String,
}

/// `GET /health`: the process is up.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "probes",
    security(()),
    responses((status = 200, description = "The process is up.", body = Health)),
)]
pub(crate) async fn health(State(app): State<Probe>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: app.version.to_string(),
    })
}

/// The body of `GET /ready`: the report, and when not ready the error in
/// the API's format as well.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Ready {
    #[serde(flatten)]
    report: Report,
    /// Present with 503: `unavailable`, with the reasons joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
}

/// `GET /ready`: 200 while this process can serve (`ok`, or `degraded`
/// with the open circuits and disconnected MCP servers named); 503 while
/// the store fails its check or the process drains after its shutdown
/// signal. See [`Report`] for the rule. A store failure's cause is logged,
/// not sent: the endpoint is unauthenticated.
#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "ready",
    tag = "probes",
    security(()),
    responses(
        (status = 200, description = "The process can serve: `ok`, or `degraded` with the open \
            circuits and disconnected MCP servers named.", body = Ready),
        (status = 503, description = "The store fails its check or the process is draining after \
            its shutdown signal.", body = Ready),
    ),
)]
pub(crate) async fn ready(State(app): State<Probe>) -> (StatusCode, Json<Ready>) {
    let store = match tokio::time::timeout(STORE_PING_TIMEOUT, app.engine.reads().ping()).await {
        Ok(Ok(())) => StoreCheck::Ok,
        Ok(Err(EngineError::Store(StoreError::Migrate(_)))) => {
            tracing::error!("readiness: store migrations are not applied");
            StoreCheck::MigrationsPending
        }
        Ok(Err(e)) => {
            tracing::error!(error.cause_chain = %CauseChain(&e), "readiness: store ping failed");
            StoreCheck::Error
        }
        Err(_) => {
            tracing::error!(timeout = ?STORE_PING_TIMEOUT, "readiness: store ping timed out");
            StoreCheck::Timeout
        }
    };
    let report = Report::assess(store, app.draining(), app.engine.readiness());
    if report.is_ready() {
        let body = Ready {
            report,
            error: None,
        };
        (StatusCode::OK, Json(body))
    } else {
        let error = ErrorDetail::new(ErrorCode::Unavailable, report.reasons.join("; "));
        let body = Ready {
            report,
            error: Some(error),
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}
