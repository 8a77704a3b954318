//! `auth.mode = "jwt"` from the command line: a `jwks_file` agentd cannot
//! use stops `serve` with a config error (exit 2) naming the file and key.

use crate::support::{Workspace, free_port, text};

#[test]
fn serve_refuses_an_unusable_jwks_file_with_exit_2() {
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("secret.json"),
        r#"{"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}"#,
    )
    .unwrap();
    for (file, why) in [
        ("missing.json", "cannot read"),
        ("secret.json", "no usable signing key"),
    ] {
        let config = ws.write_config(&format!(
            "[server]\nlisten = \"127.0.0.1:{}\"\n\n[auth]\nmode = \"jwt\"\n\n[auth.jwt]\n\
             issuer = \"https://idp.example/\"\naudience = \"agentd\"\njwks_file = \"{file}\"\n",
            free_port()
        ));

        let out = ws
            .cmd()
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();

        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(
            stderr.contains("agentd.toml: key `auth.jwt.jwks_file`"),
            "{stderr}"
        );
        assert!(stderr.contains(why), "{stderr}");
    }
}
