//! `agentd backup` and `agentd restore`: thin wrappers over
//! [`agentd_store::backup`], which holds the logic. Operator commands: they
//! act on the whole store, every tenant at once.

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
    Ok(exit::OK)
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
