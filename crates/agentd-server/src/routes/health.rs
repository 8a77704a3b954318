//! `/health` (liveness) and `/ready` (readiness). Neither needs a credential:
//! orchestrators probe them.

use crate::error::CauseChain;
use crate::ops::Probe;
use crate::readiness::{Report, StoreCheck};
use agentd_core::ErrorCode;
use agentd_engine::EngineError;
use agentd_store::StoreError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// A probe must answer before the orchestrator's own timeout, even when the
/// database hangs (a locked file, an unreachable server).
const STORE_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health`: the process is up.
pub(crate) async fn health(State(app): State<Probe>) -> Json<Value> {
    Json(json!({ "status": "ok", "version": &*app.version }))
}

/// `GET /ready`: 200 while this process can serve (`ok`, or `degraded`
/// with the open circuits and disconnected MCP servers named); 503 while
/// the store fails its check or the process drains after its shutdown
/// signal. See [`Report`] for the rule. A store failure's cause is logged,
/// not sent: the endpoint is unauthenticated.
pub(crate) async fn ready(State(app): State<Probe>) -> (StatusCode, Json<Value>) {
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
    let mut body = serde_json::to_value(&report).unwrap_or_else(|_| json!({}));
    if report.is_ready() {
        (StatusCode::OK, Json(body))
    } else {
        body["error"] = json!({
            "code": ErrorCode::Unavailable.as_str(),
            "message": report.reasons.join("; "),
        });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}
