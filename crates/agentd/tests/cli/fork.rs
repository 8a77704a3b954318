//! `agentd runs fork`: a new run from the first steps of another, driven
//! in the foreground.

use crate::support::{Workspace, text};

#[test]
fn runs_fork_replays_from_a_step_and_checks_from_step() {
    let ws = Workspace::new();
    let agentd = |args: &[&str]| {
        ws.cmd()
            .env("AGENTD_STORE__URL", ws.db_url())
            .args(args)
            .output()
            .unwrap()
    };
    let out = agentd(&["run", "demo", "hi", "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = run["id"].as_str().unwrap();

    // From step 0 with another input: everything runs again on it.
    let out = agentd(&["runs", "fork", id, "--from-step", "0", "--input", "bye"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(text(&out.stdout), "done: bye\n");
    assert!(
        stderr.contains(&format!("forked from run {id} at step 0")),
        "{stderr}"
    );

    // From step 1, keeping the input: step 0 is replayed, the rest runs.
    let out = agentd(&["runs", "fork", id, "--from-step", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let fork: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fork["status"], "succeeded");
    assert_eq!(fork["output"], "done: hi");
    assert_eq!(
        fork["forked_from"],
        serde_json::json!({ "run_id": id, "step": 1 })
    );

    // Past the journal is a usage error naming from_step.
    let out = agentd(&["runs", "fork", id, "--from-step", "9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("from_step"),
        "{}",
        text(&out.stderr)
    );

    // Another tenant's run is not found.
    let out = agentd(&["runs", "fork", id, "--from-step", "1", "--tenant", "other"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not found"),
        "{}",
        text(&out.stderr)
    );
}
