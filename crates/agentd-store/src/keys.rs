//! What both backends share about the `api_keys` table: the one column
//! list, the decoder from a row's raw values to a [`KeyCredential`], and
//! the list cursor.

use crate::codec::corrupt;
use crate::{Result, StoreError};
use agentd_core::{KeyId, Millis, PrincipalId, SecretHash, TenantId};

/// The columns every key query reads, in [`KeyRow`]'s order.
macro_rules! key_columns {
    () => {
        "id, tenant, principal, roles, name, created_at, expires_at, last_used_at, revoked_at, \
         secret_hash"
    };
}

/// An `api_keys` row as the driver hands it over, in [`key_columns!`]'s
/// order.
pub(crate) struct KeyRow {
    pub(crate) id: String,
    pub(crate) tenant: String,
    pub(crate) principal: String,
    pub(crate) roles: String,
    pub(crate) name: Option<String>,
    pub(crate) created_at: Millis,
    pub(crate) expires_at: Option<Millis>,
    pub(crate) last_used_at: Option<Millis>,
    pub(crate) revoked_at: Option<Millis>,
    pub(crate) secret_hash: Vec<u8>,
}

impl KeyRow {
    /// The key the row holds, with every column checked.
    pub(crate) fn decode(self) -> Result<KeyCredential> {
        let bad = |column: &str, e: &dyn std::fmt::Display| {
            corrupt(format!("api_keys.{column} of key {}: {e}", self.id))
        };
        let key = ApiKey {
            id: KeyId::parse(&self.id).map_err(|e| bad("id", &e))?,
            tenant: TenantId::parse(self.tenant.as_str()).map_err(|e| bad("tenant", &e))?,
            principal: PrincipalId::parse(self.principal.as_str())
                .map_err(|e| bad("principal", &e))?,
            roles: serde_json::from_str(&self.roles).map_err(|e| bad("roles", &e))?,
            name: self.name.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        };
        let secret_hash =
            SecretHash::from_bytes(&self.secret_hash).map_err(|e| bad("secret_hash", &e))?;
        Ok(KeyCredential { key, secret_hash })
    }
}

/// The audit detail of a created key: what it is and whom it speaks for,
/// never its secret.
pub(crate) fn created_detail(key: &NewApiKey) -> serde_json::Value {
    serde_json::json!({
        "key_id": key.id,
        "principal": key.principal,
        "roles": key.roles,
        "name": key.name,
    })
}

/// The audit detail of a revoked key.
pub(crate) fn revoked_detail(id: &KeyId) -> serde_json::Value {
    serde_json::json!({ "key_id": id })
}

/// The cursor after `key` in a list, newest first: its creation time and
/// id, which order keys created in the same millisecond too.
pub(crate) fn cursor_of(key: &ApiKey) -> String {
    format!("{}.{}", key.created_at, key.id)
}

/// The exclusive `(created_at, id)` bound a cursor names; above every key
/// for the first page, so every page is one range of an index.
pub(crate) fn list_bound(cursor: Option<&str>) -> Result<(Millis, String)> {
    let Some(c) = cursor else {
        return Ok((Millis::MAX, String::new()));
    };
    let bad = || StoreError::BadCursor(c.to_string());
    let (at, id) = c.split_once('.').ok_or_else(bad)?;
    let at = at.parse::<Millis>().map_err(|_| bad())?;
    let id = KeyId::parse(id).map_err(|_| bad())?;
    Ok((at, id.as_str().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let (at, id) = list_bound(Some("1700000000000.0123456789abcdef")).unwrap();
        assert_eq!((at, id.as_str()), (1_700_000_000_000, "0123456789abcdef"));
        assert_eq!(list_bound(None).unwrap().0, Millis::MAX);
        for bad in ["", "x.0123456789abcdef", "17.nothex", "0123456789abcdef"] {
            assert!(
                matches!(list_bound(Some(bad)), Err(StoreError::BadCursor(_))),
                "{bad}"
            );
        }
    }
}

/// An API key to store: whom it speaks for and the hash of its secret
/// (the secret itself is never stored).
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: KeyId,
    pub principal: PrincipalId,
    pub roles: Vec<String>,
    pub name: Option<String>,
    pub secret_hash: SecretHash,
    pub expires_at: Option<Millis>,
}

/// An API key as it is listed: never its secret, nor the secret's hash.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: KeyId,
    pub name: Option<String>,
    pub tenant: TenantId,
    pub principal: PrincipalId,
    pub roles: Vec<String>,
    #[serde(with = "agentd_core::run::ts")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Millis,
    #[serde(with = "agentd_core::run::ts_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Millis>,
    /// When a process last recorded a use; written in batches, so it may
    /// lag actual use by some seconds.
    #[serde(with = "agentd_core::run::ts_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Millis>,
    #[serde(with = "agentd_core::run::ts_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Millis>,
}

/// A key with the hash of its secret: what authentication checks a
/// presented key against.
#[derive(Debug, Clone)]
pub struct KeyCredential {
    pub key: ApiKey,
    pub secret_hash: SecretHash,
}

/// The keys created or revoked since a point in time (see
/// [`Store::key_changes`]).
#[derive(Debug, Clone)]
pub struct KeyChanges {
    pub keys: Vec<KeyCredential>,
    /// The store's clock when the changes were read: rows changed later
    /// are not in `keys`.
    pub read_at: Millis,
}
