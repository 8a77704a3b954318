//! `/v1/keys`: mint, list and revoke API keys. Who may do what is decided
//! by the engine's key facade (`agentd_engine::keys`), the same rules the
//! CLI goes through; these handlers only translate HTTP.

use super::{List, page_limit};
use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, PathText};
use agentd_config::Dur;
use agentd_core::{KeyId, PrincipalId, TenantId};
use agentd_engine::keys::{Manager, MintRequest, Minted};
use agentd_store::ApiKey;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Body of `POST /v1/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    /// Who the key acts as (recorded in the audit log).
    principal: PrincipalId,
    /// The key's roles, e.g. `["admin"]`.
    #[serde(default)]
    roles: Vec<String>,
    /// A name to recognise the key by in lists.
    #[serde(default)]
    name: Option<String>,
    /// e.g. `"90d"`; absent: the key does not expire.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "90d")]
    expires_in: Option<Dur>,
    /// Another tenant than the caller's (operators only).
    #[serde(default)]
    tenant: Option<TenantId>,
}

/// A minted key as `POST /v1/keys` and `agentd keys create --json` show
/// it: the stored key and, this once, the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct MintedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// `agd_<id>_<secret>`: shown here and never again.
    #[serde(rename = "key")]
    pub token: String,
}

impl From<Minted> for MintedKey {
    fn from(minted: Minted) -> Self {
        let token = minted.token.reveal();
        Self {
            key: minted.key,
            token,
        }
    }
}

/// `POST /v1/keys`: 201 with the key, shown once.
#[utoipa::path(
    post,
    path = "/v1/keys",
    operation_id = "create_key",
    tag = "keys",
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key, with its secret `key` shown this once.",
            body = MintedKey),
        (status = 403, description = "The caller lacks role `admin`, or names another tenant \
            without operator rights.", body = ErrorBody),
    ),
)]
pub(crate) async fn create(
    State(app): State<AppState>,
    Caller(who): Caller,
    ApiJson(req): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<MintedKey>)> {
    let minted = app
        .engine
        .keys()
        .mint(
            Manager::Caller(&who),
            MintRequest {
                tenant: req.tenant,
                principal: req.principal,
                roles: req.roles,
                name: req.name,
                expires_in: req.expires_in.map(Dur::get),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(minted.into())))
}

/// Query of `GET /v1/keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct KeysQuery {
    /// Page size, 1 to 1000 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    /// Another tenant than the caller's (operators only).
    #[serde(default)]
    tenant: Option<TenantId>,
}

/// `GET /v1/keys`: the tenant's keys, newest first, never their secrets.
#[utoipa::path(
    get,
    path = "/v1/keys",
    operation_id = "list_keys",
    tag = "keys",
    params(KeysQuery),
    responses(
        (status = 200, description = "A page of the tenant's keys, newest first.",
            body = List<ApiKey>),
        (status = 403, description = "The caller lacks role `admin`, or names another tenant \
            without operator rights.", body = ErrorBody),
    ),
)]
pub(crate) async fn list(
    State(app): State<AppState>,
    Caller(who): Caller,
    ApiQuery(q): ApiQuery<KeysQuery>,
) -> ApiResult<Json<List<ApiKey>>> {
    let page = app
        .engine
        .keys()
        .list(
            Manager::Caller(&who),
            q.tenant,
            page_limit(q.limit)?,
            q.cursor.as_deref(),
        )
        .await?;
    Ok(Json(page.into()))
}

/// Query of `DELETE /v1/keys/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RevokeQuery {
    /// Another tenant than the caller's (operators only).
    #[serde(default)]
    tenant: Option<TenantId>,
}

/// `DELETE /v1/keys/{id}`: 204; 404 for a key that does not exist in the
/// tenant, whether it exists elsewhere or not.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    operation_id = "revoke_key",
    tag = "keys",
    params(("id" = KeyId, Path, description = "The key's id, as listed."), RevokeQuery),
    responses(
        (status = 204, description = "Revoked: every process refuses it within seconds."),
        (status = 403, description = "The caller lacks role `admin`, or names another tenant \
            without operator rights.", body = ErrorBody),
        (status = 404, description = "No such key in the tenant.", body = ErrorBody),
    ),
)]
pub(crate) async fn revoke(
    State(app): State<AppState>,
    Caller(who): Caller,
    PathText(id): PathText,
    ApiQuery(q): ApiQuery<RevokeQuery>,
) -> ApiResult<StatusCode> {
    let id = KeyId::parse(&id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    match app
        .engine
        .keys()
        .revoke(Manager::Caller(&who), q.tenant, &id)
        .await?
    {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::NotFound(format!("API key {id} not found"))),
    }
}
