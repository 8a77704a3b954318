//! `deploy/`: the Grafana dashboard and the Prometheus alert rules name
//! only metrics agentd defines (`agentd_core::metric`), and the rules have
//! the shape Prometheus loads. The family test checks the names against a
//! real scrape as well ([`check_against_scrape`]).

use agentd_core::metric;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

const DASHBOARD: &str = include_str!("../../../../deploy/grafana/agentd.json");
const ALERTS: &str = include_str!("../../../../deploy/prometheus/alerts.yml");

/// Histogram series suffixes: `x_bucket` names histogram `x`.
const SERIES_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

/// Words of PromQL that look like names but are not metrics.
const KEYWORDS: [&str; 14] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "le",
];

/// The metric names a PromQL expression reads: identifiers outside label
/// matchers (`{...}`), ranges (`[...]`), strings and grouping clauses that
/// are not function calls (followed by `(`) or keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_group => {
                // The label list of `by (...)` / `on (...)`.
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                skip_group = false;
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':' | '$'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j] == ' ' {
                    j += 1;
                }
                // A function call, or an aggregation with its grouping
                // first (`sum by (le) (...)`).
                let rest: String = chars[j..].iter().collect();
                let call = rest.starts_with('(')
                    || ["by ", "by(", "without ", "without("]
                        .iter()
                        .any(|g| rest.starts_with(g));
                let lower = word.to_ascii_lowercase();
                if [
                    "by",
                    "without",
                    "on",
                    "ignoring",
                    "group_left",
                    "group_right",
                ]
                .contains(&lower.as_str())
                {
                    skip_group = true;
                } else if !call && !KEYWORDS.contains(&lower.as_str()) && !word.starts_with('$') {
                    names.insert(word);
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                // A number, or a duration like `5m` (both never names).
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// The histograms among [`metric::ALL`]: only they have `_bucket`,
/// `_sum` and `_count` series.
const HISTOGRAMS: [&str; 8] = [
    metric::HTTP_REQUEST_DURATION,
    metric::RUN_DURATION,
    metric::STEP_DURATION,
    metric::RUN_QUEUE_WAIT,
    metric::PROVIDER_CALL_DURATION,
    metric::PROVIDER_TIME_TO_FIRST_TOKEN,
    metric::STORE_COMMIT_DURATION,
    metric::STORE_BATCH_SIZE,
];

/// The metric `name` stands for: itself, or the histogram of a
/// `_bucket`/`_sum`/`_count` series; `None` if agentd defines neither.
fn defined(name: &str) -> Option<&'static str> {
    if let Some(m) = metric::ALL.iter().find(|m| **m == name) {
        return Some(m);
    }
    SERIES_SUFFIXES.iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        HISTOGRAMS.iter().find(|m| **m == base).copied()
    })
}

/// Every PromQL expression of the dashboard's panels.
fn dashboard_exprs() -> Vec<String> {
    let dash: Value = serde_json::from_str(DASHBOARD).unwrap();
    let mut exprs = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    exprs
}

/// The alert rules, read with [`yaml_subset`].
fn alert_rules() -> Vec<Map<String, Value>> {
    let doc = yaml_subset(ALERTS);
    let groups = doc["groups"].as_array().expect("groups: a list");
    assert!(!groups.is_empty());
    let mut rules = Vec::new();
    for g in groups {
        assert!(g["name"].as_str().is_some_and(|n| !n.is_empty()), "{g}");
        for r in g["rules"].as_array().expect("rules: a list") {
            rules.push(r.as_object().unwrap().clone());
        }
    }
    rules
}

/// Every metric name the dashboard and the alert rules read.
pub fn referenced_names() -> BTreeSet<String> {
    let mut exprs = dashboard_exprs();
    exprs.extend(
        alert_rules()
            .iter()
            .map(|r| r["expr"].as_str().unwrap().to_string()),
    );
    exprs.iter().flat_map(|e| metric_names(e)).collect()
}

/// Metrics that appear only once something goes wrong (a worker dies, a
/// limit refuses): a scrape after healthy runs need not show them.
const ONLY_ON_TROUBLE: [&str; 4] = [
    metric::LEASES_RECLAIMED,
    metric::HEARTBEATS_LOST,
    metric::RATE_LIMITED,
    metric::RATE_LIMIT_REDIS_FALLBACKS,
];

/// Every metric the deploy files read is on the scrape `text`, unless it
/// only appears on trouble.
pub fn check_against_scrape(text: &str) {
    for name in referenced_names() {
        let base = defined(&name).unwrap();
        let shown = text.contains(&format!("\n{base}{{"))
            || text.contains(&format!("\n{base} "))
            || text.contains(&format!("\n{base}_bucket{{"));
        assert!(
            shown || ONLY_ON_TROUBLE.contains(&base),
            "{name} (from deploy/) is not on a real scrape:\n{text}"
        );
    }
}

#[test]
fn the_name_extractor_finds_metrics_and_nothing_else() {
    let expr = r#"histogram_quantile(0.95, sum by (le, agent) (rate(agentd_run_queue_wait_seconds_bucket{agent=~"a|b"}[$__rate_interval]))) > 30 and on (agent) foo_total offset 5m or vector(0)"#;
    let got: Vec<String> = metric_names(expr).into_iter().collect();
    assert_eq!(got, ["agentd_run_queue_wait_seconds_bucket", "foo_total"]);
    assert_eq!(
        defined("agentd_run_queue_wait_seconds_bucket"),
        Some(metric::RUN_QUEUE_WAIT)
    );
    assert_eq!(defined("foo_total"), None);
    assert!(HISTOGRAMS.iter().all(|h| metric::ALL.contains(h)));
    assert_eq!(defined("agentd_runs_created_total_count"), None);
}

#[test]
fn deploy_files_name_only_metrics_that_exist() {
    let names = referenced_names();
    // Sanity: the files were read and cover every area.
    for must in [
        "agentd_http_requests_total",
        "agentd_run_queue_wait_seconds_bucket",
        "agentd_dead_letters_total",
        "agentd_provider_circuit_state",
        "agentd_budget_spent_usd",
        "agentd_store_commit_duration_seconds_bucket",
    ] {
        assert!(names.contains(must), "{must} not referenced: {names:?}");
    }
    let unknown: Vec<&String> = names.iter().filter(|n| defined(n).is_none()).collect();
    assert!(
        unknown.is_empty(),
        "not defined in agentd_core::metric: {unknown:?}"
    );
}

#[test]
fn alert_rules_have_the_shape_prometheus_loads() {
    let rules = alert_rules();
    let mut alerts = BTreeSet::new();
    for rule in &rules {
        for key in rule.keys() {
            assert!(
                ["alert", "expr", "for", "labels", "annotations"].contains(&key.as_str()),
                "unknown key {key} in {rule:?}"
            );
        }
        let name = rule["alert"].as_str().unwrap();
        assert!(
            name.starts_with("Agentd") && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "{name}"
        );
        assert!(alerts.insert(name.to_string()), "{name} twice");
        assert!(!rule["expr"].as_str().unwrap().trim().is_empty());
        let r#for = rule["for"].as_str().unwrap();
        let (n, unit) = r#for.split_at(r#for.len() - 1);
        assert!(
            n.parse::<u32>().is_ok() && ["s", "m", "h"].contains(&unit),
            "for: {for}"
        );
        let severity = rule["labels"]["severity"].as_str().unwrap();
        assert!(["warning", "critical"].contains(&severity), "{severity}");
        assert!(rule["annotations"]["summary"].as_str().is_some());
        assert!(rule["annotations"]["description"].as_str().is_some());
    }
    // The alerts the issue asks for.
    for must in [
        "AgentdHighHttpErrorRate",
        "AgentdQueueWaitHigh",
        "AgentdDeadLettersGrowing",
        "AgentdCircuitOpen",
        "AgentdBudgetNearLimit",
    ] {
        assert!(alerts.contains(must), "{must} missing: {alerts:?}");
    }
}

#[test]
fn the_dashboard_is_grafana_json_with_unique_panel_ids() {
    let dash: Value = serde_json::from_str(DASHBOARD).unwrap();
    assert_eq!(dash["uid"], "agentd-overview");
    let mut ids = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "{panel}");
        assert!(panel["gridPos"]["w"].as_u64().unwrap() <= 24);
        if panel["type"] != "row" {
            assert!(!panel["targets"].as_array().unwrap().is_empty(), "{panel}");
        }
    }
}

/// Reads the block-style YAML subset `alerts.yml` keeps to: mappings and
/// sequences by indentation, `#` comment lines, plain or double-quoted
/// scalars. Anything else (flow collections, anchors, multi-line scalars)
/// fails the test.
fn yaml_subset(text: &str) -> Value {
    let mut lines: Vec<(usize, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            let indent = l.len() - l.trim_start().len();
            (indent, l.trim().to_string())
        })
        .collect();
    let mut i = 0;
    let value = block(&mut lines, &mut i, 0);
    assert_eq!(i, lines.len(), "unread YAML from line {:?}", lines.get(i));
    value
}

fn block(lines: &mut [(usize, String)], i: &mut usize, indent: usize) -> Value {
    if lines[*i].1.starts_with("- ") {
        let mut items = Vec::new();
        while *i < lines.len() && lines[*i].0 == indent && lines[*i].1.starts_with("- ") {
            // The item's first line, as if indented past its dash.
            lines[*i] = (indent + 2, lines[*i].1[2..].to_string());
            items.push(block(lines, i, indent + 2));
        }
        return Value::Array(items);
    }
    let mut map = Map::new();
    while *i < lines.len() && lines[*i].0 == indent && !lines[*i].1.starts_with("- ") {
        let line = lines[*i].1.clone();
        let (key, rest) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("not `key: value`: {line:?}"));
        assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{key:?}"
        );
        *i += 1;
        let rest = rest.trim();
        let value = if rest.is_empty() {
            let child = lines.get(*i).map_or(0, |l| l.0);
            assert!(child > indent, "empty value of {key:?}");
            block(lines, i, child)
        } else {
            scalar(rest)
        };
        assert!(map.insert(key.to_string(), value).is_none(), "{key} twice");
    }
    assert!(
        *i == lines.len() || lines[*i].0 < indent,
        "bad indentation at {:?}",
        lines[*i]
    );
    Value::Object(map)
}

fn scalar(s: &str) -> Value {
    assert!(
        !s.starts_with(['{', '[', '&', '*', '|', '>', '\'', '!']),
        "outside the subset: {s:?}"
    );
    if let Some(body) = s.strip_prefix('"') {
        let body = body.strip_suffix('"').unwrap_or_else(|| panic!("{s:?}"));
        assert!(
            !body.contains(['"', '\\']),
            "escapes are outside the subset: {s:?}"
        );
        return Value::String(body.to_string());
    }
    assert!(
        !s.contains(" #"),
        "trailing comments are outside the subset: {s:?}"
    );
    Value::String(s.to_string())
}
