//! `GET /v1/agents` and `GET /v1/budgets`: the configuration as the server
//! sees it, for operators and the console: each agent's definition with its
//! providers' circuits, and the caller's period budgets with what was spent.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::Caller;
use agentd_engine::describe::{AgentDefinitions, Budgets};
use axum::Json;
use axum::extract::State;

/// `GET /v1/agents`.
#[utoipa::path(
    get,
    path = "/v1/agents",
    operation_id = "list_agents",
    tag = "agents",
    responses(
        (status = 200, description = "The configured agents, sorted by name, as new runs \
            start on them, and the tool policies.", body = AgentDefinitions),
    ),
)]
pub(crate) async fn list(
    State(app): State<AppState>,
    Caller(_who): Caller,
) -> ApiResult<Json<AgentDefinitions>> {
    Ok(Json(app.engine.agent_definitions()))
}

/// `GET /v1/budgets`.
#[utoipa::path(
    get,
    path = "/v1/budgets",
    operation_id = "get_budgets",
    tag = "usage",
    responses(
        (status = 200, description = "The caller's tenant's budget and the caller's own \
            (`[tenants.\"ID\"]`, `[principals.\"ID\"]`), with what the current period \
            spent; `null` where none is configured.", body = Budgets),
    ),
)]
pub(crate) async fn budgets(
    State(app): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<Json<Budgets>> {
    Ok(Json(app.engine.budgets(&who).await?))
}
