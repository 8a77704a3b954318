//! Completion webhooks' outbox (see migration `deliveries`): a delivery is
//! written by the status change of a run that names webhooks, in its
//! transaction; a delivery worker claims due ones with a lease, POSTs them
//! and records each attempt.

use agentd_core::{Millis, RunId, TenantId};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not delivered yet; due at `next_attempt_at`.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// The retry limit passed without a 2xx.
    Failed,
}

impl DeliveryStatus {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            other => Err(crate::codec::corrupt(format_args!(
                "deliveries.status {other:?} (expected pending, delivered or failed)"
            ))),
        }
    }
}

/// One webhook delivery of one run event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Stable across retries: the `webhook-id` header.
    pub id: String,
    pub tenant: TenantId,
    pub run_id: RunId,
    pub url: String,
    /// The webhook tool whose secret and `allow` list apply (`on_finish`
    /// naming one); `None` for `[webhooks]`.
    pub tool: Option<String>,
    /// `run.succeeded`, `run.failed`, `run.cancelled`, `run.dead` or
    /// `run.paused`; `budget.alert` for a budget alert this run crossed.
    pub event: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Millis,
    /// When the next attempt is due; `None` unless pending.
    pub next_attempt_at: Option<Millis>,
    pub delivered_at: Option<Millis>,
    /// The body of a delivery that is not a run event (`budget.alert`);
    /// `None`: the run as it is when sent.
    pub payload: Option<serde_json::Value>,
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// 2xx: done.
    Delivered,
    /// Try again at this time (epoch ms).
    RetryAt(Millis),
    /// Out of retries.
    Failed,
}

/// One attempt, as the worker that held the delivery's lease saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub tenant: TenantId,
    pub id: String,
    /// The lease owner: an attempt of a process whose lease expired (and
    /// was taken over) is not recorded.
    pub owner: String,
    /// When the attempt started (epoch ms).
    pub at: Millis,
    pub duration_ms: i64,
    /// The receiver's status code, if it answered.
    pub status_code: Option<u16>,
    /// Why it failed: the connection or the guard, or a non-2xx status.
    pub error: Option<String>,
    pub outcome: AttemptOutcome,
}

/// The columns a [`Delivery`] is read from, in order (a macro, so
/// statements stay `&'static str`).
macro_rules! delivery_cols {
    () => {
        "id, tenant, run_id, url, tool, event, status, attempts, last_status_code, last_error, \
         created_at, next_attempt_at, delivered_at, payload"
    };
}

/// A page cursor: the last item's creation time and id.
pub(crate) fn cursor_of(d: &Delivery) -> String {
    format!("{}:{}", d.created_at, d.id)
}

/// Parses a cursor of [`cursor_of`].
pub(crate) fn parse_cursor(cursor: &str) -> crate::Result<(Millis, String)> {
    cursor
        .split_once(':')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.to_string())))
        .ok_or_else(|| crate::StoreError::BadCursor(cursor.to_string()))
}

/// The `next_attempt_at` shown: only a pending delivery has one.
pub(crate) fn shown_next(status: DeliveryStatus, next: Millis) -> Option<Millis> {
    (status == DeliveryStatus::Pending).then_some(next)
}
