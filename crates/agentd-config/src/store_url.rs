//! What the config's `store.url` names, read the way the store reads it.

use std::path::Path;

/// The database file a `sqlite:` URL names, read the way the store reads
/// it; `None` for another scheme or an in-memory database.
pub fn sqlite_file(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
        return None;
    }
    Some(Path::new(path))
}
