//! The access section of `agentd.toml`: `[auth]` (how callers are
//! identified: headers, API keys, JWT) and `[rate_limit]`.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::dur::Dur;

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How callers are identified.
    pub mode: AuthMode,
    /// Principals who may mint and manage API keys of any tenant, besides
    /// those with role `operator`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<String>,
    /// `mode = "jwt"`: how tokens are verified and read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtConfig>,
}

/// `auth.jwt`: an OpenID Connect identity provider's tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Required `iss` claim.
    pub issuer: String,
    /// Accepted `aud` values; a token must name one of them.
    pub audience: OneOrMany,
    /// Where the identity provider publishes its signing keys: https, or
    /// plain http only to a loopback address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// A JWKS document on disk, instead of `jwks_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// Accepted signature algorithms; never `none` or an HMAC algorithm.
    #[serde(default = "default_jwt_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed when checking `exp` and `nbf`.
    #[serde(default = "default_jwt_leeway")]
    pub leeway: Dur,
    /// Claim naming the tenant, e.g. `tenant` or `org_id`; a dotted path
    /// reads a nested claim.
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    /// Claim naming the principal.
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    /// Claim listing roles; a dotted path such as `realm_access.roles`
    /// reads a nested claim.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
}

/// Signature algorithms a JWT verifier may accept: asymmetric only, so a
/// public key can never be used as an HMAC secret.
pub const JWT_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Algorithms a verifier accepts unless told otherwise: one of each
/// asymmetric family identity providers sign with.
pub const DEFAULT_JWT_ALGORITHMS: &[&str] = &["RS256", "ES256", "EdDSA"];

fn default_jwt_algorithms() -> Vec<String> {
    DEFAULT_JWT_ALGORITHMS
        .iter()
        .map(|a| (*a).to_owned())
        .collect()
}

fn default_jwt_leeway() -> Dur {
    Dur::from_secs(60)
}

fn default_tenant_claim() -> String {
    "tenant".to_owned()
}

fn default_principal_claim() -> String {
    "sub".to_owned()
}

fn default_roles_claim() -> String {
    "roles".to_owned()
}

/// A string or a list of strings (`audience = "api"` or `["a", "b"]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values, in order.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `auth.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No credential; identity from `X-Tenant-Id` etc. (development only).
    #[default]
    None,
    /// `Authorization: Bearer <api key>`.
    ApiKey,
    /// `Authorization: Bearer <JWT>`.
    Jwt,
}

impl AuthMode {
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::ApiKey => "api_key",
            AuthMode::Jwt => "jwt",
        }
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[rate_limit]`: each limit is off when left out.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Requests per minute one principal of one tenant may make.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_principal_rpm: Option<u32>,
    /// Requests per minute all principals of one tenant may make together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_tenant_rpm: Option<u32>,
    /// Runs one tenant may have queued or running at once; a run created
    /// beyond it is refused with 429, so one tenant cannot fill the queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_runs_per_tenant: Option<u32>,
    /// Where request counts live.
    pub backend: RateLimitBackend,
    /// `backend = "redis"`: the server shared by the fleet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
}

/// `rate_limit.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitBackend {
    /// Counted in each process: a fleet of N processes admits N times the rate.
    #[default]
    Local,
    /// Counted in Redis: one limit across every process of a fleet.
    Redis,
}
