//! Credentials in known formats: cloud and SaaS API keys, tokens, JWTs,
//! PEM private keys (the whole block) and agentd's own API keys.

use super::scan::{Pattern, compile, is_word, matches, standalone};
use std::sync::LazyLock;

static SECRET: Pattern = LazyLock::new(|| {
    compile(concat!(
        // PEM private key: the whole block, or the header and body when
        // the end was cut off.
        r"-----BEGIN[A-Z0-9 ]{0,20} PRIVATE KEY-----(?:[\sA-Za-z0-9+/=:,\-]*?-----END[A-Z0-9 ]{0,20} PRIVATE KEY-----|[\sA-Za-z0-9+/=:,]*)",
        r"|(?-u:\b)(?:",
        r"(?:AKIA|ASIA)[0-9A-Z]{16}",
        r"|gh[pousr]_[A-Za-z0-9]{36}",
        r"|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
        r"|sk-ant-[A-Za-z0-9_-]{32,}",
        r"|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
        r"|AIza[0-9A-Za-z_-]{35}",
        r"|xox[baprs]-[0-9A-Za-z-]{10,}",
        r"|[sr]k_(?:live|test)_[0-9A-Za-z]{24,}",
        r"|glpat-[0-9A-Za-z_-]{20}",
        r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        // agentd API keys (agentd-core's apikey module).
        r"|agd_[0-9a-f]{16}_[0-9a-f]{64}",
        r")",
    ))
});

/// Secrets in the formats above. An `sk-` match must look random (a
/// digit and both cases), so `sk-learn-is-a-library` is not a key.
pub(super) fn secrets(text: &str) -> Vec<(usize, usize)> {
    matches(&SECRET, text, |s, e| {
        let m = &text[s..e];
        if m.starts_with("-----") {
            return Some((s, e));
        }
        let random = |t: &str| {
            t.bytes().any(|b| b.is_ascii_digit())
                && t.bytes().any(|b| b.is_ascii_uppercase())
                && t.bytes().any(|b| b.is_ascii_lowercase())
        };
        let plausible = !m.starts_with("sk-") || m.starts_with("sk-ant-") || random(m);
        (plausible && standalone(text, s, e, is_word)).then_some((s, e))
    })
}

/// Compiles this module's patterns now rather than on first use.
pub(super) fn warm() {
    LazyLock::force(&SECRET);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<String> {
        secrets(text)
            .into_iter()
            .map(|(s, e)| text[s..e].to_owned())
            .collect()
    }

    #[test]
    fn pattern_compiles() {
        assert!(SECRET.is_some());
    }

    #[test]
    fn known_key_formats() {
        let keys = [
            "AKIAIOSFODNN7EXAMPLE".to_owned(),
            format!("ghp_{}", "aB3".repeat(12)),
            format!("github_pat_{}_{}", "A1b".repeat(7) + "C", "d2E".repeat(19) + "ff"),
            format!("sk-ant-api03-{}", "Xy9_".repeat(20)),
            format!("sk-proj-{}", "Ab1".repeat(16)),
            format!("sk-{}", "T3BlbkFJ".repeat(6)),
            format!("AIza{}", "Sy9-".repeat(8) + "abc"),
            "xoxb-2512345678-2512345678901-AbCdEfGhIjKlMnOp".to_owned(),
            format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc"),
            format!("glpat-{}", "xYz12".repeat(4)),
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U".to_owned(),
            format!("agd_{}_{}", "0123456789abcdef", "ab".repeat(32)),
        ];
        for key in &keys {
            assert_eq!(found(&format!("key: {key}\n")), [key.as_str()], "{key}");
        }
    }

    #[test]
    fn a_pem_private_key_is_matched_whole() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234\nabcd+/==\n-----END RSA PRIVATE KEY-----";
        assert_eq!(found(&format!("key:\n{pem}\nthanks")), [pem]);
        let cut = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg";
        assert_eq!(found(cut), [cut]);
        assert!(found("-----BEGIN PUBLIC KEY-----\nMIIB").is_empty());
    }

    #[test]
    fn near_misses_are_not_secrets() {
        for text in [
            "AKIA1234",
            "ghp_short",
            "sk-learn-is-a-great-library-for-ml",
            "task-abcdefghijklmnopqrstuvwxyz",
            "xAKIAIOSFODNN7EXAMPLE",
            "eyJhbGciOiJIUzI1NiJ9 alone",
            "agd_0123_abcd",
        ] {
            assert!(found(text).is_empty(), "{text}");
        }
    }
}
