//! `agentd backup` and `agentd restore`: thin wrappers over
//! [`agentd_store::backup`], which holds the logic; a backup taken is also
//! recorded in the store (`agentd check`'s `data.backups`). Operator
//! commands: they act on the whole store, every tenant at once.

use super::exit;
use super::failure::Failure;
use agentd_config::Config;
use agentd_store::BackupError;
use std::path::Path;

/// `agentd backup --out FILE [--force]`.
pub(super) async fn backup(config: &Config, out: &Path, force: bool) -> Result<u8, Failure> {
    let done = agentd_store::backup::backup(&config.store.url, out, force)
        .await
        .map_err(failure)?;
    eprintln!(
        "backed up {} into {} ({} bytes)",
        agentd_core::redact_url(&config.store.url),
        done.target,
        done.bytes
    );
    record(config, out, done.bytes).await?;
    Ok(exit::OK)
}

/// Records the backup in the store it was taken of, for `agentd check`'s
/// `data.backups`. The file is written by now; failing to record it still
/// fails the command (exit 1), so a scheduled job's alert fires rather than
/// `check` later reporting no backups.
async fn record(config: &Config, out: &Path, bytes: u64) -> Result<(), Failure> {
    let file = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let recorded = async {
        // No keyring: the record holds no encrypted column.
        let store = agentd_store::open(&config.store.url).await?;
        store
            .record_backup(&agentd_store::NewBackup {
                backend: store.backend().to_owned(),
                bytes,
                file: file.display().to_string(),
            })
            .await
    };
    recorded.await.map_err(|e| {
        Failure::failed(format!(
            "the backup {} is written, but recording it in the store failed ({e}); \
             `agentd check` will not see it",
            file.display()
        ))
    })
}

/// `agentd restore FILE [--force]`.
pub(super) async fn restore(config: &Config, file: &Path, force: bool) -> Result<u8, Failure> {
    let done = agentd_store::backup::restore(&config.store.url, file, force)
        .await
        .map_err(failure)?;
    eprintln!(
        "restored {} into {} ({} bytes)",
        file.display(),
        done.target,
        done.bytes
    );
    Ok(exit::OK)
}

/// Refusals that the arguments can fix are usage errors (exit 2); the rest
/// failed (exit 1).
fn failure(e: BackupError) -> Failure {
    match e {
        BackupError::Exists(_)
        | BackupError::NotABackup { .. }
        | BackupError::TargetNotEmpty { .. }
        | BackupError::Unsupported { .. } => Failure::usage(e.to_string()),
        BackupError::Store(s) => s.into(),
        other => Failure::failed(other.to_string()),
    }
}
