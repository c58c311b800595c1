//! The event a plugin sees, and the emitter it writes output events to.

use crate::abi::{RawBatch, RawEvent, RawHeader, Span};
use crate::json::{JsonParser, JsonView};
use crate::EventError;

/// One input event, borrowed from the batch (no copy is made to read it).
#[derive(Clone, Copy)]
pub struct Event<'a> {
    pub(crate) batch: &'a RawBatch,
    pub(crate) raw: &'a RawEvent,
    pub(crate) index: u32,
}

impl<'a> Event<'a> {
    /// The key bytes, if the event has a key.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.raw.key.and_then(|s| s.slice(&self.batch.data))
    }

    /// The value bytes (UTF-8 JSON inside a pipeline); `None` is a tombstone.
    pub fn value(&self) -> Option<&'a [u8]> {
        self.raw.value.and_then(|s| s.slice(&self.batch.data))
    }

    /// True when the event is a tombstone (a delete).
    pub fn is_tombstone(&self) -> bool {
        self.raw.value.is_none()
    }

    /// The value parsed as JSON; a value that is not JSON is rejected with a
    /// reason naming the parse error. A tombstone parses as `Value::Null`.
    pub fn json(&self) -> Result<serde_json::Value, EventError> {
        match self.value() {
            None => Ok(serde_json::Value::Null),
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| EventError::Reject(format!("value is not valid JSON: {e}"))),
        }
    }

    /// The value as a zero-copy [`JsonView`]: checked in one pass, no tree
    /// built; `parser` keeps its field table across events. A value that is
    /// not JSON is rejected with a reason naming the problem and its byte
    /// offset. A tombstone reads as `null`.
    pub fn view<'p>(&self, parser: &'p mut JsonParser) -> Result<JsonView<'p>, EventError>
    where
        'a: 'p,
    {
        parser
            .parse_with_table(self.value().unwrap_or(b"null"), self.field_table())
            .map_err(|e| EventError::Reject(format!("value is not valid JSON: {e}")))
    }

    /// The host's field table of the value ([`crate::json::table`]), when
    /// it sent one: the bytes from its offset to the end of the batch data.
    pub(crate) fn field_table(&self) -> Option<&'a [u8]> {
        match self.raw.field_table {
            0 => None,
            at => self.batch.data.get(at as usize..),
        }
    }

    /// The event's index in its input batch (what a [`crate::Processor::prepare`]
    /// saw at that index, e.g. the row [`crate::Host::lookup_many`] answered).
    pub fn index(&self) -> usize {
        self.index as usize
    }

    /// Milliseconds since the Unix epoch.
    pub fn timestamp_ms(&self) -> i64 {
        self.raw.timestamp_ms
    }

    /// Name of the input stream the event arrived on.
    pub fn stream(&self) -> &'a str {
        self.batch
            .streams
            .get(self.raw.stream as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// All headers as (name, value) pairs.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let data: &'a [u8] = &self.batch.data;
        let start = self.raw.headers.offset as usize;
        let end = start.saturating_add(self.raw.headers.len as usize);
        self.batch
            .headers
            .get(start..end)
            .unwrap_or(&[])
            .iter()
            .filter_map(move |h| {
                let name = std::str::from_utf8(h.name.slice(data)?).ok()?;
                Some((name, h.value.slice(data)?))
            })
    }

    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// What a plugin emits: zero or more events per input event.
///
/// Emitted events are written straight into the output batch. If the plugin
/// then rejects the input event, everything emitted for it is withdrawn, so a
/// half-processed event never leaks out.
pub struct Emitter<'a> {
    pub(crate) out: &'a mut RawBatch,
    pub(crate) input: Event<'a>,
    pub(crate) parent: u32,
}

/// A fully specified output event for [`Emitter::emit`].
#[derive(Default, Debug, Clone)]
pub struct OutEvent<'b> {
    /// Key; `None` keeps no key.
    pub key: Option<&'b [u8]>,
    /// Value; `None` is a tombstone.
    pub value: Option<&'b [u8]>,
    /// Headers.
    pub headers: Vec<(&'b str, &'b [u8])>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

impl<'a> Emitter<'a> {
    /// Emits the input event unchanged.
    pub fn forward(&mut self) {
        let key = self.input.key();
        let value = self.input.value();
        self.push(key, value, None);
    }

    /// Emits an event with the input's key, headers and timestamp and a new value.
    pub fn value(&mut self, value: &[u8]) {
        let key = self.input.key();
        self.push(key, Some(value), None);
    }

    /// Emits an event with the input's key, headers and timestamp and `value`
    /// serialized as JSON (written directly into the output buffer).
    pub fn json(&mut self, value: &serde_json::Value) {
        let key = self.input.key().map(|k| self.out.push_bytes(k));
        let start = self.out.data.len();
        // Writing into a Vec cannot fail, and a Value always serializes.
        let _ = serde_json::to_writer(&mut self.out.data, value);
        let len = self.out.data.len() - start;
        let value = Span {
            offset: span(start),
            len: span(len),
        };
        self.finish(key, Some(value), None);
    }

    /// Emits an event with the input's key, headers and timestamp and a value
    /// that `write` appends straight to the output buffer (no intermediate
    /// copy), typically with a [`crate::json::ObjectWriter`].
    pub fn value_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let key = self.input.key().map(|k| self.out.push_bytes(k));
        let start = self.out.data.len();
        write(&mut self.out.data);
        let value = Span {
            offset: span(start),
            len: span(self.out.data.len() - start),
        };
        self.finish(key, Some(value), None);
    }

    /// Emits a tombstone with the input's key, headers and timestamp.
    pub fn tombstone(&mut self) {
        let key = self.input.key();
        self.push(key, None, None);
    }

    /// Emits a fully specified event.
    pub fn emit(&mut self, event: &OutEvent<'_>) {
        let key = event.key.map(|k| self.out.push_bytes(k));
        let value = event.value.map(|v| self.out.push_bytes(v));
        let first = span(self.out.headers.len());
        for (name, val) in &event.headers {
            let name = self.out.push_bytes(name.as_bytes());
            let value = self.out.push_bytes(val);
            self.out.headers.push(RawHeader { name, value });
        }
        let headers = Span {
            offset: first,
            len: span(event.headers.len()),
        };
        self.out.events.push(RawEvent {
            key,
            value,
            headers,
            timestamp_ms: event.timestamp_ms,
            stream: 0,
            parent: self.parent,
            field_table: 0,
        });
    }

    fn push(&mut self, key: Option<&[u8]>, value: Option<&[u8]>, headers: Option<Span>) {
        let key = key.map(|k| self.out.push_bytes(k));
        let value = value.map(|v| self.out.push_bytes(v));
        self.finish(key, value, headers);
    }

    fn finish(&mut self, key: Option<Span>, value: Option<Span>, headers: Option<Span>) {
        let headers = match headers {
            Some(h) => h,
            None => self.copy_input_headers(),
        };
        self.out.events.push(RawEvent {
            key,
            value,
            headers,
            timestamp_ms: self.input.timestamp_ms(),
            stream: 0,
            parent: self.parent,
            field_table: 0,
        });
    }

    fn copy_input_headers(&mut self) -> Span {
        let first = span(self.out.headers.len());
        let mut n = 0;
        for (name, val) in self.input.headers() {
            let name = self.out.push_bytes(name.as_bytes());
            let value = self.out.push_bytes(val);
            self.out.headers.push(RawHeader { name, value });
            n += 1;
        }
        Span {
            offset: first,
            len: n,
        }
    }
}

fn span(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
