//! `[[schedules]]`: the scheduler task every process running workers starts
//! (see [`Engine::run_workers`]), and the listing `GET /v1/schedules` reads.
//!
//! Every process computes the same ticks; the store records each
//! schedule's latest tick in the transaction that creates its run, and
//! only if it is later than the recorded one, so a tick starts one run
//! across the fleet whichever process gets there first.

use crate::{Engine, Result, Submit};
use agentd_config::{CronSchedule, Missed, ScheduleConfig};
use agentd_core::{Identity, Millis, PrincipalId, RunId, TenantId, now_millis, rfc3339};
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest sleep between two looks at the schedules: bounds how late a
/// wall-clock jump (NTP, a suspended VM) is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// One schedule as `GET /v1/schedules` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ScheduleStatus {
    pub name: String,
    pub agent: String,
    pub cron: String,
    /// IANA time zone the expression is read in.
    pub timezone: String,
    /// `skip` or `run_once`.
    pub missed: String,
    /// The next tick (RFC 3339, UTC); absent if the expression has none.
    pub next_tick: Option<String>,
    /// The latest tick that started a run (RFC 3339, UTC), if any.
    pub last_tick: Option<String>,
    /// The run that tick started.
    pub last_run_id: Option<RunId>,
}

/// A configured schedule, parsed.
struct Entry<'a> {
    config: &'a ScheduleConfig,
    cron: CronSchedule,
    tenant: TenantId,
}

impl Engine {
    /// The caller's tenant's schedules, by name, with their next tick and
    /// the latest tick that started a run.
    pub async fn schedules(&self, who: &Identity) -> Result<Vec<ScheduleStatus>> {
        let catalog = self.catalog();
        let recorded = self.inner.store.schedule_ticks(&who.tenant).await?;
        let now = now_millis();
        let mut out: Vec<ScheduleStatus> = catalog
            .config
            .schedules
            .iter()
            .filter(|s| s.tenant == who.tenant.as_str())
            .map(|s| {
                let last = recorded.iter().find(|t| t.schedule == s.name);
                ScheduleStatus {
                    name: s.name.clone(),
                    agent: s.agent.clone(),
                    cron: s.cron.clone(),
                    timezone: s.timezone.clone(),
                    missed: missed_name(s.missed).to_owned(),
                    next_tick: s.parsed().ok().and_then(|c| c.next_after(now)).map(rfc3339),
                    last_tick: last.map(|t| rfc3339(t.tick_at)),
                    last_run_id: last.map(|t| t.run_id),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Starts a run at each tick of each schedule until `shutdown` fires,
    /// sleeping until the next tick of any schedule. A schedule first seen
    /// (at start-up, or added by a reload) starts from now, except that
    /// with `missed = "run_once"` a tick that passed since the latest one
    /// recorded in the store starts one run at once. A tick whose run
    /// cannot be created (the tenant at its active-run cap, the store
    /// failing) is logged and not retried.
    pub(crate) async fn run_schedules(&self, shutdown: CancellationToken) {
        // Per (tenant, name): ticks at or before this are dealt with.
        let mut cursors: HashMap<(String, String), Millis> = HashMap::new();
        loop {
            let catalog = self.catalog();
            let entries = parse(&catalog.config.schedules);
            let now = now_millis();
            let mut wake: Option<Millis> = None;
            for e in &entries {
                let key = (e.tenant.as_str().to_owned(), e.config.name.clone());
                let cursor = match cursors.get(&key) {
                    Some(c) => *c,
                    None => match self.first_cursor(e, now).await {
                        Some(c) => c,
                        // The store failed: look again soon.
                        None => {
                            wake = Some(wake.map_or(now + 1000, |w| w.min(now + 1000)));
                            continue;
                        }
                    },
                };
                if let Some(tick) = e.cron.latest_at_or_before(now)
                    && tick > cursor
                {
                    self.fire(e, tick).await;
                }
                cursors.insert(key, now);
                if let Some(next) = e.cron.next_after(now) {
                    wake = Some(wake.map_or(next, |w| w.min(next)));
                }
            }
            let sleep = wake
                .map(|w| Duration::from_millis(u64::try_from(w - now_millis()).unwrap_or(0)))
                .unwrap_or(MAX_SLEEP)
                .min(MAX_SLEEP);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.inner.schedules_changed.notified() => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Where a schedule first seen starts: now, or for `run_once` the
    /// latest tick recorded in the store (so the tick missed since starts
    /// one run); `None` if the store could not be read.
    async fn first_cursor(&self, e: &Entry<'_>, now: Millis) -> Option<Millis> {
        if e.config.missed == Missed::Skip {
            return Some(now);
        }
        match self.inner.store.schedule_ticks(&e.tenant).await {
            Ok(ticks) => Some(
                ticks
                    .iter()
                    .find(|t| t.schedule == e.config.name)
                    // Never recorded: a new schedule has missed nothing.
                    .map_or(now, |t| t.tick_at),
            ),
            Err(err) => {
                tracing::error!(schedule = %e.config.name, error = %err,
                    "reading the schedule's last tick failed; retrying");
                None
            }
        }
    }

    /// Starts the run of tick `tick` unless a process already did.
    async fn fire(&self, e: &Entry<'_>, tick: Millis) {
        let name = &e.config.name;
        let who = match PrincipalId::parse(format!("schedule:{name}")) {
            Ok(principal) => Identity {
                tenant: e.tenant.clone(),
                principal,
                roles: Vec::new(),
            },
            Err(err) => {
                tracing::error!(schedule = %name, error = %err, "schedule name is not a principal");
                return;
            }
        };
        let req = Submit {
            input: e.config.input.clone(),
            metadata: Some(serde_json::json!({ "schedule": name, "tick": rfc3339(tick) })),
            ..Submit::default()
        };
        match self
            .submit_tick(&who, &e.config.agent, req, name, tick)
            .await
        {
            Ok(Some(run)) => tracing::info!(schedule = %name, tick = %rfc3339(tick),
                run_id = %run.id, "schedule tick started a run"),
            Ok(None) => tracing::debug!(schedule = %name, tick = %rfc3339(tick),
                "schedule tick already started a run elsewhere"),
            Err(err) => tracing::error!(schedule = %name, tick = %rfc3339(tick), error = %err,
                "schedule tick could not start its run; it is skipped"),
        }
    }
}

fn missed_name(m: Missed) -> &'static str {
    match m {
        Missed::Skip => "skip",
        Missed::RunOnce => "run_once",
    }
}

/// The schedules whose expression, zone and tenant parse (validation
/// checked them; one that does not is logged, not run).
fn parse(schedules: &[ScheduleConfig]) -> Vec<Entry<'_>> {
    schedules
        .iter()
        .filter_map(|config| {
            let parsed = config.parsed().map_err(|e| e.to_string()).and_then(|cron| {
                let tenant = TenantId::parse(config.tenant.as_str()).map_err(|e| e.to_string())?;
                Ok((cron, tenant))
            });
            match parsed {
                Ok((cron, tenant)) => Some(Entry {
                    config,
                    cron,
                    tenant,
                }),
                Err(e) => {
                    tracing::error!(schedule = %config.name, error = %e, "schedule not run");
                    None
                }
            }
        })
        .collect()
}
