//! The store's error type and result alias.

use agentd_core::RunId;
use std::sync::Arc;

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed a statement. `source` is the driver's error;
    /// callers see it only as an error, so no driver type leaks out.
    #[error("{backend} error: {source}")]
    Backend {
        backend: &'static str,
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The database could not be reached (connection refused or lost, pool
    /// exhausted past its timeout): the request may succeed later.
    #[error("{backend} is unavailable: {source}")]
    Unavailable {
        backend: &'static str,
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    #[error("applying store migrations failed: {0}")]
    Migrate(String),
    /// The store's background writer is gone (the process is shutting down).
    #[error("the store is closed")]
    Closed,
    /// An idempotency key reused with a different request.
    #[error("idempotency key {key:?} was already used with a different request")]
    IdempotencyConflict { key: String },
    /// The tenant already has `limit` runs queued or running
    /// (`rate_limit.max_concurrent_runs_per_tenant`): nothing was created.
    #[error("the tenant already has {limit} runs queued or running; retry when some finish")]
    TooManyActiveRuns { limit: u32 },
    /// A list cursor that this store did not issue.
    /// `if_busy = "reject"` and the conversation has an unfinished run.
    #[error(
        "conversation {conversation:?} already has run {run} {status}; if_busy = \"reject\" refuses a second one"
    )]
    ConversationBusy {
        conversation: String,
        run: RunId,
        status: String,
    },
    #[error("invalid cursor {0:?}")]
    BadCursor(String),
    /// The worker's lease was taken over (expired, cancelled or reclaimed):
    /// it must stop touching the run.
    #[error("lease on run {run} is no longer held by this worker")]
    LeaseLost { run: RunId },
    /// A record with this key exists already (a run id used twice).
    /// A fork's `from_step` does not name a point the journal can resume
    /// from.
    #[error("invalid from_step: {0}")]
    BadFork(String),
    #[error("{what} already exists")]
    Duplicate { what: String },
    #[error("corrupt record in the store: {0}")]
    Corrupt(String),
    /// A sealed value read by a store opened without a keyring.
    #[error(
        "{what} is encrypted with key id {key_id}; set store.encryption_key_env to a keyring \
         that holds it"
    )]
    Encrypted { what: String, key_id: String },
    /// A sealed value the keyring cannot open. Never returned as garbage.
    #[error("cannot decrypt {what} with key {key_id}: {reason}")]
    Decrypt {
        what: String,
        key_id: String,
        reason: &'static str,
    },
    #[error("encrypting {what} failed: {reason}")]
    Encrypt { what: String, reason: &'static str },
    /// A record of a journal version this agentd cannot read.
    #[error(transparent)]
    Checkpoint(#[from] agentd_core::checkpoint::MigrationError),
    #[error("unsupported store url {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
}
