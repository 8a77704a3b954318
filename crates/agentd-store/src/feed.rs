//! The change feed: what processes sharing one store tell each other at
//! once, instead of each finding out at its next poll of the store.
//!
//! It carries three things: that runs were queued (idle workers claim them
//! now), that a process follows a run's events (the process executing it
//! then publishes them), and those events. It is a fast path only: a notice
//! may be lost (a connection drops, a queue overflows), so every reader
//! keeps polling the store, less often while the feed is connected, and
//! re-reads the store at once on [`FeedItem::Gap`].
//!
//! Notices name a tenant and a run, never a step's content: a reader that
//! shows a run's steps reads them from the store through the tenant-scoped
//! API. Streamed model text ([`RunChange::Token`]) is the one payload sent
//! inline; a reader must deliver it only to followers of that very run and
//! tenant.

use agentd_core::{RunId, RunStatus, StepKind, TenantId};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Something one process tells the others sharing its store.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Runs were queued that no worker started yet: idle workers may claim
    /// them now.
    Queued,
    /// A process follows the events of `run` (of `tenant`): the process
    /// executing it should publish them for a while (see the engine's
    /// watch TTL).
    Watch { tenant: TenantId, run: RunId },
    /// A process started listening, or listens again after losing its
    /// connection: notices sent meanwhile did not reach it, so followers
    /// announce their watches again (the process executing a run they
    /// follow may be that one).
    Listening,
    /// Something happened to `run` of `tenant`.
    Run {
        tenant: TenantId,
        run: RunId,
        change: RunChange,
    },
}

/// What happened to a run, as the feed carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "x", rename_all = "snake_case")]
pub enum RunChange {
    /// The run's status changed (queued, running).
    Status { status: RunStatus },
    /// A step began.
    StepStarted {
        index: u32,
        kind: StepKind,
        name: String,
    },
    /// Text streamed by the model during step `index`. A backend may split
    /// one piece of text into several consecutive notices.
    Token { index: u32, text: String },
    /// The run changed in the store (steps were journaled, or it paused or
    /// ended): read it again.
    Stored,
}

/// What a subscriber of the feed receives.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedItem {
    /// A notice from another process.
    Notice(Notice),
    /// Notices may have been lost (the feed's connection was re-established,
    /// or this subscriber fell behind): re-read from the store whatever
    /// waits for a notice.
    Gap,
}

/// The change feed of a store shared by several processes (see the module
/// docs). [`crate::Store::feed`] returns it.
pub trait ChangeFeed: Send + Sync {
    /// Sends `notice` to the other processes on this store. Never blocks
    /// and never fails: a notice that cannot be sent (its queue is full,
    /// the database is unreachable) is dropped, and logged.
    fn publish(&self, notice: Notice);
    /// Notices of the other processes (never this one's own), from now on.
    /// The first call starts listening.
    fn subscribe(&self) -> broadcast::Receiver<FeedItem>;
    /// True while the feed listens: notices of other processes arrive
    /// within moments. While false, readers rely on polling the store.
    fn connected(&self) -> bool;
}
