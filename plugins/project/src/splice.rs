//! The splicing path of `project`: when every `rename`, `drop` and `set` path
//! is a top-level name (and `select` paths are top-level names, or nested
//! paths under names nothing else touches), the output object is written by
//! copying the input's raw field slices (keys and values byte for byte) and
//! serializing only the computed values. Other projections take the tree
//! path. A nested `select` path (`shipping.city`) writes its parent objects
//! around the raw leaf, as the tree path does, only when the leaf exists.
//!
//! Output order: with `select`, the selected fields in `select` order;
//! without, the input's fields in input order; then renamed fields in
//! `rename` order; then computed fields in `set` order. Duplicate input keys:
//! a field `project` reads, selects, renames, drops or sets is the last
//! occurrence and is written once; untouched fields are copied as they are,
//! duplicates included, so a last-wins reader sees the same value.

use serde_json::Value;
use sluice_sdk::json::{FieldSet, JsonKey, JsonView, Kind, ObjectWriter, Raw, RawKey};

/// One selected name and, for a nested path, the names selected under it
/// (a leaf when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sel {
    pub name: String,
    pub children: Vec<Sel>,
}

impl Sel {
    /// Adds the path `names` under `list`, merging common parents.
    pub fn insert(list: &mut Vec<Sel>, names: &[&str]) {
        let Some((first, rest)) = names.split_first() else {
            return;
        };
        let i = match list.iter().position(|s| s.name == *first) {
            Some(i) => i,
            None => {
                list.push(Sel {
                    name: first.to_string(),
                    children: Vec::new(),
                });
                list.len() - 1
            }
        };
        Sel::insert(&mut list[i].children, rest);
    }

    /// Whether the selection finds anything in `raw` (a leaf always does).
    fn present(&self, raw: Raw<'_>) -> bool {
        if self.children.is_empty() {
            return true;
        }
        // A leaf is there as soon as its name occurs (the last occurrence,
        // the one written, exists then too): stop at the first, where
        // finding the children's values reads the object to its end.
        let is_leaf_name = |key: &RawKey<'_>| {
            self.children
                .iter()
                .any(|c| c.children.is_empty() && key.is(&c.name))
        };
        let has_leaf = self.children.iter().any(|c| c.children.is_empty());
        if has_leaf
            && raw.kind() == Kind::Object
            && raw.entries().any(|(key, _)| is_leaf_name(&key))
        {
            return true;
        }
        let mut any = false;
        self.each_child(raw, |child, r| any = any || child.present(r));
        any
    }

    /// Writes `raw` under `self.name`, keeping only the selected children.
    fn write(&self, w: &mut ObjectWriter<'_>, raw: Raw<'_>) {
        if self.children.is_empty() {
            w.raw(&self.name, raw);
            return;
        }
        let mut inner = w.object(&self.name);
        self.each_child(raw, |child, r| {
            if child.present(r) {
                child.write(&mut inner, r);
            }
        });
        inner.finish();
    }

    /// Calls `f` with each child, in `children` order, and its value in
    /// `raw` (`Raw::member`: the last occurrence of its name in an object,
    /// an index in an array), skipping children `raw` lacks. An object is
    /// read in one pass for up to [`ONE_PASS`] children: `member` per child
    /// read the whole object each time (a third of `project`'s time on 2 KB
    /// events with two nested selections).
    fn each_child<'a>(&self, raw: Raw<'a>, mut f: impl FnMut(&Sel, Raw<'a>)) {
        if raw.kind() != Kind::Object || self.children.len() > ONE_PASS {
            for child in &self.children {
                if let Some(r) = raw.member(&child.name) {
                    f(child, r);
                }
            }
            return;
        }
        let mut found: [Option<Raw<'a>>; ONE_PASS] = [None; ONE_PASS];
        for (key, value) in raw.entries() {
            for (slot, child) in found.iter_mut().zip(&self.children) {
                if key.is(&child.name) {
                    *slot = Some(value);
                }
            }
        }
        for (child, r) in self.children.iter().zip(found) {
            if let Some(r) = r {
                f(child, r);
            }
        }
    }
}

/// The most nested selections under one name read in one pass.
const ONE_PASS: usize = 8;

/// The top-level names of a projection that can be spliced.
#[derive(Debug, Clone)]
pub(crate) struct Splice {
    pub select: Option<Vec<Sel>>,
    pub rename: Vec<(String, String)>,
    pub drop: Vec<String>,
    pub set: Vec<String>,
    /// The new names of `rename` and the names of `set`, encoded once.
    rename_keys: Vec<JsonKey>,
    set_keys: Vec<JsonKey>,
    /// The top-level names of `select`, then those each `set` expression
    /// reads from the input (`read_ranges`), found in one pass per event.
    names: FieldSet,
    /// Per `set` entry: where in the answer of `names` the fields its
    /// expression reads are, when it reads them by index.
    read_ranges: Vec<Option<(usize, usize)>>,
    /// Per `select` name, whether a `drop` or `set` name takes it out. With
    /// no `rename` that depends on the names alone, so it is worked out
    /// here once instead of comparing names per event.
    select_dropped: Vec<bool>,
    /// Whether what goes out depends only on the input's keys and their
    /// order (no nested selection, whose fields depend on values): then a
    /// plan holds for every view of one shape.
    keys_decide: bool,
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
    found: Vec<Option<usize>>,
    /// What goes out, in order, for the view last planned.
    ops: Vec<Op>,
    /// The `names` set's shape number ([`FieldSet::last_shape`]) that
    /// `ops` was planned for, when it holds for every view of that shape.
    planned_for: Option<u64>,
    /// The shape number of the view [`Splice::find`] searched last, if it
    /// searched one.
    shape: Option<u64>,
}

/// One step of writing the projected object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Input fields `first..=last`, each under its own key.
    Fields(usize, usize),
    /// Selected name `i` (with nested selections) from input field `value`.
    Select(usize, usize),
    /// Renamed field `i` from input field `value`.
    Renamed(usize, usize),
}

impl Splice {
    pub fn new(
        select: Option<Vec<Sel>>,
        rename: Vec<(String, String)>,
        drop: Vec<String>,
        set: Vec<String>,
        reads: Vec<Option<Vec<String>>>,
    ) -> Self {
        // One set finds the selected names and the fields each `set`
        // expression reads: one search (or one shape check) per event.
        let mut names: Vec<&str> = select.iter().flatten().map(|s| s.name.as_str()).collect();
        let mut read_ranges = Vec::with_capacity(reads.len());
        for r in &reads {
            read_ranges.push(r.as_ref().map(|r| {
                let start = names.len();
                names.extend(r.iter().map(String::as_str));
                (start, names.len())
            }));
        }
        let names = FieldSet::new(names);
        let select_dropped = select
            .iter()
            .flatten()
            .map(|sel| drop.iter().chain(&set).any(|name| *name == sel.name))
            .collect();
        Splice {
            select_dropped,
            keys_decide: select
                .as_ref()
                .is_some_and(|s| s.iter().all(|sel| sel.children.is_empty())),
            names,
            read_ranges,
            rename_keys: rename.iter().map(|(_, new)| JsonKey::new(new)).collect(),
            set_keys: set.iter().map(|name| JsonKey::new(name)).collect(),
            select,
            rename,
            drop,
            set,
        }
    }

    fn key_is(&self, view: &JsonView<'_>, key: Key, name: &str) -> bool {
        match key {
            Key::Field(i) => view.field(i).0.is(name),
            Key::Select(i) => self.select.as_ref().is_some_and(|s| s[i].name == name),
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

    /// Finds in `view` (an object) the names [`Splice::write`] and
    /// [`Splice::reads`] need; call it first for each view.
    pub fn find(&self, view: &JsonView<'_>, scratch: &mut Scratch) {
        scratch.shape = if self.names.names().is_empty() {
            scratch.found.clear();
            None
        } else {
            self.names.find_all(view, &mut scratch.found);
            Some(self.names.last_shape())
        };
    }

    /// Where the view [`Splice::find`] searched last has the fields that
    /// `set` entry `i`'s expression reads, in [`sluice_expr::Expr::fields`]'
    /// order; `None` when it reads them by name.
    pub fn reads<'s>(&self, scratch: &'s Scratch, i: usize) -> Option<&'s [Option<usize>]> {
        let (start, end) = self.read_ranges.get(i).copied().flatten()?;
        scratch.found.get(start..end)
    }

    /// Writes the projected object for `view` (an object), which
    /// [`Splice::find`] searched last, to `buf`. `computed` yields the
    /// values of the `set` fields, in `set` order.
    pub fn write<'v>(
        &self,
        view: &JsonView<'_>,
        scratch: &mut Scratch,
        computed: impl Iterator<Item = &'v Option<Value>>,
        buf: &mut Vec<u8>,
    ) {
        // Events of one stream mostly share their keys: what goes out is
        // worked out again only when they change (or always, when values
        // decide it too: then `keys_decide` is false).
        let shape = scratch.shape.filter(|_| self.keys_decide);
        if shape.is_none() || scratch.planned_for != shape {
            self.plan(view, scratch);
            scratch.planned_for = shape;
        }
        let mut w = ObjectWriter::new(buf);
        for &op in &scratch.ops {
            match op {
                Op::Fields(first, last) => w.raw_fields(view, first, last),
                Op::Select(i, value) => {
                    if let Some(sel) = self.select.as_ref().and_then(|s| s.get(i)) {
                        sel.write(&mut w, view.field_value(value));
                    }
                }
                Op::Renamed(i, value) => w.raw_at(&self.rename_keys[i], view.field_value(value)),
            }
        }
        // `None`: a `case` without `else` matched nothing; the field is
        // left out.
        for (key, value) in self.set_keys.iter().zip(computed) {
            if let Some(value) = value {
                w.value_at(key, value);
            }
        }
        w.finish();
    }

    /// Works out what [`Splice::write`] writes for `view`, into
    /// `scratch.ops`; with `select`, `scratch.found` already holds where
    /// `view` has the selected names.
    fn plan(&self, view: &JsonView<'_>, scratch: &mut Scratch) {
        let slots = &mut scratch.slots;
        slots.clear();
        // With `select` and no `rename`, which names `drop` and `set` take
        // out depends on the names alone (`select_dropped`).
        let names_known = self.select.is_some() && self.rename.is_empty();
        match &self.select {
            Some(select) => {
                // `scratch.found` starts with where `view` has the
                // selected names (`Splice::find`).
                // Without `rename`, the names `drop` and `set` take out are
                // known already (`select_dropped`): no slot is made for them.
                for ((i, sel), found) in select.iter().enumerate().zip(&scratch.found) {
                    if names_known && self.select_dropped.get(i).copied().unwrap_or(false) {
                        continue;
                    }
                    // A whole field (no nested selection) is present as soon
                    // as it is found.
                    let present =
                        |f: &usize| sel.children.is_empty() || sel.present(view.field_value(*f));
                    if let Some(value) = found.filter(present) {
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
        if !names_known {
            for name in self.drop.iter().chain(&self.set) {
                self.kill(view, slots, name);
            }
        }

        // Input fields copied as they are (their keys raw), consecutive in
        // the input, go out in one copy (`ObjectWriter::raw_fields`).
        let ops = &mut scratch.ops;
        ops.clear();
        let mut run: Option<(usize, usize)> = None;
        for slot in slots.iter().filter(|s| s.live) {
            let as_is = match slot.key {
                Key::Field(_) => true,
                // A selected name is the input key's value: copy the key raw.
                Key::Select(i) => self
                    .select
                    .as_ref()
                    .is_none_or(|s| s[i].children.is_empty()),
                Key::Renamed(_) => false,
            };
            if as_is {
                match run.as_mut() {
                    Some((_, last)) if *last + 1 == slot.value => *last = slot.value,
                    _ => {
                        if let Some((first, last)) = run.take() {
                            ops.push(Op::Fields(first, last));
                        }
                        run = Some((slot.value, slot.value));
                    }
                }
                continue;
            }
            if let Some((first, last)) = run.take() {
                ops.push(Op::Fields(first, last));
            }
            match slot.key {
                Key::Select(i) => ops.push(Op::Select(i, slot.value)),
                Key::Renamed(i) => ops.push(Op::Renamed(i, slot.value)),
                Key::Field(_) => {}
            }
        }
        if let Some((first, last)) = run.take() {
            ops.push(Op::Fields(first, last));
        }
    }
}
