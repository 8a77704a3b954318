//! `POST /v1/runs/{id}/fork`: a new run from the first steps of another.

use super::runs::RunIdParam;
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller, RunPath};
use agentd_core::Run;
use agentd_engine::Fork;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Body of `POST /v1/runs/{id}/fork`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForkRun {
    /// How many of the original's steps the fork keeps: steps with index
    /// `< from_step`. The fork executes from step `from_step`; 0 re-runs
    /// from the start. At most the original's step count.
    from_step: u32,
    /// Replaces the original's input; omitted or null keeps it.
    #[serde(default)]
    input: Option<Value>,
    /// The agent version the fork runs on (`[[agents]] version`); by
    /// default the original's, or the stable one if the config no longer
    /// declares it.
    #[serde(default)]
    agent_version: Option<String>,
}

/// `POST /v1/runs/{id}/fork`: 202 with the new, queued run.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/fork",
    operation_id = "fork_run",
    tag = "runs",
    params(RunIdParam),
    request_body = ForkRun,
    responses(
        (status = 202, description = "The fork, queued: its journal holds the original's \
            steps `0..from_step` and it executes from there.", body = Run,
            headers(("Location" = String))),
        (status = 400, description = "`from_step` is past the original's journal, keeps \
            a step still waiting for an answer, or `agent_version` is not declared.",
            body = ErrorBody),
        (status = 404, description = "No such run in the caller's tenant, or its agent is \
            no longer configured.", body = ErrorBody),
    ),
)]
pub(crate) async fn fork_run(
    State(app): State<AppState>,
    Caller(who): Caller,
    RunPath(id): RunPath,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<ForkRun>,
) -> ApiResult<(StatusCode, [(axum::http::HeaderName, String); 1], Json<Run>)> {
    let fork = Fork {
        from_step: req.from_step,
        input: req.input,
        agent_version: req.agent_version,
        origin: agentd_telemetry::run_origin(
            headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        ),
    };
    let run = app
        .engine
        .fork(&who, id, fork)
        .await?
        .ok_or_else(|| ApiError::run_not_found(id))?;
    let location = [(LOCATION, format!("/v1/runs/{}", run.id))];
    Ok((StatusCode::ACCEPTED, location, Json(run)))
}
