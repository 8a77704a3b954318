//! `/health` (liveness) and `/ready` (readiness). Neither needs a credential:
//! orchestrators probe them.

use crate::AppState;
use crate::error::CauseChain;
use agentd_core::ErrorCode;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// A probe must answer before the orchestrator's own timeout, even when the
/// database hangs (a locked file, an unreachable server).
const STORE_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health`: the process is up.
pub(crate) async fn health(State(app): State<AppState>) -> Json<Value> {
    Json(json!({ "status": "ok", "version": &*app.version }))
}

/// `GET /ready`: the store answers and its migrations are applied; 503
/// naming the failing check otherwise. The cause is logged, not sent: the
/// endpoint is unauthenticated.
pub(crate) async fn ready(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = match tokio::time::timeout(STORE_PING_TIMEOUT, app.engine.reads().ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::error!(error.cause_chain = %CauseChain(&e), "readiness: store ping failed");
            "error"
        }
        Err(_) => {
            tracing::error!(timeout = ?STORE_PING_TIMEOUT, "readiness: store ping timed out");
            "timeout"
        }
    };
    let more = app.engine.readiness();
    let checks = json!({
        "store": store,
        "providers": more.circuits,
        "mcp": more.mcp,
        "unavailable_agents": more.unavailable_agents,
    });
    if store == "ok" && more.is_ready() {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "checks": checks })),
        )
    } else {
        let message = if store != "ok" {
            format!("store check failed: {store}")
        } else if !more.unavailable_agents.is_empty() {
            format!(
                "every provider circuit is open for: {}",
                more.unavailable_agents.join(", ")
            )
        } else {
            "an MCP server is not connected".to_string()
        };
        let body = json!({
            "status": "not_ready",
            "checks": checks,
            "error": { "code": ErrorCode::Unavailable.as_str(), "message": message },
        });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}
