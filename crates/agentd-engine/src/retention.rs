//! Retention: the background task that purges finished runs older than
//! `store.checkpoint_ttl` (see [`Store::purge_finished`] for what goes and
//! what stays). Every process that serves or works runs it; purges from
//! several processes sharing a database do not conflict.
//!
//! The schedule is a function of a purge closure, so its timing is tested
//! under `tokio::time::pause()` with a fake store.

use agentd_store::{Store, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Runs one purge call deletes at most (one transaction each).
pub const DEFAULT_BATCH: u32 = 500;

/// Shortest and longest time between two purge passes.
const MIN_EVERY: Duration = Duration::from_secs(1);
const MAX_EVERY: Duration = Duration::from_secs(3600);

/// When and how much the retention task purges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Finished runs last updated longer ago than this are purged.
    pub ttl: Duration,
    /// Time between two passes.
    pub every: Duration,
    /// Runs per purge call.
    pub batch: u32,
}

impl Retention {
    /// The schedule for `ttl`: a pass every tenth of the TTL, but at least
    /// every hour and at most every second. A finished run is thus gone
    /// within about 10% of its TTL (an hour at most) after it expires.
    pub fn for_ttl(ttl: Duration) -> Self {
        Self {
            ttl,
            every: (ttl / 10).clamp(MIN_EVERY, MAX_EVERY),
            batch: DEFAULT_BATCH,
        }
    }
}

/// One pass: calls `purge(older_than, batch)` until a call deletes fewer
/// than `batch` runs (or `shutdown` fires between calls). Returns how many
/// runs were purged.
pub async fn purge_pass<F, Fut>(
    purge: &mut F,
    older_than: Duration,
    batch: u32,
    shutdown: &CancellationToken,
) -> Result<u64, StoreError>
where
    F: FnMut(Duration, u32) -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    while !shutdown.is_cancelled() {
        let n = purge(older_than, batch).await?;
        total += n;
        if n < u64::from(batch) {
            break;
        }
    }
    Ok(total)
}

/// Runs purge passes on `retention`'s schedule until `shutdown` fires: the
/// first at once, then one every `retention.every` (a pass that overruns
/// pushes the next one back rather than bunching them). A failed pass is
/// logged and tried again at the next.
pub async fn run_purger<F, Fut>(retention: Retention, mut purge: F, shutdown: CancellationToken)
where
    F: FnMut(Duration, u32) -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut every = tokio::time::interval(retention.every);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match purge_pass(&mut purge, retention.ttl, retention.batch, &shutdown).await {
            Ok(0) => tracing::debug!("retention: no finished runs past their TTL"),
            Ok(n) => tracing::info!(
                runs = n,
                ttl_secs = retention.ttl.as_secs(),
                "retention: purged finished runs past their TTL"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "retention: purge failed; trying again at the next pass"
            ),
        }
    }
}

/// [`run_purger`] on `store`.
pub async fn run_retention(
    store: Arc<dyn Store>,
    retention: Retention,
    shutdown: CancellationToken,
) {
    let purge = |older_than, batch| {
        let store = store.clone();
        async move { store.purge_finished(older_than, batch).await }
    };
    run_purger(retention, purge, shutdown).await;
}
