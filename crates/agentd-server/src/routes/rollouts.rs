//! `/v1/rollouts/{agent}`: a versioned agent's rollout (which version new
//! runs start on), its per-version outcomes, and the operator's promote and
//! rollback. Rollouts route every tenant's runs, so these need an operator
//! (role `operator` or a principal in `auth.operators`).

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller, PathText};
use agentd_engine::RolloutReport;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

/// Body of a promote or rollback.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolloutChangeBody {
    /// Why, for the audit log and `rollout status`.
    #[serde(default)]
    #[schema(max_length = 1000)]
    reason: Option<String>,
}

/// Longest reason kept.
const MAX_REASON_CHARS: usize = 1000;

fn reason(body: RolloutChangeBody) -> ApiResult<Option<String>> {
    match body.reason {
        Some(r) if r.chars().count() > MAX_REASON_CHARS => Err(crate::error::ApiError::BadRequest(
            format!("reason: at most {MAX_REASON_CHARS} characters"),
        )),
        r => Ok(r),
    }
}

/// `GET /v1/rollouts/{agent}`.
#[utoipa::path(
    get,
    path = "/v1/rollouts/{agent}",
    operation_id = "get_rollout",
    tag = "rollouts",
    params(("agent" = String, Path, description = "The agent's name.", example = "demo")),
    responses(
        (status = 200, description = "The rollout and each version's finished runs since \
            the split started (all tenants).", body = RolloutReport),
        (status = 403, description = "The caller is not an operator.", body = ErrorBody),
        (status = 404, description = "No such agent, or it has no `[rollout]`.",
            body = ErrorBody),
    ),
)]
pub(crate) async fn get(
    State(app): State<AppState>,
    Caller(who): Caller,
    PathText(agent): PathText,
) -> ApiResult<Json<RolloutReport>> {
    Ok(Json(app.engine.rollout(Some(&who), &agent).await?))
}

/// `POST /v1/rollouts/{agent}/promote`: every new run starts on the canary.
#[utoipa::path(
    post,
    path = "/v1/rollouts/{agent}/promote",
    operation_id = "promote_rollout",
    tag = "rollouts",
    params(("agent" = String, Path, description = "The agent's name.", example = "demo")),
    request_body = RolloutChangeBody,
    responses(
        (status = 200, description = "Promoted: the canary is the version new runs start \
            on.", body = RolloutReport),
        (status = 403, description = "The caller is not an operator.", body = ErrorBody),
        (status = 404, description = "No such agent, or it has no `[rollout]`.",
            body = ErrorBody),
        (status = 409, description = "No canary is in trial.", body = ErrorBody),
    ),
)]
pub(crate) async fn promote(
    State(app): State<AppState>,
    Caller(who): Caller,
    PathText(agent): PathText,
    ApiJson(body): ApiJson<RolloutChangeBody>,
) -> ApiResult<Json<RolloutReport>> {
    let reason = reason(body)?;
    let engine = &app.engine;
    Ok(Json(
        engine
            .promote(Some(&who), &who.tenant, &agent, reason)
            .await?,
    ))
}

/// `POST /v1/rollouts/{agent}/rollback`: every new run starts on stable.
#[utoipa::path(
    post,
    path = "/v1/rollouts/{agent}/rollback",
    operation_id = "rollback_rollout",
    tag = "rollouts",
    params(("agent" = String, Path, description = "The agent's name.", example = "demo")),
    request_body = RolloutChangeBody,
    responses(
        (status = 200, description = "Rolled back: stable is the version new runs start on.",
            body = RolloutReport),
        (status = 403, description = "The caller is not an operator.", body = ErrorBody),
        (status = 404, description = "No such agent, or it has no `[rollout]`.",
            body = ErrorBody),
        (status = 409, description = "No canary is in trial.", body = ErrorBody),
    ),
)]
pub(crate) async fn rollback(
    State(app): State<AppState>,
    Caller(who): Caller,
    PathText(agent): PathText,
    ApiJson(body): ApiJson<RolloutChangeBody>,
) -> ApiResult<Json<RolloutReport>> {
    let reason = reason(body)?;
    let engine = &app.engine;
    Ok(Json(
        engine
            .rollback(Some(&who), &who.tenant, &agent, reason)
            .await?,
    ))
}
