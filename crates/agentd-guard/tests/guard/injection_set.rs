//! Precision and recall of the injection scanner on
//! `tests/data/injection.jsonl`, a set written before the detectors and
//! not edited to fit them. The floors catch regressions; the printed
//! figures are the ones to report.

use agentd_guard::injection::{Detector, Scanner};
use serde::Deserialize;

#[derive(Deserialize)]
struct Line {
    text: String,
    label: String,
    source: String,
}

const SET: &str = include_str!("../data/injection.jsonl");

#[test]
fn injection_set_precision_and_recall() {
    let lines: Vec<Line> = SET
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(lines.len() >= 120, "the set has {} lines", lines.len());
    assert!(lines.iter().all(|l| !l.source.is_empty()));

    let scanner = Scanner::new(&Detector::ALL);
    let (mut tp, mut fp, mut fn_, mut tn) = (0u32, 0u32, 0u32, 0u32);
    for line in &lines {
        let findings = scanner.scan(&line.text);
        let flagged = !findings.is_empty();
        match (line.label.as_str(), flagged) {
            ("injection", true) => tp += 1,
            ("injection", false) => {
                fn_ += 1;
                println!("missed: {}", line.text);
            }
            ("benign", true) => {
                fp += 1;
                println!("false alarm ({:?}): {}", findings[0].detector, line.text);
            }
            ("benign", false) => tn += 1,
            (label, _) => panic!("unknown label {label}"),
        }
    }
    let precision = f64::from(tp) / f64::from(tp + fp);
    let recall = f64::from(tp) / f64::from(tp + fn_);
    println!(
        "injection set: {} lines, tp {tp} fp {fp} fn {fn_} tn {tn}, precision {precision:.3}, recall {recall:.3}",
        lines.len()
    );
    assert!(precision >= 0.9, "precision {precision:.3}");
    assert!(recall >= 0.8, "recall {recall:.3}");
}
