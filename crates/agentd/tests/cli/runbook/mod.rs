//! docs/runbook.md kept true by tests. The commands are read from the
//! runbook itself, so the document cannot drift from what is tested:
//!
//! - every `agentd …` invocation in a `sh` code block is run as
//!   `agentd ARGS --help`. clap parses the subcommand path, every flag and
//!   every flag value (enums, durations) before it answers `--help`, so a
//!   subcommand or flag the CLI does not have, or a value it refuses, exits
//!   2; only the command's own work is skipped. This covers every section,
//!   whatever its commands become;
//! - the blocks marked `<!-- runbook-test: NAME -->` (an HTML comment on
//!   the line before the fence, invisible when rendered) are run end to
//!   end against a real store and a served agentd (`recipes`), with the
//!   placeholders (`RUN_ID`, `/backups/`, …) replaced by this test's values.

mod harness;
mod recipes;

use crate::support::{BIN, text};
use std::collections::BTreeSet;

/// One `sh` code block of the runbook.
#[derive(Debug, Clone)]
pub struct Block {
    /// The `## ` heading it is under.
    pub section: String,
    /// Its `<!-- runbook-test: NAME -->` marker, if any.
    pub marker: Option<String>,
    /// Its command lines: continuations joined, blank and comment-only
    /// lines dropped.
    pub lines: Vec<String>,
}

/// The runbook's `sh` blocks, in order.
pub fn blocks() -> Vec<Block> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/runbook.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut section = String::new();
    let mut marker = None;
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(h) = line.strip_prefix("## ") {
            section = h.trim().to_owned();
        }
        if let Some(name) = trimmed
            .strip_prefix("<!-- runbook-test:")
            .and_then(|r| r.strip_suffix("-->"))
        {
            marker = Some(name.trim().to_owned());
            continue;
        }
        let Some(info) = trimmed.strip_prefix("```") else {
            if !trimmed.is_empty() {
                marker = None;
            }
            continue;
        };
        let lang = info.split_whitespace().next().unwrap_or_default();
        let mut body = Vec::new();
        for inner in lines.by_ref() {
            if inner.trim() == "```" {
                break;
            }
            body.push(inner.trim().to_owned());
        }
        if lang == "sh" {
            out.push(Block {
                section: section.clone(),
                marker: marker.take(),
                lines: logical_lines(&body),
            });
        }
        marker = None;
    }
    out
}

/// Joins `\` continuations and drops blank and comment-only lines.
fn logical_lines(body: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in body {
        if let Some(head) = line.trim().strip_suffix('\\') {
            pending.push_str(head.trim());
            pending.push(' ');
            continue;
        }
        pending.push_str(line.trim());
        let joined = std::mem::take(&mut pending);
        if !joined.trim().is_empty() && !joined.trim_start().starts_with('#') {
            out.push(joined.trim().to_owned());
        }
    }
    out
}

/// The block marked `name`.
pub fn marked(name: &str) -> Block {
    blocks()
        .into_iter()
        .find(|b| b.marker.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("docs/runbook.md has no block marked {name:?}"))
}

/// A shell word or operator.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Op,
}

/// Splits a shell line into words (quotes removed, `$(…)` kept whole) and
/// operators; a `#` starting a word ends the line.
fn lex(line: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let flush = |out: &mut Vec<Token>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            out.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        _ => word.push(q),
                    }
                }
            }
            '$' if chars.peek() == Some(&'(') => {
                in_word = true;
                word.push('$');
                let mut depth = 0;
                for q in chars.by_ref() {
                    word.push(q);
                    match q {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '#' if !in_word => break,
            '|' | ';' | '&' | '>' | '<' | '(' | ')' => {
                flush(&mut out, &mut word, &mut in_word);
                out.push(Token::Op);
            }
            c if c.is_whitespace() => flush(&mut out, &mut word, &mut in_word),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    flush(&mut out, &mut word, &mut in_word);
    out
}

/// The arguments of every `agentd` invocation on `line`: at a command's
/// start (after `VAR=value` assignments, or as `xargs`' command), and
/// inside `$(…)`.
pub fn invocations(line: &str) -> Vec<Vec<String>> {
    let tokens = lex(line);
    let mut out = Vec::new();
    let mut at_start = true;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Op => at_start = true,
            Token::Word(w) => {
                for inner in substitutions(w) {
                    out.extend(invocations(inner));
                }
                let assignment = w.split_once('=').is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
                if at_start && w == "agentd" {
                    let args = tokens[i + 1..]
                        .iter()
                        .map_while(|t| match t {
                            Token::Word(a) => Some(a.clone()),
                            Token::Op => None,
                        })
                        .collect::<Vec<_>>();
                    i += args.len();
                    out.push(args);
                    at_start = false;
                } else if at_start && w == "xargs" {
                    // `xargs -n1 agentd …`: its flags, then its command.
                    while let Some(Token::Word(f)) = tokens.get(i + 1)
                        && f.starts_with('-')
                    {
                        i += 1;
                    }
                } else if !(at_start && assignment) {
                    at_start = false;
                }
            }
        }
        i += 1;
    }
    out
}

/// The commands of the `$(…)` in a word, outermost first.
fn substitutions(word: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = word.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if &bytes[i..i + 2] == b"$(" {
            let mut depth = 0;
            for (j, &b) in bytes.iter().enumerate().skip(i + 1) {
                match b {
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            out.push(&word[i + 2..j]);
                            i = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
        i += 1;
    }
    out
}

#[test]
fn lexing_finds_invocations_where_a_shell_would_run_them() {
    let found = invocations(
        r#"NEW=$(agentd keys create --name "ci deploy" --expires 90d) && AGENTD_LOG=info agentd --json dlq list | xargs -n1 agentd dlq requeue # agentd comment"#,
    );
    assert_eq!(
        found,
        vec![
            vec!["keys", "create", "--name", "ci deploy", "--expires", "90d"],
            vec!["--json", "dlq", "list"],
            vec!["dlq", "requeue"],
        ]
    );
    // Not commands: an argument, a path, a unit name.
    assert!(invocations("systemctl stop agentd; git -C /etc/agentd log").is_empty());
    assert_eq!(
        logical_lines(&["a \\".into(), "  b".into(), "# c".into(), String::new()]),
        vec!["a b"]
    );
}

/// A value for a placeholder the CLI types: `--from-step N` takes a
/// number. Identifiers (`RUN_ID`, `OLD_KEY_ID`) are taken as they are.
fn example(arg: &str) -> &str {
    match arg {
        "N" => "1",
        other => other,
    }
}

/// Every `agentd` command line of the runbook parses with the real CLI.
#[test]
fn every_runbook_command_is_a_valid_invocation() {
    let mut checked = BTreeSet::new();
    let mut failures = Vec::new();
    for block in blocks() {
        for line in &block.lines {
            for args in invocations(line) {
                if !checked.insert(args.clone()) {
                    continue;
                }
                let out = std::process::Command::new(BIN)
                    .args(args.iter().map(|a| example(a)))
                    .arg("--help")
                    .env_remove("AGENTD_CONFIG")
                    .env_remove("AGENTD_LOG_FORMAT")
                    .output()
                    .unwrap();
                if out.status.code() != Some(0) {
                    failures.push(format!(
                        "[{}] agentd {}: {}",
                        block.section,
                        args.join(" "),
                        text(&out.stderr).trim()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The parse found the runbook's commands (a broken parser finds none).
    let subcommands: BTreeSet<&str> = checked
        .iter()
        .filter_map(|a| a.iter().find(|w| !w.starts_with('-') && !w.contains('/')))
        .map(String::as_str)
        .collect();
    for expected in [
        "runs", "dlq", "audit", "keys", "backup", "restore", "store", "check",
    ] {
        assert!(subcommands.contains(expected), "{expected}: {checked:?}");
    }
}
