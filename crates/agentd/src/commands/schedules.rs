//! `agentd schedules list`: a tenant's `[[schedules]]` as the config
//! declares them, with the ticks the store recorded.

use super::failure::Failure;
use super::print::print_page_json;
use super::{build_engine, exit, identity};
use crate::cli::SchedulesCommand;
use agentd_config::Config;
use agentd_engine::ScheduleStatus;
use agentd_store::Page;

/// Runs one `agentd schedules` subcommand.
pub(super) async fn schedules(
    config: &Config,
    cmd: &SchedulesCommand,
    json: bool,
) -> Result<u8, Failure> {
    let SchedulesCommand::List { who } = cmd;
    let who = identity(who)?;
    let engine = build_engine(config).await?;
    let items = engine.schedules(&who).await;
    engine.shutdown_tools().await;
    let page = Page {
        items: items?,
        next_cursor: None,
    };
    if json {
        print_page_json(&page);
    } else {
        print!("{}", render(&page.items));
    }
    Ok(exit::OK)
}

/// One row per schedule; `-` where there is no tick yet.
fn render(items: &[ScheduleStatus]) -> String {
    let mut out = format!(
        "{:<20}  {:<16}  {:<16}  {:<16}  {:<24}  {:<24}  LAST RUN\n",
        "NAME", "AGENT", "CRON", "TIMEZONE", "NEXT TICK", "LAST TICK"
    );
    for s in items {
        out.push_str(&format!(
            "{:<20}  {:<16}  {:<16}  {:<16}  {:<24}  {:<24}  {}\n",
            s.name,
            s.agent,
            s.cron,
            s.timezone,
            s.next_tick.as_deref().unwrap_or("-"),
            s.last_tick.as_deref().unwrap_or("-"),
            s.last_run_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
        ));
    }
    out
}
