//! How sinks that write text lay out an event.

use std::io::Write;

use serde::Deserialize;

use crate::event::EventView;

/// Line format of text sinks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The value as is, one per line (`null` for a tombstone).
    #[default]
    Value,
    /// `{"key":..,"value":..,"headers":{..},"timestamp_ms":..}` per line;
    /// values and keys that are JSON are embedded, others as strings.
    Envelope,
}

fn write_embedded(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => out.extend_from_slice(b"null"),
        Some(b) if crate::event::check_json(b).is_ok() => out.extend_from_slice(b),
        Some(b) => {
            let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(b));
        }
    }
}

/// Appends one event and a newline to `out`.
pub fn write_event(out: &mut Vec<u8>, event: &EventView<'_>, format: OutputFormat) {
    match format {
        OutputFormat::Value => {
            out.extend_from_slice(event.value.unwrap_or(b"null"));
        }
        OutputFormat::Envelope => {
            out.extend_from_slice(b"{\"key\":");
            write_embedded(out, event.key);
            out.extend_from_slice(b",\"value\":");
            write_embedded(out, event.value);
            out.extend_from_slice(b",\"headers\":{");
            for (i, (name, value)) in event.headers().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, name);
                out.push(b':');
                let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(value));
            }
            let _ = write!(out, "}},\"timestamp_ms\":{}}}", event.timestamp_ms);
        }
    }
    out.push(b'\n');
}
