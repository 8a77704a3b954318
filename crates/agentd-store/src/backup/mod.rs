//! Backup and restore of a whole store: **operator operations, not tenant
//! ones.** They copy every tenant's runs, journals, conversations, audit
//! log, keys and budgets at once, so they take no [`TenantId`](agentd_core::TenantId)
//! and must never be reachable from a tenant's request (only the `agentd
//! backup` / `agentd restore` commands call them).
//!
//! - SQLite: [`backup`] is an online, consistent copy (`VACUUM INTO` on a
//!   read-only connection of its own, so a serving process keeps writing);
//!   [`restore`] verifies the file and replaces the database atomically.
//! - PostgreSQL: `pg_dump -Fc` and `pg_restore`, run when they are on the
//!   `PATH`; otherwise [`BackupError::ToolMissing`] gives the recipe.

pub(crate) mod common;

pub use common::{BackupError, Done};
use std::path::Path;

/// Backs up the store `url` names into `out` (see the module docs).
/// Refuses to overwrite `out` unless `force`.
pub async fn backup(url: &str, out: &Path, force: bool) -> Result<Done, BackupError> {
    if !force && out.exists() {
        return Err(BackupError::Exists(out.to_path_buf()));
    }
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        return crate::sqlite::backup::backup(url, out).await;
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        #[cfg(feature = "postgres")]
        return crate::postgres::backup::backup(url, out).await;
    }
    Err(unsupported(url))
}

/// Restores the backup `file` into the store `url` names (see the module
/// docs). Refuses a store that already holds agentd data unless `force`.
/// No agentd process may be using the store meanwhile.
pub async fn restore(url: &str, file: &Path, force: bool) -> Result<Done, BackupError> {
    if !file.is_file() {
        return Err(BackupError::NotABackup {
            path: file.to_path_buf(),
            reason: "no such file".into(),
        });
    }
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        return crate::sqlite::backup::restore(url, file, force).await;
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        #[cfg(feature = "postgres")]
        return crate::postgres::backup::restore(url, file, force).await;
    }
    Err(unsupported(url))
}

fn unsupported(url: &str) -> BackupError {
    BackupError::Unsupported {
        url: agentd_core::redact_url(url),
        reason: "expected sqlite://PATH or postgres://… (with its backend compiled in)".into(),
    }
}
