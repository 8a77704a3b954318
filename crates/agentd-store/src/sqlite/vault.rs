//! SQLite's PII vaults (see [`crate::Store::save_vault`]).

use super::*;

/// [`Store::save_vault`](crate::Store::save_vault) on this backend.
pub(super) async fn save_vault(
    store: &SqliteStore,
    tenant: &TenantId,
    run: RunId,
    vault: &serde_json::Value,
) -> Result<()> {
    let tenant = tenant.clone();
    let vault = vault.clone();
    store
        .write(move |conn, now, codec| {
            let sealed = codec.seal_json(Field::of(&run, "pii_vaults.vault"), &vault)?;
            conn.prepare_cached(
                "INSERT INTO pii_vaults (run_id, tenant, vault, updated_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (run_id) DO UPDATE SET vault = excluded.vault, \
                 updated_at = excluded.updated_at WHERE pii_vaults.tenant = excluded.tenant",
            )?
            .execute(params![run.0.as_bytes(), tenant.as_str(), sealed, now])?;
            Ok(())
        })
        .await
}

/// [`Store::load_vault`](crate::Store::load_vault) on this backend.
pub(super) async fn load_vault(
    store: &SqliteStore,
    tenant: &TenantId,
    run: RunId,
) -> Result<Option<serde_json::Value>> {
    let tenant = tenant.clone();
    store
        .read(move |c, codec| {
            let sealed: Option<String> = c
                .prepare_cached("SELECT vault FROM pii_vaults WHERE run_id = ?1 AND tenant = ?2")?
                .query_row(params![run.0.as_bytes(), tenant.as_str()], |r| r.get(0))
                .optional()?;
            sealed
                .map(|s| codec.parse(Field::of(&run, "pii_vaults.vault"), s))
                .transpose()
        })
        .await
}
