//! Journal steps: the durable record of each unit of a run.

use crate::{Millis, RunError, Usage};
use serde::{Deserialize, Serialize};

/// What kind of work a step was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A model call; output is the assistant message.
    Llm,
    /// A tool call; output is the tool result.
    Tool,
    /// A question to a human; output is the answer.
    Human,
}

impl StepKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Llm => "llm",
            Self::Tool => "tool",
            Self::Human => "human",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "llm" => Some(Self::Llm),
            "tool" => Some(Self::Tool),
            "human" => Some(Self::Human),
            _ => None,
        }
    }
}

/// A step's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Completed,
    Failed,
    /// A human step waiting for its answer.
    Waiting,
}

impl StepStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Waiting => "waiting",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "completed" => Some(Self::Completed),
            "failed" => Some(Self::Failed),
            "waiting" => Some(Self::Waiting),
            _ => None,
        }
    }
}

/// One journal entry. `index` starts at 0 and has no gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    pub index: u32,
    pub kind: StepKind,
    /// Tool name, `ask_human`, or the provider name for model calls.
    pub name: String,
    /// A `tool` or `human` step: the id of the model's tool call it answers
    /// (an approval step: the call waiting for the decision). `None` for
    /// model steps. Added in record version 2 (see [`crate::checkpoint`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    pub status: StepStatus,
    pub attempt: u32,
    #[serde(with = "crate::run::ts")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Millis,
    pub duration_ms: u64,
    pub input: serde_json::Value,
    pub output: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}
