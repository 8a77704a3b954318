//! Email addresses and IP addresses.

use super::scan::{Pattern, after, before, compile, is_word, matches, standalone};
use std::net::Ipv6Addr;
use std::str::FromStr;
use std::sync::LazyLock;

static EMAIL: Pattern = LazyLock::new(|| {
    compile(
        r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}",
    )
});

/// Email addresses in the practical form: a local part of letters,
/// digits and `._%+-`, and a domain with a letter TLD.
pub(super) fn emails(text: &str) -> Vec<(usize, usize)> {
    matches(&EMAIL, text, |s, e| {
        let glued = |c: char| is_word(c) || c == '@';
        (standalone(text, s, e, glued) && !text[s..e].contains("..")).then_some((s, e))
    })
}

static IPV4: Pattern = LazyLock::new(|| compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"));
static IPV6: Pattern = LazyLock::new(|| {
    compile(r"(?:[0-9A-Fa-f]{1,4}|:)?(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}")
});

/// IPv4 dotted quads (octets 0–255, no leading zeros) not inside a
/// longer dotted number (`1.2.3.4.5`, versions), and IPv6 addresses
/// that `std` parses.
pub(super) fn ips(text: &str) -> Vec<(usize, usize)> {
    let mut found = matches(&IPV4, text, |s, e| {
        let dotted_digit = |at: Option<char>, next: Option<char>| {
            at == Some('.') && next.is_some_and(|c| c.is_ascii_digit())
        };
        let glued = |c: char| is_word(c);
        let prev2 = text[..s].chars().rev().nth(1);
        let next2 = text[e..].chars().nth(1);
        (standalone(text, s, e, glued)
            && !dotted_digit(before(text, s), prev2)
            && !dotted_digit(after(text, e), next2)
            && text[s..e].split('.').all(octet))
        .then_some((s, e))
    });
    found.extend(matches(&IPV6, text, |s, e| {
        let glued = |c: char| is_word(c) || c == ':' || c == '.';
        let candidate = &text[s..e];
        // At least three groups, or a compressed form: `a::b` alone is
        // as likely a path in code.
        let groups = candidate.split(':').filter(|g| !g.is_empty()).count();
        (standalone(text, s, e, glued)
            && (groups >= 3 || candidate == "::1")
            && Ipv6Addr::from_str(candidate).is_ok())
        .then_some((s, e))
    }));
    found.sort_unstable();
    found
}

fn octet(s: &str) -> bool {
    (s == "0" || !s.starts_with('0')) && s.parse::<u8>().is_ok()
}

/// Compiles this module's patterns now rather than on first use.
pub(super) fn warm() {
    LazyLock::force(&EMAIL);
    LazyLock::force(&IPV4);
    LazyLock::force(&IPV6);
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pii::scan::found;

    #[test]
    fn emails_in_practical_forms() {
        let text = "mail maria.lopez+tag@example.co.uk, or <ops@sub-1.example.com>.";
        assert_eq!(
            found(emails, text),
            ["maria.lopez+tag@example.co.uk", "ops@sub-1.example.com"]
        );
        for bad in [
            "user@localhost",
            "a..b@example.com",
            "@example.com",
            "user@-bad.example.com",
        ] {
            assert!(found(emails, bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn ipv4_quads_but_not_versions_or_longer_numbers() {
        let text = "from 203.0.113.42 and 10.0.0.1, gateway 255.255.255.0.";
        assert_eq!(
            found(ips, text),
            ["203.0.113.42", "10.0.0.1", "255.255.255.0"]
        );
        for bad in [
            "1.2.3.4.5",
            "v1.2.3",
            "1.2.3",
            "256.1.1.1",
            "01.2.3.4",
            "release 10.0.0.1.2",
            "x1.2.3.4",
        ] {
            assert!(found(ips, bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn ipv6_as_std_parses_it() {
        let text = "hosts 2001:db8::8a2e:370:7334, ::1 and fe80::1:2%eth0; time 12:30:45";
        assert_eq!(
            found(ips, text),
            ["2001:db8::8a2e:370:7334", "::1", "fe80::1:2"]
        );
        assert!(found(ips, "std::io::Read").is_empty());
        assert!(found(ips, "1:2:3:4:5:6:7:8:9").is_empty());
    }
}
