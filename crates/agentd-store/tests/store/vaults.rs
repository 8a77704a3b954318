//! PII vaults: saved sealed, replaced whole, read only in their tenant,
//! and never in plain text in the database with a keyring.

use crate::harness::{Ctx, keyring, tenant};
use agentd_core::RunId;
use serde_json::json;

pub async fn a_vault_is_sealed_replaced_and_tenant_scoped(ctx: &Ctx) {
    let s = ctx.reopen(Some(keyring(&[("k1", 7)]))).await;
    let (acme, other) = (tenant("acme"), tenant("other"));
    let run = RunId::new();

    // Absent until saved.
    assert_eq!(s.load_vault(&acme, run).await.unwrap(), None);
    let first = json!({"values": {"[EMAIL_1]": "ada@example.com"}});
    s.save_vault(&acme, run, &first).await.unwrap();
    assert_eq!(s.load_vault(&acme, run).await.unwrap(), Some(first));

    // Saved again, it is replaced whole.
    let second =
        json!({"values": {"[EMAIL_1]": "ada@example.com", "[CARD_1]": "4111111111111111"}});
    s.save_vault(&acme, run, &second).await.unwrap();
    assert_eq!(
        s.load_vault(&acme, run).await.unwrap(),
        Some(second.clone())
    );

    // Another tenant neither reads nor overwrites it.
    assert_eq!(s.load_vault(&other, run).await.unwrap(), None);
    s.save_vault(&other, run, &json!({"values": {}}))
        .await
        .unwrap();
    assert_eq!(s.load_vault(&acme, run).await.unwrap(), Some(second));

    // Sealed: the values are not in the table.
    let stored = ctx.texts("SELECT vault FROM pii_vaults").await;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains("ada@example.com"), "{stored:?}");
    assert!(!stored[0].contains("4111111111111111"), "{stored:?}");
}
