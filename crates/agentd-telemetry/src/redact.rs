//! `guardrails.pii` with `logs` in scope: every log line passes through
//! the PII detectors on its way out, each value replaced by its kind
//! (`[EMAIL]`), whichever field or message carried it.

use agentd_guard::pii::PiiKind;
use std::io::Write;
use std::sync::Arc;
use tracing_subscriber::fmt::MakeWriter;

/// A [`MakeWriter`] whose writers mask personal data of `kinds`.
#[derive(Clone)]
pub struct Redacting<M> {
    inner: M,
    kinds: Arc<[PiiKind]>,
}

impl<M> Redacting<M> {
    pub fn new(inner: M, kinds: Vec<PiiKind>) -> Self {
        Self {
            inner,
            kinds: kinds.into(),
        }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.inner.make_writer(),
            kinds: self.kinds.clone(),
        }
    }
}

/// Masks each buffer it is given. Log layers write a whole line at once,
/// so a value is never split between two writes.
pub struct RedactingWriter<W> {
    inner: W,
    kinds: Arc<[PiiKind]>,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.kinds.is_empty() {
            return self.inner.write(buf);
        }
        let text = String::from_utf8_lossy(buf);
        let masked = agentd_guard::pii::mask(&text, &self.kinds);
        self.inner.write_all(masked.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_leaves_without_the_values() {
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let make = Redacting::new(
            move || SharedBuf(sink.clone()),
            vec![PiiKind::Email, PiiKind::Card],
        );
        let mut w = make.make_writer();
        w.write_all(b"{\"message\":\"mail ada@example.com card 4111 1111 1111 1111\"}\n")
            .unwrap_or_default();
        let line = String::from_utf8(out.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(line, "{\"message\":\"mail [EMAIL] card [CARD]\"}\n");
    }

    struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for SharedBuf {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
