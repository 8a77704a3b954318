//! Cross-process events, through the store's change feed (PostgreSQL's
//! LISTEN/NOTIFY; a SQLite store has none and needs none).
//!
//! A process that follows a run another process executes ([`Follow`], the
//! SSE stream) announces a *watch* of it, again every [`WATCH_REFRESH`]
//! while it follows. The process executing the run publishes the run's
//! events while a watch is fresh ([`WATCH_TTL`]), so an unwatched run
//! sends nothing: status changes and started steps as they are, model
//! text inline, and for journaled steps and the end only that the run
//! changed ([`RunEventKind::Changed`]): the follower reads those from the
//! store, through the tenant-scoped API. Model calls are streamed while
//! their run is watched, so a follower elsewhere also sees `token` events
//! (of calls that start once the watch has arrived).
//!
//! A watch that arrives while the run executes here is answered with a
//! `Changed` notice: steps journaled before the watch arrived were not
//! announced, and the follower reads them now instead of at its next poll.
//!
//! The feed is a fast path, never the only one: a follower still polls the
//! store ([`POLL_CONNECTED`] while the feed listens, every second when it
//! does not), and re-reads it at once after a gap (a lost connection). When
//! any process listens again after a lost connection, every follower also
//! announces its watch again: the watch may be what that process missed.

use crate::run_event::{RunEvent, RunEventKind};
use agentd_core::{RunId, TenantId};
use agentd_store::{ChangeFeed, FeedItem, Notice, RunChange};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, broadcast, watch};

/// How long a watch holds without being announced again.
pub const WATCH_TTL: Duration = Duration::from_secs(30);
/// How often a follower announces its watch again.
pub const WATCH_REFRESH: Duration = Duration::from_secs(10);
/// How often a follower polls the store while the feed listens.
pub const POLL_CONNECTED: Duration = Duration::from_secs(5);
/// How often a follower polls the store without a listening feed.
pub const POLL_DISCONNECTED: Duration = Duration::from_secs(1);
/// How often a follower checks whether to announce its watch again
/// ([`Follow::keep_watching`]) or re-read the store ([`Follow::poll_due`]).
pub const FOLLOW_TICK: Duration = Duration::from_secs(1);

/// The cross-process half of the event bus.
pub(crate) struct Remote {
    feed: Arc<dyn ChangeFeed>,
    /// Where notices of other processes' runs go: this process's listeners.
    local: broadcast::Sender<RunEvent>,
    /// Woken when another process queued a run or notices were lost.
    wake: Arc<Notify>,
    /// Runs other processes follow, with when their watch lapses.
    watched: Mutex<HashMap<RunId, Instant>>,
    /// Entries of `watched`, read without its lock on every event.
    n_watched: AtomicUsize,
    /// Runs this process executes, with their tenants (to answer a watch).
    executing: Mutex<HashMap<RunId, TenantId>>,
    /// Counts the gaps: times notices may have been lost.
    gaps: watch::Sender<u64>,
    started: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Remote {
    pub(crate) fn new(
        feed: Arc<dyn ChangeFeed>,
        local: broadcast::Sender<RunEvent>,
        wake: Arc<Notify>,
    ) -> Arc<Self> {
        Arc::new(Self {
            feed,
            local,
            wake,
            watched: Mutex::default(),
            n_watched: AtomicUsize::new(0),
            executing: Mutex::default(),
            gaps: watch::Sender::new(0),
            started: AtomicBool::new(false),
        })
    }

    /// Starts receiving the feed's notices, once. The task holds only a
    /// weak reference, so it ends with the engine (and the store).
    pub(crate) fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.started.store(false, Ordering::Release);
            return;
        };
        rt.spawn(dispatch(Arc::downgrade(self), self.feed.subscribe()));
    }

    /// True while the feed listens.
    pub(crate) fn connected(&self) -> bool {
        self.feed.connected()
    }

    /// True while another process's watch of `run` holds.
    pub(crate) fn watched(&self, run: RunId) -> bool {
        if self.n_watched.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut w = lock(&self.watched);
        match w.get(&run) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                w.remove(&run);
                self.n_watched.store(w.len(), Ordering::Relaxed);
                false
            }
            None => false,
        }
    }

    /// Publishes an event of a watched run to the feed.
    pub(crate) fn publish(&self, run: RunId, tenant: &TenantId, kind: &RunEventKind) {
        let change = match kind {
            RunEventKind::Status { status } => RunChange::Status { status: *status },
            RunEventKind::StepStarted { index, kind, name } => RunChange::StepStarted {
                index: *index,
                kind: *kind,
                name: name.clone(),
            },
            RunEventKind::Token { index, text } => RunChange::Token {
                index: *index,
                text: text.clone(),
            },
            RunEventKind::StepCompleted { .. }
            | RunEventKind::Finished { .. }
            | RunEventKind::Changed => RunChange::Stored,
        };
        self.feed.publish(Notice::Run {
            tenant: tenant.clone(),
            run,
            change,
        });
    }

    /// Notes that this process executes `run` until the guard drops.
    pub(crate) fn executing(self: &Arc<Self>, run: RunId, tenant: &TenantId) -> Executing {
        lock(&self.executing).insert(run, tenant.clone());
        Executing {
            remote: self.clone(),
            run,
        }
    }

    /// Another process follows `run`: note it, and if the run executes
    /// here, tell the follower to read what was journaled before.
    fn watch(&self, tenant: TenantId, run: RunId) {
        let now = Instant::now();
        let fresh = {
            let mut w = lock(&self.watched);
            let fresh = w
                .insert(run, now + WATCH_TTL)
                .is_none_or(|until| until <= now);
            if fresh {
                w.retain(|_, until| *until > now);
            }
            self.n_watched.store(w.len(), Ordering::Relaxed);
            fresh
        };
        let here = lock(&self.executing).get(&run) == Some(&tenant);
        if fresh && here {
            self.publish(run, &tenant, &RunEventKind::Changed);
        }
    }

    /// A notice or a gap from the feed.
    fn receive(&self, item: FeedItem) {
        match item {
            FeedItem::Notice(Notice::Queued) => self.wake.notify_one(),
            FeedItem::Notice(Notice::Watch { tenant, run }) => self.watch(tenant, run),
            FeedItem::Notice(Notice::Run {
                tenant,
                run,
                change,
            }) => {
                if self.local.receiver_count() == 0 {
                    return;
                }
                let kind = match change {
                    RunChange::Status { status } => RunEventKind::Status { status },
                    RunChange::StepStarted { index, kind, name } => {
                        RunEventKind::StepStarted { index, kind, name }
                    }
                    RunChange::Token { index, text } => RunEventKind::Token { index, text },
                    RunChange::Stored => RunEventKind::Changed,
                };
                // Listeners keep only their own run's events, of their own
                // tenant: the notice names both.
                let _ = self.local.send(RunEvent {
                    run_id: run,
                    tenant,
                    kind,
                });
            }
            FeedItem::Gap => {
                self.gaps.send_modify(|n| *n += 1);
                // Runs queued meanwhile were not announced.
                self.wake.notify_one();
            }
            // Another process missed notices, watches perhaps: followers
            // announce theirs again (and re-read the store, which is cheap).
            FeedItem::Notice(Notice::Listening) => self.gaps.send_modify(|n| *n += 1),
        }
    }
}

/// Receives the feed until it closes or the engine is gone.
async fn dispatch(remote: Weak<Remote>, mut rx: broadcast::Receiver<FeedItem>) {
    loop {
        let item = match rx.recv().await {
            Ok(item) => item,
            Err(broadcast::error::RecvError::Lagged(_)) => FeedItem::Gap,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(remote) = remote.upgrade() else {
            return;
        };
        remote.receive(item);
    }
}

/// A run executing in this process (see [`Remote::executing`]).
pub(crate) struct Executing {
    remote: Arc<Remote>,
    run: RunId,
}

impl Drop for Executing {
    fn drop(&mut self) {
        lock(&self.remote.executing).remove(&self.run);
    }
}

/// One follower of a run (an SSE stream): keeps other processes publishing
/// the run's events, and says when to read the store. Without a change
/// feed it only paces the polls.
pub struct Follow {
    remote: Option<Arc<Remote>>,
    tenant: TenantId,
    run: RunId,
    gaps: Option<watch::Receiver<u64>>,
    announced: Instant,
    polled: Instant,
}

impl Follow {
    pub(crate) fn new(remote: Option<Arc<Remote>>, tenant: &TenantId, run: RunId) -> Self {
        let now = Instant::now();
        let mut f = Self {
            gaps: remote.as_ref().map(|r| r.gaps.subscribe()),
            remote,
            tenant: tenant.clone(),
            run,
            announced: now,
            polled: now,
        };
        f.announce();
        f
    }

    fn announce(&mut self) {
        if let Some(r) = &self.remote {
            r.feed.publish(Notice::Watch {
                tenant: self.tenant.clone(),
                run: self.run,
            });
        }
        self.announced = Instant::now();
    }

    /// Announces the watch again when due; call it often (every second).
    pub fn keep_watching(&mut self) {
        if self.announced.elapsed() >= WATCH_REFRESH {
            self.announce();
        }
    }

    /// True when the store should be polled now (and from now on counts
    /// as polled): every [`POLL_CONNECTED`] while the feed listens, every
    /// [`POLL_DISCONNECTED`] otherwise.
    pub fn poll_due(&mut self) -> bool {
        let every = match &self.remote {
            Some(r) if r.connected() => POLL_CONNECTED,
            _ => POLL_DISCONNECTED,
        };
        // A little slack, so a once-a-second caller is not a tick late.
        let due = self.polled.elapsed() + Duration::from_millis(50) >= every;
        if due {
            self.polled = Instant::now();
        }
        due
    }

    /// Resolves when notices may have been lost (the feed reconnected):
    /// read the store now. The watch is announced again first, since the
    /// executing process may have missed it too. Never resolves without a
    /// feed.
    pub async fn gap(&mut self) {
        let lost = match &mut self.gaps {
            Some(rx) => rx.changed().await.is_ok(),
            None => false,
        };
        if !lost {
            // No feed, or its sender is gone: nothing will ever arrive.
            std::future::pending::<()>().await;
        }
        self.announce();
        self.polled = Instant::now();
    }
}
