//! `spawn_app()` over this suite's config; the client helpers the tests
//! read through come from `agentd-test-support`.

pub use agentd_test_support::app::{TestApp, VERSION, assert_error, json};

/// Agents `demo` (echo then reply), `asker` (asks a human), `slow` (the
/// demo script at 300 ms per model call) and `broken` (its model always
/// fails; dead after two quick attempts), and a 1 KiB body limit.
pub const CONFIG: &str = r#"
[server]
max_body_bytes = 1024
wait_timeout = "10s"

[queue]
workers = 2
poll_interval = "20ms"
node_id = "test-node"
max_attempts = 2
backoff = { initial = "10ms", max = "10ms" }

[providers.mock]
kind = "mock"
script = [{ tool = "echo", args = { text = "{{input}}" } }, { reply = "done: {{tool_result}}" }]

[providers.asker]
kind = "mock"
script = [{ tool = "ask_human", args = { question = "ok?" } }, { reply = "answer: {{tool_result}}" }]

[providers.slow]
kind = "mock"
latency_ms = 300
script = [{ tool = "echo", args = { text = "{{input}}" } }, { reply = "done: {{tool_result}}" }]

[providers.down]
kind = "mock"
script = [{ error = "server" }]

[[agents]]
name = "broken"
providers = ["down"]

[[agents]]
name = "demo"
providers = ["mock"]
tools = ["echo"]

[[agents]]
name = "asker"
providers = ["asker"]
tools = ["ask_human"]

[[agents]]
name = "slow"
providers = ["slow"]
tools = ["echo"]
"#;

/// Starts agentd (API, workers, recovery) through `Application` on a
/// fresh database, with [`CONFIG`].
pub async fn spawn_app() -> TestApp {
    agentd_test_support::app::spawn_app(CONFIG).await
}

/// Mints a key as the local CLI does (full rights); returns the key text.
pub async fn mint(app: &TestApp, tenant: &str, principal: &str, roles: &[&str]) -> String {
    use agentd_core::{PrincipalId, TenantId};
    use agentd_engine::keys::{Manager, MintRequest};
    app.engine
        .keys()
        .mint(
            Manager::Local,
            MintRequest {
                tenant: Some(TenantId::parse(tenant).unwrap()),
                principal: PrincipalId::parse(principal).unwrap(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                name: None,
                expires_in: None,
            },
        )
        .await
        .unwrap()
        .token
        .reveal()
}

/// The `Cookie` header value that the `Set-Cookie` headers of a response
/// ask for, and the console's CSRF token among them.
pub fn session_cookies(headers: &reqwest::header::HeaderMap) -> (String, String) {
    let pairs: Vec<String> = headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect();
    let csrf = pairs
        .iter()
        .find_map(|p| p.strip_prefix("agentd_csrf="))
        .unwrap_or_default()
        .to_string();
    (pairs.join("; "), csrf)
}

/// Runs `tests/api/<script>` with `args` off the async runtime; its last
/// stdout line as JSON (see [`agentd_test_support::python::run_script`]).
pub async fn run_py(script: &str, args: Vec<String>) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api")
        .join(script);
    tokio::task::spawn_blocking(move || agentd_test_support::python::run_script(&path, &args))
        .await
        .unwrap()
}
