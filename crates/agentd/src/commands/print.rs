//! Shared output: one-line step summaries, the runs, keys and audit
//! tables, and pages as JSON.

use agentd_core::{Millis, Run, Step, StepKind};
use agentd_store::{ApiKey, AuditEntry, Page};

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// A journaled step as the CLI prints it, indented:
/// `[index] kind name status {took}N ms: summary` (`took` is `"in "` for a
/// step seen live, empty in a listing).
pub(super) fn step_line(step: &Step, took: &str) -> String {
    format!(
        "  [{}] {} {} {} {took}{} ms: {}",
        step.index,
        step.kind.as_str(),
        step.name,
        step.status.as_str(),
        step.duration_ms,
        summarize_step(step.kind, &step.output, step.error.as_ref())
    )
}

/// One line about a step: its error, the tools a model step calls, its
/// reply, or a tool's output, cut to a readable length.
fn summarize_step(
    kind: StepKind,
    output: &serde_json::Value,
    error: Option<&agentd_core::RunError>,
) -> String {
    if let Some(e) = error {
        return format!("{}: {}", e.code, e.message);
    }
    match kind {
        StepKind::Llm => {
            let calls = output
                .get("tool_calls")
                .and_then(|c| c.as_array())
                .map(|calls| {
                    calls
                        .iter()
                        .map(|c| {
                            format!(
                                "{} {}",
                                c.get("name").and_then(|n| n.as_str()).unwrap_or("?"),
                                c.get("args").map(|a| a.to_string()).unwrap_or_default()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                });
            match calls {
                Some(c) if !c.is_empty() => format!("calls {}", truncate(&c, 120)),
                _ => format!(
                    "replies {:?}",
                    truncate(
                        output.get("content").and_then(|c| c.as_str()).unwrap_or(""),
                        120
                    )
                ),
            }
        }
        StepKind::Tool | StepKind::Human => truncate(&output.to_string(), 120),
    }
}

/// Prints a page of runs: a table (with each run's last error when
/// `errors`), or `{items, next_cursor}` with `--json`.
pub(super) fn print_runs(page: Page<Run>, json: bool, errors: bool) {
    if json {
        print_page_json(&page);
        return;
    }
    println!(
        "{:<36}  {:<9}  {:<16}  {:>5}  {:>7}  CREATED{}",
        "ID",
        "STATUS",
        "AGENT",
        "STEPS",
        "ATTEMPT",
        if errors {
            "                   ERROR"
        } else {
            ""
        }
    );
    for r in &page.items {
        let error = match (&r.error, errors) {
            (Some(e), true) => format!("  {}: {}", e.code, e.message),
            _ => String::new(),
        };
        println!(
            "{:<36}  {:<9}  {:<16}  {:>5}  {:>7}  {}{error}",
            r.id,
            r.status,
            r.agent,
            r.steps,
            r.attempt,
            agentd_core::rfc3339(r.created_at)
        );
    }
    if let Some(c) = page.next_cursor {
        eprintln!("more: --cursor {c}");
    }
}

/// Prints a page as the API lists it: `{items, next_cursor}`.
pub(super) fn print_page_json<T: serde::Serialize>(page: &Page<T>) {
    let v = serde_json::json!({ "items": page.items, "next_cursor": page.next_cursor });
    println!("{v:#}");
}

/// Prints a page of API keys as a table: never a secret (an [`ApiKey`]
/// holds none).
pub(super) fn print_keys(page: &Page<ApiKey>) {
    println!(
        "{:<16}  {:<20}  {:<16}  {:<16}  {:<16}  {:<24}  {:<24}  {:<24}  REVOKED",
        "ID", "NAME", "TENANT", "PRINCIPAL", "ROLES", "CREATED", "EXPIRES", "LAST USED"
    );
    for k in &page.items {
        println!(
            "{:<16}  {:<20}  {:<16}  {:<16}  {:<16}  {:<24}  {:<24}  {:<24}  {}",
            k.id.as_str(),
            truncate(k.name.as_deref().unwrap_or("-"), 19),
            k.tenant.as_str(),
            k.principal.as_str(),
            roles_text(&k.roles),
            agentd_core::rfc3339(k.created_at),
            expires_text(k.expires_at),
            k.last_used_at
                .map_or_else(|| "-".to_string(), agentd_core::rfc3339),
            k.revoked_at
                .map_or_else(|| "-".to_string(), agentd_core::rfc3339),
        );
    }
    if let Some(c) = &page.next_cursor {
        eprintln!("more: --cursor {c}");
    }
}

/// Roles as the CLI prints them: comma-separated, `-` for none.
pub(super) fn roles_text(roles: &[String]) -> String {
    if roles.is_empty() {
        "-".to_string()
    } else {
        roles.join(",")
    }
}

/// An expiry as the CLI prints it: a time, or `never`.
pub(super) fn expires_text(at: Option<Millis>) -> String {
    at.map_or_else(|| "never".to_string(), agentd_core::rfc3339)
}

/// Prints a page of the audit log as a table, newest first.
pub(super) fn print_audit(page: &Page<AuditEntry>) {
    println!(
        "{:<24}  {:<12}  {:<16}  {:<36}  DETAILS",
        "TIME", "KIND", "ACTOR", "RUN"
    );
    for e in &page.items {
        let details = if e.detail.is_null() {
            "-".to_string()
        } else {
            truncate(&e.detail.to_string(), 100)
        };
        println!(
            "{:<24}  {:<12}  {:<16}  {:<36}  {details}",
            agentd_core::rfc3339(e.at),
            e.event,
            e.actor,
            e.run_id.map_or_else(|| "-".to_string(), |r| r.to_string()),
        );
    }
    if let Some(c) = &page.next_cursor {
        eprintln!("more: --cursor {c}");
    }
}
