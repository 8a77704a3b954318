//! A step longer than the lease keeps its lease: the worker heartbeats, so
//! no other worker takes the run over mid-call.

use crate::helpers::spawn_engine;
use agentd_core::RunStatus;
use agentd_store::ClaimRequest;
use std::time::Duration;

const CONFIG: &str = r#"
[queue]
lease = "600ms"

[providers.slow]
kind = "mock"
latency_ms = 1500
script = [{ reply = "finally" }]

[[agents]]
name = "slow"
providers = ["slow"]
"#;

#[tokio::test]
async fn a_model_call_longer_than_the_lease_is_not_taken_over() -> anyhow::Result<()> {
    // Arrange
    let t = spawn_engine(CONFIG).await?;
    let run = t.submit("slow", "x").await?;
    let engine = t.engine.clone();
    let tenant = t.who.tenant.clone();
    let driver = tokio::spawn(async move {
        let stop = tokio_util::sync::CancellationToken::new();
        engine.drive(&tenant, run.id, &stop).await
    });

    // Act: well past the lease, another worker tries to take the run.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let intruder = t
        .store
        .claim_next(&ClaimRequest::new("intruder", Duration::from_secs(30)))
        .await?;
    let done = driver.await??.expect("the run exists");

    // Assert: the heartbeat held the lease; the run finished on attempt 1.
    assert!(intruder.is_none(), "the run was taken over mid-call");
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.attempt, 1);
    Ok(())
}
