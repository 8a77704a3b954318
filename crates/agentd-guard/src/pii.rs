//! Personal data and secrets: detectors that validate what they find
//! (cards pass Luhn, IBANs their checksum, phone numbers parse), and a
//! [`Vault`] that replaces each value with a stable placeholder
//! (`[EMAIL_1]`) and puts the values back into text that carries the
//! placeholders.

mod network;
mod numbers;
mod scan;
mod secrets;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A kind of personal data or secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Phone,
    Card,
    Iban,
    Ssn,
    Ip,
    Secret,
}

impl PiiKind {
    /// Every kind, the default set.
    pub const ALL: [PiiKind; 7] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::Card,
        PiiKind::Iban,
        PiiKind::Ssn,
        PiiKind::Ip,
        PiiKind::Secret,
    ];

    /// The name used in config, audit records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::Card => "card",
            PiiKind::Iban => "iban",
            PiiKind::Ssn => "ssn",
            PiiKind::Ip => "ip",
            PiiKind::Secret => "secret",
        }
    }

    /// The placeholder's label: `EMAIL` in `[EMAIL_1]`.
    pub fn label(self) -> &'static str {
        match self {
            PiiKind::Email => "EMAIL",
            PiiKind::Phone => "PHONE",
            PiiKind::Card => "CARD",
            PiiKind::Iban => "IBAN",
            PiiKind::Ssn => "SSN",
            PiiKind::Ip => "IP",
            PiiKind::Secret => "SECRET",
        }
    }
}

/// One value found in a text: its kind and byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiiMatch {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
}

/// Compiles every pattern and loads the phone metadata now, so the first
/// request does not pay for it (tens of milliseconds). Optional.
pub fn warm_up() {
    network::warm();
    numbers::warm();
    secrets::warm();
}

/// Every value of `kinds` in `text`, sorted by position, none
/// overlapping (where two would, the earlier and then longer one wins).
pub fn find(text: &str, kinds: &[PiiKind]) -> Vec<PiiMatch> {
    let mut found: Vec<PiiMatch> = kinds
        .iter()
        .flat_map(|&kind| find_kind(kind, text))
        .collect();
    found.sort_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
    let mut out: Vec<PiiMatch> = Vec::with_capacity(found.len());
    for m in found {
        if out.last().is_none_or(|last| m.start >= last.end) {
            out.push(m);
        }
    }
    out
}

/// `text` with every value of `kinds` replaced by its kind (`[EMAIL]`),
/// for text nothing will restore (log lines); borrowed when nothing is
/// found.
pub fn mask<'a>(text: &'a str, kinds: &[PiiKind]) -> std::borrow::Cow<'a, str> {
    let found = find(text, kinds);
    if found.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for m in &found {
        out.push_str(&text[at..m.start]);
        out.push('[');
        out.push_str(m.kind.label());
        out.push(']');
        at = m.end;
    }
    out.push_str(&text[at..]);
    std::borrow::Cow::Owned(out)
}

fn find_kind(kind: PiiKind, text: &str) -> Vec<PiiMatch> {
    let spans = match kind {
        PiiKind::Email => network::emails(text),
        PiiKind::Phone => numbers::phones(text),
        PiiKind::Card => numbers::cards(text),
        PiiKind::Iban => numbers::ibans(text),
        PiiKind::Ssn => numbers::ssns(text),
        PiiKind::Ip => network::ips(text),
        PiiKind::Secret => secrets::secrets(text),
    };
    spans
        .into_iter()
        .map(|(start, end)| PiiMatch { kind, start, end })
        .collect()
}

/// The values a run's text was redacted of, by placeholder. Stored with
/// the run (encrypted when the store has a keyring), so every attempt, in
/// any process, gives the same value the same placeholder, and the
/// answer can be restored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vault {
    /// Placeholder (`[EMAIL_1]`) to value.
    values: BTreeMap<String, String>,
    /// Value to placeholder, per kind (rebuilt from `values` on load).
    #[serde(skip)]
    placeholders: HashMap<(PiiKind, String), String>,
}

impl Vault {
    /// True if nothing was redacted.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// How many values the vault holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Rebuilds the reverse index after deserializing.
    pub fn reindexed(mut self) -> Self {
        self.placeholders = self
            .values
            .iter()
            .filter_map(|(p, v)| Some(((kind_of(p)?, v.clone()), p.clone())))
            .collect();
        self
    }

    /// `text` with every value of `kinds` replaced by its placeholder (the
    /// same value always gets the same one); how many were replaced.
    pub fn redact(&mut self, text: &str, kinds: &[PiiKind]) -> (String, usize) {
        let found = find(text, kinds);
        if found.is_empty() {
            return (text.to_owned(), 0);
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for m in &found {
            out.push_str(&text[at..m.start]);
            out.push_str(&self.placeholder(m.kind, &text[m.start..m.end]));
            at = m.end;
        }
        out.push_str(&text[at..]);
        (out, found.len())
    }

    fn placeholder(&mut self, kind: PiiKind, value: &str) -> String {
        if let Some(p) = self.placeholders.get(&(kind, value.to_owned())) {
            return p.clone();
        }
        let n = self
            .values
            .keys()
            .filter(|p| kind_of(p) == Some(kind))
            .count()
            + 1;
        let p = format!("[{}_{n}]", kind.label());
        self.values.insert(p.clone(), value.to_owned());
        self.placeholders
            .insert((kind, value.to_owned()), p.clone());
        p
    }

    /// `text` with every placeholder of this vault replaced by its value.
    pub fn restore(&self, text: &str) -> String {
        if self.values.is_empty() || !text.contains('[') {
            return text.to_owned();
        }
        let mut out = text.to_owned();
        for (p, v) in &self.values {
            if out.contains(p.as_str()) {
                out = out.replace(p.as_str(), v);
            }
        }
        out
    }
}

/// The kind a placeholder names.
fn kind_of(placeholder: &str) -> Option<PiiKind> {
    let label = placeholder.strip_prefix('[')?.split('_').next()?;
    PiiKind::ALL.into_iter().find(|k| k.label() == label)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Reach ana@example.com or bob@example.org (again: ana@example.com), \
        card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789, \
        phone +44 20 7946 0958, host 203.0.113.42, key AKIAIOSFODNN7EXAMPLE.";

    #[test]
    fn find_reports_every_kind_in_order_without_overlaps() {
        let kinds: Vec<PiiKind> = find(TEXT, &PiiKind::ALL).iter().map(|m| m.kind).collect();
        use PiiKind::*;
        assert_eq!(
            kinds,
            [Email, Email, Email, Card, Iban, Ssn, Phone, Ip, Secret]
        );
        assert!(
            find(TEXT, &[PiiKind::Ip])
                .iter()
                .all(|m| &TEXT[m.start..m.end] == "203.0.113.42")
        );
        assert!(find("nothing personal here, version 1.2.3", &PiiKind::ALL).is_empty());
    }

    #[test]
    fn same_value_same_placeholder_across_calls_and_restore_round_trips() {
        let mut vault = Vault::default();
        let (redacted, n) = vault.redact(TEXT, &PiiKind::ALL);
        assert_eq!(n, 9);
        assert!(redacted.starts_with("Reach [EMAIL_1] or [EMAIL_2] (again: [EMAIL_1]),"));
        for p in [
            "[CARD_1]",
            "[IBAN_1]",
            "[SSN_1]",
            "[PHONE_1]",
            "[IP_1]",
            "[SECRET_1]",
        ] {
            assert!(redacted.contains(p), "{p} in {redacted}");
        }
        assert!(!redacted.contains("ana@example.com"));
        assert_eq!(vault.len(), 8);
        assert_eq!(vault.restore(&redacted), TEXT);

        let (second, _) = vault.redact(
            "bob@example.org wrote to carol@example.net",
            &[PiiKind::Email],
        );
        assert_eq!(second, "[EMAIL_2] wrote to [EMAIL_3]");
        // Only the kinds asked for are redacted.
        let (only_ip, n) = vault.redact("ana@example.com at 203.0.113.42", &[PiiKind::Ip]);
        assert_eq!((only_ip.as_str(), n), ("ana@example.com at [IP_1]", 1));
    }

    #[test]
    fn a_deserialized_vault_keeps_its_placeholders_once_reindexed() {
        let mut vault = Vault::default();
        vault.redact("ana@example.com and bob@example.org", &PiiKind::ALL);
        let json = serde_json::to_string(&vault).unwrap();
        let mut loaded: Vault = serde_json::from_str::<Vault>(&json).unwrap().reindexed();
        assert_eq!(loaded, vault.clone().reindexed());
        let (again, _) = loaded.redact(
            "bob@example.org, carol@example.net, ana@example.com",
            &PiiKind::ALL,
        );
        assert_eq!(again, "[EMAIL_2], [EMAIL_3], [EMAIL_1]");
        assert_eq!(
            loaded.restore("[EMAIL_3] [EMAIL_1]"),
            "carol@example.net ana@example.com"
        );
    }

    /// A small deterministic generator (xorshift): the property below
    /// runs on many texts without a proptest dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn restore_undoes_redact_on_texts_of_random_fragments() {
        const FRAGMENTS: &[&str] = &[
            " ",
            "\n",
            ", ",
            "hello",
            "Grüße",
            "日本語",
            "👨\u{200D}👩",
            "(",
            ")",
            "-",
            ".",
            ":",
            "42",
            "1.2.3",
            "order 5550132",
            "v2.0",
            "@",
            "sk-learn",
            "[note]",
            "EMAIL_1",
        ];
        const VALUES: &[&str] = &[
            "ana@example.com",
            "bob@example.org",
            "4111 1111 1111 1111",
            "378282246310005",
            "DE89 3704 0044 0532 0130 00",
            "123-45-6789",
            "+1 415 555 2671",
            "(415) 555-0132",
            "203.0.113.42",
            "2001:db8::1:2",
            "AKIAIOSFODNN7EXAMPLE",
            "-----BEGIN PRIVATE KEY-----\nMIIBVQ==\n-----END PRIVATE KEY-----",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut vault = Vault::default();
        let mut redacted_any = 0;
        for _ in 0..500 {
            let mut text = String::new();
            for _ in 0..rng.next(12) {
                if rng.next(3) == 0 {
                    text.push_str(VALUES[rng.next(VALUES.len())]);
                    text.push(' ');
                } else {
                    text.push_str(FRAGMENTS[rng.next(FRAGMENTS.len())]);
                }
            }
            let (redacted, n) = vault.redact(&text, &PiiKind::ALL);
            redacted_any += n;
            assert_eq!(vault.restore(&redacted), text, "redacted as {redacted:?}");
        }
        assert!(
            redacted_any > 100,
            "the property saw few values: {redacted_any}"
        );
    }
}
