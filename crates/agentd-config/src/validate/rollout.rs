//! Agent versions and `[rollout."AGENT"]`: versions distinct per name, an
//! agent with several versions has a rollout naming its stable one, and a
//! rollout names declared versions.

use std::collections::{BTreeMap, BTreeSet};

use super::{Invalid, invalid, non_negative};
use crate::keypath::KeyPath;
use crate::types::Config;

/// Longest version label.
const MAX_VERSION_CHARS: usize = 64;

fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_VERSION_CHARS
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Versions by agent name, in file order, checking each label.
fn versions(config: &Config) -> Result<BTreeMap<&str, Vec<Option<&str>>>, Invalid> {
    let mut by_name: BTreeMap<&str, Vec<Option<&str>>> = BTreeMap::new();
    for (i, agent) in config.agents.iter().enumerate() {
        let key = KeyPath::of(&["agents"]).index(i);
        if let Some(v) = &agent.version
            && !valid_version(v)
        {
            invalid(
                key.key("version"),
                format!(
                    "expected 1 to {MAX_VERSION_CHARS} letters, digits, `.`, `_` and `-`, found {v:?}"
                ),
            )?;
        }
        let seen = by_name.entry(agent.name.as_str()).or_default();
        let version = agent.version.as_deref();
        if !seen.is_empty() {
            if version.is_none() || seen.contains(&None) {
                invalid(
                    key.key("name"),
                    format!(
                        "duplicate agent name {:?}: several definitions of one agent each need \
                         a distinct `version`",
                        agent.name
                    ),
                )?;
            }
            if seen.contains(&version) {
                invalid(
                    key.key("version"),
                    format!(
                        "duplicate version {:?} of agent {:?}",
                        version.unwrap_or_default(),
                        agent.name
                    ),
                )?;
            }
        }
        seen.push(version);
    }
    Ok(by_name)
}

/// Checks versions and rollouts.
pub(super) fn check(config: &Config) -> Result<(), Invalid> {
    let by_name = versions(config)?;
    for (name, versions) in &by_name {
        if versions.len() > 1 && !config.rollout.contains_key(*name) {
            invalid(
                KeyPath::of(&["rollout", name]),
                format!(
                    "agent {name:?} has {} versions: add `[rollout.\"{name}\"] stable = \"...\"` \
                     to say which one new runs start on",
                    versions.len()
                ),
            )?;
        }
    }
    for (agent, r) in &config.rollout {
        let key = KeyPath::of(&["rollout", agent]);
        let Some(declared) = by_name.get(agent.as_str()) else {
            return invalid(key, format!("no `[[agents]]` is named {agent:?}"));
        };
        let list = declared
            .iter()
            .map(|v| format!("{:?}", v.unwrap_or("")))
            .collect::<Vec<_>>()
            .join(", ");
        let known: BTreeSet<&str> = declared.iter().flatten().copied().collect();
        if !known.contains(r.stable.as_str()) {
            invalid(
                key.key("stable"),
                format!(
                    "agent {agent:?} has no version {:?} (declared: {list})",
                    r.stable
                ),
            )?;
        }
        if let Some(canary) = &r.canary {
            if !known.contains(canary.as_str()) {
                invalid(
                    key.key("canary"),
                    format!("agent {agent:?} has no version {canary:?} (declared: {list})"),
                )?;
            }
            if canary == &r.stable {
                invalid(key.key("canary"), "must differ from `stable`")?;
            }
        }
        if !non_negative(r.percent) || r.percent > 100.0 {
            invalid(
                key.key("percent"),
                format!("expected 0 to 100, found {}", r.percent),
            )?;
        }
        if r.percent > 0.0 && r.canary.is_none() {
            invalid(
                key.key("canary"),
                format!(
                    "`percent = {}` sends runs to a canary: name it with `canary = \"VERSION\"`",
                    r.percent
                ),
            )?;
        }
        if let Some(auto) = &r.auto_rollback {
            let key = key.key("auto_rollback");
            if !(1..=10_000).contains(&auto.window) {
                invalid(
                    key.key("window"),
                    format!("expected 1 to 10000 runs, found {}", auto.window),
                )?;
            }
            if !non_negative(auto.max_failure_rate) || auto.max_failure_rate >= 1.0 {
                invalid(
                    key.key("max_failure_rate"),
                    format!(
                        "expected a share from 0 to below 1 (0.2 = 20%), found {}",
                        auto.max_failure_rate
                    ),
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Config;

    const BASE: &str = "[providers.p]\nkind = \"mock\"\nscript = [{ reply = \"r\" }]\n\
        [[agents]]\nname = \"a\"\nversion = \"v1\"\nproviders = [\"p\"]\n\
        [[agents]]\nname = \"a\"\nversion = \"v2\"\nproviders = [\"p\"]\nsystem_prompt = \"new\"\n";

    fn error(text: &str) -> (String, String) {
        let err = Config::from_toml_str(text).expect_err("invalid");
        (err.key().unwrap_or_default().to_owned(), err.to_string())
    }

    #[test]
    fn versions_with_a_rollout_load() {
        let text = format!(
            "{BASE}[rollout.a]\nstable = \"v1\"\ncanary = \"v2\"\npercent = 10\n\
             auto_rollback = {{ window = 5, max_failure_rate = 0.5 }}\n"
        );
        let config = Config::from_toml_str(&text).expect("valid");
        let r = &config.rollout["a"];
        assert!(r.has_canary());
        assert_eq!(r.auto_rollback.map(|a| a.window), Some(5));
        // `agent(name)` is the stable version.
        assert_eq!(
            config.agent("a").and_then(|a| a.version.as_deref()),
            Some("v1")
        );
    }

    #[test]
    fn several_versions_need_a_stable_one() {
        let (key, msg) = error(BASE);
        assert_eq!(key, "rollout.a", "{msg}");
        assert!(msg.contains("2 versions"), "{msg}");
    }

    #[test]
    fn versions_must_differ_and_be_named() {
        let dup = BASE.replace("\"v2\"", "\"v1\"");
        let (key, msg) = error(&dup);
        assert_eq!(key, "agents[1].version", "{msg}");
        assert!(msg.contains("duplicate version \"v1\""), "{msg}");
        let unnamed = BASE.replace("version = \"v2\"\n", "");
        let (key, msg) = error(&unnamed);
        assert_eq!(key, "agents[1].name", "{msg}");
        assert!(msg.contains("distinct `version`"), "{msg}");
        let bad = BASE.replace("\"v2\"", "\"v 2\"");
        let (key, _) = error(&bad);
        assert_eq!(key, "agents[1].version");
    }

    #[test]
    fn a_rollout_names_declared_versions() {
        for (extra, key, needle) in [
            ("stable = \"v9\"\n", "rollout.a.stable", "no version \"v9\""),
            (
                "stable = \"v1\"\ncanary = \"v3\"\npercent = 5\n",
                "rollout.a.canary",
                "declared: \"v1\", \"v2\"",
            ),
            (
                "stable = \"v1\"\ncanary = \"v1\"\npercent = 5\n",
                "rollout.a.canary",
                "differ",
            ),
            (
                "stable = \"v1\"\ncanary = \"v2\"\npercent = 101\n",
                "rollout.a.percent",
                "0 to 100",
            ),
            (
                "stable = \"v1\"\npercent = 5\n",
                "rollout.a.canary",
                "name it",
            ),
            (
                "stable = \"v1\"\ncanary = \"v2\"\npercent = 5\nauto_rollback = { max_failure_rate = 1.5 }\n",
                "rollout.a.auto_rollback.max_failure_rate",
                "below 1",
            ),
        ] {
            let (k, msg) = error(&format!("{BASE}[rollout.a]\n{extra}"));
            assert_eq!(k, key, "{extra}: {msg}");
            assert!(msg.contains(needle), "{extra}: {msg}");
        }
        let (k, msg) = error(&format!(
            "{BASE}[rollout.a]\nstable = \"v1\"\n[rollout.zz]\nstable = \"v1\"\n"
        ));
        assert_eq!(k, "rollout.zz", "{msg}");
    }
}
