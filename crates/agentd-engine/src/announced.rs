//! The engine's memory of the period budget alerts it knows are recorded
//! (see `alerts`), so a crossed threshold costs no store read again.

use std::collections::HashSet;
use std::sync::Mutex;

/// Period alerts this engine recorded or saw recorded: not asked of the
/// store again (a period budget's threshold stays crossed for the rest of
/// its period). Emptied past [`MAX_REMEMBERED`]: forgetting one only costs
/// a store read and a write that finds it recorded.
#[derive(Debug, Default)]
pub(crate) struct Announced(Mutex<HashSet<String>>);

const MAX_REMEMBERED: usize = 10_000;

impl Announced {
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.0.lock().map(|s| s.contains(key)).unwrap_or(false)
    }

    pub(crate) fn insert(&self, key: String) {
        if let Ok(mut seen) = self.0.lock() {
            if seen.len() >= MAX_REMEMBERED {
                seen.clear();
            }
            seen.insert(key);
        }
    }
}
