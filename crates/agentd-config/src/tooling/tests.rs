//! Tests of `[tools]`, `[[mcp]]` and `[[policies]]`.

use std::time::Duration;

use crate::{Config, ToolKind};

const SECTIONS: &str = r#"
[tools.http_get]
allow = ["10.0.0.5", "192.168.0.0/16", "internal.example"]
timeout = "10s"
max_bytes = 1048576

[tools.http_request]
approval = true

[tools.files]
root = "./workspace"

[tools.write_file]
approval = true

[tools.notify]
kind = "webhook"
url = "https://hooks.example.com/notify"
secret_env = "NOTIFY_SECRET"
description = "Notify the on-call channel"
schema = { type = "object", properties = { text = { type = "string" } }, required = ["text"] }
approval = true

[tools."mcp:files/write_*"]
approval = true

[[mcp]]
name = "files"
command = ["python3", "-m", "some_mcp_server"]

[[mcp]]
name = "remote"
url = "http://127.0.0.1:9000/mcp"
timeout = "5s"

[[policies]]
role = "user"
allow = ["echo", "http_get", "mcp:files/*"]

[[policies]]
role = "admin"
allow = ["*"]
"#;

fn err(text: &str) -> crate::ConfigError {
    Config::from_toml_str(text).unwrap_err()
}

#[test]
fn tool_sections_parse() {
    let c = Config::from_toml_str(SECTIONS).unwrap();
    let http = &c.tools["http_get"];
    assert_eq!(http.allow.len(), 3);
    assert_eq!(http.timeout.unwrap().get(), Duration::from_secs(10));
    assert_eq!(http.max_bytes, Some(1_048_576));
    assert!(!http.approval);
    assert!(c.tools["http_request"].approval);
    assert_eq!(c.tools["files"].root.as_deref(), Some("./workspace"));
    assert!(c.tools["write_file"].approval);
    let notify = &c.tools["notify"];
    assert_eq!(notify.kind, Some(ToolKind::Webhook));
    assert_eq!(notify.secret_env.as_deref(), Some("NOTIFY_SECRET"));
    assert_eq!(
        notify.schema.as_ref().unwrap()["required"],
        serde_json::json!(["text"])
    );
    assert!(notify.approval);
    assert!(c.tools["mcp:files/write_*"].approval);

    assert_eq!(c.mcp.len(), 2);
    assert_eq!(
        c.mcp[0].command.as_deref().unwrap(),
        ["python3", "-m", "some_mcp_server"]
    );
    assert_eq!(c.mcp[0].timeout.get(), Duration::from_secs(30), "default");
    assert_eq!(c.mcp[1].url.as_deref(), Some("http://127.0.0.1:9000/mcp"));
    assert_eq!(c.mcp[1].timeout.get(), Duration::from_secs(5));

    assert_eq!(c.policies.len(), 2);
    assert_eq!(c.policies[0].role, "user");
    assert_eq!(c.policies[1].allow, vec!["*"]);

    // Serializes back to TOML that loads to the same tree.
    let text = toml::to_string(&c).unwrap();
    assert_eq!(Config::from_toml_str(&text).unwrap(), c, "{text}");
    // Absent sections stay absent.
    let empty = Config::from_toml_str("").unwrap();
    assert!(empty.tools.is_empty() && empty.mcp.is_empty() && empty.policies.is_empty());
}

#[test]
fn tool_settings_from_env() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agentd.toml");
    std::fs::write(&path, SECTIONS).unwrap();
    let vars = [
        ("AGENTD_TOOLS__HTTP_GET__TIMEOUT", "3s"),
        ("AGENTD_TOOLS__FILES__ROOT", "/srv/jail"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let (c, _) = Config::load_with_env(Some(&path), &vars).unwrap();
    assert_eq!(
        c.tools["http_get"].timeout.unwrap().get(),
        Duration::from_secs(3)
    );
    assert_eq!(c.tools["http_get"].allow.len(), 3, "rest of the table kept");
    assert_eq!(c.tools["files"].root.as_deref(), Some("/srv/jail"));

    let vars =
        [("AGENTD_TOOLS__HTTP_GET__MAX_BYTES", "0")].map(|(k, v)| (k.to_owned(), v.to_owned()));
    let err = Config::load_with_env(Some(&path), &vars).unwrap_err();
    assert_eq!(
        err.source_name(),
        "environment variable AGENTD_TOOLS__HTTP_GET__MAX_BYTES"
    );
    assert_eq!(err.key(), Some("tools.http_get.max_bytes"));
}

#[test]
fn invalid_tool_sections_name_the_key() {
    let webhook =
        "[tools.hook]\nkind = \"webhook\"\nurl = \"https://h.example/x\"\nsecret_env = \"S\"\n";
    let stdio = "[[mcp]]\nname = \"files\"\ncommand = [\"python3\"]\n";
    for (text, key, fragment) in [
        (
            "[tools.http_gett]\ntimeout = \"1s\"\n".to_owned(),
            "tools.http_gett",
            "unknown built-in tool \"http_gett\"",
        ),
        (
            "[tools.http_get]\nroot = \"/\"\n".to_owned(),
            "tools.http_get.root",
            "`root` does not apply to tool `http_get` (valid keys: approval, allow, timeout, max_bytes)",
        ),
        (
            "[tools.echo]\ntimeout = \"1s\"\n".to_owned(),
            "tools.echo.timeout",
            "does not apply to tool `echo`",
        ),
        (
            "[tools.http_get]\ntimeout = \"0s\"\n".to_owned(),
            "tools.http_get.timeout",
            "longer than 0s",
        ),
        (
            "[tools.http_get]\nallow = [\"10.0.0.0 /8\"]\n".to_owned(),
            "tools.http_get.allow[0]",
            "host name, IP address or CIDR",
        ),
        (
            "[tools.http_get]\nallw = []\n".to_owned(),
            "tools.http_get.allw",
            "unknown key",
        ),
        (
            "[tools.files]\nmax_bytes = 10\n".to_owned(),
            "tools.files.root",
            "needs `root`",
        ),
        (
            "[tools.hook]\nkind = \"lambda\"\n".to_owned(),
            "tools.hook.kind",
            "expected one of: webhook",
        ),
        (
            "[tools.hook]\nkind = \"webhook\"\nsecret_env = \"S\"\n".to_owned(),
            "tools.hook.url",
            "needs `url`",
        ),
        (
            "[tools.hook]\nkind = \"webhook\"\nurl = \"ftp://x\"\nsecret_env = \"S\"\n".to_owned(),
            "tools.hook.url",
            "http:// or https://",
        ),
        (
            "[tools.hook]\nkind = \"webhook\"\nurl = \"https://x\"\n".to_owned(),
            "tools.hook.secret_env",
            "needs `secret_env`",
        ),
        (
            format!("{webhook}schema = {{ type = \"string\" }}\n"),
            "tools.hook.schema",
            "`type = \"object\"`",
        ),
        (
            format!("{webhook}root = \"/\"\n"),
            "tools.hook.root",
            "does not apply to webhook tool `hook`",
        ),
        (
            "[tools.echo]\nkind = \"webhook\"\nurl = \"https://x\"\nsecret_env = \"S\"\n"
                .to_owned(),
            "tools.echo.kind",
            "is a built-in tool",
        ),
        (
            "[tools.\"bad name\"]\nkind = \"webhook\"\nurl = \"https://x\"\nsecret_env = \"S\"\n"
                .to_owned(),
            "tools.\"bad name\"",
            "1 to 64 letters",
        ),
        (
            "[tools.\"mcp:ghost/x\"]\napproval = true\n".to_owned(),
            "tools.\"mcp:ghost/x\"",
            "declared MCP server (declared: none)",
        ),
        (
            format!("{stdio}[tools.\"mcp:files/x\"]\ntimeout = \"1s\"\n"),
            "tools.\"mcp:files/x\".timeout",
            "does not apply to MCP tool",
        ),
        (
            "[[mcp]]\nname = \"a b\"\ncommand = [\"x\"]\n".to_owned(),
            "mcp[0].name",
            "letters, digits",
        ),
        (
            format!("{stdio}{stdio}"),
            "mcp[1].name",
            "duplicate MCP server name \"files\"",
        ),
        (
            "[[mcp]]\nname = \"m\"\n".to_owned(),
            "mcp[0].command",
            "needs `command` (stdio) or `url`",
        ),
        (
            "[[mcp]]\nname = \"m\"\ncommand = [\"x\"]\nurl = \"http://h\"\n".to_owned(),
            "mcp[0].url",
            "not both",
        ),
        (
            "[[mcp]]\nname = \"m\"\ncommand = []\n".to_owned(),
            "mcp[0].command",
            "non-empty array",
        ),
        (
            "[[mcp]]\nname = \"m\"\nurl = \"localhost:9\"\n".to_owned(),
            "mcp[0].url",
            "http:// or https://",
        ),
        (
            "[[mcp]]\nname = \"m\"\ncommand = [\"x\"]\ntimeout = \"0s\"\n".to_owned(),
            "mcp[0].timeout",
            "longer than 0s",
        ),
        (
            "[[mcp]]\nname = \"m\"\ncommand = [\"x\"]\nenv = {}\n".to_owned(),
            "mcp[0].env",
            "unknown key",
        ),
        (
            "[[policies]]\nrole = \"\"\nallow = [\"echo\"]\n".to_owned(),
            "policies[0].role",
            "non-empty role",
        ),
        (
            "[[policies]]\nrole = \"user\"\nallow = [\"echo\", \"\"]\n".to_owned(),
            "policies[0].allow[1]",
            "tool name or glob",
        ),
        (
            "[[policies]]\nallow = [\"echo\"]\n".to_owned(),
            "policies[0].role",
            "missing required key",
        ),
    ] {
        let e = err(&text);
        assert_eq!(e.key(), Some(key), "{text}: {e}");
        assert!(e.message().contains(fragment), "{text}: {e}");
    }
    // The valid webhook is accepted; a webhook may set the HTTP keys.
    let c = Config::from_toml_str(&format!(
        "{webhook}timeout = \"2s\"\nallow = [\"10.0.0.1\"]\n"
    ))
    .unwrap();
    assert_eq!(c.tools["hook"].kind, Some(ToolKind::Webhook));
}
