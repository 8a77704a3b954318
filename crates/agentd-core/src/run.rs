//! Runs: the run object, its status machine and what it costs.

use crate::{ConversationId, Millis, PrincipalId, RunError, RunId, TenantId};
use serde::{Deserialize, Serialize};

/// Where a run is in its life.
///
/// `queued → running → (paused ⇄ queued → running) → succeeded | failed |
/// cancelled`; a run that exhausts its attempts becomes `dead` and can be
/// requeued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
    Dead,
}

impl RunStatus {
    /// Every status, for parsing and listing.
    pub const ALL: [RunStatus; 7] = [
        Self::Queued,
        Self::Running,
        Self::Paused,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
        Self::Dead,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Dead => "dead",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A terminal run never changes again (except `dead`, which an admin may
    /// requeue).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::Dead
        )
    }

    /// Whether a run may go from `self` to `to`: some [`Change`] applies to
    /// `self` and can leave the run in `to`. Derived from [`Change::from`]
    /// and [`Change::to`], the one place the legal transitions are written
    /// down.
    pub fn can_transition(self, to: RunStatus) -> bool {
        self != to
            && Change::ALL
                .iter()
                .any(|c| c.applies_to(self) && c.to().contains(&to))
    }

    /// Statuses whose runs hold their conversation's turn: a conversation's
    /// later runs wait while one of these is underway (queued runs wait
    /// for older queued runs too).
    pub const HOLDS_TURN: &'static [RunStatus] = &[Self::Running, Self::Paused];

    /// Runs in flight: queued or executing. The store's list indexes
    /// (migration 9) leave them out, as their predicate
    /// `status NOT IN ('queued', 'running')` spells; changing this set
    /// needs a migration of those indexes.
    pub const ACTIVE: &'static [RunStatus] = &[Self::Queued, Self::Running];
}

/// The changes a run's status goes through. Each applies only to runs in
/// the statuses [`Change::from`] lists: the stores build their SQL status
/// predicates from these sets, so the legal transitions are written once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// A worker takes a lease: a queued run that is due, or a running run
    /// whose lease expired (its worker died).
    Claim,
    /// The lease holder journals steps or extends its lease.
    Journal,
    /// The lease holder pauses the run to ask a human.
    Pause,
    /// The lease holder ends the attempt: succeeded, failed, back to the
    /// queue for a retry, or dead.
    Finish,
    /// The lease holder gives the run back to the queue (shutdown).
    Release,
    /// A caller answers a paused run; it is queued again.
    Resume,
    /// A caller cancels a run that has not finished.
    Cancel,
    /// An operator queues a dead run again.
    Requeue,
    /// Retention deletes a run that finished for good.
    Purge,
}

impl Change {
    /// Every change.
    pub const ALL: [Change; 9] = [
        Self::Claim,
        Self::Journal,
        Self::Pause,
        Self::Finish,
        Self::Release,
        Self::Resume,
        Self::Cancel,
        Self::Requeue,
        Self::Purge,
    ];

    /// The statuses a run must be in for this change to apply.
    pub const fn from(self) -> &'static [RunStatus] {
        use RunStatus::*;
        match self {
            Self::Claim => &[Queued, Running],
            Self::Journal | Self::Pause | Self::Finish | Self::Release => &[Running],
            Self::Resume => &[Paused],
            Self::Cancel => &[Queued, Running, Paused],
            Self::Requeue => &[Dead],
            Self::Purge => &[Succeeded, Failed, Cancelled],
        }
    }

    /// The statuses this change can leave the run in (none: the run is
    /// deleted).
    pub const fn to(self) -> &'static [RunStatus] {
        use RunStatus::*;
        match self {
            Self::Claim | Self::Journal => &[Running],
            Self::Pause => &[Paused],
            Self::Finish => &[Succeeded, Failed, Queued, Dead],
            Self::Release | Self::Resume | Self::Requeue => &[Queued],
            Self::Cancel => &[Cancelled],
            Self::Purge => &[],
        }
    }

    /// Whether the change applies to a run in `status`.
    pub fn applies_to(self, status: RunStatus) -> bool {
        self.from().contains(&status)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a run is paused: what the human is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pause {
    pub question: String,
    /// Journal index of the waiting step that the answer completes.
    pub step: u32,
    /// For an approval pause: the tool waiting to run, and its arguments.
    /// The answer is then `{"approve": true}` or `{"approve": false,
    /// "reason": "..."}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<serde_json::Value>,
}

/// Tokens a run (or a step) consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;

    /// Component-wise sum.
    fn add(self, other: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
        }
    }
}

/// The run object, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Run {
    pub id: RunId,
    pub agent: String,
    /// The agent version the run started on and finishes on (`version` in
    /// `[[agents]]`), or null for an unversioned agent.
    #[serde(default)]
    pub agent_version: Option<String>,
    pub tenant: TenantId,
    pub principal: PrincipalId,
    pub conversation_id: Option<ConversationId>,
    pub status: RunStatus,
    pub input: serde_json::Value,
    pub output: Option<serde_json::Value>,
    /// The answer parsed as JSON and validated against the agent's
    /// `output_schema` (or its `output_fallback`); absent for an agent
    /// without a schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_json: Option<serde_json::Value>,
    pub error: Option<RunError>,
    pub pause: Option<Pause>,
    /// Number of journaled steps.
    pub steps: u32,
    /// Execution attempt, starting at 1; grows when a run is retried.
    pub attempt: u32,
    pub usage: Usage,
    pub cost_usd: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    #[serde(with = "crate::run::ts")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Millis,
    #[serde(with = "crate::run::ts")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Millis,
    /// The run this one was forked from (`POST /v1/runs/{id}/fork`), or
    /// null.
    #[serde(default)]
    pub forked_from: Option<ForkOrigin>,
}

/// Where a forked run came from: it started with the first `step` steps
/// (indexes `0..step`) of run `run_id`'s journal and executed from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ForkOrigin {
    pub run_id: RunId,
    /// The index the fork's execution resumed at (= steps kept).
    pub step: u32,
}

/// What a caller supplies to create a run; the tenant is passed separately.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub id: RunId,
    pub agent: String,
    /// The agent version the run is pinned to (see [`Run::agent_version`]).
    pub agent_version: Option<String>,
    pub principal: PrincipalId,
    pub input: serde_json::Value,
    pub conversation_id: Option<ConversationId>,
    pub metadata: Option<serde_json::Value>,
    /// The creator's roles: tool policies are checked against them.
    pub roles: Vec<String>,
    /// The caller's `Idempotency-Key` and a fingerprint of its request.
    pub idempotency: Option<IdempotencyKey>,
    /// The request that created the run, kept for its logs and traces.
    pub origin: RunOrigin,
    /// What to do when the run's conversation already has a run queued,
    /// running or paused.
    pub if_busy: IfBusy,
    /// Where to POST the run when it succeeds, fails, is cancelled, dies
    /// or pauses (completion webhooks). Stored with the run, so the status
    /// change itself enqueues the deliveries.
    pub callbacks: Vec<Callback>,
}

/// One completion webhook of a run: the run's `callback_url`, or its
/// agent's `on_finish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    /// The URL to POST to.
    pub url: String,
    /// The webhook tool this came from (`on_finish` naming one): its secret
    /// and `allow` list apply. `None`: the `[webhooks]` ones do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
}

/// `if_busy` of run creation: a second message to a conversation that is
/// still busy with the first ("double-texting").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IfBusy {
    /// Wait for the conversation's earlier runs, in creation order.
    #[default]
    Enqueue,
    /// Refuse the new run (`409 conflict`).
    Reject,
    /// Cancel the conversation's unfinished runs (a running one stops at
    /// its next step boundary), then run this one.
    Interrupt,
}

/// Where a run came from, stored with it so every attempt, in any process,
/// logs the creating request's id and continues its trace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunOrigin {
    /// The `x-request-id` of the creating request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// W3C `traceparent` of the span that created the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C `tracestate` that came with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl RunOrigin {
    /// Nothing to store.
    pub fn is_empty(&self) -> bool {
        self.request_id.is_none() && self.traceparent.is_none() && self.tracestate.is_none()
    }
}

/// An `Idempotency-Key` with a fingerprint of the request that used it: the
/// same key and fingerprint replay the run it created; the same key with
/// another fingerprint is a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub fingerprint: String,
}

/// Serde adapter: epoch milliseconds in memory, RFC 3339 on the wire.
pub mod ts {
    use crate::Millis;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes epoch millis as an RFC 3339 string.
    pub fn serialize<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::rfc3339(*ms))
    }

    /// Accepts an RFC 3339 string or an integer of epoch millis.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Ms(i64),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Ms(ms) => Ok(ms),
            Either::Text(t) => chrono::DateTime::parse_from_rfc3339(&t)
                .map(|dt| dt.timestamp_millis())
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Serde for an optional timestamp: [`ts`] or `null`.
pub mod ts_opt {
    use crate::Millis;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes `Some(ms)` as an RFC 3339 string, `None` as `null`.
    pub fn serialize<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => super::ts::serialize(ms, s),
            None => s.serialize_none(),
        }
    }

    /// Accepts what [`super::ts`] accepts, or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
        #[derive(Deserialize)]
        struct Ts(#[serde(with = "super::ts")] Millis);
        Ok(Option::<Ts>::deserialize(d)?.map(|t| t.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_machine() {
        use RunStatus::*;
        assert!(Queued.can_transition(Running));
        assert!(Running.can_transition(Paused));
        assert!(Paused.can_transition(Queued));
        assert!(Dead.can_transition(Queued));
        assert!(!Succeeded.can_transition(Running));
        assert!(!Paused.can_transition(Succeeded));
        assert!(!Cancelled.can_transition(Queued));
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
        }
        // The transitions the changes allow, written out once more here
        // only to pin them down.
        let legal = [
            (Queued, Running),
            (Queued, Cancelled),
            (Running, Paused),
            (Running, Succeeded),
            (Running, Failed),
            (Running, Cancelled),
            (Running, Queued),
            (Running, Dead),
            (Paused, Queued),
            (Paused, Cancelled),
            (Dead, Queued),
        ];
        for from in RunStatus::ALL {
            for to in RunStatus::ALL {
                assert_eq!(
                    from.can_transition(to),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        assert!(Change::Cancel.applies_to(Paused));
        assert!(!Change::Resume.applies_to(Queued));
        assert!(Change::Purge.from().iter().all(|s| s.is_terminal()));
    }
}
