//! `[[schedules]]`: runs started on a cron expression, and the parsed form
//! ([`CronSchedule`]) the engine computes ticks with.

use serde::{Deserialize, Serialize};

/// `[[schedules]]`: one agent started on a cron expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Unique among the schedules; runs are created by principal
    /// `schedule:<name>`.
    pub name: String,
    /// The agent each tick starts a run of (the engine picks its version,
    /// as for any run).
    pub agent: String,
    /// 5 fields (`min hour dom month dow`) or 6 (seconds first).
    pub cron: String,
    /// IANA time zone the expression is read in, e.g. `"Europe/Paris"`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The run's input: any JSON value but `null`.
    pub input: serde_json::Value,
    /// The tenant the runs belong to.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// What a process starting up does about ticks no process was up for.
    #[serde(default)]
    pub missed: Missed,
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

fn default_tenant() -> String {
    "default".to_owned()
}

/// `missed`: ticks that passed while no process ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    /// Only ticks from now on start runs.
    #[default]
    Skip,
    /// One run for the latest missed tick (not one per missed tick).
    RunOnce,
}

/// A cron expression with its time zone, parsed.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: croner::Cron,
    tz: chrono_tz::Tz,
}

/// Why a `cron` or `timezone` value was refused (the caller names the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "expected a cron expression of 5 fields (minute hour day-of-month month day-of-week) \
         or 6 (seconds first), found {found} in {expr:?}"
    )]
    FieldCount { expr: String, found: usize },
    #[error("expected a cron expression, found {expr:?}: {reason}")]
    Cron { expr: String, reason: String },
    #[error("expected an IANA time zone such as \"UTC\" or \"Europe/Paris\", found {0:?}")]
    Timezone(String),
}

impl CronSchedule {
    /// Parses `cron` (5 or 6 fields) in time zone `timezone`.
    pub fn parse(cron: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let found = cron.split_whitespace().count();
        if !(5..=6).contains(&found) {
            return Err(ScheduleError::FieldCount {
                expr: cron.to_owned(),
                found,
            });
        }
        let parsed = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .year(croner::parser::Year::Disallowed)
            .build()
            .parse(cron)
            .map_err(|e| ScheduleError::Cron {
                expr: cron.to_owned(),
                reason: e.to_string(),
            })?;
        let tz: chrono_tz::Tz = timezone
            .parse()
            .map_err(|_| ScheduleError::Timezone(timezone.to_owned()))?;
        Ok(Self { cron: parsed, tz })
    }

    /// The first tick strictly after `after_ms` (epoch milliseconds), if
    /// the expression has one.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let at = self.at(after_ms)?;
        self.cron
            .find_next_occurrence(&at, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The latest tick at or before `at_ms`, if any.
    pub fn latest_at_or_before(&self, at_ms: i64) -> Option<i64> {
        let at = self.at(at_ms)?;
        self.cron
            .find_previous_occurrence(&at, true)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    fn at(&self, ms: i64) -> Option<chrono::DateTime<chrono_tz::Tz>> {
        chrono::DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(&self.tz))
    }
}

impl ScheduleConfig {
    /// The parsed expression and time zone.
    pub fn parsed(&self) -> Result<CronSchedule, ScheduleError> {
        CronSchedule::parse(&self.cron, &self.timezone)
    }
}

#[cfg(test)]
mod tests {
    use super::{CronSchedule, ScheduleError};

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .expect("time")
            .timestamp_millis()
    }

    #[test]
    fn ticks_follow_the_time_zone_and_seconds_field() {
        let daily = CronSchedule::parse("0 9 * * *", "Europe/Paris").expect("parse");
        // 09:00 in Paris in winter is 08:00 UTC.
        assert_eq!(
            daily.next_after(ms("2026-01-10T12:00:00Z")),
            Some(ms("2026-01-11T08:00:00Z"))
        );
        assert_eq!(
            daily.latest_at_or_before(ms("2026-01-11T08:00:00Z")),
            Some(ms("2026-01-11T08:00:00Z"))
        );
        // 02:30 does not exist in Paris on 2026-03-29: a fixed time runs
        // right after the gap, at 03:00 local (01:00 UTC).
        assert_eq!(
            CronSchedule::parse("30 2 * * *", "Europe/Paris")
                .expect("parse")
                .next_after(ms("2026-03-29T00:00:00Z")),
            Some(ms("2026-03-29T01:00:00Z"))
        );
        let every_second = CronSchedule::parse("*/1 * * * * *", "UTC").expect("parse");
        assert_eq!(
            every_second.next_after(ms("2026-01-10T12:00:00.400Z")),
            Some(ms("2026-01-10T12:00:01Z"))
        );
    }

    #[test]
    fn refuses_bad_field_counts_expressions_and_zones() {
        assert!(matches!(
            CronSchedule::parse("* * * *", "UTC"),
            Err(ScheduleError::FieldCount { found: 4, .. })
        ));
        assert!(matches!(
            CronSchedule::parse("0 0 * * * * 2030", "UTC"),
            Err(ScheduleError::FieldCount { found: 7, .. })
        ));
        assert!(matches!(
            CronSchedule::parse("61 * * * *", "UTC"),
            Err(ScheduleError::Cron { .. })
        ));
        assert_eq!(
            CronSchedule::parse("* * * * *", "Mars/Olympus").map(|_| ()),
            Err(ScheduleError::Timezone("Mars/Olympus".into()))
        );
    }
}
