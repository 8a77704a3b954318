//! The file tools' jail: `..`, absolute paths, NUL bytes and symlinks out of
//! the root are refused, for reads, writes and listings.

use std::os::unix::fs::symlink;
use std::path::Path;

use agentd_tools::{Registry, ToolError, ToolOutput, ToolsError};
use serde_json::{Value, json};

use crate::common::*;

struct Jail {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
    reg: Registry,
}

async fn jail(max_bytes: u64) -> Jail {
    let dir = tempfile::tempdir().unwrap();
    // The root does not exist yet: it is created.
    let root = dir.path().join("workspace");
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "top secret").unwrap();
    let toml = format!(
        "[tools.files]\nroot = {:?}\nmax_bytes = {max_bytes}\n",
        root.display().to_string()
    );
    let reg = registry_with(&toml, FakeDns::new(&[]), &[]).await;
    assert!(root.is_dir());
    // Links planted inside the jail (by anyone with access to it).
    symlink(&outside, root.join("link_out")).unwrap();
    symlink(outside.join("secret.txt"), root.join("secret_link")).unwrap();
    symlink(outside.join("created.txt"), root.join("dangling")).unwrap();
    symlink("../outside/secret.txt", root.join("relative_out")).unwrap();
    Jail {
        _dir: dir,
        root,
        outside,
        reg,
    }
}

impl Jail {
    async fn call(&self, tool: &str, args: Value) -> Result<Value, ToolError> {
        match self.reg.get(tool).unwrap().call(&ctx(), &args).await? {
            ToolOutput::Value(v) => Ok(v),
            other => panic!("{other:?}"),
        }
    }

    async fn refused(&self, tool: &str, args: Value, why: &str) {
        match self.call(tool, args.clone()).await {
            Err(ToolError::InvalidArgs { message, .. }) => {
                assert!(message.contains(why), "{tool} {args}: {message}");
                let root = self.root.display().to_string();
                assert!(
                    !message.contains(&root) || args.to_string().contains(&root),
                    "messages do not reveal the root: {message}"
                );
            }
            other => panic!("{tool} {args} must be refused, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn files_inside_the_jail_work() {
    let j = jail(1_000_000).await;
    let v = j
        .call(
            "write_file",
            json!({ "path": "notes/day/1.txt", "content": "hello" }),
        )
        .await
        .unwrap();
    assert_eq!(v["bytes_written"], 5);
    assert_eq!(
        std::fs::read_to_string(j.root.join("notes/day/1.txt")).unwrap(),
        "hello"
    );
    let v = j
        .call("read_file", json!({ "path": "./notes/day/1.txt" }))
        .await
        .unwrap();
    assert_eq!(v["content"], "hello");
    assert_eq!(v["truncated"], false);
    // Overwrite.
    j.call(
        "write_file",
        json!({ "path": "notes/day/1.txt", "content": "bye" }),
    )
    .await
    .unwrap();
    let v = j
        .call("read_file", json!({ "path": "notes/day/1.txt" }))
        .await
        .unwrap();
    assert_eq!(v["content"], "bye");

    let v = j.call("list_dir", json!({ "path": "." })).await.unwrap();
    let entries: Vec<(String, String)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("dangling", "symlink"),
            ("link_out", "symlink"),
            ("notes", "dir"),
            ("relative_out", "symlink"),
            ("secret_link", "symlink"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let v = j
        .call("list_dir", json!({ "path": "notes/day" }))
        .await
        .unwrap();
    assert_eq!(
        v["entries"],
        json!([{ "name": "1.txt", "type": "file", "size": 3 }])
    );

    // A link that stays inside the jail is fine.
    symlink(j.root.join("notes"), j.root.join("notes_link")).unwrap();
    let v = j
        .call("read_file", json!({ "path": "notes_link/day/1.txt" }))
        .await
        .unwrap();
    assert_eq!(v["content"], "bye");
}

#[tokio::test]
async fn escapes_are_refused() {
    let j = jail(1_000_000).await;
    let abs_secret = j.outside.join("secret.txt").display().to_string();
    let abs_inside = j.root.join("x.txt").display().to_string();
    for tool in ["read_file", "list_dir"] {
        for (path, why) in [
            ("../outside/secret.txt", "`..` is not allowed"),
            ("notes/../../outside", "`..` is not allowed"),
            ("..", "`..` is not allowed"),
            (abs_secret.as_str(), "absolute paths are not allowed"),
            (abs_inside.as_str(), "absolute paths are not allowed"),
            ("/etc/passwd", "absolute paths are not allowed"),
            ("a\0b", "NUL"),
            ("link_out", "outside the workspace"),
            ("link_out/secret.txt", "outside the workspace"),
            ("secret_link", "outside the workspace"),
            ("relative_out", "outside the workspace"),
            ("missing.txt", "does not exist"),
        ] {
            j.refused(tool, json!({ "path": path }), why).await;
        }
    }
    j.refused("read_file", json!({ "path": "." }), "not a regular file")
        .await;

    for (path, why) in [
        ("../outside/new.txt", "`..` is not allowed"),
        ("/tmp/agentd-escape.txt", "absolute paths are not allowed"),
        ("a\0b", "NUL"),
        // Through a directory link, also when parents must be created.
        ("link_out/new.txt", "outside the workspace"),
        ("link_out/sub/dir/new.txt", "outside the workspace"),
        // A link at the target itself: existing file, dangling, relative.
        ("secret_link", "symbolic link"),
        ("dangling", "symbolic link"),
        ("relative_out", "symbolic link"),
        (".", "names no file"),
    ] {
        j.refused(
            "write_file",
            json!({ "path": path, "content": "pwned" }),
            why,
        )
        .await;
    }
    // Nothing outside changed.
    assert_eq!(
        std::fs::read_to_string(j.outside.join("secret.txt")).unwrap(),
        "top secret"
    );
    let mut outside: Vec<String> = std::fs::read_dir(&j.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    outside.sort();
    assert_eq!(outside, ["secret.txt"]);
    assert!(!Path::new("/tmp/agentd-escape.txt").exists());
}

#[tokio::test]
async fn size_limit() {
    let j = jail(10).await;
    j.refused(
        "write_file",
        json!({ "path": "big.txt", "content": "01234567890" }),
        "more than the limit",
    )
    .await;
    std::fs::write(j.root.join("big.txt"), "0123456789abcdef").unwrap();
    let v = j
        .call("read_file", json!({ "path": "big.txt" }))
        .await
        .unwrap();
    assert_eq!(v["content"], "0123456789");
    assert_eq!(v["truncated"], true);
    assert_eq!(v["size"], 16);
}

#[tokio::test]
async fn file_tools_need_a_root() {
    let reg = registry_with("", FakeDns::new(&[]), &[]).await;
    assert!(reg.get("read_file").is_none());
    let Err(err) = reg.resolve(&["write_file".to_owned()]) else {
        panic!("must fail");
    };
    assert_eq!(
        err,
        ToolsError::UnknownTool {
            name: "write_file".into(),
            hint: " (the file tools need `[tools.files] root`)".into()
        }
    );
}
