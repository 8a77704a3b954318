//! The read side of the engine: the one door through which the API and the
//! CLI read runs, steps, messages, audit trails and dead letters. Every read
//! takes the caller's [`Identity`], is scoped by its tenant (another
//! tenant's run answers like a missing one) and applies the role rules here,
//! in one place.
//!
//! Role rules: any identity of a tenant reads every run of that tenant,
//! dead ones included, so the dead-letter list is a view of runs the caller
//! can already read one by one. Restarting a dead run is a write and keeps
//! needing role `admin` (`Engine::requeue_dead`). The tenant's audit log
//! shows role `admin` every entry, and anyone else only the entries whose
//! actor is the caller's own principal.

use crate::{ADMIN_ROLE, Engine, EngineError, Result};
use agentd_core::{ConversationId, Identity, Run, RunId, RunStatus, Step};
use agentd_store::{
    AUDIT_KINDS, AuditEntry, AuditFilter, ConversationMessage, Page, RunFilter, Store,
};

/// Tenant-scoped reads over a store. Borrowed, so building one per request
/// costs nothing.
#[derive(Clone, Copy)]
pub struct Reads<'a> {
    store: &'a dyn Store,
}

impl Engine {
    /// The read facade over this engine's store.
    pub fn reads(&self) -> Reads<'_> {
        Reads::new(self.inner.store.as_ref())
    }
}

impl<'a> Reads<'a> {
    /// Reads over `store`, for callers that have a store but no engine (the
    /// CLI's `runs list` starts no tools).
    pub fn new(store: &'a dyn Store) -> Self {
        Self { store }
    }

    /// One run, or `None` if it does not exist for the caller's tenant.
    pub async fn run(&self, who: &Identity, id: RunId) -> Result<Option<Run>> {
        Ok(self.store.get_run(&who.tenant, id).await?)
    }

    /// A run's completion-webhook deliveries, oldest first; `None` if the
    /// run does not exist for the caller's tenant.
    pub async fn deliveries(
        &self,
        who: &Identity,
        id: RunId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Option<Page<agentd_store::Delivery>>> {
        Ok(self
            .store
            .list_deliveries(&who.tenant, id, limit, cursor)
            .await?)
    }

    /// The caller's runs, newest first.
    pub async fn runs(&self, who: &Identity, filter: &RunFilter) -> Result<Page<Run>> {
        Ok(self.store.list_runs(&who.tenant, filter).await?)
    }

    /// A run's journal from index `after + 1`; `None` if the run does not
    /// exist for the caller's tenant.
    pub async fn steps(
        &self,
        who: &Identity,
        id: RunId,
        after: Option<u32>,
        limit: u32,
    ) -> Result<Option<Page<Step>>> {
        Ok(self.store.list_steps(&who.tenant, id, after, limit).await?)
    }

    /// A conversation's messages, oldest first, after `after` (a seq).
    pub async fn messages(
        &self,
        who: &Identity,
        conversation: &ConversationId,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Page<ConversationMessage>> {
        Ok(self
            .store
            .list_messages(&who.tenant, conversation, after, limit)
            .await?)
    }

    /// A run's audit trail, oldest first (empty for another tenant's run).
    pub async fn audit(&self, who: &Identity, id: RunId) -> Result<Vec<AuditEntry>> {
        Ok(self.store.list_audit(&who.tenant, id).await?)
    }

    /// The tenant's audit log, newest first, as `filter` narrows it: every
    /// entry for role `admin`, otherwise only the caller's own (a filter
    /// naming another actor then finds nothing).
    pub async fn audit_log(
        &self,
        who: &Identity,
        filter: &AuditFilter,
    ) -> Result<Page<AuditEntry>> {
        if let Some(kind) = filter.kind.as_deref()
            && !AUDIT_KINDS.contains(&kind)
        {
            return Err(EngineError::Invalid(format!(
                "invalid kind {kind:?}; expected one of: {}",
                AUDIT_KINDS.join(", ")
            )));
        }
        if who.has_role(ADMIN_ROLE) {
            return Ok(self.store.list_audit_log(&who.tenant, filter).await?);
        }
        let own = who.principal.as_str();
        if filter.actor.as_deref().is_some_and(|a| a != own) {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let filter = AuditFilter {
            actor: Some(own.to_string()),
            ..filter.clone()
        };
        Ok(self.store.list_audit_log(&who.tenant, &filter).await?)
    }

    /// The caller's dead runs (retries exhausted), newest first: exactly what
    /// `runs` with `status = dead` returns, for any identity of the tenant.
    pub async fn dead_letters(
        &self,
        who: &Identity,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<Page<Run>> {
        let filter = RunFilter {
            status: Some(RunStatus::Dead),
            limit,
            cursor,
            ..RunFilter::default()
        };
        self.runs(who, &filter).await
    }

    /// The caller's tenant's usage report (any identity of the tenant, like
    /// its runs).
    pub async fn usage(
        &self,
        who: &Identity,
        query: &agentd_store::UsageQuery,
    ) -> Result<agentd_store::UsageReport> {
        let rows = self.store.usage(&who.tenant, query).await?;
        Ok(agentd_store::UsageReport::new(query, rows))
    }

    /// Checks the store answers and its migrations are applied (`/ready`;
    /// no tenant data is read).
    pub async fn ping(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    /// Write transactions this process committed (`/metrics`).
    pub fn commits(&self) -> u64 {
        self.store.commits()
    }
}
