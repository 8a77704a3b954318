//! How the shared row decoders ([`crate::row`]) read SQLite rows.

use crate::Result;
pub(super) use crate::codec::{corrupt, to_json};
use crate::row::RawRow;
pub(super) use crate::row::{run, step};
use agentd_core::RunId;
use rusqlite::Row;

/// A run id stored as the 16 bytes of its UUID.
pub(super) fn run_id(bytes: &[u8]) -> Result<RunId> {
    uuid::Uuid::from_slice(bytes)
        .map(RunId)
        .map_err(|e| corrupt(format_args!("run id: {e}")))
}

impl RawRow for Row<'_> {
    fn text(&self, i: usize) -> Result<String> {
        Ok(self.get(i)?)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.get(i)?)
    }

    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.get(i)?)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.get(i)?)
    }

    fn real(&self, i: usize) -> Result<f64> {
        Ok(self.get(i)?)
    }

    fn run_id(&self, i: usize) -> Result<RunId> {
        run_id(&self.get::<_, Vec<u8>>(i)?)
    }

    fn opt_run_id(&self, i: usize) -> Result<Option<RunId>> {
        self.get::<_, Option<Vec<u8>>>(i)?
            .map(|b| run_id(&b))
            .transpose()
    }
}
