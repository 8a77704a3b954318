//! The store's metrics through the `metrics` facade (names in
//! [`agentd_core::metric`]): group commits (duration, writes per batch) and
//! leases taken over. Labels are the backend's name only. Without an
//! installed recorder these are no-ops.

use agentd_core::metric;
use std::time::Duration;

/// A group commit of `writes` writes on `backend` took `took`.
pub(crate) fn committed(backend: &'static str, writes: usize, took: Duration) {
    metrics::histogram!(metric::STORE_COMMIT_DURATION, "backend" => backend)
        .record(took.as_secs_f64());
    metrics::histogram!(metric::STORE_BATCH_SIZE, "backend" => backend).record(writes as f64);
}

/// A run whose lease had expired was claimed again (its worker died or
/// stalled).
pub(crate) fn reclaimed() {
    metrics::counter!(metric::LEASES_RECLAIMED).increment(1);
}
