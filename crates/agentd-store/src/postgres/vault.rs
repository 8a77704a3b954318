//! PostgreSQL's PII vaults (see [`crate::Store::save_vault`]).

use super::*;

/// [`Store::save_vault`](crate::Store::save_vault) on this backend.
pub(super) async fn save_vault(
    store: &PgStore,
    tenant: &TenantId,
    run: RunId,
    vault: &serde_json::Value,
) -> Result<()> {
    let sealed = store
        .codec
        .seal_json(Field::of(&run, "pii_vaults.vault"), vault)?;
    sqlx::query(
        "INSERT INTO pii_vaults (run_id, tenant, vault, updated_at) VALUES ($1, $2, $3, \
         (floor(extract(epoch FROM now()) * 1000)::int8)) \
         ON CONFLICT (run_id) DO UPDATE SET vault = excluded.vault, \
         updated_at = excluded.updated_at WHERE pii_vaults.tenant = excluded.tenant",
    )
    .bind(run.0)
    .bind(tenant.as_str())
    .bind(sealed)
    .execute(&store.pool)
    .await?;
    Ok(())
}

/// [`Store::load_vault`](crate::Store::load_vault) on this backend.
pub(super) async fn load_vault(
    store: &PgStore,
    tenant: &TenantId,
    run: RunId,
) -> Result<Option<serde_json::Value>> {
    let sealed: Option<(String,)> =
        sqlx::query_as("SELECT vault FROM pii_vaults WHERE run_id = $1 AND tenant = $2")
            .bind(run.0)
            .bind(tenant.as_str())
            .fetch_optional(&store.pool)
            .await?;
    sealed
        .map(|(s,)| store.codec.parse(Field::of(&run, "pii_vaults.vault"), s))
        .transpose()
}
