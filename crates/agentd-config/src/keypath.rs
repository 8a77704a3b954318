//! Full config keys (`agents[0].memory.max_messages`) as structured paths.

use std::fmt;

/// One step of a key: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A full key, rendered TOML-like: `providers.main.kind`, `agents[1].name`,
/// `pricing."gpt-4.1".input_per_mtok`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct KeyPath(pub(crate) Vec<Seg>);

impl KeyPath {
    /// This path extended by a table key.
    pub(crate) fn key(&self, k: &str) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(k.to_owned()));
        KeyPath(segs)
    }

    /// This path extended by an array index.
    pub(crate) fn index(&self, i: usize) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(i));
        KeyPath(segs)
    }

    /// A path of table keys only.
    pub(crate) fn of(keys: &[&str]) -> KeyPath {
        KeyPath(keys.iter().map(|k| Seg::Key((*k).to_owned())).collect())
    }
}

/// Keys TOML accepts unquoted.
fn is_bare(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare(k) {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_toml() {
        let p = KeyPath::of(&["agents"])
            .index(1)
            .key("memory")
            .key("max_messages");
        assert_eq!(p.to_string(), "agents[1].memory.max_messages");
        let p = KeyPath::of(&["pricing", "gpt-4.1", "input_per_mtok"]);
        assert_eq!(p.to_string(), "pricing.\"gpt-4.1\".input_per_mtok");
    }
}
