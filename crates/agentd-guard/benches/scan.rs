//! Throughput of the injection scan (all detectors) and PII redaction
//! (all kinds) on realistic mixed text: a support conversation with a few
//! personal values and a web page, repeated to 1, 16 and 64 KiB.
//!
//! `cargo bench -p agentd-guard --bench scan`; divide the median by the
//! size in KiB for µs per KiB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentd_guard::injection::{Detector, Scanner};
use agentd_guard::pii::{PiiKind, Vault};
use divan::{Bencher, black_box};

fn main() {
    divan::main();
}

const SUPPORT: &str = "\
Customer: Hi, I was charged twice for my subscription this month. My email is maria.lopez@example.com \
and the card ending 4242 was used, full number 4111 1111 1111 1111 if you need it.\n\
Agent: Sorry about that, Maria! I can see two charges on November 3rd. Could you confirm the phone \
number on the account?\n\
Customer: Sure, it's +1 415 555 2671, or my office line (415) 555-0132. I also have a German account, \
IBAN DE89 3704 0044 0532 0130 00.\n\
Agent: Thanks. I have refunded one charge; it will show within 5-7 business days. Our logs show the \
request came from 203.0.113.42, is that you?\n\
Customer: Yes, that's my home connection. Merci beaucoup, und vielen Dank für die schnelle Hilfe! 👍\n";

const PAGE: &str = "\
<html><head><title>Release notes 4.2.1 — Acme Docs</title></head><body>\n\
<h1>Release notes</h1><p>Version 4.2.1 fixes the retry policy described in \
<a href=\"https://docs.example.com/search?q=retry+policy\">the docs</a>. Upgrade with \
<code>cargo install acme --version 4.2.1</code>.</p>\n\
<img src=\"/static/diagram.svg\" alt=\"Architecture\"> ![build](https://ci.example.com/badge.svg)\n\
<p>Security: we now discuss prompt injection in the guide, where an attacker hides text such as \
instructions in a page. Checksums: sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.</p>\n\
<pre>let logo = \"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\";</pre>\n\
<p>Contact support@example.com or call 020 7946 0958. 明日のメンテナンスは午前二時からです。</p></body></html>\n";

/// A worst case for the number detectors: a table where nearly every
/// cell is a phone-number candidate.
const TABLE: &str = "\
| 2026-11-03 | order 48213 | 555 0132 | 030 1234 5678 | +1 415 555 2671 | 4111 1111 1111 1112 | 10.0.0.1 |\n\
| 2026-11-04 | order 48214 | 555 0199 | 089 8765 4321 | +44 20 7946 0958 | 1234 5678 9012 3456 | v1.2.3.4 |\n";

/// `kib` KiB of the support conversation and the page, alternating, cut
/// on a character boundary.
fn text(kib: usize) -> String {
    repeat(&[SUPPORT, PAGE], kib)
}

/// `parts` repeated to `kib` KiB, cut on a character boundary.
fn repeat(parts: &[&str], kib: usize) -> String {
    let size = kib * 1024;
    let mut s = String::with_capacity(size + parts.iter().map(|p| p.len()).sum::<usize>());
    while s.len() < size {
        parts.iter().for_each(|p| s.push_str(p));
    }
    let mut end = size;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

#[divan::bench(args = [1, 16, 64])]
fn injection_scan(bencher: Bencher, kib: usize) {
    let scanner = Scanner::new(&Detector::ALL);
    let text = text(kib);
    scanner.scan(&text);
    bencher.bench(|| scanner.scan(black_box(&text)));
}

#[divan::bench(args = [1, 16, 64])]
fn pii_redact(bencher: Bencher, kib: usize) {
    agentd_guard::pii::warm_up();
    let text = text(kib);
    bencher.bench(|| Vault::default().redact(black_box(&text), &PiiKind::ALL));
}

#[divan::bench(args = [16])]
fn pii_redact_number_table(bencher: Bencher, kib: usize) {
    agentd_guard::pii::warm_up();
    let text = repeat(&[TABLE], kib);
    bencher.bench(|| Vault::default().redact(black_box(&text), &PiiKind::ALL));
}
