//! The official Python clients and validators the protocol tests drive
//! (`openai`, `mcp`, `standardwebhooks`, ...), which `.ci/run` installs.

use std::process::{Command, Stdio};

/// True if `python3 -c "import MODULE"` succeeds. When it does not, the
/// test fails under `CI` (where `.ci/run` installs `pip`) and is printed as
/// skipped otherwise.
pub fn module_available(module: &str, pip: &str) -> bool {
    let available = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but python3 cannot import {module} (pip install \"{pip}\")"
        );
        eprintln!("SKIPPED: python3 cannot import {module} (pip install \"{pip}\")");
    }
    available
}

/// Runs the Python script `path` with `args`; fails the test unless it
/// exits 0 (its checks passed), and answers the JSON object it printed
/// last (the ids of what it created). Blocking: call it from
/// `spawn_blocking` in async tests.
pub fn run_script(path: &std::path::Path, args: &[String]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed:\n{stdout}{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}
