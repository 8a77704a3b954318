//! Helpers both backends share: JSON columns (sealed when a keyring is
//! configured), corrupt-record errors, record versions and list paging.

use crate::crypt::{Keyring, OpenError, SealError, split_sealed};
use crate::{Page, Result, StoreError};
use agentd_core::RunId;
use agentd_core::SCHEMA_VERSION;
use agentd_core::Step;
use agentd_core::checkpoint::StepRecord;
use std::fmt;
use std::sync::Arc;

/// A record the store cannot decode.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Serializes a value for a JSON column.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(corrupt)
}

/// Parses JSON column `col`.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(col: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(format_args!("column {col}: {e}")))
}

/// A run's origin as stored: JSON, or NULL when there is none.
pub(crate) fn origin_json(origin: &agentd_core::RunOrigin) -> Result<Option<String>> {
    if origin.is_empty() {
        Ok(None)
    } else {
        to_json(origin).map(Some)
    }
}

/// A run's completion webhooks as stored (`runs.callbacks`): `None` when it
/// has none, so the status trigger skips it at once.
pub(crate) fn callbacks_json(callbacks: &[agentd_core::Callback]) -> Result<Option<String>> {
    if callbacks.is_empty() {
        Ok(None)
    } else {
        to_json(&callbacks).map(Some)
    }
}

/// Parses nullable JSON column `col`.
pub(crate) fn parse_opt<T: serde::de::DeserializeOwned>(
    col: &str,
    s: Option<String>,
) -> Result<Option<T>> {
    s.map(|s| parse(col, &s)).transpose()
}

/// A payload column of one record: what a sealed value is bound to (its
/// associated data) and how errors name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    /// `None`: a record of a tenant that belongs to no run (an audit
    /// record of an API key).
    run: Option<&'a RunId>,
    /// `table.column`.
    column: &'static str,
    /// A step's index: its payloads are bound to their step.
    step: Option<u32>,
}

impl<'a> Field<'a> {
    /// A column of run `run` (or of a row that belongs to it).
    pub(crate) fn of(run: &'a RunId, column: &'static str) -> Self {
        Self {
            run: Some(run),
            column,
            step: None,
        }
    }

    /// A column of a tenant's record that belongs to no run.
    pub(crate) fn unowned(column: &'static str) -> Self {
        Self {
            run: None,
            column,
            step: None,
        }
    }

    /// A column of the record of run `run`, if it has one.
    pub(crate) fn of_opt(run: Option<&'a RunId>, column: &'static str) -> Self {
        Self {
            run,
            column,
            step: None,
        }
    }

    /// A column of step `index` of run `run`.
    pub(crate) fn step(run: &'a RunId, index: u32, column: &'static str) -> Self {
        Self {
            run: Some(run),
            column,
            step: Some(index),
        }
    }

    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(48);
        aad.extend_from_slice(b"agentd:");
        // A record of no run binds to its column alone; run ids are 16
        // bytes, so the two shapes never collide.
        if let Some(run) = self.run {
            aad.extend_from_slice(run.0.as_bytes());
        }
        aad.push(b':');
        aad.extend_from_slice(self.column.as_bytes());
        if let Some(i) = self.step {
            aad.push(b':');
            aad.extend_from_slice(i.to_string().as_bytes());
        }
        aad
    }
}

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.run, self.step) {
            (Some(run), Some(i)) => write!(f, "{} of step {i} of run {run}", self.column),
            (Some(run), None) => write!(f, "{} of run {run}", self.column),
            (None, _) => write!(f, "{} of a tenant record", self.column),
        }
    }
}

/// Encodes and decodes payload columns: sealed with the keyring's current
/// key when there is one, plain JSON otherwise. Either way it reads both
/// (a sealed value needs the keyring). Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Codec {
    keyring: Option<Arc<Keyring>>,
}

impl Codec {
    pub(crate) fn new(keyring: Option<Keyring>) -> Self {
        Self {
            keyring: keyring.map(Arc::new),
        }
    }

    /// The column value for the JSON text `json`.
    pub(crate) fn seal(&self, field: Field<'_>, json: String) -> Result<String> {
        let Some(ring) = &self.keyring else {
            return Ok(json);
        };
        ring.seal(json.as_bytes(), &field.aad())
            .map_err(|e| StoreError::Encrypt {
                what: field.to_string(),
                reason: match e {
                    SealError::Random => "the system's random number generator failed",
                    SealError::Encrypt => "AES-GCM refused the value",
                },
            })
    }

    /// The column value for `v`, serialized.
    pub(crate) fn seal_json<T: serde::Serialize>(&self, field: Field<'_>, v: &T) -> Result<String> {
        self.seal(field, to_json(v)?)
    }

    /// The nullable column value for `v`.
    pub(crate) fn seal_opt<T: serde::Serialize>(
        &self,
        field: Field<'_>,
        v: Option<&T>,
    ) -> Result<Option<String>> {
        v.map(|v| self.seal_json(field, v)).transpose()
    }

    /// The JSON text of a stored column value, opened if it is sealed.
    pub(crate) fn open(&self, field: Field<'_>, stored: String) -> Result<String> {
        let Some((key_id, body)) = split_sealed(&stored) else {
            return Ok(stored);
        };
        let Some(ring) = &self.keyring else {
            return Err(StoreError::Encrypted {
                what: field.to_string(),
                key_id: key_id.to_string(),
            });
        };
        let plain = ring
            .open(key_id, body, &field.aad())
            .map_err(|e| StoreError::Decrypt {
                what: field.to_string(),
                key_id: key_id.to_string(),
                reason: match e {
                    OpenError::UnknownKey => "the keyring has no key with this id",
                    OpenError::Failed => "wrong key or corrupt data",
                },
            })?;
        String::from_utf8(plain).map_err(|_| corrupt(format_args!("{field}: not UTF-8")))
    }

    /// Parses a stored JSON column, opened if it is sealed.
    pub(crate) fn parse<T: serde::de::DeserializeOwned>(
        &self,
        field: Field<'_>,
        stored: String,
    ) -> Result<T> {
        let json = self.open(field, stored)?;
        serde_json::from_str(&json).map_err(|e| corrupt(format_args!("{field}: {e}")))
    }

    /// Parses a stored nullable JSON column.
    pub(crate) fn parse_opt<T: serde::de::DeserializeOwned>(
        &self,
        field: Field<'_>,
        stored: Option<String>,
    ) -> Result<Option<T>> {
        stored.map(|s| self.parse(field, s)).transpose()
    }
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

/// Which of a backend's six `list_runs` statements serves a filter: none,
/// agent, a settled status, agent and a settled status, an active status,
/// agent and an active status. Active runs (queued, running: the statuses
/// a claim takes) are kept out of the list indexes, so a run's many writes
/// while it executes update none of them; lists find active runs through
/// the queue's own indexes, whose size is bounded by the runs in flight.
pub(crate) fn list_runs_index(agent: bool, status: Option<agentd_core::RunStatus>) -> usize {
    let active = status.is_some_and(|s| agentd_core::RunStatus::ACTIVE.contains(&s));
    match (status.is_some(), active) {
        (false, _) => usize::from(agent),
        (true, false) => 2 + usize::from(agent),
        (true, true) => 4 + usize::from(agent),
    }
}

/// The exclusive upper bound of a `list_runs` page: the cursor's id, or
/// above every id for the first page, so the page is always an index range.
pub(crate) fn cursor_bound(cursor: Option<uuid::Uuid>) -> [u8; 16] {
    cursor.map_or([0xff; 16], |c| *c.as_bytes())
}

/// The smallest run id created at `ms` (UUIDv7 ids lead with their
/// creation time in milliseconds, so ids below it are of runs created
/// before).
pub(crate) fn first_id_at(ms: agentd_core::Millis) -> [u8; 16] {
    let ms = u64::try_from(ms.max(0)).unwrap_or(0).min((1 << 48) - 1);
    let mut id = [0u8; 16];
    id[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    id
}

/// The exclusive upper bound of a `list_runs` page: below the cursor and
/// below the filter's `until`, so the page stays one index range.
pub(crate) fn list_upper_bound(cursor: Option<uuid::Uuid>, filter: &crate::RunFilter) -> [u8; 16] {
    let bound = cursor_bound(cursor);
    match filter.until {
        Some(until) => bound.min(first_id_at(until)),
        None => bound,
    }
}

/// A page of runs listed newest first, cut at the filter's `since`: runs
/// past it are dropped, and with them the rest of the list (the
/// statements read below the cursor only, so `since` needs no bound of
/// its own in them).
pub(crate) fn cut_at_since(runs: &mut Vec<agentd_core::Run>, filter: &crate::RunFilter) {
    if let Some(since) = filter.since {
        let first = uuid::Uuid::from_bytes(first_id_at(since));
        runs.retain(|r| r.id.0 >= first);
    }
}

/// The run id a `list_runs` cursor names: the last run of the previous
/// page (ids are time-ordered, so the next page is the ids below it).
pub(crate) fn run_cursor(filter: &crate::RunFilter) -> Result<Option<uuid::Uuid>> {
    filter
        .cursor
        .as_ref()
        .map(|c| {
            RunId::parse(c)
                .map(|id| id.0)
                .map_err(|_| StoreError::BadCursor(c.clone()))
        })
        .transpose()
}

/// Refuses a database migrated by a newer agentd: `applied` migrations,
/// of which this agentd knows `known`.
pub(crate) fn check_schema_version(applied: usize, known: usize) -> Result<()> {
    if applied > known {
        return Err(StoreError::Migrate(format!(
            "the database is at schema version {applied}, newer than this agentd ({known}); \
             upgrade agentd"
        )));
    }
    Ok(())
}
