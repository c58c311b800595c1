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
    /// Input: where in `data` the host's field table of the value starts
    /// (see [`crate::json::table`]); 0 when it sent none. Output: ignored
    /// (the host reads 0).
    pub field_table: u32,
    /// Output: which of [`KEY_FROM_PARENT`], [`VALUE_FROM_PARENT`] and
    /// [`HEADERS_FROM_PARENT`] this event takes from its parent instead of
    /// carrying them (its own `key`, `value` or `headers` must then be
    /// `None` / empty). Input: 0.
    pub refs: u32,
    /// Input: whether the host lets this event's outputs take its parts by
    /// reference (input flag [`REFS_OK`]). Output: ignored. Apart from
    /// `refs` so that an input event passed on as an output names nothing.
    pub refs_ok: bool,
}

/// Input flag: the host resolves parent references in this event's outputs
/// (it does for plugins built with `export_transform!` or
/// `export_processor!`, which declare them).
pub const REFS_OK: u32 = 4;
/// Output flag: the key is the parent's, exactly (or its having none).
pub const KEY_FROM_PARENT: u32 = 4;
/// Output flag: the value is the parent's, exactly (or its being a tombstone).
pub const VALUE_FROM_PARENT: u32 = 8;
/// Output flag: the headers are the parent's, exactly.
pub const HEADERS_FROM_PARENT: u32 = 16;
const REF_BITS: u32 = KEY_FROM_PARENT | VALUE_FROM_PARENT | HEADERS_FROM_PARENT;

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
            field_table: 0,
            refs: 0,
            refs_ok: false,
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

/// Bytes of one event record in contract 0.2.0's event table.
pub const EVENT_RECORD: usize = 48;
/// Bytes of one header record in contract 0.2.0's header table.
pub const HEADER_RECORD: usize = 16;
const HAS_KEY: u32 = 1;
const HAS_VALUE: u32 = 2;

fn put(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn span_at(b: &[u8], at: usize) -> Span {
    Span {
        offset: u32_at(b, at),
        len: u32_at(b, at + 4),
    }
}

impl RawBatch {
    /// The event table in contract 0.2.0's layout (`wit/sluice.wit`): one
    /// 48-byte little-endian record per event.
    pub fn event_table(&self) -> Vec<u8> {
        // Sized once and written in place: a push per word checked the
        // capacity forty-eight times an event.
        let mut out = vec![0u8; self.events.len() * EVENT_RECORD];
        for (e, rec) in self.events.iter().zip(out.chunks_exact_mut(EVENT_RECORD)) {
            let key = e.key.unwrap_or_default();
            let value = e.value.unwrap_or_default();
            let flags = if e.key.is_some() { HAS_KEY } else { 0 }
                | if e.value.is_some() { HAS_VALUE } else { 0 }
                | e.refs & REF_BITS;
            let words = [
                key.offset,
                key.len,
                value.offset,
                value.len,
                e.headers.offset,
                e.headers.len,
            ];
            for (slot, v) in rec[..24].chunks_exact_mut(4).zip(words) {
                slot.copy_from_slice(&v.to_le_bytes());
            }
            rec[24..32].copy_from_slice(&e.timestamp_ms.to_le_bytes());
            // The last word is reserved: zero.
            for (slot, v) in rec[32..44]
                .chunks_exact_mut(4)
                .zip([e.stream, e.parent, flags])
            {
                slot.copy_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// The header table in contract 0.2.0's layout: one 16-byte record per header.
    pub fn header_table(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.headers.len() * HEADER_RECORD);
        for h in &self.headers {
            for v in [h.name.offset, h.name.len, h.value.offset, h.value.len] {
                put(&mut out, v);
            }
        }
        out
    }

    /// A batch from contract 0.2.0's tables. The host sends whole records;
    /// a trailing partial record (which it never sends) is ignored.
    pub fn from_tables(data: Vec<u8>, events: &[u8], headers: &[u8], streams: Vec<String>) -> Self {
        RawBatch {
            data,
            events: events
                .chunks_exact(EVENT_RECORD)
                .map(|r| {
                    let flags = u32_at(r, 40);
                    let mut ts = [0; 8];
                    ts.copy_from_slice(&r[24..32]);
                    RawEvent {
                        key: (flags & HAS_KEY != 0).then(|| span_at(r, 0)),
                        value: (flags & HAS_VALUE != 0).then(|| span_at(r, 8)),
                        headers: span_at(r, 16),
                        timestamp_ms: i64::from_le_bytes(ts),
                        stream: u32_at(r, 32),
                        parent: u32_at(r, 36),
                        field_table: u32_at(r, 44),
                        refs: 0,
                        refs_ok: flags & REFS_OK != 0,
                    }
                })
                .collect(),
            headers: headers
                .chunks_exact(HEADER_RECORD)
                .map(|r| RawHeader {
                    name: span_at(r, 0),
                    value: span_at(r, 8),
                })
                .collect(),
            streams,
        }
    }
}

/// Rows answered by one batched table lookup ([`crate::Host::lookup_many`]):
/// all row bytes in one buffer, one entry per key in the order asked, and
/// each row's field table when the host sent one ([`Rows::table`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rows {
    data: Vec<u8>,
    rows: Vec<Option<Span>>,
    /// Per row, its field table in `data`; empty when no answer carried
    /// tables.
    tables: Vec<Option<Span>>,
}

/// Most keys one `lookup-many` call carries (the host's bound).
pub const MAX_LOOKUP_KEYS: usize = 65_536;
const NO_ROW: u32 = u32::MAX;
/// The first word of a keys buffer that carries options (no key can claim
/// 4 GiB), then a word of option bits.
const OPTIONS: u32 = u32::MAX;
/// Option bit: the host sends each row's field table after it.
pub const WITH_TABLES: u32 = 1;
/// The table word that means "no table for this row".
const NO_TABLE: u32 = u32::MAX;

impl Rows {
    /// The row for the `i`-th key asked, if the table has one.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.rows.get(i).copied().flatten()?.slice(&self.data)
    }

    /// The field table of the `i`-th key's row, when the host sent one
    /// (see [`crate::json::JsonParser::parse_with_table`]; a table that
    /// does not fit its row is ignored there, and the row scanned).
    pub fn table(&self, i: usize) -> Option<&[u8]> {
        self.tables.get(i).copied().flatten()?.slice(&self.data)
    }

    /// Number of keys answered.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no key was asked.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Appends one answer (`None`: no row).
    pub fn push(&mut self, row: Option<&[u8]>) {
        let span = row.map(|r| {
            let offset = span_u32(self.data.len());
            self.data.extend_from_slice(r);
            Span {
                offset,
                len: span_u32(r.len()),
            }
        });
        self.rows.push(span);
        if !self.tables.is_empty() {
            self.tables.push(None);
        }
    }

    /// Appends the answers of one `lookup-many` call made with
    /// [`WITH_TABLES`] ([`encode_keys_with`]): per key a little-endian u32
    /// length and the row, then the row's field table (its field count
    /// first) or `0xFFFFFFFF`; or `0xFFFFFFFF` alone for no row. Takes the
    /// answer's buffer without copying when nothing was appended before.
    /// Returns false, having appended nothing, if the answer does not hold
    /// exactly `keys` entries.
    pub fn extend_from_answer_with_tables(&mut self, answer: Vec<u8>, keys: usize) -> bool {
        let mut parsed = Vec::with_capacity(keys);
        let mut at = 0;
        while at < answer.len() {
            let Some(len) = answer.get(at..at + 4).map(|_| u32_at(&answer, at)) else {
                return false;
            };
            at += 4;
            if len == NO_ROW {
                parsed.push(None);
                continue;
            }
            let Some(end) = at.checked_add(len as usize) else {
                return false;
            };
            let row = at..end;
            let Some(fields) = answer
                .get(end..end.saturating_add(4))
                .map(|_| u32_at(&answer, end))
            else {
                return false;
            };
            at = row.end + 4;
            let table = if fields == NO_TABLE {
                None
            } else {
                let end = (fields as usize)
                    .checked_mul(16)
                    .and_then(|b| at.checked_add(b))
                    .filter(|&end| end <= answer.len());
                let Some(end) = end else {
                    return false;
                };
                let table = row.end..end;
                at = end;
                Some(table)
            };
            parsed.push(Some((row, table)));
        }
        if parsed.len() != keys {
            return false;
        }
        let base = self.data.len();
        if base == 0 {
            self.data = answer;
        } else {
            self.data.extend_from_slice(&answer);
        }
        let span = |r: std::ops::Range<usize>| Span {
            offset: span_u32(base + r.start),
            len: span_u32(r.len()),
        };
        // Rows pushed before without tables keep none.
        self.tables.resize(self.rows.len(), None);
        for entry in parsed {
            let (row, table) = entry.map_or((None, None), |(r, t)| (Some(span(r)), t.map(span)));
            self.rows.push(row);
            self.tables.push(table);
        }
        true
    }

    /// Appends the answers of one `lookup-many` call (contract 0.2.0's
    /// layout: per key a little-endian u32 length and the row, or
    /// `0xFFFFFFFF` for no row). Returns false, having appended nothing, if
    /// the answer does not hold exactly `keys` entries.
    pub fn extend_from_answer(&mut self, answer: &[u8], keys: usize) -> bool {
        let mut parsed = Vec::with_capacity(keys);
        let mut at = 0;
        while at < answer.len() {
            let Some(len) = answer.get(at..at + 4).map(|_| u32_at(answer, at)) else {
                return false;
            };
            at += 4;
            if len == NO_ROW {
                parsed.push(None);
                continue;
            }
            let Some(end) = at.checked_add(len as usize).filter(|&e| e <= answer.len()) else {
                return false;
            };
            parsed.push(Some(at..end));
            at = end;
        }
        if parsed.len() != keys {
            return false;
        }
        for r in parsed {
            self.push(r.map(|r| &answer[r]));
        }
        true
    }
}

/// Keys in `lookup-many`'s layout: per key a little-endian u32 length, then its bytes.
pub fn encode_keys<'k>(keys: impl IntoIterator<Item = &'k [u8]>) -> Vec<u8> {
    encode_keys_with(0, keys)
}

/// [`encode_keys`] asking for `options` ([`WITH_TABLES`]): the word
/// `0xFFFFFFFF` and the option bits go first.
pub fn encode_keys_with<'k>(options: u32, keys: impl IntoIterator<Item = &'k [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    if options != 0 {
        put(&mut out, OPTIONS);
        put(&mut out, options);
    }
    for k in keys {
        put(&mut out, span_u32(k.len()));
        out.extend_from_slice(k);
    }
    out
}

#[path = "abi_row_fields.rs"]
mod row_fields;
pub use row_fields::{
    encode_keys_with_fields, put_object_row, FieldValues, RowAnswer, RowFields, MAX_LOOKUP_FIELDS,
    WITH_FIELDS,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip_with_tombstones_and_headers() {
        let mut b = RawBatch::default();
        b.push_event(Some(b"k"), Some(b"{}"), &[("h", b"v")], -3, 2);
        b.push_event(None, None, &[], i64::MAX, 0);
        let events = b.event_table();
        assert_eq!(events.len(), 2 * EVENT_RECORD);
        let back = RawBatch::from_tables(
            b.data.clone(),
            &events,
            &b.header_table(),
            b.streams.clone(),
        );
        assert_eq!(back, b);
    }

    #[test]
    fn rows_parse_answers_and_refuse_short_ones() {
        let mut answer = Vec::new();
        put(&mut answer, 2);
        answer.extend_from_slice(b"ab");
        put(&mut answer, NO_ROW);
        let mut rows = Rows::default();
        assert!(rows.extend_from_answer(&answer, 2));
        assert_eq!(rows.get(0), Some(&b"ab"[..]));
        assert_eq!(rows.get(1), None);
        assert!(!rows.extend_from_answer(&answer, 3), "wrong count");
        assert!(!rows.extend_from_answer(&answer[..5], 1), "cut row");
        assert_eq!(rows.len(), 2, "nothing appended on refusal");
        assert_eq!(
            encode_keys([&b"x"[..], b""]),
            vec![1, 0, 0, 0, b'x', 0, 0, 0, 0]
        );
    }

    #[test]
    fn rows_with_tables_keep_each_table_with_its_row_and_refuse_bad_answers() {
        let object = br#"{"name":"ann","age":34}"#;
        let mut table = Vec::new();
        assert!(crate::json::table::encode(object, &mut table).expect("json"));
        let mut answer = Vec::new();
        put(&mut answer, object.len() as u32);
        answer.extend_from_slice(object);
        answer.extend_from_slice(&table);
        put(&mut answer, NO_ROW);
        put(&mut answer, 3);
        answer.extend_from_slice(b"[1]");
        put(&mut answer, NO_TABLE);
        let mut rows = Rows::default();
        // Rows pushed before an answer with tables have none.
        rows.push(Some(b"x"));
        assert!(rows.extend_from_answer_with_tables(answer.clone(), 3));
        assert_eq!(rows.len(), 4);
        assert_eq!((rows.get(0), rows.table(0)), (Some(&b"x"[..]), None));
        assert_eq!(rows.get(1), Some(&object[..]));
        assert_eq!(rows.table(1), Some(table.as_slice()));
        assert_eq!((rows.get(2), rows.table(2)), (None, None));
        assert_eq!((rows.get(3), rows.table(3)), (Some(&b"[1]"[..]), None));
        rows.push(None);
        assert_eq!(rows.table(4), None);
        // The table reads as the scan would.
        let mut parser = crate::json::JsonParser::new();
        let with = parser
            .parse_with_table(object, rows.table(1))
            .expect("json")
            .fields()
            .map(|(k, v)| (k.text().into_owned(), v.text().to_string()))
            .collect::<Vec<_>>();
        let scanned = crate::json::JsonView::parse(object).expect("json");
        let scanned: Vec<_> = scanned
            .fields()
            .map(|(k, v)| (k.text().into_owned(), v.text().to_string()))
            .collect();
        assert_eq!(with, scanned);
        // And the table is what the view reads, not a scan that happens to
        // agree: a table of the first field alone gives a view of one field.
        let mut first = 1u32.to_le_bytes().to_vec();
        first.extend_from_slice(&table[4..20]);
        let one = parser.parse_with_table(object, Some(&first)).expect("json");
        assert_eq!(one.len(), 1);
        assert_eq!(one.field(0).1.text(), "\"ann\"");
        // Refused, appending nothing: a wrong count, a row without its table
        // word, a table cut short, a field count past the answer (on wasm32,
        // one whose size overflows).
        let mut fresh = Rows::default();
        assert!(!fresh.extend_from_answer_with_tables(answer.clone(), 2));
        let cut = 4 + object.len() + 2;
        assert!(!fresh.extend_from_answer_with_tables(answer[..cut].to_vec(), 1));
        let cut = 4 + object.len() + table.len() - 1;
        assert!(!fresh.extend_from_answer_with_tables(answer[..cut].to_vec(), 1));
        let mut huge = Vec::new();
        put(&mut huge, 2);
        huge.extend_from_slice(b"{}");
        put(&mut huge, u32::MAX - 1);
        assert!(!fresh.extend_from_answer_with_tables(huge, 1));
        let mut past = Vec::new();
        put(&mut past, u32::MAX - 1);
        assert!(!fresh.extend_from_answer_with_tables(past, 1));
        assert!(fresh.is_empty());
        assert_eq!(
            encode_keys_with(WITH_TABLES, [&b"x"[..]]),
            vec![255, 255, 255, 255, 1, 0, 0, 0, 1, 0, 0, 0, b'x']
        );
    }
}
