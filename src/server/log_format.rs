//! The log's line format: tracing-subscriber's flattened JSON (`.json().flatten_event(true)`,
//! no span fields), byte for byte, but serialized into one buffer and handed to the writer
//! once.
//!
//! tracing-subscriber's JSON formatter streams serde_json's output through an adaptor that
//! checks each small write (every key, quote and comma) as UTF-8 and copies it on; for the
//! review line of about twenty fields that checking and copying was most of the line's cost.
//! Here the line is built by the same serde_json serializer and the same field visitor
//! (tracing-serde's `SerdeMapVisitor`), so every value is written as before; only the writes
//! between them are gone. `serve` and the bench both install it through [`init`]; a unit
//! test holds its output to tracing-subscriber's for the same events.

use serde::ser::{SerializeMap, Serializer as _};
use std::cell::RefCell;
use std::fmt;
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_serde::AsSerde;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter: one JSON object per line, `timestamp`, `level`, the event's fields in
/// their order (`message` among them), then `target`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

thread_local! {
    /// The line being built, kept per thread so that a line costs no allocation once the
    /// buffer has grown to the longest line (up to [`KEPT_BYTES`]).
    static LINE: RefCell<(Vec<u8>, String)> = const { RefCell::new((Vec::new(), String::new())) };
}

/// A buffer that grew past this for one long line (an error message quoting a large field
/// name, say) is let go after it, so that each worker thread does not keep it for good.
const KEPT_BYTES: usize = 16 * 1024;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buffers) => {
                let (line, timestamp) = &mut *buffers;
                line.clear();
                timestamp.clear();
                write_line(line, timestamp, event)?;
                let written = writer.write_str(std::str::from_utf8(line).map_err(|_| fmt::Error)?);
                if line.capacity() > KEPT_BYTES {
                    *line = Vec::new();
                }
                written
            }
            // Only if this thread were to format a second line while building one (tracing
            // drops events logged from inside a field's `Debug`, so it does not today):
            // buffers of its own rather than a panic.
            Err(_) => {
                let (mut line, mut timestamp) = (Vec::new(), String::new());
                write_line(&mut line, &mut timestamp, event)?;
                writer.write_str(std::str::from_utf8(&line).map_err(|_| fmt::Error)?)
            }
        })
    }
}

/// The line of `event` into `line`, with its newline; `timestamp` is scratch.
fn write_line(line: &mut Vec<u8>, timestamp: &mut String, event: &Event<'_>) -> fmt::Result {
    SystemTime.format_time(&mut Writer::new(timestamp))?;
    // Events from the `log` crate carry their real target and level in fields.
    let normalized = event.normalized_metadata();
    let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
    let mut json = || -> Result<(), serde_json::Error> {
        let mut ser = serde_json::Serializer::new(&mut *line);
        let mut map = ser.serialize_map(None)?;
        map.serialize_entry("timestamp", timestamp.as_str())?;
        map.serialize_entry("level", &meta.level().as_serde())?;
        let mut fields = tracing_serde::SerdeMapVisitor::new(map);
        event.record(&mut fields);
        let mut map = fields.take_serializer()?;
        map.serialize_entry("target", meta.target())?;
        map.end()
    };
    json().map_err(|_| fmt::Error)?;
    line.push(b'\n');
    Ok(())
}

/// Installs the process's subscriber: [`JsonLines`] to `writer`, events at `filter` and above.
/// A second call does nothing (the first subscriber stays).
pub fn init<W>(filter: tracing_subscriber::EnvFilter, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let _ = tracing_subscriber::fmt()
        .event_format(JsonLines)
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init();
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    /// Events of every value kind, with characters JSON must escape, and one whose field's
    /// `Debug` logs (tracing drops that inner event; the outer line must still be whole).
    fn log_some() {
        struct Nested;
        impl fmt::Debug for Nested {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                tracing::warn!(inner = true, "nested");
                f.write_str("outer \"value\"")
            }
        }
        let list = ["a", "b"];
        tracing::info!(
            endpoint = "validate",
            uid = "7f0e\"quoted\"\\",
            dry_run = false,
            count = 3u64,
            delta = -2i64,
            duration_ms = 0.25,
            violations = %list.join(","),
            control = "tab\tnewline\n\u{1}é",
            "review"
        );
        tracing::warn!(error = %"bad \"input\"", status = 400, "request body refused");
        tracing::error!("only a message");
        tracing::info!(outer = ?Nested, "outer");
    }

    /// Each line as JSON, its timestamp checked for shape and then dropped.
    fn lines(raw: &[u8]) -> Vec<serde_json::Value> {
        std::str::from_utf8(raw)
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                let ts = v.as_object_mut().unwrap().remove("timestamp").unwrap();
                let ts = ts.as_str().unwrap();
                assert!(
                    ts.len() >= 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
                    "{ts}"
                );
                v
            })
            .collect()
    }

    /// The raw text of each line from `"level"` on (the timestamps differ).
    fn after_timestamps(raw: &[u8]) -> Vec<String> {
        std::str::from_utf8(raw)
            .unwrap()
            .lines()
            .map(|l| l[l.find(",\"level\"").unwrap()..].to_string())
            .collect()
    }

    /// What `log` writes through [`JsonLines`].
    fn ours(log: impl FnOnce()) -> Vec<u8> {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        out.0.lock().unwrap().clone()
    }

    #[test]
    fn a_long_line_is_written_whole_and_its_buffer_not_kept() {
        let long = "x".repeat(4 * KEPT_BYTES);
        let out = ours(|| {
            tracing::info!(field = long.as_str(), "long");
            tracing::info!("short");
        });
        let parsed = lines(&out);
        assert_eq!(parsed[0]["field"].as_str().unwrap().len(), 4 * KEPT_BYTES);
        assert_eq!(parsed[1]["message"], "short");
        let kept = LINE.with(|cell| cell.borrow().0.capacity());
        assert!(kept <= KEPT_BYTES, "{kept}");
    }

    #[test]
    fn lines_are_tracing_subscribers_json_lines_byte_for_byte() {
        let ours = ours(log_some);
        let theirs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(theirs.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log_some);

        let theirs = theirs.0.lock().unwrap();
        assert_eq!(after_timestamps(&ours), after_timestamps(&theirs));
        let parsed = lines(&ours);
        assert_eq!(parsed.len(), 4, "{parsed:?}");
        assert_eq!(parsed[3]["outer"], "outer \"value\"");
        assert_eq!(parsed[0]["uid"], "7f0e\"quoted\"\\");
        assert_eq!(parsed[0]["control"], "tab\tnewline\n\u{1}é");
        assert_eq!(parsed[0]["duration_ms"], 0.25);
        assert_eq!(parsed[0]["count"], 3);
        assert_eq!(parsed[0]["delta"], -2);
        assert_eq!(parsed[0]["dry_run"], false);
        assert_eq!(parsed[0]["level"], "INFO");
        assert_eq!(parsed[0]["target"], module_path!());
    }
}
