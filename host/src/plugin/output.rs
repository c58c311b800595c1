//! Turning a plugin's output frame into the batch a stage emits. The frame
//! came from an untrusted guest: every span and parent index is checked
//! before the host trusts it.

use crate::event::abi::{Frame, Span};
use crate::event::{Batch, FieldTables};

impl Batch {
    /// Builds the batch a stage emits from a plugin's output: checks every
    /// span and parent index (a buggy plugin must not crash the host) and
    /// copies origin metadata from each output event's parent.
    pub fn from_output(input: &Batch, stage: &str, mut out: Frame) -> Result<Batch, String> {
        let n_data = out.data.len();
        let in_range = |s: &Span| {
            (s.offset as usize)
                .checked_add(s.len as usize)
                .is_some_and(|end| end <= n_data)
        };
        for h in &out.headers {
            if !in_range(&h.name) || !in_range(&h.value) {
                return Err("output header refers outside the batch data".into());
            }
        }
        let mut positions = Vec::with_capacity(out.events.len());
        for (i, e) in out.events.iter_mut().enumerate() {
            if e.key.as_ref().is_some_and(|s| !in_range(s))
                || e.value.as_ref().is_some_and(|s| !in_range(s))
            {
                return Err(format!("output event {i} refers outside the batch data"));
            }
            let hs = e.headers.offset as usize;
            if hs
                .checked_add(e.headers.len as usize)
                .is_none_or(|end| end > out.headers.len())
            {
                return Err(format!(
                    "output event {i} refers to headers that do not exist"
                ));
            }
            let Some(pos) = input.positions.get(e.parent as usize) else {
                return Err(format!(
                    "output event {i} names parent {} but the input had {} events",
                    e.parent,
                    input.len()
                ));
            };
            positions.push(*pos);
            e.stream = 0;
        }
        out.streams = vec![stage.to_string()];
        // Values the plugin passed on unchanged keep their field tables;
        // the others' are built only if a stage downstream reads tables.
        let tables = std::sync::OnceLock::new();
        let mut inherited = None;
        if let Some(known) = input.known_tables() {
            let kept = FieldTables::inherit(&input.events, known, &out);
            if kept.is_complete() {
                let _ = tables.set(kept);
            } else {
                inherited = Some(kept);
            }
        }
        Ok(Batch {
            events: out,
            origin: input.origin.clone(),
            positions,
            tables,
            inherited,
        })
    }
}
