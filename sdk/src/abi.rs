//! The framed batch layout of the `sluice:plugin` contract, as plain Rust types.
//!
//! These mirror the WIT records one to one. On `wasm32` the export glue moves
//! the generated records into these; natively the [`crate::testing`] stub host
//! builds them directly, so a plugin runs the same batch loop in both places.

/// A byte range in [`RawBatch::data`] (or an index range in [`RawBatch::headers`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte (or index).
    pub offset: u32,
    /// Number of bytes (or entries).
    pub len: u32,
}

impl Span {
    /// The bytes this span covers, or `None` if it lies outside `data`.
    pub fn slice<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        let start = self.offset as usize;
        data.get(start..start.checked_add(self.len as usize)?)
    }
}

/// One header; both parts are spans into [`RawBatch::data`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawHeader {
    /// Header name (UTF-8).
    pub name: Span,
    /// Header value.
    pub value: Span,
}

/// One event of a framed batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawEvent {
    /// Key bytes, if any.
    pub key: Option<Span>,
    /// Value bytes; `None` is a tombstone.
    pub value: Option<Span>,
    /// Range of [`RawBatch::headers`].
    pub headers: Span,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Input: index into [`RawBatch::streams`].
    pub stream: u32,
    /// Output: index of the input event this one derives from.
    pub parent: u32,
}

/// A batch of events in the framed layout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawBatch {
    /// All key, value and header bytes.
    pub data: Vec<u8>,
    /// The events, referring into `data` and `headers`.
    pub events: Vec<RawEvent>,
    /// All headers of all events.
    pub headers: Vec<RawHeader>,
    /// Names of the input streams (empty in outputs).
    pub streams: Vec<String>,
}

/// One refused input event and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Index of the event in the input batch.
    pub index: u32,
    /// Human-readable reason; it becomes a dead-letter header.
    pub reason: String,
}

/// Output of one batch: events out, and input events refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawOutput {
    /// Output events (each with `parent` set).
    pub events: RawBatch,
    /// Refused input events.
    pub rejected: Vec<Rejection>,
}

/// Failure of a whole call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// Transient: the host retries the batch later.
    Retry(String),
    /// Permanent: the stage stops.
    Fatal(String),
}

fn span_u32(n: usize) -> u32 {
    // A batch over 4 GiB cannot cross the boundary anyway (wasm32 memory).
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl RawBatch {
    /// Appends `bytes` to `data` and returns their span.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Span {
        let offset = span_u32(self.data.len());
        self.data.extend_from_slice(bytes);
        Span {
            offset,
            len: span_u32(bytes.len()),
        }
    }

    /// Appends one event built from owned parts.
    pub fn push_event(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
        timestamp_ms: i64,
        stream: u32,
    ) {
        let key = key.map(|k| self.push_bytes(k));
        let value = value.map(|v| self.push_bytes(v));
        let first = span_u32(self.headers.len());
        for (name, val) in headers {
            let name = self.push_bytes(name.as_bytes());
            let value = self.push_bytes(val);
            self.headers.push(RawHeader { name, value });
        }
        let parent = span_u32(self.events.len());
        self.events.push(RawEvent {
            key,
            value,
            headers: Span {
                offset: first,
                len: span_u32(headers.len()),
            },
            timestamp_ms,
            stream,
            parent,
        });
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when the batch holds no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}
