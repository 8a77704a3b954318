//! Domain types of agentd: identities, runs, steps, messages, the run status
//! machine and the stable error codes. No I/O lives here.

pub mod backoff;
pub mod error;
pub mod id;
pub mod message;
pub mod run;
pub mod step;

pub use backoff::Backoff;
pub use error::{ErrorCode, RunError};
pub use id::{ConversationId, IdError, Identity, PrincipalId, RunId, TenantId};
pub use message::{Message, Role, ToolCall, ToolSpec, value_as_text};
pub use run::{IdempotencyKey, NewRun, Pause, Run, RunStatus, Usage};
pub use step::{Step, StepKind, StepStatus};

/// Version of the serialized run/step records. Bumped whenever the JSON shape
/// of a journal record changes; readers migrate older versions forward.
pub const SCHEMA_VERSION: u32 = 1;

/// Milliseconds since the Unix epoch, the one timestamp unit used in records.
pub type Millis = i64;

/// Formats epoch milliseconds as RFC 3339 (UTC, millisecond precision).
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The current wall-clock time in epoch milliseconds.
pub fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}
