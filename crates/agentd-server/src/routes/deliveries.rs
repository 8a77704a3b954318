//! `GET /v1/runs/{id}/deliveries`: a run's completion webhooks (its
//! `callback_url`, its agent's `on_finish`) and where each stands.

use super::runs::RunIdParam;
use super::{List, page_limit};
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, Caller, RunPath};
use agentd_core::Millis;
use agentd_store::{Delivery, Page};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One delivery: one event of the run to one URL, with its retries.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryView {
    /// Stable across retries: the `webhook-id` header.
    #[schema(example = "msg_3f1c9e0a5b7d4c2e8a6f1b0d9c7e5a3b")]
    id: String,
    url: String,
    /// `run.succeeded`, `run.failed`, `run.cancelled`, `run.dead` or
    /// `run.paused`; `budget.alert` for a budget alert this run crossed.
    event: String,
    /// `pending` (due at `next_attempt_at`), `delivered` (a 2xx answer) or
    /// `failed` (`webhooks.max_attempts` attempts without one).
    status: String,
    /// Attempts made so far.
    attempts: u32,
    /// The status code of the last answer, if there was one.
    last_status_code: Option<u16>,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// When the next attempt is due; null unless pending.
    #[serde(with = "agentd_core::run::ts_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    next_attempt_at: Option<Millis>,
    #[serde(with = "agentd_core::run::ts_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    delivered_at: Option<Millis>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            id: d.id,
            url: d.url,
            event: d.event,
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// Query of `GET /v1/runs/{id}/deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveriesQuery {
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// `GET /v1/runs/{id}/deliveries`: the run's webhook deliveries, oldest
/// first.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}/deliveries",
    operation_id = "list_deliveries",
    tag = "runs",
    params(RunIdParam, DeliveriesQuery),
    responses(
        (status = 200, description = "A page of the run's webhook deliveries, oldest first.",
            body = List<DeliveryView>),
        (status = 404, description = "No such run in the caller's tenant.", body = ErrorBody),
    ),
)]
pub(crate) async fn list(
    State(app): State<AppState>,
    Caller(who): Caller,
    RunPath(id): RunPath,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<List<DeliveryView>>> {
    let limit = page_limit(q.limit)?;
    let page = app
        .engine
        .reads()
        .deliveries(&who, id, limit, q.cursor.as_deref())
        .await?
        .ok_or_else(|| ApiError::run_not_found(id))?;
    Ok(Json(
        Page {
            items: page.items.into_iter().map(DeliveryView::from).collect(),
            next_cursor: page.next_cursor,
        }
        .into(),
    ))
}
