//! Domain types of agentd: identities, runs, steps, messages, the run status
//! machine, the stable error codes, and the checkpoint schema with its
//! migrations between versions. No I/O lives here.

pub mod apikey;
pub mod approval;
pub mod backoff;
pub mod checkpoint;
pub mod error;
pub mod id;
pub mod message;
pub mod metric;
pub mod redact;
pub mod run;
pub mod step;

pub use apikey::{ApiKeyToken, KeyError, KeyId, SecretHash};
pub use approval::ApprovalDecision;
pub use backoff::Backoff;
pub use checkpoint::SCHEMA_VERSION;
pub use error::{ErrorCode, RunError};
pub use id::{ConversationId, IdError, Identity, PrincipalId, RunId, TenantId};
pub use message::{
    Message, REPAIR_REQUEST_PREFIX, Role, ToolCall, ToolSpec, UNTRUSTED_BEGIN, UNTRUSTED_END,
    map_strings, value_as_text,
};
pub use redact::redact_url;
pub use run::{
    Callback, ForkOrigin, IdempotencyKey, IfBusy, NewRun, Pause, Run, RunOrigin, RunStatus, Usage,
};
pub use step::{Step, StepKind, StepStatus};

/// Milliseconds since the Unix epoch, the one timestamp unit used in records.
pub type Millis = i64;

/// Formats epoch milliseconds as RFC 3339 (UTC, millisecond precision).
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 time (any offset) as epoch milliseconds; `None` if
/// it is not one.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The current wall-clock time in epoch milliseconds.
pub fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// The start of the budget period of length `period` that holds at `now`:
/// periods are aligned to the Unix epoch (`1d` starts at 00:00 UTC).
pub fn period_start(now: Millis, period: std::time::Duration) -> Millis {
    let period = i64::try_from(period.as_millis()).unwrap_or(i64::MAX).max(1);
    now - now.rem_euclid(period)
}

/// Whether `[since, until)` is a time range (either end may be open): a
/// `since` after `until` is a caller's mistake, not an empty range.
pub fn ordered_range(since: Option<Millis>, until: Option<Millis>) -> bool {
    since.zip(until).is_none_or(|(since, until)| since <= until)
}
