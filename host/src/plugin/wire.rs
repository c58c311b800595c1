//! Contract 0.2.0's byte tables (layout in `wit/sluice.wit`) to and from the
//! event layer's frame. Sources, stages and sinks keep the frame; only a
//! call into a 0.2.0 component packs it, and only its answer is unpacked,
//! so the conversion sits at the boundary and nowhere else.
//!
//! Unpacking reads an untrusted guest's bytes: the table lengths, the event
//! count and the flags are checked here, before anything proportional to the
//! count is allocated; spans, parents and the output ceilings are then
//! checked by [`super::output_check`] on the unpacked frame, as for 0.1.0.

use super::bindings::v2;
use super::bindings::{Batch, Event, Header, Output, Param, PluginInfo, Rejection, Span};
use super::limits::Limits;
use super::output_check::OutputFault;
use crate::event::{span_bytes, FieldTables};

/// Bytes of one event record.
pub const EVENT_RECORD: usize = 48;
/// Bytes of one header record.
pub const HEADER_RECORD: usize = 16;
const HAS_KEY: u32 = 1;
const HAS_VALUE: u32 = 2;
/// Input flag: outputs derived from this event may take its key, value or
/// headers by reference (the bits below); set only for a plugin that
/// declares it reads them (`sluice:parent-refs`).
const REFS_OK: u32 = 4;
/// Output flags: this part is the parent's, exactly; its words are 0.
const KEY_FROM_PARENT: u32 = 4;
const VALUE_FROM_PARENT: u32 = 8;
const HEADERS_FROM_PARENT: u32 = 16;
const FROM_PARENT: u32 = KEY_FROM_PARENT | VALUE_FROM_PARENT | HEADERS_FROM_PARENT;

pub(super) fn put(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
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

/// The frame as a 0.2.0 batch: four bulk buffers.
pub fn pack(frame: &Batch) -> v2::Batch {
    pack_with(frame, None, false)
}

/// [`pack`], with the values' field tables when the plugin reads them: all
/// tables go after the frame's bytes in `data`, and each event record's
/// word 44 says where its own starts (0: none; never 0 for a table, which
/// follows at least one value byte). With `refs`, every event carries
/// [`REFS_OK`]: the plugin may answer with parent references, which
/// [`unpack_output`] resolves against this frame.
pub fn pack_with(frame: &Batch, tables: Option<&FieldTables>, refs: bool) -> v2::Batch {
    // Offsets are u32: tables that would end past 4 GiB are not sent.
    let tables = tables.filter(|t| {
        frame
            .data
            .len()
            .checked_add(t.bytes().len())
            .is_some_and(|end| u32::try_from(end).is_ok())
    });
    let base = frame.data.len() as u32;
    let mut events = Vec::with_capacity(frame.events.len() * EVENT_RECORD);
    for (i, e) in frame.events.iter().enumerate() {
        let field_table = tables
            .and_then(|t| t.offset_of(i))
            .map_or(0, |at| base + at);
        let none = Span { offset: 0, len: 0 };
        let key = e.key.unwrap_or(none);
        let value = e.value.unwrap_or(none);
        let flags = if e.key.is_some() { HAS_KEY } else { 0 }
            | if e.value.is_some() { HAS_VALUE } else { 0 }
            | if refs { REFS_OK } else { 0 };
        // One record filled on the stack and appended once: a push per
        // field cost a capacity check each (a sixth of a Wasm sink's write).
        let mut rec = [0u8; EVENT_RECORD];
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
        for (slot, v) in rec[32..]
            .chunks_exact_mut(4)
            .zip([e.stream, e.parent, flags, field_table])
        {
            slot.copy_from_slice(&v.to_le_bytes());
        }
        events.extend_from_slice(&rec);
    }
    let mut headers = Vec::with_capacity(frame.headers.len() * HEADER_RECORD);
    for h in &frame.headers {
        for v in [h.name.offset, h.name.len, h.value.offset, h.value.len] {
            put(&mut headers, v);
        }
    }
    let data = match tables {
        Some(t) => {
            let mut data = Vec::with_capacity(frame.data.len() + t.bytes().len());
            data.extend_from_slice(&frame.data);
            data.extend_from_slice(t.bytes());
            data
        }
        None => frame.data.clone(),
    };
    v2::Batch {
        data,
        events,
        headers,
        streams: frame.streams.clone(),
    }
}

/// A 0.2.0 batch from a guest as a frame, or why it breaks the layout. No
/// part may come from a parent: a connector's batches have none.
pub fn unpack(batch: v2::Batch, limits: &Limits) -> Result<Batch, OutputFault> {
    unpack_from(batch, limits, None)
}

/// [`unpack`] for the answer to a call on `parents`, whose events' keys,
/// values and headers an output event may take by reference (flags
/// [`KEY_FROM_PARENT`], [`VALUE_FROM_PARENT`], [`HEADERS_FROM_PARENT`]).
/// Each referenced part is copied into the frame once per parent, however
/// many outputs name it, so the copies are bounded by the input's own size;
/// the output ceilings then count every reference, as for spans.
fn unpack_from(
    batch: v2::Batch,
    limits: &Limits,
    parents: Option<&Batch>,
) -> Result<Batch, OutputFault> {
    if !batch.events.len().is_multiple_of(EVENT_RECORD) {
        return Err(OutputFault::Invalid(format!(
            "output event table of {} bytes is not a whole number of {EVENT_RECORD}-byte records",
            batch.events.len()
        )));
    }
    if !batch.headers.len().is_multiple_of(HEADER_RECORD) {
        return Err(OutputFault::Invalid(format!(
            "output header table of {} bytes is not a whole number of {HEADER_RECORD}-byte records",
            batch.headers.len()
        )));
    }
    let n = batch.events.len() / EVENT_RECORD;
    if n as u64 > limits.output_events_per_call {
        return Err(OutputFault::Limit(format!(
            "output ceiling of {} events per call (the call returned {n})",
            limits.output_events_per_call
        )));
    }
    let headers = batch
        .headers
        .chunks_exact(HEADER_RECORD)
        .map(|r| Header {
            name: span_at(r, 0),
            value: span_at(r, 8),
        })
        .collect();
    let mut out = Batch {
        data: batch.data,
        events: Vec::with_capacity(n),
        headers,
        streams: batch.streams,
    };
    let known = if parents.is_some() {
        HAS_KEY | HAS_VALUE | FROM_PARENT
    } else {
        HAS_KEY | HAS_VALUE
    };
    if let Some(parents) = parents {
        let taken = Taken::of(&batch.events, &out, parents);
        if taken.whole_parents {
            return Ok(parents_as_they_are(&batch.events, out, parents));
        }
        // Room for the values the outputs take from their parents (a
        // filter's whole output), at most the input's data: one allocation
        // instead of doubling, and none larger than what is kept.
        out.data.reserve(taken.values.min(parents.data.len()));
    }
    let mut refs = parents.map(ParentParts::new);
    for (i, r) in batch.events.chunks_exact(EVENT_RECORD).enumerate() {
        let flags = u32_at(r, 40);
        if flags & !known != 0 || u32_at(r, 44) != 0 {
            return Err(OutputFault::Invalid(format!(
                "output event {i} has unknown flags {flags:#x} or a non-zero reserved word"
            )));
        }
        let mut ts = [0; 8];
        ts.copy_from_slice(&r[24..32]);
        let mut event = Event {
            key: (flags & HAS_KEY != 0).then(|| span_at(r, 0)),
            value: (flags & HAS_VALUE != 0).then(|| span_at(r, 8)),
            headers: span_at(r, 16),
            timestamp_ms: i64::from_le_bytes(ts),
            stream: u32_at(r, 32),
            parent: u32_at(r, 36),
        };
        if flags & FROM_PARENT != 0 {
            if let Some(refs) = refs.as_mut() {
                refs.resolve(i, flags, r, &mut event, &mut out)?;
            }
        }
        out.events.push(event);
    }
    if u32::try_from(out.data.len()).is_err() {
        // Only copies of parents' parts can get it here: a guest's own data
        // fits its 32-bit memory.
        return Err(OutputFault::Limit(
            "output data with its parents' parts is past 4 GiB".into(),
        ));
    }
    Ok(out)
}

/// What a call's output takes from its parents, from one pass over its
/// event records.
struct Taken {
    /// Bytes of the values taken by reference.
    values: usize,
    /// Every output is a parent passed on whole (key, value and headers by
    /// reference, nothing of its own), the output carries no data or
    /// headers of its own, and every parent is passed on: a passthrough's
    /// answer, or a filter's that kept the whole batch. Then the output
    /// holds all of the input's bytes anyway. (If a parent were dropped,
    /// its bytes must not reach the stages downstream: a filter that drops
    /// what the next plugin may not see relies on it.)
    whole_parents: bool,
}

impl Taken {
    fn of(records: &[u8], out: &Batch, parents: &Batch) -> Self {
        // Fewer outputs than parents cannot pass every parent on: no need
        // to track which were (a filter that dropped any).
        let mut taken = Taken {
            values: 0,
            whole_parents: out.data.is_empty()
                && out.headers.is_empty()
                && records.len() / EVENT_RECORD >= parents.events.len(),
        };
        let mut passed_on = match taken.whole_parents {
            true => vec![false; parents.events.len()],
            false => Vec::new(),
        };
        for r in records.chunks_exact(EVENT_RECORD) {
            let flags = u32_at(r, 40);
            let index = u32_at(r, 36) as usize;
            let parent = parents.events.get(index);
            if flags & VALUE_FROM_PARENT != 0 {
                if let Some(s) = parent.and_then(|p| p.value) {
                    taken.values = taken.values.saturating_add(s.len as usize);
                }
            }
            taken.whole_parents &= flags == FROM_PARENT
                && parent.is_some()
                && r[..24] == [0; 24]
                && u32_at(r, 44) == 0;
            if let Some(seen) = passed_on.get_mut(index) {
                *seen = true;
            }
        }
        // A reference drops a header whose name is not UTF-8 (as the SDK's
        // copy does); the parents' headers are kept as they are only if
        // there is none.
        taken.whole_parents = taken.whole_parents
            && passed_on.iter().all(|&p| p)
            && parents
                .headers
                .iter()
                .all(|h| std::str::from_utf8(bytes_of(&parents.data, h.name)).is_ok());
        taken
    }
}

/// The output of a call that passes every parent on whole (see
/// [`Taken::whole_parents`]): the parents' data and headers copied in one
/// piece, each event pointing where its parent did. One copy instead of a
/// memoised copy per part, and bounded by the input as those are.
fn parents_as_they_are(records: &[u8], mut out: Batch, parents: &Batch) -> Batch {
    out.data = parents.data.clone();
    out.headers = parents.headers.clone();
    for r in records.chunks_exact(EVENT_RECORD) {
        let parent = u32_at(r, 36);
        let Some(p) = parents.events.get(parent as usize) else {
            continue; // `Taken::of` found every parent.
        };
        let mut ts = [0; 8];
        ts.copy_from_slice(&r[24..32]);
        out.events.push(Event {
            key: p.key,
            value: p.value,
            headers: p.headers,
            timestamp_ms: i64::from_le_bytes(ts),
            stream: u32_at(r, 32),
            parent,
        });
    }
    out
}

/// What output events take from their parents, copied into the output
/// frame once per parent and part.
struct ParentParts<'p> {
    parents: &'p Batch,
    /// Per parent: where its key, value and headers were copied to, once
    /// they have been (`Some(None)`: it has none).
    keys: Vec<Option<Option<Span>>>,
    values: Vec<Option<Option<Span>>>,
    headers: Vec<Option<Span>>,
}

impl<'p> ParentParts<'p> {
    fn new(parents: &'p Batch) -> Self {
        Self {
            parents,
            keys: Vec::new(),
            values: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Points `event`'s parts named in `flags` at copies of its parent's.
    /// The record's own words for such a part must be 0 (and its has-flag
    /// clear): one meaning per record.
    fn resolve(
        &mut self,
        i: usize,
        flags: u32,
        r: &[u8],
        event: &mut Event,
        out: &mut Batch,
    ) -> Result<(), OutputFault> {
        let parent = event.parent as usize;
        let n = self.parents.events.len();
        let Some(p) = self.parents.events.get(parent).copied() else {
            return Err(OutputFault::Invalid(format!(
                "output event {i} takes parts of parent {parent} but the input had {n} events"
            )));
        };
        let clash = |what: &str| {
            OutputFault::Invalid(format!(
                "output event {i} takes its {what} from its parent and gives one too"
            ))
        };
        if flags & KEY_FROM_PARENT != 0 {
            if flags & HAS_KEY != 0 || r[0..8] != [0; 8] {
                return Err(clash("key"));
            }
            let memo = memo_slot(&mut self.keys, n, parent);
            event.key = *memo.get_or_insert_with(|| copy(&self.parents.data, p.key, &mut out.data));
        }
        if flags & VALUE_FROM_PARENT != 0 {
            if flags & HAS_VALUE != 0 || r[8..16] != [0; 8] {
                return Err(clash("value"));
            }
            let memo = memo_slot(&mut self.values, n, parent);
            event.value =
                *memo.get_or_insert_with(|| copy(&self.parents.data, p.value, &mut out.data));
        }
        if flags & HEADERS_FROM_PARENT != 0 {
            if r[16..24] != [0; 8] {
                return Err(clash("headers"));
            }
            let memo = memo_slot(&mut self.headers, n, parent);
            event.headers = *memo.get_or_insert_with(|| {
                let first = out.headers.len();
                let theirs = p.headers.offset as usize;
                let range = theirs..theirs.saturating_add(p.headers.len as usize);
                for h in self.parents.headers.get(range).unwrap_or_default() {
                    // The SDK's copying skips a header whose name is not
                    // UTF-8 (a Wasm source can make one); so does a reference.
                    if std::str::from_utf8(bytes_of(&self.parents.data, h.name)).is_err() {
                        continue;
                    }
                    let name = copy(&self.parents.data, Some(h.name), &mut out.data);
                    let value = copy(&self.parents.data, Some(h.value), &mut out.data);
                    out.headers.push(Header {
                        name: name.unwrap_or(EMPTY),
                        value: value.unwrap_or(EMPTY),
                    });
                }
                Span {
                    offset: to_u32(first),
                    len: to_u32(out.headers.len() - first),
                }
            });
        }
        Ok(())
    }
}

const EMPTY: Span = Span { offset: 0, len: 0 };

/// The bytes `s` covers in `from` (none for a span outside it, which the
/// host, having built `from`, never makes).
fn bytes_of(from: &[u8], s: Span) -> &[u8] {
    span_bytes(from, s).unwrap_or_default()
}

/// The memo entry for `parent`, the memo sized to the `n` parents on first use.
fn memo_slot<T: Default + Clone>(memo: &mut Vec<T>, n: usize, parent: usize) -> &mut T {
    if memo.is_empty() {
        memo.resize(n, T::default());
    }
    &mut memo[parent]
}

/// Appends the bytes `span` covers in `from` to `to`; their span there.
/// The host built `from`, so its spans are in range (one that is not copies
/// nothing); data past 4 GiB fails the whole output ([`unpack_from`]).
fn copy(from: &[u8], span: Option<Span>, to: &mut Vec<u8>) -> Option<Span> {
    let bytes = bytes_of(from, span?);
    let offset = to_u32(to.len());
    to.extend_from_slice(bytes);
    Some(Span {
        offset,
        len: to_u32(bytes.len()),
    })
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A 0.2.0 output as the host's output type; `parents` is the batch the
/// call was given, when outputs may take parts from it.
pub fn unpack_output(
    out: v2::Output,
    limits: &Limits,
    parents: Option<&Batch>,
) -> Result<Output, OutputFault> {
    Ok(Output {
        events: unpack_from(out.events, limits, parents)?,
        rejected: out
            .rejected
            .into_iter()
            .map(|r| Rejection {
                index: r.index,
                reason: r.reason,
            })
            .collect(),
    })
}

/// Parameters in 0.2.0's type.
pub fn params(params: &[Param]) -> Vec<v2::sluice::plugin::types::Param> {
    params
        .iter()
        .map(|p| v2::sluice::plugin::types::Param {
            name: p.name.clone(),
            value: p.value.clone(),
        })
        .collect()
}

/// A 0.2.0 self-description in the host's type.
pub fn info(i: v2::sluice::plugin::types::PluginInfo) -> PluginInfo {
    PluginInfo {
        name: i.name,
        version: i.version,
        description: i.description,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Batch {
        let mut f = Batch {
            data: b"k1v1hnhvv2".to_vec(),
            events: vec![],
            headers: vec![Header {
                name: Span { offset: 4, len: 2 },
                value: Span { offset: 6, len: 2 },
            }],
            streams: vec!["in".into()],
        };
        f.events.push(Event {
            key: Some(Span { offset: 0, len: 2 }),
            value: Some(Span { offset: 2, len: 2 }),
            headers: Span { offset: 0, len: 1 },
            timestamp_ms: -5,
            stream: 0,
            parent: 0,
        });
        f.events.push(Event {
            key: None,
            value: None,
            headers: Span { offset: 1, len: 0 },
            timestamp_ms: i64::MAX,
            stream: 3,
            parent: 1,
        });
        f
    }

    #[test]
    fn pack_then_unpack_is_the_same_frame() {
        let f = frame();
        let packed = pack(&f);
        assert_eq!(packed.events.len(), 2 * EVENT_RECORD);
        assert_eq!(packed.headers.len(), HEADER_RECORD);
        let back = unpack(packed, &Limits::default()).expect("valid");
        // The generated records have no `PartialEq`; their Debug text is exact.
        assert_eq!(format!("{:?}", back.events), format!("{:?}", f.events));
        assert_eq!(format!("{:?}", back.headers), format!("{:?}", f.headers));
        assert_eq!(back.data, f.data);
    }

    #[test]
    fn field_tables_follow_the_data_and_word_44_says_where() {
        use crate::event::{BatchBuilder, FieldTables};
        let mut b = BatchBuilder::new("in", std::sync::Arc::from("in"), 3);
        b.push(None, Some(br#"{"a":1}"#), &[], 0, 1);
        b.push(None, Some(b"[2]"), &[], 0, 2);
        b.push(None, Some(br#"{"b":"x","c":[3]}"#), &[], 0, 3);
        let batch = b.finish();
        let tables = FieldTables::build(&batch.events);
        let plain = pack(&batch.events);
        let packed = pack_with(&batch.events, Some(&tables), false);
        let n = batch.events.data.len();
        assert_eq!(&packed.data[..n], &batch.events.data[..], "values first");
        assert_eq!(&packed.data[n..], tables.bytes(), "then every table");
        for (i, r) in packed.events.chunks_exact(EVENT_RECORD).enumerate() {
            let at = u32_at(r, 44) as usize;
            match tables.get(i) {
                Some(t) => assert_eq!(&packed.data[at..at + t.len()], t, "event {i}"),
                None => assert_eq!(at, 0, "event {i}: no table"),
            }
            // Everything else is as without tables.
            let p = &plain.events[i * EVENT_RECORD..(i + 1) * EVENT_RECORD];
            assert_eq!(&r[..44], &p[..44]);
        }
        assert_eq!(u32_at(&plain.events, 44), 0, "no tables: 0");
    }

    #[test]
    fn the_record_layout_is_the_documented_one() {
        let packed = pack(&frame());
        let r = &packed.events[..EVENT_RECORD];
        assert_eq!(&r[0..8], &[0, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&r[8..16], &[2, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&r[24..32], &(-5i64).to_le_bytes());
        assert_eq!(u32_at(r, 40), HAS_KEY | HAS_VALUE);
        let tomb = &packed.events[EVENT_RECORD..];
        assert_eq!(u32_at(tomb, 32), 3, "stream");
        assert_eq!(u32_at(tomb, 36), 1, "parent");
        assert_eq!(u32_at(tomb, 40), 0, "no key, no value");
    }

    #[test]
    fn malformed_tables_are_refused_before_allocation() {
        let limits = Limits {
            output_events_per_call: 10,
            ..Limits::default()
        };
        let mut b = pack(&frame());
        b.events.pop();
        assert!(
            matches!(unpack(b, &limits), Err(OutputFault::Invalid(m)) if m.contains("whole number of 48"))
        );
        let mut b = pack(&frame());
        b.headers.push(0);
        assert!(
            matches!(unpack(b, &limits), Err(OutputFault::Invalid(m)) if m.contains("whole number of 16"))
        );
        // A huge count: 11 records against a ceiling of 10.
        let mut b = pack(&frame());
        b.events = vec![0; 11 * EVENT_RECORD];
        assert!(
            matches!(unpack(b, &limits), Err(OutputFault::Limit(m)) if m.contains("10 events"))
        );
        let mut b = pack(&frame());
        b.events[40] = 4;
        assert!(
            matches!(unpack(b, &limits), Err(OutputFault::Invalid(m)) if m.contains("unknown flags"))
        );
        // The same bit, a parent reference, in an answer to a call.
        let mut b = pack(&frame());
        b.events[40] = 4;
        b.events[0] = 0;
        b.events[4] = 0;
        let back = unpack_from(b, &limits, Some(&frame())).expect("a reference");
        let key = back.events[0].key.expect("the parent's key");
        assert_eq!(slice(&back.data, key), b"k1");
    }

    /// One 48-byte output record.
    fn record(key: Span, value: Span, headers: Span, parent: u32, flags: u32) -> Vec<u8> {
        let mut r = Vec::new();
        for v in [
            key.offset,
            key.len,
            value.offset,
            value.len,
            headers.offset,
            headers.len,
        ] {
            put(&mut r, v);
        }
        r.extend_from_slice(&7i64.to_le_bytes());
        for v in [0, parent, flags, 0] {
            put(&mut r, v);
        }
        r
    }

    const NONE: Span = Span { offset: 0, len: 0 };

    fn slice(data: &[u8], s: Span) -> &[u8] {
        &data[s.offset as usize..(s.offset + s.len) as usize]
    }

    #[test]
    fn pack_marks_inputs_open_to_references_only_when_asked() {
        let f = frame();
        for (refs, want) in [(false, 0), (true, REFS_OK)] {
            let packed = pack_with(&f, None, refs);
            for r in packed.events.chunks_exact(EVENT_RECORD) {
                assert_eq!(u32_at(r, 40) & REFS_OK, want);
            }
        }
        let plain = pack(&f);
        assert_eq!(u32_at(&plain.events, 40), HAS_KEY | HAS_VALUE);
    }

    #[test]
    fn parent_references_become_copies_of_the_parents_parts_once_per_parent() {
        // Parent 0: key k1, value v1, one header; parent 1: no key, a
        // tombstone, no headers.
        let parents = frame();
        let mut events = Vec::new();
        // Three outputs take everything from parent 0, one its key and
        // headers with a value of its own, two everything from parent 1.
        for _ in 0..3 {
            events.extend(record(NONE, NONE, NONE, 0, FROM_PARENT));
        }
        events.extend(record(
            NONE,
            Span { offset: 0, len: 3 },
            NONE,
            0,
            HAS_VALUE | KEY_FROM_PARENT | HEADERS_FROM_PARENT,
        ));
        for _ in 0..2 {
            events.extend(record(NONE, NONE, NONE, 1, FROM_PARENT));
        }
        let guest = v2::Batch {
            data: b"new".to_vec(),
            events,
            headers: Vec::new(),
            streams: Vec::new(),
        };
        let out = unpack_from(guest, &Limits::default(), Some(&parents)).expect("valid");
        assert_eq!(out.events.len(), 6);
        for e in &out.events[..3] {
            assert_eq!(slice(&out.data, e.key.expect("key")), b"k1");
            assert_eq!(slice(&out.data, e.value.expect("value")), b"v1");
            assert_eq!(e.headers.len, 1);
            let h = out.headers[e.headers.offset as usize];
            assert_eq!(slice(&out.data, h.name), b"hn");
            assert_eq!(slice(&out.data, h.value), b"hv");
            assert_eq!(e.parent, 0);
            assert_eq!(e.timestamp_ms, 7, "the record's own timestamp");
        }
        let own = &out.events[3];
        assert_eq!(slice(&out.data, own.value.expect("value")), b"new");
        assert_eq!(slice(&out.data, own.key.expect("key")), b"k1");
        assert_eq!(
            (own.headers.offset, own.headers.len),
            (out.events[0].headers.offset, out.events[0].headers.len)
        );
        for e in &out.events[4..] {
            assert!(e.key.is_none() && e.value.is_none(), "parent 1 has neither");
            assert_eq!(e.headers.len, 0);
        }
        // "new", then k1, v1, hn, hv once each however many outputs named
        // them; one header record.
        assert_eq!(out.data, b"newk1v1hnhv");
        assert_eq!(out.headers.len(), 1);
    }

    #[test]
    fn parents_all_passed_on_whole_keep_the_input_data_in_one_piece_and_dropped_ones_do_not_travel()
    {
        // Four parents with 10-byte values and the frame()'s header on each.
        let mut parents = frame();
        parents.events.clear();
        for i in 0..4u8 {
            let at = parents.data.len() as u32;
            parents.data.extend(std::iter::repeat_n(b'a' + i, 10));
            parents.events.push(Event {
                key: Some(Span { offset: 0, len: 2 }),
                value: Some(Span {
                    offset: at,
                    len: 10,
                }),
                headers: Span { offset: 0, len: 1 },
                timestamp_ms: 0,
                stream: 5,
                parent: u32::from(i),
            });
        }
        let whole = |parents: &Batch, keep: &[u32]| {
            let events = keep
                .iter()
                .flat_map(|&p| record(NONE, NONE, NONE, p, FROM_PARENT))
                .collect();
            let guest = v2::Batch {
                data: Vec::new(),
                events,
                headers: Vec::new(),
                streams: Vec::new(),
            };
            unpack_from(guest, &Limits::default(), Some(parents)).expect("valid")
        };
        let check = |out: &Batch, keep: &[u32]| {
            assert_eq!(out.events.len(), keep.len());
            for (e, &p) in out.events.iter().zip(keep) {
                assert_eq!(e.parent, p);
                assert_eq!(e.timestamp_ms, 7, "the record's own timestamp");
                assert_eq!(e.stream, 0, "the record's own stream");
                assert_eq!(slice(&out.data, e.key.expect("key")), b"k1");
                assert_eq!(
                    slice(&out.data, e.value.expect("value")),
                    [b'a' + p as u8; 10]
                );
                let h = out.headers[e.headers.offset as usize];
                assert_eq!(e.headers.len, 1);
                assert_eq!(
                    (slice(&out.data, h.name), slice(&out.data, h.value)),
                    (&b"hn"[..], &b"hv"[..])
                );
            }
        };
        // Every parent passed on, one twice: the input data as it is, each
        // event where its parent was.
        let keep = [0, 1, 3, 2, 3];
        let out = whole(&parents, &keep);
        check(&out, &keep);
        assert_eq!(out.data, parents.data);
        let at = |e: &Event| e.value.map(|s| (s.offset, s.len));
        assert_eq!(at(&out.events[2]), at(&parents.events[3]));
        // Three of four: copies of what is kept, so the dropped event's
        // bytes (`bbbb...`) do not travel on.
        let out = whole(&parents, &[0, 2, 3, 3]);
        check(&out, &[0, 2, 3, 3]);
        assert_eq!(
            String::from_utf8_lossy(&out.data),
            "k1aaaaaaaaaahnhvk1cccccccccchnhvk1ddddddddddhnhv"
        );
        // A parent's header named by a byte that is not UTF-8 is dropped by
        // a reference: then the parts are copied, even with most kept.
        parents.data.push(0xFF);
        parents.headers.push(Header {
            name: Span {
                offset: parents.data.len() as u32 - 1,
                len: 1,
            },
            value: Span { offset: 6, len: 2 },
        });
        parents.events[1].headers = Span { offset: 0, len: 2 };
        let out = whole(&parents, &[0, 1, 2, 3]);
        check(&out, &[0, 1, 2, 3]);
        assert_ne!(out.data, parents.data);
    }

    #[test]
    fn a_referenced_header_whose_name_is_not_utf8_is_skipped_as_a_copy_would_skip_it() {
        let mut parents = frame();
        // A second header on event 0, named by the byte 0xFF.
        parents.data.push(0xFF);
        parents.headers.push(Header {
            name: Span { offset: 10, len: 1 },
            value: Span { offset: 6, len: 2 },
        });
        parents.events[0].headers.len = 2;
        let guest = v2::Batch {
            data: Vec::new(),
            events: record(NONE, NONE, NONE, 0, HEADERS_FROM_PARENT),
            headers: Vec::new(),
            streams: Vec::new(),
        };
        let out = unpack_from(guest, &Limits::default(), Some(&parents)).expect("valid");
        assert_eq!(out.events[0].headers.len, 1);
        assert_eq!(slice(&out.data, out.headers[0].name), b"hn");
    }

    #[test]
    fn parent_references_are_refused_where_they_are_malformed_or_have_no_parent() {
        let parents = frame();
        let limits = Limits::default();
        let one = |rec: Vec<u8>, parents: Option<&Batch>| {
            let guest = v2::Batch {
                data: b"xy".to_vec(),
                events: rec,
                headers: Vec::new(),
                streams: Vec::new(),
            };
            match unpack_from(guest, &limits, parents) {
                Err(OutputFault::Invalid(m)) => m,
                other => panic!("expected an invalid output, got {other:?}"),
            }
        };
        let xy = Span { offset: 0, len: 2 };
        let m = one(
            record(xy, NONE, NONE, 0, HAS_KEY | KEY_FROM_PARENT),
            Some(&parents),
        );
        assert!(
            m.contains("takes its key from its parent and gives one too"),
            "{m}"
        );
        let m = one(record(xy, NONE, NONE, 0, KEY_FROM_PARENT), Some(&parents));
        assert!(m.contains("key from its parent"), "words not 0: {m}");
        let m = one(record(NONE, xy, NONE, 0, VALUE_FROM_PARENT), Some(&parents));
        assert!(m.contains("value from its parent"), "{m}");
        let m = one(
            record(
                NONE,
                NONE,
                Span { offset: 0, len: 1 },
                0,
                HEADERS_FROM_PARENT,
            ),
            Some(&parents),
        );
        assert!(m.contains("headers from its parent"), "{m}");
        let m = one(
            record(NONE, NONE, NONE, 2, VALUE_FROM_PARENT),
            Some(&parents),
        );
        assert!(
            m.contains("takes parts of parent 2 but the input had 2 events"),
            "{m}"
        );
        // No parents (a connector's batch): the bits are unknown flags.
        let m = one(record(NONE, NONE, NONE, 0, VALUE_FROM_PARENT), None);
        assert!(m.contains("unknown flags 0x8"), "{m}");
        // Past the three reference bits: unknown.
        let m = one(record(NONE, NONE, NONE, 0, 32), Some(&parents));
        assert!(m.contains("unknown flags 0x20"), "{m}");
    }
}
