//! `auth.mode = "none"`: the identity is whatever the `X-Tenant-Id`,
//! `X-Principal-Id` and `X-Roles` headers say, with development defaults.
//! Under every other mode these headers are never read.

use crate::error::ApiError;
use agentd_core::{Identity, PrincipalId, TenantId};
use axum::http::HeaderMap;

/// Header naming the caller's tenant (auth mode `none`).
pub const TENANT_HEADER: &str = "x-tenant-id";
/// Header naming the calling principal (auth mode `none`).
pub const PRINCIPAL_HEADER: &str = "x-principal-id";
/// Header listing the caller's roles, comma-separated (auth mode `none`).
pub const ROLES_HEADER: &str = "x-roles";

const DEFAULT_TENANT: &str = "default";
const DEFAULT_PRINCIPAL: &str = "anonymous";
const DEFAULT_ROLE: &str = "admin";

/// The identity the headers claim; a malformed header is a 400.
pub(super) fn identity(headers: &HeaderMap) -> Result<Identity, ApiError> {
    let tenant = TenantId::parse(header(headers, TENANT_HEADER)?.unwrap_or(DEFAULT_TENANT))
        .map_err(|e| ApiError::BadRequest(format!("header X-Tenant-Id: {e}")))?;
    let principal =
        PrincipalId::parse(header(headers, PRINCIPAL_HEADER)?.unwrap_or(DEFAULT_PRINCIPAL))
            .map_err(|e| ApiError::BadRequest(format!("header X-Principal-Id: {e}")))?;
    let roles = match header(headers, ROLES_HEADER)? {
        None => vec![DEFAULT_ROLE.to_string()],
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
    };
    Ok(Identity {
        tenant,
        principal,
        roles,
    })
}

/// A header's value; `None` if absent, 400 if it is not visible ASCII (a
/// tenant id never is, so rejecting early loses nothing).
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::BadRequest(format!("header {name} is not valid ASCII")))
        })
        .transpose()
}
