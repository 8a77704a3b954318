//! The completion-webhook delivery worker: leases due deliveries from the
//! store's outbox (written with the status change that ends or pauses a
//! run), POSTs the run as `GET /v1/runs/{id}` shows it, signed per Standard
//! Webhooks with the delivery's id as `webhook-id`, and records each
//! attempt. A non-2xx answer or no answer is retried with backoff until
//! `webhooks.max_attempts`; a process killed mid-delivery leaves its lease
//! to expire, and any process then retries the delivery (at least once).

use crate::Engine;
use agentd_core::{Backoff, Callback, now_millis};
use agentd_store::{AttemptOutcome, Delivery, DeliveryAttempt};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Most deliveries one claim leases (and this process sends at once).
const BATCH: u32 = 16;

/// A delivery is leased for its POST's timeout plus this margin.
const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// How often an idle delivery worker looks for due deliveries.
const POLL: Duration = Duration::from_millis(500);

impl Engine {
    /// Delivers due webhooks until `shutdown`; an attempt in flight at
    /// shutdown is finished and recorded first.
    pub(crate) async fn deliver_webhooks(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let lease = self.catalog().config.webhooks.timeout.get() + LEASE_MARGIN;
            let owner = self.node_id();
            let claimed = match self
                .inner
                .store
                .claim_deliveries(&owner, lease, BATCH)
                .await
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim webhook deliveries");
                    Vec::new()
                }
            };
            let full = claimed.len() == BATCH as usize;
            let mut sends = tokio::task::JoinSet::new();
            for d in claimed {
                let (e, owner) = (self.clone(), owner.clone());
                sends.spawn(async move { e.deliver(d, &owner).await });
            }
            while sends.join_next().await.is_some() {}
            if full {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// One attempt of `d`, recorded under `owner`'s lease.
    async fn deliver(&self, d: Delivery, owner: &str) {
        let catalog = self.catalog();
        let w = &catalog.config.webhooks;
        let at = now_millis();
        let started = Instant::now();
        let callback = Callback {
            url: d.url.clone(),
            tool: d.tool.clone(),
        };
        // A delivery with its own body (a budget alert) sends that.
        let run = match &d.payload {
            Some(payload) => Ok(Some(payload.clone())),
            None => self
                .inner
                .store
                .get_run(&d.tenant, d.run_id)
                .await
                .map(|run| run.and_then(|r| serde_json::to_value(r).ok())),
        };
        let sent = match run {
            Ok(Some(body)) => match serde_json::to_vec(&body) {
                Ok(body) => {
                    catalog
                        .notifier
                        .deliver(&callback, &d.id, &d.event, body)
                        .await
                }
                Err(e) => Err(format!("cannot encode the run: {e}")),
            },
            // Purged by retention before it could be delivered.
            Ok(None) => Err("the run no longer exists".to_owned()),
            Err(e) => {
                // The lease expires and the delivery is tried again.
                tracing::warn!(delivery = %d.id, error = %e, "cannot read the run to deliver");
                return;
            }
        };
        let attempts = d.attempts.saturating_add(1);
        let retry = || {
            if attempts >= w.max_attempts {
                return AttemptOutcome::Failed;
            }
            let backoff = Backoff {
                initial: w.backoff_initial.get(),
                max: w.backoff_max.get(),
                jitter: true,
            };
            let delay = backoff.delay(attempts, rand::random::<f64>());
            AttemptOutcome::RetryAt(
                now_millis() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
            )
        };
        let (status_code, error, outcome) = match sent {
            Ok(code) if (200..300).contains(&code) => (Some(code), None, AttemptOutcome::Delivered),
            Ok(code) => (
                Some(code),
                Some(format!("the receiver answered {code}")),
                retry(),
            ),
            Err(e) => (None, Some(e), retry()),
        };
        let attempt = DeliveryAttempt {
            tenant: d.tenant.clone(),
            id: d.id.clone(),
            owner: owner.to_owned(),
            at,
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            status_code,
            error: error.clone(),
            outcome,
        };
        match self.inner.store.record_delivery(&attempt).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(delivery = %d.id, "webhook delivery lease lost; another process retries it")
            }
            Err(e) => {
                tracing::warn!(delivery = %d.id, error = %e, "cannot record a webhook delivery")
            }
        }
        match outcome {
            AttemptOutcome::Delivered => {
                tracing::info!(delivery = %d.id, run_id = %d.run_id, event = %d.event, attempts, "webhook delivered")
            }
            AttemptOutcome::RetryAt(_) => {
                tracing::info!(delivery = %d.id, run_id = %d.run_id, attempts, error = error.as_deref().unwrap_or(""), "webhook delivery failed; will retry")
            }
            AttemptOutcome::Failed => {
                tracing::warn!(delivery = %d.id, run_id = %d.run_id, attempts, error = error.as_deref().unwrap_or(""), "webhook delivery failed for good")
            }
        }
    }
}
