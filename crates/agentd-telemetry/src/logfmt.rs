//! JSON log lines with the run context at the top level: every line logged
//! while working on a run carries `run_id`, `tenant`, `agent` and the
//! creating request's `request_id` (and `trace_id` when tracing is on) as
//! plain fields, which log stores index, rather than nested under spans.
//!
//! A layer of its own rather than `fmt::Layer` with a custom event format:
//! spans only keep the four context fields (no per-span formatting of every
//! field), and an event is written through one reused per-thread buffer.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The context fields a span can hold, by the names spans give them
/// (`agentd.*` is the OpenTelemetry attribute spelling) and the top-level
/// name in the log line.
const CONTEXT: [(&[&str], &str); 4] = [
    (&["run_id", "agentd.run_id"], "run_id"),
    (&["tenant", "agentd.tenant"], "tenant"),
    (&["agent", "agentd.agent"], "agent"),
    (&["request_id"], "request_id"),
];

/// The run context of a span (or of an event's span scope, innermost wins).
#[derive(Debug, Clone, Default)]
pub struct ContextFields {
    values: [Option<String>; 4],
}

impl ContextFields {
    fn slot(name: &str) -> Option<usize> {
        CONTEXT.iter().position(|(names, _)| names.contains(&name))
    }

    fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }
}

impl Visit for ContextFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(i) = Self::slot(field.name()) {
            self.values[i] = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if let Some(i) = Self::slot(field.name()) {
            self.values[i] = Some(format!("{value:?}"));
        }
    }
}

/// The layer writing one JSON object per event to `W`.
pub struct JsonLines<W> {
    make_writer: W,
    trace_ids: bool,
}

impl<W> JsonLines<W> {
    /// Lines to `make_writer`; `trace_ids` adds the current `trace_id` (only
    /// meaningful with the OpenTelemetry layer installed).
    pub fn new(make_writer: W, trace_ids: bool) -> Self {
        Self {
            make_writer,
            trace_ids,
        }
    }

    /// The filter to put on this layer: `events` (the log level filter)
    /// for events, and agentd's own `info` spans always, so a line's run
    /// context does not depend on the level the span was declared at.
    pub fn filter<S>(events: impl Filter<S> + 'static) -> impl Filter<S> + 'static
    where
        S: Subscriber,
    {
        events.or(filter_fn(|m: &Metadata<'_>| {
            m.is_span() && m.target().starts_with("agentd") && *m.level() <= Level::INFO
        }))
    }
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = ContextFields::default();
        attrs.record(&mut fields);
        if !fields.is_empty()
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        match ext.get_mut::<ContextFields>() {
            Some(fields) => values.record(fields),
            None => {
                let mut fields = ContextFields::default();
                values.record(&mut fields);
                if !fields.is_empty() {
                    ext.insert(fields);
                }
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        thread_local! {
            static BUF: RefCell<String> = const { RefCell::new(String::new()) };
        }
        BUF.with(|buf| {
            // A re-entrant event (logged while writing one) gets its own.
            let mut fresh = String::new();
            let mut borrowed = buf.try_borrow_mut();
            let line = match borrowed.as_deref_mut() {
                Ok(line) => line,
                Err(_) => &mut fresh,
            };
            line.clear();
            if self.format(event, &ctx, line).is_ok() {
                line.push('\n');
                let _ = self.make_writer.make_writer().write_all(line.as_bytes());
            }
            // Keep a typical line's capacity, not a huge one's.
            if line.capacity() > 16 * 1024 {
                *line = String::new();
            }
        });
    }
}

impl<W> JsonLines<W> {
    fn format<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, out: &mut String) -> fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let meta = event.metadata();
        out.push_str("{\"timestamp\":\"");
        SystemTime.format_time(&mut Writer::new(out))?;
        write!(out, "\",\"level\":\"{}\"", meta.level())?;
        let mut fields = EventFields {
            out,
            seen: [false; 5],
            result: Ok(()),
        };
        event.record(&mut fields);
        let EventFields { out, seen, result } = fields;
        result?;
        out.push_str(",\"target\":");
        json_str(out, meta.target())?;
        // The innermost span holding a field wins.
        let mut context: [Option<String>; 4] = Default::default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(fields) = span.extensions().get::<ContextFields>() {
                    for (slot, value) in context.iter_mut().zip(&fields.values) {
                        if slot.is_none() {
                            slot.clone_from(value);
                        }
                    }
                }
            }
        }
        for (i, value) in context.iter().enumerate() {
            if let Some(value) = value
                && !seen[i]
            {
                write!(out, ",\"{}\":", CONTEXT[i].1)?;
                json_str(out, value)?;
            }
        }
        if self.trace_ids
            && !seen[4]
            && let Some(trace_id) = crate::current_trace_id()
        {
            write!(out, ",\"trace_id\":\"{trace_id}\"")?;
        }
        out.push('}');
        Ok(())
    }
}

/// Writes an event's fields as `,"name":value` pairs, noting which of the
/// context names (and `trace_id`) the event set itself.
struct EventFields<'a> {
    out: &'a mut String,
    seen: [bool; 5],
    result: fmt::Result,
}

impl EventFields<'_> {
    fn key(&mut self, field: &Field) {
        let name = field.name();
        if let Some(i) = CONTEXT.iter().position(|(_, top)| *top == name) {
            self.seen[i] = true;
        } else if name == "trace_id" {
            self.seen[4] = true;
        }
        self.out.push(',');
        if self.result.is_ok() {
            self.result = json_str(self.out, name);
        }
        self.out.push(':');
    }

    fn raw(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        self.key(field);
        if self.result.is_ok() {
            self.result = self.out.write_fmt(value);
        }
    }
}

impl Visit for EventFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.raw(field, format_args!("{value}"));
        } else {
            self.raw(field, format_args!("null"));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        if self.result.is_ok() {
            self.result = json_str(self.out, value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.key(field);
        if self.result.is_ok() {
            self.result = json_display(self.out, format_args!("{value}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        if self.result.is_ok() {
            self.result = json_display(self.out, format_args!("{value:?}"));
        }
    }
}

/// Writes `s` as a JSON string.
fn json_str(out: &mut String, s: &str) -> fmt::Result {
    json_display(out, format_args!("{s}"))
}

/// Writes formatted text as a JSON string, escaping as it goes (no
/// intermediate `String`).
fn json_display(out: &mut String, value: fmt::Arguments<'_>) -> fmt::Result {
    out.push('"');
    Escape(out).write_fmt(value)?;
    out.push('"');
    Ok(())
}

struct Escape<'a>(&'a mut String);

impl fmt::Write for Escape<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                '\n' => self.0.push_str("\\n"),
                '\r' => self.0.push_str("\\r"),
                '\t' => self.0.push_str("\\t"),
                c if (c as u32) < 0x20 => write!(self.0, "\\u{:04x}", c as u32)?,
                c => self.0.push(c),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
