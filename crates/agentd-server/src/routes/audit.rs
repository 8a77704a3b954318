//! `GET /v1/audit`: the tenant's audit log. Who sees which entries is
//! decided by the engine's read facade (`Reads::audit_log`), the same rule
//! the CLI goes through; this handler only parses the query.

use super::{List, page_limit};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, Caller};
use agentd_core::{Millis, RunId};
use agentd_store::{AuditEntry, AuditFilter};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

/// Query of `GET /v1/audit`. Values stay text here so a bad one gets a
/// message naming its parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only entries about this run.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    run_id: Option<String>,
    /// Only entries this principal caused.
    #[serde(default)]
    actor: Option<String>,
    /// Only entries of this kind (`created`, `claimed`, `paused`, `key_created`, ...).
    #[serde(default)]
    kind: Option<String>,
    /// Entries at or after this time, RFC 3339, e.g. `2026-12-01T00:00:00Z`.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// `GET /v1/audit`: the tenant's audit log, newest first: every entry for
/// role `admin`, otherwise the caller's own.
#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "list_audit",
    tag = "audit",
    params(AuditQuery),
    responses((status = 200, description = "A page of the tenant's audit log, newest first: \
        every entry for role `admin`, otherwise the caller's own.", body = List<AuditEntry>)),
)]
pub(crate) async fn list(
    State(app): State<AppState>,
    Caller(who): Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<List<AuditEntry>>> {
    let filter = AuditFilter {
        run_id: q.run_id.as_deref().map(parse_run_id).transpose()?,
        actor: q.actor.filter(|a| !a.is_empty()),
        kind: q.kind.filter(|k| !k.is_empty()),
        since: q.since.as_deref().map(parse_since).transpose()?,
        limit: page_limit(q.limit)?,
        cursor: q.cursor,
    };
    let page = app.engine.reads().audit_log(&who, &filter).await?;
    Ok(Json(page.into()))
}

fn parse_run_id(s: &str) -> ApiResult<RunId> {
    RunId::parse(s).map_err(|e| ApiError::BadRequest(format!("invalid run_id {s:?}: {e}")))
}

fn parse_since(s: &str) -> ApiResult<Millis> {
    agentd_core::parse_rfc3339(s).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "invalid since {s:?}: expected an RFC 3339 time such as 2026-12-01T00:00:00Z"
        ))
    })
}
