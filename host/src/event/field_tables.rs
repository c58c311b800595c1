//! The field tables of a batch: each JSON object value's top-level fields, as
//! the host hands them to plugins that read them (contract 0.2.0, event
//! record word 44; layout in `sluice_sdk::json::table`).
//!
//! Every stage used to scan every value again, in Wasm; the scan was a
//! quarter to a half of what a built-in plugin cost per event. Now the host
//! scans a value once, natively, with the scanner the plugin would have run
//! (the SDK's, so both read exactly the same fields and accept exactly the
//! same JSON), and the table follows the value down the pipeline: an output
//! value that is byte for byte its parent's (a filter's, say) keeps its
//! parent's table. Tables are built only when a stage whose plugin declares
//! it reads them is about to run, so pipelines without such a plugin pay
//! nothing.

use sluice_sdk::json::table;

use super::abi::Frame;
use super::span_bytes;

/// No table for this event: a tombstone, a value that is not a JSON object
/// (or not JSON: the plugin scans it and says why).
const NONE: u32 = u32::MAX;
/// Not known yet: a value a plugin changed, whose table is built only if a
/// stage that reads tables gets it ([`FieldTables::complete`]).
const UNKNOWN: u32 = u32::MAX - 1;

/// Whether `at` points at a table.
fn is_table(at: u32) -> bool {
    at < UNKNOWN
}

/// The field tables of one batch's events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldTables {
    /// Per event: where its table starts in `bytes`, or [`NONE`].
    at: Vec<u32>,
    /// Every table, one after another.
    bytes: Vec<u8>,
}

impl FieldTables {
    /// Scans every value of `frame` and keeps the table of each object.
    pub fn build(frame: &Frame) -> Self {
        // Nothing known yet: every value is scanned.
        FieldTables::default().complete(frame)
    }

    /// Checks the next event's `value` as JSON and adds its table (none
    /// for a tombstone or a value that is not an object). A value that is
    /// not JSON gets no table and the error says why, so a source can check
    /// and index in one scan.
    pub fn push(&mut self, value: Option<&[u8]>) -> Result<(), sluice_sdk::json::JsonError> {
        let at = self.offset();
        let made = match value {
            Some(v) => table::encode(v, &mut self.bytes),
            None => Ok(false),
        };
        self.at
            .push(if matches!(made, Ok(true)) { at } else { NONE });
        made.map(|_| ())
    }

    /// Forgets the last event's table (the event was not kept after all).
    pub fn pop(&mut self) {
        if let Some(at) = self.at.pop().filter(|&a| is_table(a)) {
            self.bytes.truncate(at as usize);
        }
    }

    /// Whether every event's table is known (none left for [`Self::complete`]).
    pub fn is_complete(&self) -> bool {
        !self.at.contains(&UNKNOWN)
    }

    /// These tables with the unknown ones built (a scan of just those
    /// values of `frame`); the others are copied.
    pub fn complete(&self, frame: &Frame) -> Self {
        let mut out = FieldTables {
            at: Vec::with_capacity(frame.events.len()),
            bytes: Vec::with_capacity(self.bytes.len().max(frame.data.len() / 2)),
        };
        for (i, e) in frame.events.iter().enumerate() {
            match self.at.get(i).copied() {
                Some(UNKNOWN) | None => {
                    let value = e.value.and_then(|s| span_bytes(&frame.data, s));
                    // Not JSON: no table; the plugin scans it and says why.
                    let _ = out.push(value);
                }
                Some(_) => match self.get(i) {
                    Some(t) => {
                        let at = out.offset();
                        out.bytes.extend_from_slice(t);
                        out.at.push(at);
                    }
                    None => out.at.push(NONE),
                },
            }
        }
        out
    }

    /// The tables of `output`'s events, each of which derives from event
    /// `parent` of `input`: an output value equal to its parent's value
    /// keeps the parent's table (or its having none), any other value's is
    /// unknown (built by [`Self::complete`] if a stage downstream reads
    /// tables).
    pub fn inherit(input: &Frame, tables: &FieldTables, output: &Frame) -> Self {
        let mut out = FieldTables {
            at: Vec::with_capacity(output.events.len()),
            bytes: Vec::new(),
        };
        for e in &output.events {
            let value = e.value.and_then(|s| span_bytes(&output.data, s));
            let parent = input.events.get(e.parent as usize);
            let parent_value = parent
                .and_then(|p| p.value)
                .and_then(|s| span_bytes(&input.data, s));
            let parent_at = tables.at.get(e.parent as usize).copied();
            match (value, parent_value, parent_at) {
                (None, _, _) => out.at.push(NONE),
                (Some(v), Some(p), Some(at)) if v == p => match tables.get(e.parent as usize) {
                    Some(t) => {
                        let at = out.offset();
                        out.bytes.extend_from_slice(t);
                        out.at.push(at);
                    }
                    None => out.at.push(if at == UNKNOWN { UNKNOWN } else { NONE }),
                },
                _ => out.at.push(UNKNOWN),
            }
        }
        out
    }

    /// Event `i`'s table, exactly its bytes.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let at = *self.at.get(i)?;
        if !is_table(at) {
            return None;
        }
        let rest = self.bytes.get(at as usize..)?;
        let mut n = [0u8; 4];
        n.copy_from_slice(rest.get(..4)?);
        let len = (u32::from_le_bytes(n) as usize)
            .checked_mul(16)?
            .checked_add(4)?;
        rest.get(..len)
    }

    /// Where event `i`'s table starts among all of them ([`Self::bytes`]).
    pub fn offset_of(&self, i: usize) -> Option<u32> {
        self.at.get(i).copied().filter(|&a| is_table(a))
    }

    /// All tables, one after another, as the host appends them to a batch's data.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn offset(&self) -> u32 {
        // Batch data is far below 4 GiB; a table past it is simply not sent
        // (`wire::pack` checks the sum).
        u32::try_from(self.bytes.len())
            .ok()
            .filter(|&a| is_table(a))
            .unwrap_or(NONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::BatchBuilder;
    use std::sync::Arc;

    fn frame(values: &[Option<&str>]) -> Frame {
        let mut b = BatchBuilder::new("s", Arc::from("src"), values.len());
        for (i, v) in values.iter().enumerate() {
            b.push(None, v.map(str::as_bytes), &[], 0, i as u64);
        }
        b.finish().events
    }

    #[test]
    fn objects_get_the_table_the_plugin_would_scan_and_nothing_else_does() {
        let f = frame(&[
            Some(r#"{"id":7,"name":"Ana"}"#),
            None,
            Some("[1,2]"),
            Some(r#"{"broken":"#),
            Some(r#"{"a":{"b":1},"a":2}"#),
        ]);
        let t = FieldTables::build(&f);
        for (i, value) in [
            (0, r#"{"id":7,"name":"Ana"}"#),
            (4, r#"{"a":{"b":1},"a":2}"#),
        ] {
            let mut want = Vec::new();
            assert!(table::encode(value.as_bytes(), &mut want).expect("json"));
            assert_eq!(t.get(i), Some(&want[..]), "event {i}");
        }
        for i in [1, 2, 3, 9] {
            assert_eq!(t.get(i), None, "event {i}");
        }
        assert_eq!(t.offset_of(0), Some(0));
        assert!(t.offset_of(4).is_some_and(|o| o > 0));
    }

    #[test]
    fn a_source_checks_and_indexes_in_one_scan_and_keeps_tables_in_step_with_events() {
        let mut b = BatchBuilder::new("s", Arc::from("src"), 4).index_json();
        assert!(b.push_json(None, br#"{"a":1}"#, 0, 1).is_ok());
        // Not JSON: refused with the usual check's reason, nothing appended.
        let err = b.push_json(None, br#"{"a":"#, 0, 2).expect_err("not json");
        assert_eq!(Err(err), crate::event::check_json(br#"{"a":"#));
        // Broken UTF-8 inside a string and a lone surrogate: the usual
        // check lets them through, so the source keeps them, with no table
        // (the stage that reads them refuses them).
        for odd in [&b"{\"a\":\"\xff\"}"[..], br#"{"a":"\ud800"}"#] {
            assert!(crate::event::check_json(odd).is_ok());
            assert!(b.push_json(None, odd, 0, 3).is_ok());
        }
        // Nesting past the scanner's 128 levels: the source decides as the
        // usual check does, whatever the scanner says.
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        let usual = crate::event::check_json(deep.as_bytes()).is_ok();
        let mut deep_b = BatchBuilder::new("s", Arc::from("src"), 1).index_json();
        assert_eq!(deep_b.push_json(None, deep.as_bytes(), 0, 1).is_ok(), usual);
        let deep_batch = deep_b.finish();
        assert_eq!(deep_batch.len(), usize::from(usual));
        assert!(deep_batch.tables.get().is_some_and(|t| t.get(0).is_none()));
        assert!(b.push_json(None, b"[1]", 0, 4).is_ok());
        b.push(None, None, &[], 0, 5);
        assert!(b.push_json(None, br#"{"b":2,"c":3}"#, 0, 6).is_ok());
        let batch = b.finish();
        assert_eq!(batch.len(), 6);
        let kept = batch.tables.get().expect("built by the source");
        assert_eq!(
            kept,
            &FieldTables::build(&batch.events),
            "as a stage would build them"
        );
        assert!(kept.get(0).is_some() && kept.get(5).is_some());
        for i in 1..5 {
            assert!(kept.get(i).is_none(), "event {i}");
        }
        // Too late to start indexing once events are in.
        let mut late = BatchBuilder::new("s", Arc::from("src"), 1);
        late.push(None, Some(b"{}"), &[], 0, 1);
        assert!(late.index_json().finish().tables.get().is_none());

        // Without index_json: serde's check, no tables.
        let mut plain = BatchBuilder::new("s", Arc::from("src"), 1);
        assert!(plain.push_json(None, b"{\"a\":\"\xff\"}", 0, 1).is_ok());
        assert!(plain.push_json(None, b"{", 0, 2).is_err());
        let plain = plain.finish();
        assert_eq!(plain.len(), 1);
        assert!(plain.tables.get().is_none());
    }

    #[test]
    fn an_output_keeps_its_parents_table_only_when_its_value_is_the_same_bytes() {
        let input = frame(&[
            Some(r#"{"id":1}"#),
            Some(r#"{"id":2}"#),
            Some(r#"{"id":3}"#),
        ]);
        let tables = FieldTables::build(&input);
        // Parents 2, 0 (unchanged), 1 (changed), 0 again, and a tombstone.
        let mut output = frame(&[
            Some(r#"{"id":3}"#),
            Some(r#"{"id":1}"#),
            Some(r#"{"id":2,"x":1}"#),
            Some(r#"{"id":1}"#),
            None,
        ]);
        for (e, parent) in output.events.iter_mut().zip([2, 0, 1, 0, 1]) {
            e.parent = parent;
        }
        let kept = FieldTables::inherit(&input, &tables, &output);
        assert_eq!(kept.get(0), tables.get(2));
        assert_eq!(kept.get(1), tables.get(0));
        assert_eq!(kept.get(2), None, "changed value, no table yet");
        assert_eq!(kept.get(3), tables.get(0));
        assert_eq!(kept.get(4), None, "tombstone");
        // The changed value's is built when a stage that reads tables needs
        // it, and only that one is scanned; the rest are the kept ones.
        assert!(!kept.is_complete());
        let done = kept.complete(&output);
        assert!(done.is_complete());
        assert_eq!(done, FieldTables::build(&output));
        // A parent index past the input (checked later) is no table, not a panic.
        output.events[0].parent = 99;
        assert_eq!(FieldTables::inherit(&input, &tables, &output).get(0), None);
    }
}
