//! Shared scanning helpers: lazily compiled patterns and the boundary
//! checks the `regex` crate cannot express without look-around.

use regex::Regex;
use std::sync::LazyLock;

/// A pattern compiled on first use; `None` only if the pattern is
/// invalid, which the kinds' tests rule out.
pub(super) type Pattern = LazyLock<Option<Regex>>;

/// Compiles `pattern`.
pub(super) fn compile(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

/// Every match of `re` in `text` for which `accept` returns the span to
/// keep (it may shorten the match).
pub(super) fn matches(
    re: &Pattern,
    text: &str,
    mut accept: impl FnMut(usize, usize) -> Option<(usize, usize)>,
) -> Vec<(usize, usize)> {
    let Some(re) = re.as_ref() else {
        return Vec::new();
    };
    re.find_iter(text)
        .filter_map(|m| accept(m.start(), m.end()))
        .collect()
}

/// The character before byte `at`, if any.
pub(super) fn before(text: &str, at: usize) -> Option<char> {
    text[..at].chars().next_back()
}

/// The character at byte `at`, if any.
pub(super) fn after(text: &str, at: usize) -> Option<char> {
    text[at..].chars().next()
}

/// True when neither neighbour of `start..end` satisfies `glued` (the
/// match is not part of a longer token).
pub(super) fn standalone(text: &str, start: usize, end: usize, glued: fn(char) -> bool) -> bool {
    !before(text, start).is_some_and(glued) && !after(text, end).is_some_and(glued)
}

/// A letter, digit or `_`.
pub(super) fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The texts a detector's spans cover, for tests.
#[cfg(test)]
pub(super) fn found(f: fn(&str) -> Vec<(usize, usize)>, text: &str) -> Vec<String> {
    f(text)
        .into_iter()
        .map(|(s, e)| text[s..e].to_owned())
        .collect()
}
