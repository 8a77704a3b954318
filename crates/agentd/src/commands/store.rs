//! `agentd store copy`: a thin wrapper over [`agentd_store::copy`], which
//! holds the logic. An operator command: it acts on whole stores, every
//! tenant at once, and takes its URLs from the command line, not the
//! config.

use super::exit;
use super::failure::Failure;
use crate::cli::StoreCommand;
use agentd_store::CopyError;
use agentd_store::copy::{CopyOptions, Progress};

/// `agentd store ...`.
pub(super) async fn store(cmd: &StoreCommand) -> Result<u8, Failure> {
    match cmd {
        StoreCommand::Copy {
            from,
            to,
            force,
            batch,
        } => copy(from, to, *force, *batch).await,
    }
}

/// `agentd store copy --from URL --to URL [--force] [--batch N]`.
async fn copy(from: &str, to: &str, force: bool, batch: u32) -> Result<u8, Failure> {
    let options = CopyOptions {
        force,
        batch: usize::try_from(batch).unwrap_or(500),
    };
    let mut report = |p: &Progress| eprintln!("{}: {}/{}", p.table, p.copied, p.total);
    let counts = agentd_store::copy::copy(from, to, &options, &mut report)
        .await
        .map_err(failure)?;
    let rows: u64 = counts.iter().map(|c| c.target).sum();
    eprintln!(
        "copied {rows} rows in {} tables from {} to {}; row counts match",
        counts.len(),
        agentd_core::redact_url(from),
        agentd_core::redact_url(to)
    );
    Ok(exit::OK)
}

/// Refusals the arguments (or stopping agentd) can fix are usage errors
/// (exit 2); a count mismatch and store errors failed (exit 1).
fn failure(e: CopyError) -> Failure {
    match e {
        CopyError::TargetNotEmpty { .. }
        | CopyError::Leased { .. }
        | CopyError::OldSource { .. }
        | CopyError::Unsupported { .. } => Failure::usage(e.to_string()),
        CopyError::Store(s) => s.into(),
        other => Failure::failed(other.to_string()),
    }
}
