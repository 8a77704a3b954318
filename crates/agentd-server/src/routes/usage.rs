//! `GET /v1/usage`: the tenant's usage report (runs, failures, tokens and
//! cost by agent, principal, provider or day), read through the engine's
//! read facade as the CLI's `agentd usage` is; this handler only parses the
//! query.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, Caller};
use agentd_store::{UsageGroup, UsageQuery as StoreQuery, UsageReport};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

/// Query of `GET /v1/usage`. Values stay text here so a bad one gets a
/// message naming its parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct UsageQuery {
    /// What to group runs by: `agent`, `principal`, `provider` (a run
    /// counts under each provider its model steps called) or `day` (UTC,
    /// `YYYY-MM-DD`).
    #[param(required = true, value_type = UsageGroup)]
    group_by: Option<String>,
    /// Runs created at or after this time, RFC 3339, e.g. `2026-12-01T00:00:00Z`.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Runs created before this time, RFC 3339.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
}

/// `GET /v1/usage`: the caller's tenant's runs created in `[since, until)`,
/// grouped, with their failures, tokens and cost.
#[utoipa::path(
    get,
    path = "/v1/usage",
    operation_id = "get_usage",
    tag = "usage",
    params(UsageQuery),
    responses(
        (status = 200, description = "The tenant's usage report: one item per group, ordered \
            by key, and their total.", body = UsageReport),
        (status = 400, description = "A missing or bad `group_by`, or a bad `since` or `until`."),
    ),
)]
pub(crate) async fn get(
    State(app): State<AppState>,
    Caller(who): Caller,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> ApiResult<Json<UsageReport>> {
    let (since, until) = crate::extract::time_range(q.since.as_deref(), q.until.as_deref())?;
    let query = StoreQuery {
        group_by: parse_group(q.group_by.as_deref())?,
        since,
        until,
    };
    Ok(Json(app.engine.reads().usage(&who, &query).await?))
}

fn parse_group(s: Option<&str>) -> ApiResult<UsageGroup> {
    let expected = || UsageGroup::ALL.map(UsageGroup::as_str).join(", ");
    let s = s.ok_or_else(|| {
        ApiError::BadRequest(format!("group_by is required: one of {}", expected()))
    })?;
    UsageGroup::parse(s).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "invalid group_by {s:?}: expected one of {}",
            expected()
        ))
    })
}
