//! A scripted provider for the resilience tests: each call takes the next
//! step (repeating the last), and call times are recorded.

use agentd_core::{Message, Role, Usage};
use agentd_llm::{Completion, CompletionRequest, OnToken, Provider, ProviderError};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub enum Step {
    Reply(&'static str),
    Fail(ProviderError),
    /// Streams the text, then fails.
    StreamThenFail(&'static str, ProviderError),
    /// Answers after this long.
    Slow(Duration, &'static str),
}

pub struct Fake {
    name: String,
    steps: Vec<Step>,
    calls: Mutex<Vec<Instant>>,
}

impl Fake {
    pub fn new(name: &str, steps: Vec<Step>) -> Self {
        Self {
            name: name.to_owned(),
            steps,
            calls: Mutex::default(),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// Time between consecutive calls.
    pub fn gaps(&self) -> Vec<Duration> {
        let c = self.calls.lock().unwrap();
        c.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn next(&self) -> Step {
        let mut c = self.calls.lock().unwrap();
        c.push(Instant::now());
        let n = c.len() - 1;
        self.steps[n.min(self.steps.len() - 1)].clone()
    }

    fn reply(&self, text: &str) -> Completion {
        Completion {
            message: Message::text(Role::Assistant, text),
            usage: Usage {
                input_tokens: 1,
                output_tokens: 1,
            },
            model: self.name.clone(),
        }
    }
}

pub fn server_error(provider: &str) -> ProviderError {
    ProviderError::Server {
        provider: provider.into(),
        message: "HTTP 503".into(),
        retry_after: None,
    }
}

#[async_trait::async_trait]
impl Provider for Fake {
    fn name(&self) -> &str {
        &self.name
    }

    async fn complete(&self, _req: &CompletionRequest) -> Result<Completion, ProviderError> {
        match self.next() {
            Step::Reply(t) => Ok(self.reply(t)),
            Step::Fail(e) | Step::StreamThenFail(_, e) => Err(e),
            Step::Slow(d, t) => {
                tokio::time::sleep(d).await;
                Ok(self.reply(t))
            }
        }
    }

    async fn complete_streaming(
        &self,
        _req: &CompletionRequest,
        on_token: OnToken<'_>,
    ) -> Result<Completion, ProviderError> {
        match self.next() {
            Step::Reply(t) => {
                on_token(t);
                Ok(self.reply(t))
            }
            Step::Fail(e) => Err(e),
            Step::StreamThenFail(t, e) => {
                on_token(t);
                Err(e)
            }
            Step::Slow(d, t) => {
                tokio::time::sleep(d).await;
                on_token(t);
                Ok(self.reply(t))
            }
        }
    }
}
