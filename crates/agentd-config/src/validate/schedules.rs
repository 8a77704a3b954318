//! `[[schedules]]`: unique names, a declared agent, a cron expression of 5
//! or 6 fields, an IANA time zone, a valid tenant id and a non-null input.

use std::collections::BTreeSet;

use super::{Invalid, invalid, valid_agent_name};
use crate::keypath::KeyPath;
use crate::types::Config;

/// Checks every schedule; the first problem found is the error.
pub(super) fn check(config: &Config) -> Result<(), Invalid> {
    let mut names = BTreeSet::new();
    for (i, s) in config.schedules.iter().enumerate() {
        let key = KeyPath::of(&["schedules"]).index(i);
        if !valid_agent_name(&s.name) {
            invalid(
                key.key("name"),
                format!("expected letters, digits, `_` and `-`, found {:?}", s.name),
            )?;
        }
        if !names.insert(s.name.as_str()) {
            invalid(
                key.key("name"),
                format!("duplicate schedule name {:?}", s.name),
            )?;
        }
        if !config.agents.iter().any(|a| a.name == s.agent) {
            invalid(
                key.key("agent"),
                format!(
                    "expected the name of an `[[agents]]` entry, found {:?}",
                    s.agent
                ),
            )?;
        }
        if let Err(e) = crate::schedule::CronSchedule::parse(&s.cron, "UTC") {
            invalid(key.key("cron"), e.to_string())?;
        }
        if s.timezone.parse::<chrono_tz::Tz>().is_err() {
            invalid(
                key.key("timezone"),
                format!(
                    "expected an IANA time zone such as \"UTC\" or \"Europe/Paris\", found {:?}",
                    s.timezone
                ),
            )?;
        }
        if let Err(e) = agentd_core::TenantId::parse(s.tenant.as_str()) {
            invalid(key.key("tenant"), format!("expected a tenant id: {e}"))?;
        }
        if s.input.is_null() {
            invalid(key.key("input"), "expected a JSON value, found null")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Config, Missed};

    const AGENT: &str = "[providers.p]\nkind = \"mock\"\nscript = [{ reply = \"r\" }]\n\
                         [[agents]]\nname = \"bot\"\nproviders = [\"p\"]\n";

    fn load(schedules: &str) -> Result<Config, crate::ConfigError> {
        Config::from_toml_str(&format!("{AGENT}{schedules}"))
    }

    /// The key and message of the error `schedules` is refused with.
    fn refused(schedules: &str) -> (String, String) {
        let err = load(schedules).expect_err("refused");
        (
            err.key().unwrap_or_default().to_owned(),
            err.message().to_owned(),
        )
    }

    #[test]
    fn a_schedule_loads_with_its_defaults() {
        let config = load(
            "[[schedules]]\nname = \"nightly\"\nagent = \"bot\"\ncron = \"0 3 * * *\"\n\
             input = { report = \"daily\" }\n\
             [[schedules]]\nname = \"tick\"\nagent = \"bot\"\ncron = \"*/1 * * * * *\"\n\
             timezone = \"Europe/Paris\"\ninput = \"go\"\ntenant = \"acme\"\nmissed = \"run_once\"\n",
        )
        .expect("valid");
        let [nightly, tick] = &config.schedules[..] else {
            panic!("two schedules: {:?}", config.schedules)
        };
        assert_eq!(nightly.timezone, "UTC");
        assert_eq!(nightly.tenant, "default");
        assert_eq!(nightly.missed, Missed::Skip);
        assert_eq!(nightly.input, serde_json::json!({ "report": "daily" }));
        assert_eq!(tick.missed, Missed::RunOnce);
        assert_eq!(tick.tenant, "acme");
        assert!(tick.parsed().is_ok());
    }

    #[test]
    fn errors_name_the_key_and_what_was_expected() {
        let entry = |extra: &str| {
            format!("[[schedules]]\nname = \"s\"\nagent = \"bot\"\ninput = \"x\"\n{extra}")
        };
        let (key, message) = refused(&entry("cron = \"* * *\"\n"));
        assert_eq!(key, "schedules[0].cron");
        assert!(
            message.contains("5 fields") && message.contains("found 3"),
            "{message}"
        );
        let (key, message) = refused(&entry("cron = \"0 25 * * *\"\n"));
        assert_eq!(key, "schedules[0].cron");
        assert!(message.contains("expected a cron expression"), "{message}");
        let (key, message) = refused(&entry("cron = \"* * * * *\"\ntimezone = \"Moon/Base\"\n"));
        assert_eq!(key, "schedules[0].timezone");
        assert!(message.contains("IANA time zone"), "{message}");
        let (key, _) = refused(&entry("cron = \"* * * * *\"\ntenant = \"a b\"\n"));
        assert_eq!(key, "schedules[0].tenant");
        let (key, message) = refused(&format!(
            "{}{}",
            entry("cron = \"* * * * *\"\n"),
            entry("cron = \"* * * * *\"\n")
        ));
        assert_eq!(key, "schedules[1].name");
        assert!(message.contains("duplicate schedule name"), "{message}");
        let (key, message) = refused(
            "[[schedules]]\nname = \"s\"\nagent = \"nobody\"\ncron = \"* * * * *\"\ninput = 1\n",
        );
        assert_eq!(key, "schedules[0].agent");
        assert!(message.contains("[[agents]]"), "{message}");
        let (key, message) = refused(&entry("cron = \"* * * * *\"\nmissed = \"catch_up\"\n"));
        assert!(key.starts_with("schedules"), "{key}: {message}");
        assert!(message.contains("run_once"), "{message}");
    }
}
