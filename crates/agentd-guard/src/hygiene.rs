//! Input hygiene: control characters other than `\n` and `\t` are
//! stripped, and invisible Unicode is removed: tag characters
//! (U+E0000–U+E007F, which smuggle text a human cannot see), bidi controls
//! (which reorder what a reviewer reads), and zero-width and other
//! format characters that render as nothing.

use std::borrow::Cow;

/// Text after [`clean`], with what was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned<'a> {
    pub text: Cow<'a, str>,
    /// Control characters removed (C0 and C1, other than `\n` and `\t`).
    pub control: usize,
    /// Invisible characters removed.
    pub invisible: usize,
}

impl Cleaned<'_> {
    /// True if anything was removed.
    pub fn changed(&self) -> bool {
        self.control + self.invisible > 0
    }
}

/// True for a character that renders as nothing but can carry or reorder
/// text: Unicode tags, bidi embeddings, overrides and isolates, the
/// directional marks, zero-width spaces and joiners, the word joiner and
/// invisible operators, the BOM, the soft hyphen and the Mongolian vowel
/// separator.
pub fn is_invisible(c: char) -> bool {
    is_tag(c)
        || is_bidi_control(c)
        || is_zero_width(c)
        // The directional marks: invisible, but also ordinary in
        // right-to-left text, so the injection guard does not flag them.
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Unicode tag characters, which can spell out hidden ASCII.
pub fn is_tag(c: char) -> bool {
    matches!(c, '\u{E0000}'..='\u{E007F}')
}

/// Bidi embeddings, overrides and isolates: they reorder what a reader
/// sees.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Zero-width spaces and joiners, the word joiner and invisible
/// operators, the BOM, the soft hyphen and the Mongolian vowel separator.
pub fn is_zero_width(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}'
    )
}

/// True for a control character hygiene strips (every one but `\n`, `\t`).
pub fn is_stripped_control(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// Removes stripped control characters and invisible characters from
/// `text`; borrows it when there is nothing to remove (the common case).
pub fn clean(text: &str) -> Cleaned<'_> {
    if !text
        .chars()
        .any(|c| is_stripped_control(c) || is_invisible(c))
    {
        return Cleaned {
            text: Cow::Borrowed(text),
            control: 0,
            invisible: 0,
        };
    }
    let (mut control, mut invisible) = (0, 0);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_stripped_control(c) {
            control += 1;
        } else if is_invisible(c) {
            invisible += 1;
        } else {
            out.push(c);
        }
    }
    Cleaned {
        text: Cow::Owned(out),
        control,
        invisible,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let c = clean("hello\n\tworld – ünïcödé 日本");
        assert!(matches!(c.text, Cow::Borrowed(_)));
        assert!(!c.changed());
    }

    #[test]
    fn controls_and_invisible_characters_are_removed_and_counted() {
        // A tag-smuggled "hi", a bidi override, a zero-width space, a BOM,
        // a NUL, a bell and a carriage return.
        let text = "a\u{E0068}\u{E0069}b\u{202E}c\u{200B}d\u{FEFF}e\0f\u{7}g\r\nh";
        let c = clean(text);
        assert_eq!(c.text, "abcdefg\nh");
        assert_eq!((c.control, c.invisible), (3, 5));
    }
}
