//! `/v1/agents/{agent}/runs` and `/v1/runs/...`: start, read, list, resume
//! and cancel runs. Every call is scoped by the caller's tenant, so another
//! tenant's run answers exactly like a missing one.

use super::{List, page_limit};
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
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
use utoipa::{IntoParams, ToSchema};

/// The `{id}` path parameter of the routes of one run (also a dead
/// letter): a UUID; anything else is 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the OpenAPI document only
pub(crate) struct RunIdParam {
    /// The run's id.
    id: RunId,
}

/// Body of `POST /v1/agents/{agent}/runs`. Unknown fields are rejected: a
/// client sending a field this version ignores must learn it was not
/// honoured.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRun {
    /// The run's input: any JSON value but `null`.
    #[schema(schema_with = crate::openapi::non_null_json)]
    input: Value,
    /// Links the run to earlier runs of the conversation (its memory).
    #[serde(default)]
    conversation_id: Option<ConversationId>,
    /// Stored with the run and returned as it was sent.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
    /// Answer once the run pauses or finishes (up to `server.wait_timeout`).
    #[serde(default)]
    wait: bool,
    /// When `conversation_id` already has a run queued, running or paused:
    /// `enqueue` (default) waits for it, `reject` answers 409, `interrupt`
    /// cancels it (a running one at its next step boundary) and runs this
    /// one.
    #[serde(default)]
    if_busy: agentd_core::IfBusy,
    /// POSTed the run (signed per Standard Webhooks) when it succeeds,
    /// fails, is cancelled, dies or pauses; needs `[webhooks] secret_env`.
    #[serde(default)]
    #[schema(example = "https://example.com/agentd-hook")]
    callback_url: Option<String>,
}

/// The headers of `POST /v1/agents/{agent}/runs`, for the OpenAPI document
/// (the handler reads them from the request).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read by the OpenAPI document only
pub(crate) struct CreateRunHeaders {
    /// Up to 255 visible ASCII characters, per tenant: the same key and
    /// body return the run the first request created; another body is 409.
    #[param(
        rename = "Idempotency-Key",
        pattern = "^[!-~]+$",
        min_length = 1,
        max_length = 255
    )]
    idempotency_key: Option<String>,
}

/// `POST /v1/agents/{agent}/runs`: 202 with the queued run, or with `wait`
/// 200 once it is paused or finished within `server.wait_timeout`.
#[utoipa::path(
    post,
    path = "/v1/agents/{agent}/runs",
    operation_id = "create_run",
    tag = "runs",
    params(
        ("agent" = String, Path, description = "The agent's name (`[[agents]] name`).",
            example = "demo"),
        CreateRunHeaders,
    ),
    request_body = CreateRun,
    responses(
        (status = 202, description = "Queued; with `wait`, still underway when \
            `server.wait_timeout` ran out.", body = Run, headers(("Location" = String))),
        (status = 200, description = "With `wait`: the run paused or finished in time.",
            body = Run, headers(("Location" = String))),
        (status = 404, description = "No such agent.", body = ErrorBody),
        (status = 409, description = "The Idempotency-Key was used with another request.",
            body = ErrorBody),
        (status = 429, description = "A rate limit, or the tenant's \
            `max_concurrent_runs_per_tenant`, refuses the run.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
)]
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
        if_busy: req.if_busy,
        callback_url: req.callback_url,
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
#[utoipa::path(
    get,
    path = "/v1/runs/{id}",
    operation_id = "get_run",
    tag = "runs",
    params(RunIdParam),
    responses(
        (status = 200, description = "The run.", body = Run),
        (status = 404, description = "No such run in the caller's tenant.", body = ErrorBody),
    ),
)]
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
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StepsQuery {
    /// Steps after this index (`cursor` is an alias: echo `next_cursor`).
    #[serde(default, alias = "cursor")]
    after: Option<u32>,
    /// Page size, 1 to 1000 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// `GET /v1/runs/{id}/steps`: the run's journal, oldest first.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}/steps",
    operation_id = "list_steps",
    tag = "runs",
    params(RunIdParam, StepsQuery),
    responses(
        (status = 200, description = "A page of the journal, oldest first.", body = List<Step>),
        (status = 404, description = "No such run in the caller's tenant.", body = ErrorBody),
    ),
)]
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResumeRun {
    /// The answer to the run's question (for an approval:
    /// `{"approve": true}` or `{"approve": false, "reason": "..."}`).
    #[schema(schema_with = crate::openapi::non_null_json)]
    answer: Value,
    /// Block until the run pauses again or finishes (up to
    /// `server.wait_timeout`), like `wait` on run creation.
    #[serde(default)]
    wait: bool,
}

/// `POST /v1/runs/{id}/resume`: answers a paused run and queues it again.
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/resume",
    operation_id = "resume_run",
    tag = "runs",
    params(RunIdParam),
    request_body = ResumeRun,
    responses(
        (status = 200, description = "Answered and queued again (with `wait`: as it is once \
            it paused again, finished, or `server.wait_timeout` ran out).", body = Run),
        (status = 404, description = "No such run in the caller's tenant.", body = ErrorBody),
        (status = 409, description = "The run is not paused.", body = ErrorBody),
    ),
)]
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
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/cancel",
    operation_id = "cancel_run",
    tag = "runs",
    params(RunIdParam),
    responses(
        (status = 200, description = "Cancelled.", body = Run),
        (status = 404, description = "No such run in the caller's tenant.", body = ErrorBody),
        (status = 409, description = "The run already finished.", body = ErrorBody),
    ),
)]
pub(crate) async fn cancel(
    State(app): State<AppState>,
    Caller(who): Caller,
    RunPath(id): RunPath,
) -> ApiResult<Json<Run>> {
    let t = app.engine.cancel(&who, id).await?;
    applied(t, id, |status| format!("run {id} is already {status}"))
}

/// Query of `GET /v1/dead-letters`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Page size, 1 to 1000 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// `GET /v1/dead-letters`: the caller's dead runs, for any identity of the
/// tenant (the same runs `GET /v1/runs?status=dead` shows).
#[utoipa::path(
    get,
    path = "/v1/dead-letters",
    operation_id = "list_dead_letters",
    tag = "dead-letters",
    params(PageQuery),
    responses((status = 200, description = "A page of the tenant's dead runs, newest first.",
        body = List<Run>)),
)]
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
#[utoipa::path(
    post,
    path = "/v1/dead-letters/{id}/requeue",
    operation_id = "requeue_dead_letter",
    tag = "dead-letters",
    params(RunIdParam),
    responses(
        (status = 200, description = "Queued again.", body = Run),
        (status = 403, description = "The caller lacks role `admin`.", body = ErrorBody),
        (status = 404, description = "No such run in the caller's tenant.", body = ErrorBody),
        (status = 409, description = "The run is not dead.", body = ErrorBody),
    ),
)]
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
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RunsQuery {
    /// Only this agent's runs.
    #[serde(default)]
    agent: Option<String>,
    /// Only runs in this status.
    #[serde(default)]
    #[param(value_type = Option<RunStatus>)]
    status: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    /// Only runs of this conversation.
    #[serde(default)]
    conversation_id: Option<String>,
    /// Runs created at or after this time, RFC 3339.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Runs created before this time, RFC 3339.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
}

/// `GET /v1/runs`: the caller's runs, newest first.
#[utoipa::path(
    get,
    path = "/v1/runs",
    operation_id = "list_runs",
    tag = "runs",
    params(RunsQuery),
    responses((status = 200, description = "A page of the caller's runs, newest first.",
        body = List<Run>)),
)]
pub(crate) async fn list(
    State(app): State<AppState>,
    Caller(who): Caller,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> ApiResult<Json<List<Run>>> {
    let status = q.status.as_deref().map(parse_status).transpose()?;
    let (since, until) = crate::extract::time_range(q.since.as_deref(), q.until.as_deref())?;
    let conversation_id = q
        .conversation_id
        .as_deref()
        .map(|c| {
            ConversationId::parse(c)
                .map_err(|e| ApiError::BadRequest(format!("invalid conversation_id: {e}")))
        })
        .transpose()?;
    let filter = RunFilter {
        agent: q.agent,
        status,
        conversation_id,
        since,
        until,
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
