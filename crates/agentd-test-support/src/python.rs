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
