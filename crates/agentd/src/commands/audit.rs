//! `agentd audit`: the tenant's audit log, read through the engine's read
//! facade as an admin of `--tenant` (so every entry of the tenant).

use super::failure::Failure;
use super::print::{print_audit, print_page_json};
use super::{exit, identity, open_store, parse_run_id};
use crate::cli::AuditArgs;
use agentd_config::Config;
use agentd_engine::reads::Reads;
use agentd_store::AuditFilter;

/// Runs `agentd audit`.
pub(super) async fn audit(config: &Config, args: &AuditArgs, json: bool) -> Result<u8, Failure> {
    let who = identity(&args.who)?;
    let filter = AuditFilter {
        run_id: args.run.as_deref().map(parse_run_id).transpose()?,
        actor: args.actor.clone(),
        kind: args.kind.clone(),
        since: args.since,
        limit: args.limit,
        cursor: args.cursor.clone(),
    };
    let store = open_store(config).await?;
    let page = Reads::new(store.as_ref()).audit_log(&who, &filter).await?;
    if json {
        print_page_json(&page);
    } else {
        print_audit(&page);
    }
    Ok(exit::OK)
}
