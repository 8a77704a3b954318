//! A webhook receiver on loopback: answers each request with what its
//! responder says and records the request's `Idempotency-Key`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A running receiver (a thread that lives as long as the test process).
pub struct WebhookReceiver {
    /// The loopback port it listens on.
    pub port: u16,
    /// The `Idempotency-Key` of every request, in arrival order (empty when
    /// a request carried none).
    pub keys: Arc<Mutex<Vec<String>>>,
}

impl WebhookReceiver {
    /// Starts a receiver; `respond` gives each answer's status line (e.g.
    /// `"200 OK"`) and JSON body.
    pub fn start(respond: impl Fn() -> (&'static str, &'static str) + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let keys = Arc::new(Mutex::new(Vec::new()));
        let seen = keys.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let key = read_request(&mut stream);
                seen.lock().unwrap().push(key);
                let (status, reply) = respond();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        Self { port, keys }
    }

    /// The keys recorded so far.
    pub fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}

/// Reads one request (headers and body); returns its `Idempotency-Key`.
fn read_request(stream: &mut std::net::TcpStream) -> String {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let (mut key, mut length) = (String::new(), 0usize);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("idempotency-key:") {
            key = v.trim().to_string();
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    key
}

/// Verifies a received webhook with the official `standardwebhooks` Python
/// package: `Some(true)` verified, `Some(false)` refused; `None` when
/// python3 or the package is missing, which fails the test when `CI` is set
/// (and is printed as a skip otherwise).
pub fn standardwebhooks_verifies<'a>(
    secret: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &[u8],
) -> Option<bool> {
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .into_iter()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::from(v)))
        .collect();
    let input = serde_json::json!({
        "secret": secret,
        "headers": headers,
        "body": String::from_utf8(body.to_vec()).unwrap(),
    });
    let script = "import json, sys\n\
        from standardwebhooks import Webhook, WebhookVerificationError\n\
        d = json.load(sys.stdin)\n\
        try:\n    Webhook(d['secret']).verify(d['body'], d['headers'])\n\
        except WebhookVerificationError as e:\n    print(e); sys.exit(3)\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    match child.wait().unwrap().code() {
        Some(0) => Some(true),
        Some(3) => Some(false),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but python3 cannot run `standardwebhooks` (pip install standardwebhooks)"
            );
            eprintln!("SKIPPED: python3 with `standardwebhooks` is not available");
            None
        }
    }
}
