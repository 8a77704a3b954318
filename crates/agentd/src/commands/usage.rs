//! `agentd usage`: the tenant's usage report, read from the configured
//! store through the engine's read facade, as `GET /v1/usage` reads it.

use super::failure::Failure;
use super::{exit, identity, open_store};
use crate::cli::UsageArgs;
use agentd_config::Config;
use agentd_engine::reads::Reads;
use agentd_store::{UsageQuery, UsageReport};

/// Runs `agentd usage`.
pub(super) async fn usage(config: &Config, args: &UsageArgs, json: bool) -> Result<u8, Failure> {
    let who = identity(&args.who)?;
    if !agentd_core::ordered_range(args.since, args.until) {
        return Err(Failure::usage("--since is after --until"));
    }
    let query = UsageQuery {
        group_by: args.group_by,
        since: args.since,
        until: args.until,
    };
    let store = open_store(config).await?;
    let report = Reads::new(store.as_ref()).usage(&who, &query).await?;
    if json {
        println!("{:#}", serde_json::json!(report));
    } else {
        print!("{}", table(&report));
    }
    Ok(exit::OK)
}

/// The report as a table, one line per group and a total.
fn table(r: &UsageReport) -> String {
    let width = r
        .items
        .iter()
        .map(|i| i.key.chars().count())
        .chain([r.group_by.as_str().len(), "TOTAL".len()])
        .max()
        .unwrap_or(0);
    let cost = |c: f64| format!("{c:.6}");
    let mut out = format!(
        "{:<width$}  {:>8}  {:>8}  {:>14}  {:>14}  {:>14}\n",
        r.group_by.as_str().to_uppercase(),
        "RUNS",
        "FAILED",
        "INPUT TOKENS",
        "OUTPUT TOKENS",
        "COST USD"
    );
    let mut line = |key: &str, runs, failed, i, o, c| {
        out.push_str(&format!(
            "{key:<width$}  {runs:>8}  {failed:>8}  {i:>14}  {o:>14}  {c:>14}\n"
        ));
    };
    for i in &r.items {
        line(
            &i.key,
            i.runs,
            i.failed,
            i.input_tokens,
            i.output_tokens,
            cost(i.cost_usd),
        );
    }
    let t = &r.total;
    line(
        "TOTAL",
        t.runs,
        t.failed,
        t.input_tokens,
        t.output_tokens,
        cost(t.cost_usd),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_store::{UsageGroup, UsageRow};

    #[test]
    fn the_table_has_a_line_per_group_and_a_total() {
        let q = UsageQuery {
            group_by: UsageGroup::Agent,
            since: None,
            until: None,
        };
        let row = |key: &str, runs, cost| UsageRow {
            key: key.into(),
            runs,
            failed: 1,
            input_tokens: 10,
            output_tokens: 2,
            cost_usd: cost,
        };
        let text = table(&UsageReport::new(
            &q,
            vec![row("demo", 3, 0.5), row("a-long-agent-name", 1, 0.25)],
        ));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("AGENT "), "{text}");
        assert!(lines[1].starts_with("demo "), "{text}");
        let total: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(total, ["TOTAL", "4", "2", "20", "4", "0.750000"]);
    }
}
