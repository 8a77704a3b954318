#![allow(clippy::unwrap_used)]
use super::*;
use std::sync::{Arc, Mutex};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Sink;
    fn make_writer(&'a self) -> Sink {
        self.clone()
    }
}

impl Sink {
    fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

fn logged(filter: &str, body: impl FnOnce()) -> Vec<serde_json::Value> {
    let sink = Sink::default();
    let layer = JsonLines::new(sink.clone(), false)
        .with_filter(JsonLines::<Sink>::filter(EnvFilter::new(filter)));
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, body);
    sink.lines()
}

#[test]
fn run_fields_are_top_level_and_the_innermost_wins() {
    let lines = logged("info", || {
        let request = tracing::info_span!("request", request_id = "req-1", tenant = "outer");
        let _r = request.enter();
        let run = tracing::info_span!(
            "attempt",
            agentd.run_id = %"0190-run",
            agentd.tenant = "acme",
            agentd.agent = tracing::field::Empty,
        );
        run.record("agentd.agent", "support");
        let _a = run.enter();
        tracing::info!(step = 2, ok = true, ratio = 0.5, "step \"done\"\n");
    });
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["message"], "step \"done\"\n");
    assert_eq!(line["step"], 2);
    assert_eq!(line["ok"], true);
    assert_eq!(line["ratio"], 0.5);
    assert_eq!(line["run_id"], "0190-run");
    assert_eq!(line["tenant"], "acme");
    assert_eq!(line["agent"], "support");
    assert_eq!(line["request_id"], "req-1");
    assert!(
        line["target"]
            .as_str()
            .unwrap()
            .starts_with("agentd_telemetry")
    );
    assert!(line["timestamp"].as_str().unwrap().contains('T'));
    assert!(line.get("span").is_none() && line.get("spans").is_none());
}

#[test]
fn a_warn_filter_still_sees_the_run_of_an_info_span() {
    let lines = logged("warn", || {
        let run = tracing::info_span!("attempt", agentd.run_id = "r1");
        let _a = run.enter();
        tracing::info!("dropped");
        tracing::warn!(run_id = "own", "kept");
    });
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["message"], "kept");
    // The event's own field, once: no duplicate key from the span.
    assert_eq!(lines[0]["run_id"], "own");
}

#[test]
fn events_outside_runs_have_no_context() {
    let lines = logged("info", || tracing::info!(path = "/x", "plain"));
    assert_eq!(lines[0]["path"], "/x");
    assert!(lines[0].get("run_id").is_none());
}
