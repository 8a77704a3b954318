//! Hidden-character smuggling: text a reviewer cannot see but a model
//! reads. A lone BOM, soft hyphen or emoji joiner is ordinary text and
//! does not count; Unicode tags (outside an emoji flag sequence), bidi
//! overrides and isolates, and runs of two or more zero-width characters
//! do.

use crate::hygiene::{is_bidi_control, is_tag, is_zero_width};

/// The first hidden sequence in `text`.
pub(super) fn hidden(text: &str) -> Option<&str> {
    let mut chars = text.char_indices().peekable();
    let mut prev: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        if is_tag(c) {
            // 🏴 followed by tag letters and CANCEL TAG is a subdivision
            // flag (England, Scotland, Wales), not smuggling.
            let end = run_end(text, i, is_tag);
            if prev == Some(BLACK_FLAG) && is_flag_tail(&text[i..end]) {
                skip_to(&mut chars, end);
                prev = text[..end].chars().next_back();
                continue;
            }
            return Some(&text[i..end]);
        }
        if is_bidi_control(c) {
            return Some(&text[i..i + c.len_utf8()]);
        }
        if is_zero_width(c) {
            let end = run_end(text, i, is_zero_width);
            if text[i..end].chars().nth(1).is_some() {
                return Some(&text[i..end]);
            }
        }
        prev = Some(c);
    }
    None
}

const BLACK_FLAG: char = '\u{1F3F4}';
const CANCEL_TAG: char = '\u{E007F}';

/// The end of the run of `pred` characters starting at `start`.
fn run_end(text: &str, start: usize, pred: fn(char) -> bool) -> usize {
    text[start..]
        .char_indices()
        .find(|&(_, c)| !pred(c))
        .map_or(text.len(), |(j, _)| start + j)
}

/// Tag letters or digits (at most 7, as in `gbsct`) ending in CANCEL TAG.
fn is_flag_tail(tags: &str) -> bool {
    let n = tags.chars().count();
    tags.ends_with(CANCEL_TAG)
        && (2..=8).contains(&n)
        && tags
            .chars()
            .take(n - 1)
            .all(|c| matches!(c, '\u{E0030}'..='\u{E0039}' | '\u{E0061}'..='\u{E007A}'))
}

fn skip_to(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, end: usize) {
    while chars.next_if(|&(j, _)| j < end).is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_bidi_overrides_and_zero_width_runs_fire() {
        assert_eq!(hidden("hi\u{E0049}\u{E0067}!"), Some("\u{E0049}\u{E0067}"));
        assert_eq!(hidden("invoice\u{202E}gpj.exe"), Some("\u{202E}"));
        assert_eq!(hidden("a\u{2066}b"), Some("\u{2066}"));
        assert_eq!(
            hidden("x\u{200B}\u{200C}\u{200B}y"),
            Some("\u{200B}\u{200C}\u{200B}")
        );
        assert_eq!(hidden("x\u{AD}\u{AD}y"), Some("\u{AD}\u{AD}"));
    }

    #[test]
    fn a_lone_bom_soft_hyphen_or_joiner_does_not_fire() {
        assert_eq!(hidden("\u{FEFF}Name,Email\nAda,ada@example.com"), None);
        assert_eq!(hidden("co\u{AD}operation"), None);
        assert_eq!(hidden("a\u{200B}b c\u{200B}d"), None);
        // Family and rainbow flag: single ZWJs between emoji.
        assert_eq!(hidden("👨\u{200D}👩\u{200D}👧 🏳\u{FE0F}\u{200D}🌈"), None);
        assert_eq!(hidden("plain text"), None);
    }

    #[test]
    fn subdivision_flags_are_not_smuggling_but_other_tags_are() {
        let england = "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}";
        assert_eq!(hidden(&format!("Go {england}!")), None);
        // The same tags without the flag, or a flag with a long tag tail.
        assert!(hidden("\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}").is_some());
        let long = format!("\u{1F3F4}{}\u{E007F}", "\u{E0061}".repeat(20));
        assert!(hidden(&long).is_some());
    }
}
