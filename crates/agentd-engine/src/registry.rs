//! The worker registry: a process that runs workers registers itself in the
//! store under its node id (the lease owner name), refreshes the row every
//! third of a lease while its workers run and removes it on a graceful
//! shutdown. `agentd check` counts the live rows.
//!
//! Start-up recovery releases every lease of this process's node id, so two
//! live processes must never share one: two processes on one host both
//! default to the host name. [`Engine::join_fleet`] settles it before
//! recovery runs.

use crate::{Engine, EngineError, Result};
use agentd_store::{WorkerProcess, WorkerRegistration};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest wait between two refreshes of a registry row.
const REFRESH_MAX: Duration = Duration::from_secs(30);

impl Engine {
    /// Takes this process's node id in the store's worker registry; call
    /// it at start-up before [`Engine::recover`]. A live process (seen
    /// within the lease) on another host, or another running process on
    /// this host, may hold the node id asked for: then, with `queue.node_id`
    /// unset this process claims runs as `HOSTNAME-PID` instead (logged);
    /// set, this is a config error naming the key and the holder. A holder
    /// on this host whose pid is gone crashed, and its node id is taken
    /// over (its leases are what recovery is for). Returns the node id.
    pub async fn join_fleet(&self) -> Result<String> {
        let s = &self.inner.settings;
        let store = &self.inner.store;
        let mut me = self.registration_as(&s.owner);
        if let Some(holder) = store.register_worker(&me, Some(s.lease)).await? {
            if holder.host == me.host && !pid_running(holder.pid) {
                tracing::info!(
                    node_id = %me.node_id,
                    old_pid = holder.pid,
                    "taking over the node id of a process on this host that is gone"
                );
                store.register_worker(&me, None).await?;
            } else if s.node_id_configured {
                return Err(EngineError::Config(held_by(&me.node_id, &holder)));
            } else {
                let own = format!("{}-{}", me.node_id, me.pid);
                tracing::info!(
                    node_id = %own,
                    taken = %me.node_id,
                    holder_host = %holder.host,
                    holder_pid = holder.pid,
                    "node id taken by a live process; this process uses its own \
                     (set queue.node_id to choose one)"
                );
                me.node_id = own;
                // `HOSTNAME-PID` is this process's alone.
                store.register_worker(&me, None).await?;
            }
        }
        self.set_node_id(&me.node_id);
        if let Ok(mut r) = self.inner.registration.lock() {
            *r = Some(me.clone());
        }
        Ok(me.node_id)
    }

    /// The node id this process claims runs as (its lease owner name).
    pub fn node_id(&self) -> String {
        match self.inner.owner.read() {
            Ok(o) => o.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_node_id(&self, node_id: &str) {
        let mut o = match self.inner.owner.write() {
            Ok(o) => o,
            Err(poisoned) => poisoned.into_inner(),
        };
        *o = node_id.to_owned();
    }

    fn registration_as(&self, node_id: &str) -> WorkerRegistration {
        WorkerRegistration {
            node_id: node_id.to_owned(),
            host: host_name().unwrap_or_else(|| "unknown".to_owned()),
            pid: std::process::id(),
            slots: self.inner.settings.workers,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// Refreshes this process's row every third of a lease (at most every
    /// [`REFRESH_MAX`], so `agentd check`'s 2-minute window always sees a
    /// live process) until `done` fires (the workers stopped), then removes
    /// it. A process whose workers were started without
    /// [`Engine::join_fleet`] (the engine's own tests) registers here under
    /// the node id it has. A row that went missing (removed by hand) is
    /// registered again; one a live process took over while this one was
    /// not seen (a stall longer than the lease) is left to it, with an
    /// error: its start-up released this process's leases already.
    pub(crate) async fn keep_registered(&self, done: CancellationToken) {
        let store = &self.inner.store;
        let existing = self.inner.registration.lock().ok().and_then(|r| r.clone());
        let me = match existing {
            Some(me) => me,
            None => {
                let me = self.registration_as(&self.node_id());
                if let Err(e) = store.register_worker(&me, None).await {
                    tracing::warn!(error = %e, "registering this worker process failed");
                }
                me
            }
        };
        let every = (self.inner.settings.lease / 3).clamp(Duration::from_millis(100), REFRESH_MAX);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = done.cancelled() => break,
            }
            match store.touch_worker(&me).await {
                Ok(true) => {}
                Ok(false) => match store
                    .register_worker(&me, Some(self.inner.settings.lease))
                    .await
                {
                    Ok(None) => tracing::warn!(
                        node_id = %me.node_id,
                        "this process's row in the worker registry was gone; registered again"
                    ),
                    Ok(Some(holder)) => tracing::error!(
                        node_id = %me.node_id,
                        holder_host = %holder.host,
                        holder_pid = holder.pid,
                        "another live process took over this process's node id after it was \
                         not seen for a lease; restart this process"
                    ),
                    Err(e) => tracing::warn!(error = %e, "registering this worker process failed"),
                },
                Err(e) => tracing::warn!(error = %e, "refreshing the worker registry failed"),
            }
        }
        if let Err(e) = store.deregister_worker(&me).await {
            tracing::warn!(error = %e, "removing this process from the worker registry failed");
        }
    }
}

/// The start-up error for an explicit `queue.node_id` a live process holds.
fn held_by(node_id: &str, holder: &WorkerProcess) -> String {
    format!(
        "key `queue.node_id`: node id {node_id:?} is held by a live process (host {}, pid {}, \
         seen {} s ago); two processes sharing a node id release each other's leases at \
         start-up. Give each process its own `queue.node_id`, or stop the other one",
        holder.host,
        holder.pid,
        holder.seen_ago.as_secs()
    )
}

/// The host name: `HOSTNAME`, else `/etc/hostname`.
pub(crate) fn host_name() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
}

/// The node id when `queue.node_id` is unset: the host name.
pub(crate) fn default_node_id() -> String {
    host_name().unwrap_or_else(|| "agentd".to_string())
}

/// Whether a process with this pid runs on this host. Only Linux is asked
/// (`/proc`); elsewhere a holder is assumed alive, the safe answer.
fn pid_running(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}
