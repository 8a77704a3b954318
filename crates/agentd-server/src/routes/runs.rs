//! `/v1/agents/{agent}/runs` and `/v1/runs/...`: start, read, list, resume
//! and cancel runs. Every call is scoped by the caller's tenant, so another
//! tenant's run answers exactly like a missing one.

use super::{List, page_limit};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Caller, PathText, RunPath};
use agentd_core::{ConversationId, Run, RunId, RunStatus, Step};
use agentd_engine::{Submit, settled};
use agentd_store::{RunFilter, Transition};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Body of `POST /v1/agents/{agent}/runs`. Unknown fields are rejected: a
/// client sending a field this version ignores (say `if_busy`) must learn it
/// was not honoured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRun {
    input: Value,
    #[serde(default)]
    conversation_id: Option<ConversationId>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    wait: bool,
}

/// `POST /v1/agents/{agent}/runs`: 202 with the queued run, or with `wait`
/// 200 once it is paused or finished within `server.wait_timeout`.
pub(crate) async fn create(
    State(app): State<AppState>,
    Caller(who): Caller,
    PathText(agent): PathText,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<CreateRun>,
) -> ApiResult<(StatusCode, [(axum::http::HeaderName, String); 1], Json<Run>)> {
    let input = required(req.input, "input")?;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 255);
            Some(
                key.ok_or_else(|| {
                    ApiError::BadRequest(
                        "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
                    )
                })?
                .to_string(),
            )
        }
    };
    let submit = Submit {
        input,
        conversation_id: req.conversation_id,
        metadata: req.metadata.map(Value::Object),
        idempotency_key,
        // This request's id and span (the parent of the run's attempts).
        origin: agentd_telemetry::run_origin(
            headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        ),
    };
    let run = if req.wait {
        app.engine
            .submit_wait(&who, &agent, submit, app.wait_timeout)
            .await?
    } else {
        app.engine.submit(&who, &agent, submit).await?
    };
    let status = if req.wait && settled(run.status) {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let location = [(LOCATION, format!("/v1/runs/{}", run.id))];
    Ok((status, location, Json(run)))
}

/// `GET /v1/runs/{id}`.
pub(crate) async fn get(
    State(app): State<AppState>,
    Caller(who): Caller,
    RunPath(id): RunPath,
) -> ApiResult<Json<Run>> {
    let run = app.engine.reads().run(&who, id).await?;
    run.map(Json).ok_or_else(|| ApiError::run_not_found(id))
}

/// Query of `GET /v1/runs/{id}/steps`. `cursor` is accepted as an alias of
/// `after` so a client can page every list by echoing `next_cursor`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepsQuery {
    #[serde(default, alias = "cursor")]
    after: Option<u32>,
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /v1/runs/{id}/steps`: the run's journal, oldest first.
pub(crate) async fn steps(
    State(app): State<AppState>,
    Caller(who): Caller,
    RunPath(id): RunPath,
    ApiQuery(q): ApiQuery<StepsQuery>,
) -> ApiResult<Json<List<Step>>> {
    let limit = page_limit(q.limit)?;
    let page = app.engine.reads().steps(&who, id, q.after, limit).await?;
    page.map(|p| Json(p.into()))
        .ok_or_else(|| ApiError::run_not_found(id))
}

/// Body of `POST /v1/runs/{id}/resume`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResumeRun {
    answer: Value,
    /// Block until the run pauses again or finishes (up to
    /// `server.wait_timeout`), like `wait` on run creation.
    #[serde(default)]
    wait: bool,
}

/// `POST /v1/runs/{id}/resume`: answers a paused run and queues it again.
pub(crate) async fn resume(
    State(app): State<AppState>,
    Caller(who): Caller,
    RunPath(id): RunPath,
    ApiJson(req): ApiJson<ResumeRun>,
) -> ApiResult<Json<Run>> {
    let answer = required(req.answer, "answer")?;
    let t = if req.wait {
        app.engine
            .resume_wait(&who, id, &answer, app.wait_timeout)
            .await?
    } else {
        app.engine.resume(&who, id, &answer).await?
    };
    applied(t, id, |status| format!("run {id} is {status}, not paused"))
}

/// `POST /v1/runs/{id}/cancel`: cancels a queued, running or paused run.
pub(crate) async fn cancel(
    State(app): State<AppState>,
    Caller(who): Caller,
    RunPath(id): RunPath,
) -> ApiResult<Json<Run>> {
    let t = app.engine.cancel(&who, id).await?;
    applied(t, id, |status| format!("run {id} is already {status}"))
}

/// Query of `GET /v1/dead-letters`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// `GET /v1/dead-letters`: the caller's dead runs, for any identity of the
/// tenant (the same runs `GET /v1/runs?status=dead` shows).
pub(crate) async fn dead_letters(
    State(app): State<AppState>,
    Caller(who): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<List<Run>>> {
    let page = app
        .engine
        .reads()
        .dead_letters(&who, page_limit(q.limit)?, q.cursor)
        .await?;
    Ok(Json(page.into()))
}

/// `POST /v1/dead-letters/{id}/requeue`: queues a dead run again (role
/// `admin`); it continues from its journal.
pub(crate) async fn requeue(
    State(app): State<AppState>,
    Caller(who): Caller,
    RunPath(id): RunPath,
) -> ApiResult<Json<Run>> {
    let t = app.engine.requeue_dead(&who, id).await?;
    applied(t, id, |status| {
        format!("run {id} is {status}; only a dead run can be requeued")
    })
}

/// Query of `GET /v1/runs`. `status` stays text here so a bad value gets a
/// message listing the valid ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunsQuery {
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// `GET /v1/runs`: the caller's runs, newest first.
pub(crate) async fn list(
    State(app): State<AppState>,
    Caller(who): Caller,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> ApiResult<Json<List<Run>>> {
    let status = q.status.as_deref().map(parse_status).transpose()?;
    let filter = RunFilter {
        agent: q.agent,
        status,
        limit: page_limit(q.limit)?,
        cursor: q.cursor,
    };
    let page = app.engine.reads().runs(&who, &filter).await?;
    Ok(Json(page.into()))
}

fn parse_status(s: &str) -> ApiResult<RunStatus> {
    RunStatus::parse(s).ok_or_else(|| {
        let valid: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::BadRequest(format!(
            "invalid status {s:?}; expected one of: {}",
            valid.join(", ")
        ))
    })
}

/// Rejects an explicit `null` for a required field: serde accepts it as a
/// `Value`, but a run on nothing or an empty answer is a client bug.
fn required(v: Value, field: &str) -> ApiResult<Value> {
    if v.is_null() {
        Err(ApiError::BadRequest(format!(
            "field `{field}` is required and must not be null"
        )))
    } else {
        Ok(v)
    }
}

/// Maps a requested state change to the response.
fn applied(
    t: Transition,
    id: RunId,
    conflict: impl FnOnce(RunStatus) -> String,
) -> ApiResult<Json<Run>> {
    match t {
        Transition::Done(run, _) => Ok(Json(run)),
        Transition::NotFound => Err(ApiError::run_not_found(id)),
        Transition::Conflict(status) => Err(ApiError::Conflict(conflict(status))),
    }
}
