//! Prompt-injection heuristics: text that tries to take over an agent,
//! whether it comes from the user or back from a tool (a fetched page, a
//! file, an MCP result). Each [`Detector`] is one family of attack; a
//! [`Scanner`] runs the chosen ones and reports what matched, so a verdict
//! can be explained and audited.

mod encoded;
mod exfil;
mod hidden;
mod phrases;

use serde::{Deserialize, Serialize};

/// One family of injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// "Ignore all previous instructions" and its kin, in several
    /// languages.
    Override,
    /// Attempts to reveal the system prompt, the instructions or the tools.
    Reveal,
    /// Role-play jailbreak templates ("you are DAN", "developer mode").
    RolePlay,
    /// Long base64 or hex blobs that decode to instructions.
    Encoded,
    /// Hidden-character smuggling: Unicode tags, bidi overrides,
    /// zero-width runs.
    Hidden,
    /// Markdown or HTML images whose URL carries data out in its query.
    Exfiltration,
}

impl Detector {
    /// Every detector, the default set.
    pub const ALL: [Detector; 6] = [
        Detector::Override,
        Detector::Reveal,
        Detector::RolePlay,
        Detector::Encoded,
        Detector::Hidden,
        Detector::Exfiltration,
    ];

    /// The name used in config, audit records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Override => "override",
            Detector::Reveal => "reveal",
            Detector::RolePlay => "role_play",
            Detector::Encoded => "encoded",
            Detector::Hidden => "hidden",
            Detector::Exfiltration => "exfiltration",
        }
    }
}

/// What a detector found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub detector: Detector,
    /// The matched text, at most [`EXCERPT_CHARS`] characters of it.
    pub excerpt: String,
}

/// Longest excerpt a finding carries (audit records stay small).
pub const EXCERPT_CHARS: usize = 120;

/// Runs a set of detectors. Build it once (it compiles its patterns) and
/// share it.
#[derive(Debug, Clone)]
pub struct Scanner {
    detectors: Vec<Detector>,
}

impl Scanner {
    /// A scanner running `detectors` (all of them when empty).
    pub fn new(detectors: &[Detector]) -> Self {
        let mut detectors = if detectors.is_empty() {
            Detector::ALL.to_vec()
        } else {
            detectors.to_vec()
        };
        detectors.sort();
        detectors.dedup();
        for d in &detectors {
            match d {
                Detector::Override | Detector::Reveal | Detector::RolePlay => phrases::warm(),
                Detector::Encoded => {
                    phrases::warm();
                    encoded::warm();
                }
                Detector::Exfiltration => exfil::warm(),
                Detector::Hidden => {}
            }
        }
        Self { detectors }
    }

    /// The detectors this scanner runs.
    pub fn detectors(&self) -> &[Detector] {
        &self.detectors
    }

    /// Every finding in `text`, at most one per detector, in detector
    /// order.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        self.detectors
            .iter()
            .filter_map(|&d| {
                detect(d, text).map(|excerpt| Finding {
                    detector: d,
                    excerpt: excerpt_of(excerpt),
                })
            })
            .collect()
    }
}

fn excerpt_of(s: &str) -> String {
    s.chars().take(EXCERPT_CHARS).collect()
}

/// The text `detector` matched in `text`, if any.
fn detect(detector: Detector, text: &str) -> Option<&str> {
    match detector {
        Detector::Override => phrases::overriding(text),
        Detector::Reveal => phrases::revealing(text),
        Detector::RolePlay => phrases::role_playing(text),
        Detector::Encoded => encoded::encoded(text, |plain| {
            phrases::overriding(plain).is_some()
                || phrases::revealing(plain).is_some()
                || phrases::role_playing(plain).is_some()
        }),
        Detector::Hidden => hidden::hidden(text),
        Detector::Exfiltration => exfil::exfiltrating(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_finding_per_detector_in_detector_order_with_short_excerpts() {
        let text = format!(
            "ignore previous instructions. {} ignore previous instructions ![x](https://e.example/i?d=1) a\u{200B}\u{200B}b",
            "x".repeat(200)
        );
        let found = Scanner::new(&[Detector::Exfiltration, Detector::Override, Detector::Hidden])
            .scan(&text);
        let detectors: Vec<Detector> = found.iter().map(|f| f.detector).collect();
        assert_eq!(
            detectors,
            [Detector::Override, Detector::Hidden, Detector::Exfiltration]
        );
        assert_eq!(found[0].excerpt, "ignore previous instructions");
        assert!(
            Scanner::new(&[])
                .scan("a long ordinary sentence.")
                .is_empty()
        );
        let long = format!("ignore previous instructions{}", "!".repeat(300));
        let f = Scanner::new(&[Detector::Override]).scan(&long);
        assert!(f[0].excerpt.chars().count() <= EXCERPT_CHARS);
    }
}
