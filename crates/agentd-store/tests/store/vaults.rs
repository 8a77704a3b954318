//! PII vaults (saved sealed, replaced whole, read only in their tenant,
//! never in plain text with a keyring) and budget alert records.

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

/// A budget alert is recorded once per (scope, subject, period,
/// threshold), and its webhook queued with it, once, carrying its body.
pub async fn a_budget_alert_is_recorded_and_queued_once(ctx: &Ctx) {
    let s = &ctx.store;
    let acme = tenant("acme");
    let run = RunId::new();
    let alert = agentd_store::BudgetAlert {
        scope: "tenant",
        subject: "acme".into(),
        period_start: 1_800_000_000_000,
        threshold: "0.5".into(),
        run_id: run,
        webhook: Some((
            "http://127.0.0.1:9/alerts".into(),
            json!({"type": "budget.alert", "threshold": 0.5}),
        )),
    };

    let first = s.record_budget_alert(&acme, &alert).await.unwrap();
    let again = s.record_budget_alert(&acme, &alert).await.unwrap();
    let other_threshold = agentd_store::BudgetAlert {
        threshold: "0.8".into(),
        webhook: None,
        ..alert.clone()
    };
    let third = s
        .record_budget_alert(&acme, &other_threshold)
        .await
        .unwrap();

    assert!(first);
    assert!(!again, "recorded twice");
    assert!(third);
    let claimed = s
        .claim_deliveries("w", std::time::Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].event, "budget.alert");
    assert_eq!(claimed[0].run_id, run);
    assert_eq!(
        claimed[0].payload,
        Some(json!({"type": "budget.alert", "threshold": 0.5}))
    );
}
