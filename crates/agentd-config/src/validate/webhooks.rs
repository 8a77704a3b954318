//! `[webhooks]` and each agent's `on_finish`: a webhook tool's name, or an
//! http(s) URL signed with `[webhooks] secret_env`.

use super::{Invalid, invalid};
use crate::keypath::KeyPath;
use crate::tooling::ToolKind;
use crate::types::Config;

pub(super) fn check(config: &Config) -> Result<(), Invalid> {
    let w = &config.webhooks;
    let key = KeyPath::of(&["webhooks"]);
    if w.max_attempts == 0 {
        invalid(key.key("max_attempts"), "expected at least 1, found 0")?;
    }
    if w.timeout.get().is_zero() {
        invalid(key.key("timeout"), "expected a duration above 0")?;
    }
    if w.backoff_initial.get() > w.backoff_max.get() {
        invalid(
            key.key("backoff_initial"),
            "expected at most `webhooks.backoff_max`",
        )?;
    }
    if let Some(url) = &w.alerts_url {
        let scheme_ok = url::Url::parse(url)
            .map(|u| matches!(u.scheme(), "http" | "https"))
            .unwrap_or(false);
        if !scheme_ok {
            invalid(
                key.key("alerts_url"),
                format!("expected an http(s) URL, found {url:?}"),
            )?;
        }
        if w.secret_env.is_none() {
            invalid(
                key.key("alerts_url"),
                "alerts are signed: set `webhooks.secret_env` too",
            )?;
        }
    }
    if w.secret_env.as_deref() == Some("") {
        invalid(
            key.key("secret_env"),
            "expected the name of an environment variable, found an empty string",
        )?;
    }
    for (i, agent) in config.agents.iter().enumerate() {
        let Some(target) = &agent.on_finish else {
            continue;
        };
        let key = KeyPath::of(&["agents"]).index(i).key("on_finish");
        let tool = config
            .tools
            .get(target)
            .is_some_and(|t| t.kind == Some(ToolKind::Webhook));
        if tool {
            continue;
        }
        let url = url::Url::parse(target).ok();
        if !url.is_some_and(|u| matches!(u.scheme(), "http" | "https")) {
            invalid(
                key,
                format!(
                    "expected the name of a `kind = \"webhook\"` tool or an http(s) URL, \
                     found {target:?}"
                ),
            )?;
        } else if w.secret_env.is_none() {
            invalid(
                key,
                "a URL needs `webhooks.secret_env` (the secret that signs deliveries)",
            )?;
        }
    }
    Ok(())
}
