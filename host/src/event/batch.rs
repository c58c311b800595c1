//! The unit that flows between sources, stages and sinks: a framed batch of
//! events (the exact record the plugin contract takes, so calling a plugin
//! copies nothing extra) plus host-only metadata plugins cannot forge.

use std::sync::{Arc, OnceLock};

use super::abi::{Event, Frame, Header, Span};
use super::FieldTables;

/// A batch of events with their origin metadata.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The framed events, with `streams = [producer name]`.
    pub events: Frame,
    /// The source the events (or their ancestors) came from.
    pub origin: Arc<str>,
    /// Per event: its position within the origin (file line, datagen sequence).
    pub positions: Vec<u64>,
    /// The values' field tables, once a stage whose plugin reads them has
    /// needed them ([`Batch::field_tables`]).
    pub tables: OnceLock<FieldTables>,
    /// Tables known from the batch a plugin made this one from, with the
    /// changed values' left to build ([`FieldTables::complete`]).
    pub inherited: Option<FieldTables>,
}

/// One event's parts, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    /// Key bytes.
    pub key: Option<&'a [u8]>,
    /// Value bytes; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Position within the origin.
    pub position: u64,
    headers: &'a [Header],
    data: &'a [u8],
}

impl<'a> EventView<'a> {
    /// Headers as (name, value) pairs.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let data = self.data;
        self.headers.iter().filter_map(move |h| {
            Some((
                std::str::from_utf8(slice(data, h.name)?).ok()?,
                slice(data, h.value)?,
            ))
        })
    }
}

/// The bytes `s` covers in `data`, or `None` when it lies outside.
pub(crate) fn slice(data: &[u8], s: Span) -> Option<&[u8]> {
    let start = s.offset as usize;
    data.get(start..start.checked_add(s.len as usize)?)
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Builds a batch event by event.
#[derive(Debug)]
pub struct BatchBuilder {
    batch: Batch,
    /// With [`BatchBuilder::index_json`]: the field tables of the events
    /// pushed so far.
    tables: Option<FieldTables>,
}

impl BatchBuilder {
    /// An empty batch produced by `stream` from `origin`.
    pub fn new(stream: &str, origin: Arc<str>, capacity: usize) -> Self {
        // A guess, not a bound: past it the vectors grow as events come.
        let capacity = capacity.min(4096);
        Self {
            batch: Batch {
                events: Frame {
                    data: Vec::with_capacity(capacity * 256),
                    events: Vec::with_capacity(capacity),
                    headers: Vec::new(),
                    streams: vec![stream.to_string()],
                },
                origin,
                positions: Vec::with_capacity(capacity),
                tables: OnceLock::new(),
                inherited: None,
            },
            tables: None,
        }
    }

    /// Builds the events' field tables while [`BatchBuilder::push_json`]
    /// checks their values: for a source whose events reach a plugin that
    /// reads tables, which then needs no second scan. Only on an empty
    /// builder (tables must start with the first event); otherwise a no-op.
    pub fn index_json(mut self) -> Self {
        if self.batch.events.events.is_empty() {
            self.tables = Some(Default::default());
        }
        self
    }

    /// Checks `value` as JSON ([`super::check_json`]) and appends the event,
    /// or says why it is not JSON (nothing appended). With
    /// [`BatchBuilder::index_json`] it scans with the plugins' own scanner
    /// and keeps the value's table; a value that scanner refuses but the
    /// check accepts (broken UTF-8 inside a string, a lone surrogate,
    /// nesting past 128) is still appended, with no table, so what a source
    /// lets through never depends on the stages downstream.
    pub fn push_json(
        &mut self,
        key: Option<&[u8]>,
        value: &[u8],
        timestamp_ms: i64,
        position: u64,
    ) -> Result<(), String> {
        match &mut self.tables {
            Some(tables) => {
                // Refused by the strict scan, it has no table; it is kept
                // if the usual check takes it (the stage that reads it then
                // refuses it with its own reason), else not kept at all.
                if tables.push(Some(value)).is_err() {
                    if let Err(e) = super::check_json(value) {
                        tables.pop();
                        return Err(e);
                    }
                }
                self.append(key, Some(value), &[], timestamp_ms, position);
            }
            None => {
                super::check_json(value)?;
                self.append(key, Some(value), &[], timestamp_ms, position);
            }
        }
        Ok(())
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> Span {
        let offset = to_u32(self.batch.events.data.len());
        self.batch.events.data.extend_from_slice(bytes);
        Span {
            offset,
            len: to_u32(bytes.len()),
        }
    }

    /// Appends one event.
    pub fn push(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
        timestamp_ms: i64,
        position: u64,
    ) {
        if let Some(tables) = &mut self.tables {
            // Unchecked by the caller: indexed if it is JSON, else no table.
            let _ = tables.push(value);
        }
        self.append(key, value, headers, timestamp_ms, position);
    }

    fn append(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
        timestamp_ms: i64,
        position: u64,
    ) {
        let key = key.map(|k| self.push_bytes(k));
        let value = value.map(|v| self.push_bytes(v));
        let first = to_u32(self.batch.events.headers.len());
        for (n, v) in headers {
            let name = self.push_bytes(n.as_bytes());
            let value = self.push_bytes(v);
            self.batch.events.headers.push(Header { name, value });
        }
        let index = to_u32(self.batch.events.events.len());
        self.batch.events.events.push(Event {
            key,
            value,
            headers: Span {
                offset: first,
                len: to_u32(headers.len()),
            },
            timestamp_ms,
            stream: 0,
            parent: index,
        });
        self.batch.positions.push(position);
    }

    /// Appends a copy of `event` with extra headers (used for dead letters).
    pub fn push_with_headers(&mut self, event: &EventView<'_>, extra: &[(&str, &[u8])]) {
        let mut headers: Vec<(&str, &[u8])> = event.headers().collect();
        headers.extend_from_slice(extra);
        self.push(
            event.key,
            event.value,
            &headers,
            event.timestamp_ms,
            event.position,
        );
    }

    /// Number of events so far.
    pub fn len(&self) -> usize {
        self.batch.events.events.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of event data so far.
    pub fn data_len(&self) -> usize {
        self.batch.events.data.len()
    }

    /// The finished batch.
    pub fn finish(self) -> Batch {
        let batch = self.batch;
        if let Some(tables) = self.tables {
            let _ = batch.tables.set(tables);
        }
        batch
    }
}

impl Batch {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.events.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.events.events.is_empty()
    }

    /// The producer's name.
    pub fn stream(&self) -> &str {
        self.events
            .streams
            .first()
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Event `i`, if it exists.
    pub fn get(&self, i: usize) -> Option<EventView<'_>> {
        let e = self.events.events.get(i)?;
        let data = &self.events.data;
        let hs = e.headers.offset as usize;
        Some(EventView {
            key: e.key.and_then(|s| slice(data, s)),
            value: e.value.and_then(|s| slice(data, s)),
            timestamp_ms: e.timestamp_ms,
            position: self.positions.get(i).copied().unwrap_or(0),
            headers: self
                .events
                .headers
                .get(hs..hs.saturating_add(e.headers.len as usize))
                .unwrap_or(&[]),
            data,
        })
    }

    /// All events.
    pub fn iter(&self) -> impl Iterator<Item = EventView<'_>> {
        (0..self.len()).filter_map(move |i| self.get(i))
    }

    /// The values' field tables, built on first use (one native scan of
    /// each value whose table is not known yet) and kept for the stages after.
    pub fn field_tables(&self) -> &FieldTables {
        self.tables.get_or_init(|| match &self.inherited {
            Some(known) => known.complete(&self.events),
            None => FieldTables::build(&self.events),
        })
    }

    /// The tables known so far, complete or not (what an output batch
    /// inherits from).
    pub fn known_tables(&self) -> Option<&FieldTables> {
        self.tables.get().or(self.inherited.as_ref())
    }

    /// A copy of events `range` as a batch of its own (to isolate a bad event).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Batch {
        let mut b = BatchBuilder::new(self.stream(), self.origin.clone(), range.len());
        for i in range {
            if let Some(e) = self.get(i) {
                b.push_with_headers(&e, &[]);
            }
        }
        b.finish()
    }
}
