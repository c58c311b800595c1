//! The event a plugin sees, and the emitter it writes output events to.

use crate::abi::{
    RawBatch, RawEvent, RawHeader, Span, HEADERS_FROM_PARENT, KEY_FROM_PARENT, VALUE_FROM_PARENT,
};
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

    /// The host's field table of the value, read in place
    /// ([`crate::json::table::Lookup`]): `None` when the host sent none (the
    /// value is not an object, or the plugin does not read tables) or it
    /// does not fit. For a plugin that looks up a few names per event;
    /// [`Event::view`] reads all fields.
    pub fn table_lookup(&self) -> Option<crate::json::table::Lookup<'a>> {
        crate::json::table::Lookup::new(self.value()?, self.field_table()?)
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
    /// Emits the input event unchanged. Where the host allows it, nothing
    /// is copied: the output names its parent's key, value and headers.
    pub fn forward(&mut self) {
        if self.refs_ok() {
            self.refer(
                None,
                KEY_FROM_PARENT | VALUE_FROM_PARENT | HEADERS_FROM_PARENT,
            );
            return;
        }
        let key = self.input.key();
        let value = self.input.value();
        self.push(key, value, None);
    }

    /// Emits an event with the input's key, headers and timestamp and a new value.
    pub fn value(&mut self, value: &[u8]) {
        self.value_with(|out| out.extend_from_slice(value));
    }

    /// Whether the host resolves parent references for this input event.
    fn refs_ok(&self) -> bool {
        self.input.raw.refs_ok
    }

    /// Emits an event with the input's timestamp that takes the parts
    /// `refs` names from its parent, and `value` unless it takes that too.
    fn refer(&mut self, value: Option<Span>, refs: u32) {
        self.out.events.push(RawEvent {
            key: None,
            value,
            headers: Span::default(),
            timestamp_ms: self.input.timestamp_ms(),
            stream: 0,
            parent: self.parent,
            field_table: 0,
            refs,
            refs_ok: false,
        });
    }

    /// Emits an event with the input's key, headers and timestamp and `value`
    /// serialized as JSON (written directly into the output buffer).
    pub fn json(&mut self, value: &serde_json::Value) {
        // Writing into a Vec cannot fail, and a Value always serializes.
        self.value_with(|out| {
            let _ = serde_json::to_writer(out, value);
        });
    }

    /// Emits an event with the input's key, headers and timestamp and a value
    /// that `write` appends straight to the output buffer (no intermediate
    /// copy), typically with a [`crate::json::ObjectWriter`].
    pub fn value_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let refs = self.refs_ok();
        let key = match refs {
            true => None,
            false => self.input.key().map(|k| self.out.push_bytes(k)),
        };
        let start = self.out.data.len();
        write(&mut self.out.data);
        let value = Span {
            offset: span(start),
            len: span(self.out.data.len() - start),
        };
        if refs {
            self.refer(Some(value), KEY_FROM_PARENT | HEADERS_FROM_PARENT);
        } else {
            self.finish(key, Some(value), None);
        }
    }

    /// Emits a tombstone with the input's key, headers and timestamp.
    pub fn tombstone(&mut self) {
        if self.refs_ok() {
            self.refer(None, KEY_FROM_PARENT | HEADERS_FROM_PARENT);
            return;
        }
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
            refs: 0,
            refs_ok: false,
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
            refs: 0,
            refs_ok: false,
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

#[cfg(test)]
mod tests {
    use crate::abi::{RawBatch, RawEvent, Span, EVENT_RECORD, REFS_OK};
    use crate::{run_events, EventError};

    /// Two events with a key and a header: the first open to parent
    /// references (as the host marks them for a plugin that declares them),
    /// the second not.
    fn input() -> RawBatch {
        let mut b = RawBatch::default();
        b.push_event(Some(b"k0"), Some(b"{\"a\":0}"), &[("h", b"v")], 10, 0);
        b.push_event(Some(b"k1"), Some(b"{\"a\":1}"), &[("h", b"w")], 11, 0);
        // Through the wire layout, as the glue receives it: the host marks
        // event 0 with input flag 2.
        let mut events = b.event_table();
        events[40] |= REFS_OK as u8;
        RawBatch::from_tables(b.data.clone(), &events, &b.header_table(), vec![])
    }

    #[test]
    fn where_the_host_allows_it_outputs_name_their_parents_parts_instead_of_copying() {
        let batch = input();
        assert!(batch.events[0].refs_ok, "the flag survives the tables");
        assert!(!batch.events[1].refs_ok);
        assert_eq!(batch.events[0].refs, 0, "an input names nothing");
        let out = run_events(&batch, |_, out| {
            out.forward();
            out.value(b"{}");
            out.tombstone();
            out.value_with(|w| w.extend_from_slice(b"[]"));
            Ok(())
        })
        .expect("run");
        let e = &out.events.events;
        assert_eq!(e.len(), 8);
        // Event 0: nothing of the parent's is copied; its own values are.
        let all = super::KEY_FROM_PARENT | super::VALUE_FROM_PARENT | super::HEADERS_FROM_PARENT;
        let key_headers = super::KEY_FROM_PARENT | super::HEADERS_FROM_PARENT;
        assert_eq!(
            e[0],
            RawEvent {
                timestamp_ms: 10,
                refs: all,
                ..RawEvent::default()
            }
        );
        for (i, refs) in [(1, key_headers), (2, key_headers), (3, key_headers)] {
            assert_eq!(e[i].refs, refs, "event {i}");
            assert_eq!(e[i].key, None);
            assert_eq!(e[i].headers, Span::default());
            assert_eq!(e[i].parent, 0);
        }
        assert_eq!(e[2].value, None, "a tombstone");
        let own = |s: Option<Span>| s.and_then(|s| s.slice(&out.events.data));
        assert_eq!(own(e[1].value), Some(&b"{}"[..]));
        assert_eq!(own(e[3].value), Some(&b"[]"[..]));
        // Event 1 (no flag): copies, as before.
        for r in &e[4..] {
            assert_eq!(r.refs, 0);
            assert_eq!(own(r.key), Some(&b"k1"[..]));
            assert_eq!(r.headers.len, 1);
            assert_eq!(r.parent, 1);
        }
        assert_eq!(own(e[4].value), Some(&b"{\"a\":1}"[..]));
        // The record carries the bits, and no span for what it names.
        let table = out.events.event_table();
        let flags = |i: usize| {
            let at = i * EVENT_RECORD + 40;
            u32::from_le_bytes([table[at], table[at + 1], table[at + 2], table[at + 3]])
        };
        assert_eq!(flags(0), all);
        assert_eq!(flags(1), key_headers | 2, "has a value of its own");
        assert_eq!(flags(4), 3, "key and value, copied");
        assert!(table[..24].iter().all(|&b| b == 0), "event 0's spans are 0");
    }

    #[test]
    fn a_rejected_event_withdraws_its_references_too() {
        let batch = input();
        let out = run_events(&batch, |e, out| {
            out.forward();
            match e.index() {
                0 => Err(EventError::Reject("no".into())),
                _ => Ok(()),
            }
        })
        .expect("run");
        assert_eq!(out.events.events.len(), 1);
        assert_eq!(out.events.events[0].parent, 1);
        assert_eq!(out.rejected.len(), 1);
    }
}
