//! A small YAML emitter for JSON values, for the generated manifests.
//!
//! No YAML library is in the dependency tree, and the output only has to be
//! read, never parsed back by agentd, so this writes block-style YAML from a
//! `serde_json::Value`: a string is a JSON-style double-quoted scalar
//! (whose escapes YAML's double-quoted style accepts unchanged), so no
//! value can be misread as a number, boolean, null or a YAML tag, except
//! that a multi-line text (the config in a ConfigMap) is a literal block
//! when it reads back unchanged; keys are bare only when they are plain
//! identifiers.

use serde_json::Value;
use std::fmt::Write as _;

/// `value` as a YAML document.
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    for (key, value) in map {
        let _ = write!(out, "{:indent$}{}:", "", key_text(key));
        write_nested(out, value, indent + 2);
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        let _ = write!(out, "{:indent$}-", "");
        match item {
            // A map in a list starts on the dash's line: `- key: value`.
            Value::Object(map) if !map.is_empty() => {
                let mut nested = String::new();
                write_map(&mut nested, map, indent + 2);
                out.push(' ');
                out.push_str(nested.trim_start());
            }
            other => write_nested(out, other, indent + 2),
        }
    }
}

/// After `key:` or `-`: a scalar or empty collection on the same line,
/// anything else on the lines below, indented.
fn write_nested(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, indent);
        }
        Value::String(text) if is_block(text) => {
            out.push_str(" |\n");
            for line in text.lines() {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "{:indent$}{line}", "");
                }
            }
        }
        scalar => {
            let _ = writeln!(out, " {}", inline(scalar));
        }
    }
}

/// Whether a string reads back unchanged as a literal block (`|`): several
/// lines ending in exactly one newline, printable, and a first line that
/// does not start with a space (it would set the block's indentation).
fn is_block(text: &str) -> bool {
    text.ends_with('\n')
        && !text.ends_with("\n\n")
        && text.trim_end_matches('\n').contains('\n')
        && !text.chars().any(|c| c.is_control() && c != '\n')
        && !text
            .lines()
            .find(|l| !l.is_empty())
            .is_some_and(|l| l.starts_with(' '))
        && !text.lines().any(|l| l.ends_with(' '))
}

/// A scalar or empty collection in flow style (JSON is valid flow YAML).
fn inline(value: &Value) -> String {
    value.to_string()
}

fn key_text(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && key.starts_with(|c: char| c.is_ascii_alphabetic())
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}
