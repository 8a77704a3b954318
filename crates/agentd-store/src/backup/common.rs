//! What the backends' backup and restore share: the error, the result, and
//! the file handling (a temporary file beside the target, committed by
//! fsync and rename).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// What can go wrong backing up or restoring.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The output file exists and `force` was not given.
    #[error("{} already exists; pass --force to overwrite it", .0.display())]
    Exists(PathBuf),
    /// The file to restore is not a backup of an agentd store this build
    /// can read.
    #[error("{} is not an agentd backup: {reason}", path.display())]
    NotABackup { path: PathBuf, reason: String },
    /// The store to restore into already holds data and `force` was not
    /// given.
    #[error("{target} already holds an agentd store; pass --force to replace it")]
    TargetNotEmpty { target: String },
    /// A PostgreSQL client program is not on the `PATH`.
    #[error(
        "{tool} is not on the PATH; install the PostgreSQL client, or run by hand:\n  {recipe}"
    )]
    ToolMissing { tool: &'static str, recipe: String },
    /// A PostgreSQL client program failed.
    #[error("{tool} failed ({status}): {stderr}")]
    ToolFailed {
        tool: &'static str,
        status: String,
        stderr: String,
    },
    /// The store URL names something that cannot be backed up this way.
    #[error("cannot back up or restore {url}: {reason}")]
    Unsupported { url: String, reason: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

/// What a backup or restore did, for the command's message.
#[derive(Debug, Clone)]
pub struct Done {
    /// The file written (backup) or the store restored into (restore),
    /// with any password redacted.
    pub target: String,
    /// Bytes of the backup file.
    pub bytes: u64,
}

/// Attaches the path to an I/O error.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A temporary name next to `target`: renaming it over `target` is atomic
/// only within one file system.
pub(crate) fn temp_beside(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "agentd".into());
    target.with_file_name(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()))
}

/// Makes `tmp` durable and renames it to `target`, then syncs the
/// directory so the rename survives a crash too.
pub(crate) fn commit_file(tmp: &Path, target: &Path) -> Result<u64, BackupError> {
    let file = File::open(tmp).map_err(io_at(tmp))?;
    file.sync_all().map_err(io_at(tmp))?;
    let bytes = file.metadata().map_err(io_at(tmp))?.len();
    std::fs::rename(tmp, target).map_err(io_at(target))?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Directories cannot be opened for sync on every platform; the data
        // is already durable, only the name might not be.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(bytes)
}

/// Removes a temporary file left by a failed step (best effort: the
/// error being reported matters more).
pub(crate) fn discard(tmp: &Path) {
    let _ = std::fs::remove_file(tmp);
}
