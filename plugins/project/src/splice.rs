//! The splicing path of `project`: when every `select`, `rename`, `drop` and
//! `set` path is a top-level name, the output object is written by copying
//! the input's raw field slices (keys and values byte for byte) and
//! serializing only the computed values. Nested paths take the tree path.
//!
//! Output order: with `select`, the selected fields in `select` order;
//! without, the input's fields in input order; then renamed fields in
//! `rename` order; then computed fields in `set` order. Duplicate input keys:
//! a field `project` reads, selects, renames, drops or sets is the last
//! occurrence and is written once; untouched fields are copied as they are,
//! duplicates included, so a last-wins reader sees the same value.

use serde_json::Value;
use sluice_sdk::json::{JsonView, ObjectWriter};

/// The top-level names of a projection whose paths are all one name deep.
#[derive(Debug, Clone)]
pub(crate) struct Splice {
    pub select: Option<Vec<String>>,
    pub rename: Vec<(String, String)>,
    pub drop: Vec<String>,
    pub set: Vec<String>,
}

/// Where an output field's key comes from.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// The input field's own key, copied raw.
    Field(usize),
    /// `select[i]`.
    Select(usize),
    /// The new name of `rename[i]`.
    Renamed(usize),
}

/// One candidate output field: its key and the input field holding its value.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: Key,
    value: usize,
    live: bool,
}

/// Per-event buffers, kept across events.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scratch {
    slots: Vec<Slot>,
    moved: Vec<Option<usize>>,
}

impl Splice {
    fn key_is(&self, view: &JsonView<'_>, key: Key, name: &str) -> bool {
        match key {
            Key::Field(i) => view.field(i).0.is(name),
            Key::Select(i) => self.select.as_ref().is_some_and(|s| s[i] == name),
            Key::Renamed(i) => self.rename[i].1 == name,
        }
    }

    fn kill(&self, view: &JsonView<'_>, slots: &mut [Slot], name: &str) {
        for slot in slots.iter_mut().filter(|s| s.live) {
            if self.key_is(view, slot.key, name) {
                slot.live = false;
            }
        }
    }

    /// Writes the projected object for `view` (an object) to `buf`.
    /// `computed` yields the values of the `set` fields, in `set` order.
    pub fn write<'v>(
        &self,
        view: &JsonView<'_>,
        scratch: &mut Scratch,
        computed: impl Iterator<Item = &'v Value>,
        buf: &mut Vec<u8>,
    ) {
        let slots = &mut scratch.slots;
        slots.clear();
        match &self.select {
            Some(select) => {
                for (i, name) in select.iter().enumerate() {
                    if let Some(value) = view.find(name) {
                        slots.push(Slot {
                            key: Key::Select(i),
                            value,
                            live: true,
                        });
                    }
                }
            }
            None => slots.extend((0..view.len()).map(|i| Slot {
                key: Key::Field(i),
                value: i,
                live: true,
            })),
        }

        // rename: one simultaneous move, as in the tree path.
        if !self.rename.is_empty() {
            let moved = &mut scratch.moved;
            moved.clear();
            for (old, _) in &self.rename {
                let last = slots
                    .iter()
                    .rev()
                    .find(|s| s.live && self.key_is(view, s.key, old));
                moved.push(last.map(|s| s.value));
            }
            for (old, _) in &self.rename {
                self.kill(view, slots, old);
            }
            for (i, ((_, new), value)) in self.rename.iter().zip(moved.iter()).enumerate() {
                if let Some(value) = *value {
                    self.kill(view, slots, new);
                    slots.push(Slot {
                        key: Key::Renamed(i),
                        value,
                        live: true,
                    });
                }
            }
        }
        for name in self.drop.iter().chain(&self.set) {
            self.kill(view, slots, name);
        }

        let mut w = ObjectWriter::new(buf);
        for slot in slots.iter().filter(|s| s.live) {
            let (key, value) = view.field(slot.value);
            match slot.key {
                // A selected name is the input key's value: copy the key raw.
                Key::Field(_) | Key::Select(_) => w.raw_field(key, value),
                Key::Renamed(i) => w.raw(&self.rename[i].1, value),
            }
        }
        for (name, value) in self.set.iter().zip(computed) {
            w.value(name, value);
        }
        w.finish();
    }
}
