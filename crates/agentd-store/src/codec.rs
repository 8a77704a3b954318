//! Helpers both backends share: JSON columns, corrupt-record errors and
//! list paging.

use crate::{Page, Result, StoreError};
use agentd_core::SCHEMA_VERSION;
use agentd_core::Step;
use agentd_core::checkpoint::StepRecord;

/// A record the store cannot decode.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Serializes a value for a JSON column.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(corrupt)
}

/// Serializes an optional value for a nullable JSON column.
pub(crate) fn opt_json<T: serde::Serialize>(v: Option<&T>) -> Result<Option<String>> {
    v.map(to_json).transpose()
}

/// Parses JSON column `col`.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(col: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(format_args!("column {col}: {e}")))
}

/// Parses nullable JSON column `col`.
pub(crate) fn parse_opt<T: serde::de::DeserializeOwned>(
    col: &str,
    s: Option<String>,
) -> Result<Option<T>> {
    s.map(|s| parse(col, &s)).transpose()
}

/// Turns `limit + 1` fetched items into a page: the extra item only says
/// that there is a next page, whose cursor is the last kept item's.
pub(crate) fn page<T>(mut items: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next_cursor }
}

/// If a page of a journal holds records of an older version, the index of
/// its last step: such records are migrated together with the journal
/// before them (see `agentd_core::checkpoint::migrate_journal`), so the
/// reader loads the journal from its start up to there.
pub(crate) fn migration_prefix(page: &[StepRecord]) -> Option<u32> {
    if page.iter().any(|r| r.version < SCHEMA_VERSION) {
        page.last().map(|r| r.step.index)
    } else {
        None
    }
}

/// The steps of a migrated journal prefix that belong to the page after
/// `after`.
pub(crate) fn in_page(steps: Vec<Step>, after: Option<u32>) -> Vec<Step> {
    match after {
        None => steps,
        Some(after) => steps.into_iter().filter(|s| s.index > after).collect(),
    }
}
