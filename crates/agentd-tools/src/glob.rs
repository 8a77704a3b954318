//! Tool-name globs: `*` matches any run of characters (including `/` and
//! `:`), `?` exactly one; everything else is literal.

/// A compiled tool-name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    pattern: Vec<char>,
    literal: bool,
}

impl Glob {
    pub(crate) fn new(pattern: &str) -> Glob {
        Glob {
            pattern: pattern.chars().collect(),
            literal: !pattern.contains(['*', '?']),
        }
    }

    /// True if the pattern has no wildcard.
    pub(crate) fn is_literal(&self) -> bool {
        self.literal
    }

    /// Linear-time wildcard match (greedy `*` with one backtrack point), so a
    /// hostile pattern or name cannot make matching explode.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let p = &self.pattern;
        let t: Vec<char> = text.chars().collect();
        let (mut pi, mut ti) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            match p.get(pi) {
                Some('*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&c) if c == '?' || c == t[ti] => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn matches_tool_names() {
        for (pattern, name, expected) in [
            ("*", "echo", true),
            ("*", "mcp:files/read", true),
            ("echo", "echo", true),
            ("echo", "echo2", false),
            ("echo", "ech", false),
            ("mcp:files/*", "mcp:files/read", true),
            ("mcp:files/*", "mcp:files/", true),
            ("mcp:files/*", "mcp:filesx/read", false),
            ("mcp:files/*", "mcp:other/read", false),
            ("mcp:*/read", "mcp:a/read", true),
            ("mcp:*/read", "mcp:a/write", false),
            ("http_*", "http_get", true),
            ("http_?et", "http_get", true),
            ("http_?et", "http_gget", false),
            ("*_file", "write_file", true),
            ("*_file", "write_files", false),
            ("a*b*c", "abxbc", true),
            ("a*b*c", "acb", false),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(
                Glob::new(pattern).matches(name),
                expected,
                "{pattern} vs {name}"
            );
        }
        assert!(Glob::new("echo").is_literal());
        assert!(!Glob::new("mcp:x/*").is_literal());
    }
}
