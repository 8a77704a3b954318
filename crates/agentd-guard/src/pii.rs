//! Personal data and secrets: detectors that validate what they find
//! (cards pass Luhn, IBANs their checksum, phone numbers parse), and a
//! [`Vault`] that replaces each value with a stable placeholder
//! (`[EMAIL_1]`) and puts the values back into text that carries the
//! placeholders.

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

fn find_kind(kind: PiiKind, text: &str) -> Vec<PiiMatch> {
    // Filled in with validated detectors (issue #16 work in progress).
    let _ = (kind, text);
    Vec::new()
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
