//! What a hot reload applies and what needs a restart.
//!
//! A reload (SIGHUP, `POST /v1/admin/reload`) replaces what runs are made
//! of: `[providers]`, `[pricing]`, `[[agents]]`, `[tools]`, `[[mcp]]`,
//! `[[policies]]`, `[tenants]`, `[rollout]`, `[[schedules]]` and `[webhooks]`. The sections below shape the
//! process itself (its listener, store, queue, identity, telemetry): a
//! change there is named in the log and applies at the next start.

use crate::types::Config;
use serde_json::Value;

/// Sections a reload does not apply.
pub const RESTART_SECTIONS: &[&str] = &[
    "server",
    "store",
    "queue",
    "auth",
    "rate_limit",
    "telemetry",
];

/// The full keys (`server.listen`, `store.url`) under [`RESTART_SECTIONS`]
/// whose values differ between `old` and `new`, sorted.
pub fn restart_required(old: &Config, new: &Config) -> Vec<String> {
    let (Ok(Value::Object(old)), Ok(Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for section in RESTART_SECTIONS {
        diff(section, old.get(*section), new.get(*section), &mut out);
    }
    out.sort();
    out
}

/// Pushes the paths under `path` where `a` and `b` differ.
fn diff(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                diff(&format!("{path}.{k}"), x.get(k), y.get(k), out);
            }
        }
        (a, b) if a != b => out.push(path.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::restart_required;
    use crate::Config;

    #[test]
    fn names_changed_keys_of_restart_sections_only() {
        let old = Config::from_toml_str(
            "[server]\nlisten = \"127.0.0.1:8080\"\n[store]\nurl = \"sqlite://a.db\"\n\
             [providers.p]\nkind = \"mock\"\nscript = [{ reply = \"r\" }]\n\
             [[agents]]\nname = \"a\"\nproviders = [\"p\"]\n",
        )
        .expect("old");
        let mut new = old.clone();
        assert!(restart_required(&old, &new).is_empty());
        new.agents[0].system_prompt = Some("changed".into());
        new.queue.workers = 9;
        new.server.listen = "127.0.0.1:9090".into();
        new.store.url = "sqlite://b.db".into();
        assert_eq!(
            restart_required(&old, &new),
            ["queue.workers", "server.listen", "store.url"]
        );
    }
}
