//! The usage report ([`Store::usage`](crate::Store::usage)): a tenant's
//! runs, failures, tokens and cost over a time range, grouped by agent,
//! principal, provider or UTC day. The same shape is the body of
//! `GET /v1/usage` and of `agentd usage --json`.

use agentd_core::Millis;
use serde::Serialize;

/// Milliseconds in a UTC day: days are buckets of `created_at / DAY_MS`.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// What the usage report groups runs by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsageGroup {
    /// The agent a run is of.
    Agent,
    /// The principal that created a run.
    Principal,
    /// The provider a model step called (a run counts under each one it called).
    Provider,
    /// The UTC day a run was created, `YYYY-MM-DD`.
    Day,
}

impl UsageGroup {
    /// Every grouping, in the order help texts list them.
    pub const ALL: [UsageGroup; 4] = [Self::Agent, Self::Principal, Self::Provider, Self::Day];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Principal => "principal",
            Self::Provider => "provider",
            Self::Day => "day",
        }
    }

    /// The grouping a wire name names.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// What [`Store::usage`](crate::Store::usage) reports: runs created in
/// `[since, until)` (epoch ms; an open end when `None`), grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageQuery {
    pub group_by: UsageGroup,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
}

/// One group of the report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageRow {
    /// The agent, principal or provider name, or the day `YYYY-MM-DD`.
    pub key: String,
    /// Runs created in the range (for a provider: those that called it).
    pub runs: u64,
    /// Of those, runs that ended `failed` or `dead`.
    pub failed: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// What the runs cost: model calls priced from the pricing table, and
    /// priced tools. Grouped by provider, what the runs' calls to that
    /// provider cost.
    pub cost_usd: f64,
}

/// The sums of a report's rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageTotals {
    /// Grouped by provider, a run that called two providers counts twice.
    pub runs: u64,
    pub failed: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

/// The usage report as the API and the CLI give it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    pub group_by: UsageGroup,
    /// The start of the range (inclusive), RFC 3339; absent: from the first run.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub since: Option<String>,
    /// The end of the range (exclusive), RFC 3339; absent: up to now.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub until: Option<String>,
    /// The groups, ordered by key (days ascending).
    pub items: Vec<UsageRow>,
    pub total: UsageTotals,
}

impl UsageReport {
    /// The report of `rows`, answered for `query`.
    pub fn new(query: &UsageQuery, items: Vec<UsageRow>) -> Self {
        let mut total = UsageTotals::default();
        for r in &items {
            total.runs += r.runs;
            total.failed += r.failed;
            total.input_tokens += r.input_tokens;
            total.output_tokens += r.output_tokens;
            total.cost_usd += r.cost_usd;
        }
        Self {
            group_by: query.group_by,
            since: query.since.map(agentd_core::rfc3339),
            until: query.until.map(agentd_core::rfc3339),
            items,
            total,
        }
    }
}

/// One group as a backend's query returns it, before its key is rendered.
pub(crate) struct GroupSums {
    /// The name, or for days the day number since the epoch as text.
    pub key: GroupKey,
    pub runs: i64,
    pub failed: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
}

/// A group's key as stored.
pub(crate) enum GroupKey {
    Name(String),
    Day(i64),
}

/// The rows of a backend's query, keys rendered and ordered by key byte by
/// byte (not by the database's collation, which differs between backends).
pub(crate) fn finish(raw: Vec<GroupSums>) -> Vec<UsageRow> {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let mut rows: Vec<UsageRow> = raw
        .into_iter()
        .map(|r| UsageRow {
            key: match r.key {
                GroupKey::Name(name) => name,
                GroupKey::Day(day) => day_key(day),
            },
            runs: count(r.runs),
            failed: count(r.failed),
            input_tokens: count(r.input_tokens),
            output_tokens: count(r.output_tokens),
            cost_usd: r.cost_usd,
        })
        .collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    rows
}

/// `YYYY-MM-DD` of day number `day` since the epoch (UTC).
fn day_key(day: i64) -> String {
    let mut s = agentd_core::rfc3339(day.saturating_mul(DAY_MS));
    s.truncate(10);
    s
}

/// The bounds of a query as the SQL binds them: an open end is the
/// widest value.
pub(crate) fn bounds(q: &UsageQuery) -> (Millis, Millis) {
    (
        q.since.unwrap_or(Millis::MIN),
        q.until.unwrap_or(Millis::MAX),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn days_render_as_utc_dates_and_sort() {
        let raw = |key, runs| GroupSums {
            key,
            runs,
            failed: 0,
            input_tokens: 1,
            output_tokens: 2,
            cost_usd: 0.5,
        };
        // 2026-12-04 is day 20_791.
        let rows = finish(vec![
            raw(GroupKey::Day(20_791), 3),
            raw(GroupKey::Day(0), 1),
        ]);
        let keys: Vec<_> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["1970-01-01", "2026-12-04"]);
        let q = UsageQuery {
            group_by: UsageGroup::Day,
            since: Some(0),
            until: None,
        };
        let report = UsageReport::new(&q, rows);
        assert_eq!(report.total.runs, 4);
        assert_eq!(report.total.input_tokens, 2);
        assert_eq!(report.total.cost_usd, 1.0);
        assert_eq!(report.since.as_deref(), Some("1970-01-01T00:00:00.000Z"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["group_by"], "day");
        assert!(json.get("until").is_none());
    }

    #[test]
    fn groups_parse_their_wire_names_only() {
        for g in UsageGroup::ALL {
            assert_eq!(UsageGroup::parse(g.as_str()), Some(g));
        }
        assert_eq!(UsageGroup::parse("Agent"), None);
        assert_eq!(UsageGroup::parse("tenant"), None);
    }
}
