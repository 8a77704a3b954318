//! The statements of API keys (`postgres/keys.rs`): their rows, the
//! change feed of the key caches and the batched `last_used_at` writes.

/// Stores key `$1` of tenant `$2` (principal, roles, name, hash, expiry)
/// and audits it: `$8` actor, `$9` detail.
pub(in crate::postgres) const CREATE_KEY: &str = concat!(
    "WITH k AS (INSERT INTO api_keys (id, tenant, principal, roles, name, secret_hash, \
     created_at, expires_at, changed_at) VALUES ($1, $2, $3, $4, $5, $6, ",
    now!(),
    ", $7, ",
    now!(),
    ") RETURNING ",
    key_columns!(),
    "), a AS (INSERT INTO audit (run_id, at, tenant, actor, event, detail) \
     SELECT NULL, created_at, tenant, $8, 'key_created', $9 FROM k) SELECT ",
    key_columns!(),
    " FROM k"
);

/// One tenant's keys, newest first, below the cursor's `(created_at, id)`.
pub(in crate::postgres) const LIST_TENANT_KEYS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM api_keys WHERE tenant = $1 AND (created_at, id) < ($2, $3) \
     ORDER BY created_at DESC, id DESC LIMIT $4"
);

/// Every tenant's keys, newest first, below the cursor's `(created_at, id)`.
pub(in crate::postgres) const LIST_ALL_KEYS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM api_keys WHERE (created_at, id) < ($1, $2) \
     ORDER BY created_at DESC, id DESC LIMIT $3"
);

/// Revokes key `$1` of tenant `$2` (any tenant if null). A second
/// revocation changes nothing, so the caches see no change either, and
/// only the first is audited: `$3` actor, `$4` detail.
pub(in crate::postgres) const REVOKE_KEY: &str = concat!(
    "WITH old AS (SELECT id, revoked_at FROM api_keys \
     WHERE id = $1 AND ($2::text IS NULL OR tenant = $2)), \
     k AS (UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ",
    now!(),
    "), changed_at = CASE WHEN revoked_at IS NULL THEN ",
    now!(),
    " ELSE changed_at END WHERE id = $1 AND ($2::text IS NULL OR tenant = $2) RETURNING ",
    key_columns!(),
    "), a AS (INSERT INTO audit (run_id, at, tenant, actor, event, detail) \
     SELECT NULL, k.revoked_at, k.tenant, $3, 'key_revoked', $4 FROM k JOIN old USING (id) \
     WHERE old.revoked_at IS NULL AND k.revoked_at = ",
    now!(),
    ") SELECT ",
    key_columns!(),
    " FROM k"
);

/// Key `$1`, of whichever tenant (authentication).
pub(in crate::postgres) const KEY_BY_ID: &str =
    concat!("SELECT ", key_columns!(), " FROM api_keys WHERE id = $1");

/// Keys created or revoked at or after `$1` (the key caches' feed).
pub(in crate::postgres) const KEYS_CHANGED: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM api_keys WHERE changed_at >= $1 ORDER BY changed_at"
);

/// The database's clock in epoch ms.
pub(in crate::postgres) const STORE_NOW: &str = concat!("SELECT ", now!());

/// Moves `last_used_at` of keys `$1[i]` forward to `$2[i]`.
pub(in crate::postgres) const TOUCH_KEYS: &str = "UPDATE api_keys AS k \
     SET last_used_at = GREATEST(COALESCE(k.last_used_at, u.at), u.at) \
     FROM unnest($1::text[], $2::int8[]) AS u(id, at) WHERE k.id = u.id";
