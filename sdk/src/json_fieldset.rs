//! [`FieldSet`]: the names a plugin reads from every event, found in one
//! pass over a view's fields.
//!
//! [`JsonView::get`] walks the field table from the end for each name, so a
//! plugin reading seven fields of a five-field event compares keys a score of
//! times per event; in Wasm that was a seventh of `lookup-join`'s time.
//! A `FieldSet` visits each field once and compares its key only with the
//! names of the same length, first and last byte (a wide event's `f12` and
//! `f13` differ there; a bucket of names sharing all three is rare).
//!
//! Events of one stream mostly share their keys and their order (one
//! producer, one schema). So a set remembers the last view's keys and what
//! it found there: a view whose keys are the same bytes in the same order
//! gets the same answer after one comparison per key, with no hashing.

use std::cell::RefCell;

use super::{unescape, JsonView};

/// Names to find together in each view (see the module docs). It remembers
/// the last view's keys, so it is `Send` but not `Sync`: one per plugin
/// instance, not shared in a `static`.
#[derive(Debug, Clone, Default)]
pub struct FieldSet {
    names: Vec<String>,
    /// `buckets[bucket(name)]`: the indexes in `names` of the names that
    /// fall there, compared in full.
    buckets: Vec<Vec<usize>>,
    /// The keys of the last view searched, and what was found there.
    last: RefCell<LastShape>,
}

/// One view's keys, end to end as written, and the answer for them.
#[derive(Debug, Clone, Default)]
struct LastShape {
    keys: Vec<u8>,
    /// Where each key ends in `keys`, and whether it was escaped.
    ends: Vec<(usize, bool)>,
    found: Vec<Option<usize>>,
    /// False until a view was searched (an empty `ends` then still means
    /// "not an object or no fields", which has an answer too).
    valid: bool,
    /// Counts the shapes remembered: [`FieldSet::last_shape`].
    shape: u64,
}

impl LastShape {
    /// Whether `view` has exactly these keys in this order.
    fn matches(&self, view: &JsonView<'_>) -> bool {
        if !self.valid || self.ends.len() != view.fields.len() {
            return false;
        }
        let mut start = 0;
        for (e, &(end, escaped)) in view.fields.iter().zip(&self.ends) {
            let text = &view.bytes[e.key.0..e.key.1];
            let Some(cached) = self.keys.get(start..end) else {
                return false;
            };
            if e.escaped != escaped || !super::same_bytes(text, cached) {
                return false;
            }
            start = end;
        }
        true
    }

    fn remember(&mut self, view: &JsonView<'_>, found: &[Option<usize>]) {
        self.keys.clear();
        self.ends.clear();
        for e in view.fields.iter() {
            self.keys.extend_from_slice(&view.bytes[e.key.0..e.key.1]);
            self.ends.push((self.keys.len(), e.escaped));
        }
        self.found.clear();
        self.found.extend_from_slice(found);
        self.valid = true;
        self.shape = self.shape.wrapping_add(1);
    }
}

/// Buckets of a set: a power of two, a few times the names a plugin reads.
const BUCKETS: usize = 64;

/// A key's bucket, from its length, first and last byte.
fn bucket(key: &[u8]) -> usize {
    let (first, last) = match (key.first(), key.last()) {
        (Some(&f), Some(&l)) => (usize::from(f), usize::from(l)),
        _ => (0, 0),
    };
    (key.len().wrapping_mul(31) ^ first.wrapping_mul(7) ^ last.wrapping_mul(13)) % BUCKETS
}

impl FieldSet {
    /// A set of `names`; the same name twice is found twice.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        let mut buckets = vec![Vec::new(); BUCKETS];
        for (i, n) in names.iter().enumerate() {
            buckets[bucket(n.as_bytes())].push(i);
        }
        FieldSet {
            names,
            buckets,
            last: RefCell::default(),
        }
    }

    /// The names, in the order given.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// For each name (in order), the index in `view`'s fields of its last
    /// occurrence, as [`JsonView::find`] gives it; `found` is resized to
    /// the number of names.
    pub fn find_all(&self, view: &JsonView<'_>, found: &mut Vec<Option<usize>>) {
        found.clear();
        self.append_all(view, found);
    }

    /// [`FieldSet::find_all`], appending the answer to `found` (whose first
    /// entries stay as they were), so that the answers for a whole batch
    /// can go end to end in one vector without a copy each.
    pub fn append_all(&self, view: &JsonView<'_>, found: &mut Vec<Option<usize>>) {
        let mut last = self.last.borrow_mut();
        if last.matches(view) {
            found.extend_from_slice(&last.found);
            return;
        }
        let start = found.len();
        self.search(view, found);
        last.remember(view, &found[start..]);
    }

    /// A number for the keys, in order, of the last view this set searched
    /// ([`FieldSet::find_all`] or [`FieldSet::append_all`]). Two views
    /// searched one after the other that get the same number had the same
    /// keys in the same order, so the same answer: a plugin can keep what it
    /// worked out from the answer (which fields go out, in what runs) and
    /// redo it only when the number changes. Numbers of different sets, or
    /// of clones of one set, are not comparable.
    pub fn last_shape(&self) -> u64 {
        self.last.borrow().shape
    }

    /// Appends one entry per name to `found`: where `view` has it.
    fn search(&self, view: &JsonView<'_>, found: &mut Vec<Option<usize>>) {
        let start = found.len();
        found.resize(start + self.names.len(), None);
        let found = &mut found[start..];
        for (i, e) in view.fields.iter().enumerate() {
            let text = &view.bytes[e.key.0..e.key.1];
            if e.escaped {
                // Rare: compare the unescaped key with every name.
                if let Some(key) = unescape(text) {
                    for (slot, name) in found.iter_mut().zip(&self.names) {
                        if *name == key {
                            *slot = Some(i);
                        }
                    }
                }
                continue;
            }
            let Some(candidates) = self.buckets.get(bucket(text)) else {
                continue;
            };
            for &n in candidates {
                if super::same_bytes(self.names[n].as_bytes(), text) {
                    found[n] = Some(i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_found_where_find_finds_it() {
        let long = "k".repeat(80);
        let value =
            format!(r#"{{"a":1,"bb":2,"a":3,"c\u0064":4,"cd":5,"{long}":6,"":7,"x":{{"a":8}}}}"#);
        let view = JsonView::parse(value.as_bytes()).expect("json");
        let names = ["a", "bb", "cd", "missing", &long, "", "a", "zz", "k"];
        let set = FieldSet::new(names);
        let mut found = vec![Some(99); 2];
        set.find_all(&view, &mut found);
        assert_eq!(found.len(), names.len());
        for (name, got) in names.iter().zip(&found) {
            assert_eq!(*got, view.find(name), "{name:?}");
        }
        assert_eq!(found[0], Some(2), "the last `a`, not the nested one");
        assert_eq!(found[2], Some(4), "`cd` after the escaped `c\\u0064`");
        // Not an object: nothing found.
        let array = JsonView::parse(b"[1]").expect("json");
        set.find_all(&array, &mut found);
        assert!(found.iter().all(Option::is_none));
    }

    #[test]
    fn the_last_views_answer_is_reused_only_for_the_same_keys_in_the_same_order() {
        let set = FieldSet::new(["a", "b", "cd", "a"]);
        // Each view after the first differs from the one before in one way
        // that changes the answer (or, for values, does not).
        let views = [
            r#"{"a":1,"b":2,"cd":3}"#,
            r#"{"a":"other","b":[9],"cd":{"a":1}}"#, // same keys, other values
            r#"{"b":1,"a":2,"cd":3}"#,               // reordered
            r#"{"b":1,"a":2,"ce":3}"#,               // one key changed
            r#"{"b":1,"a":2,"c\u0064":3}"#,          // escaped
            r#"{"b":1,"a":2,"cd":3}"#,
            r#"{"b":1,"a":2,"cd":3,"a":4}"#, // one more, a duplicate
            r#"[1,2,3]"#,
            r#"{}"#,
            r#"{"a":1,"b":2,"cd":3}"#,
            r#"{"a":1,"b":2,"cd":3}"#,
        ];
        let mut found = Vec::new();
        let (mut last_keys, mut last_shape, mut kept) = (None, None, 0);
        for text in views {
            let view = JsonView::parse(text.as_bytes()).expect("json");
            set.find_all(&view, &mut found);
            let expected: Vec<Option<usize>> = set.names().iter().map(|n| view.find(n)).collect();
            assert_eq!(found, expected, "{text}");
            // The shape's number stays exactly while the keys do.
            let keys: Vec<(Vec<u8>, bool)> = view
                .fields()
                .map(|(k, _)| (k.escaped_text().to_vec(), k.has_escape()))
                .collect();
            let same = last_keys.as_ref() == Some(&keys);
            assert_eq!(Some(set.last_shape()) == last_shape, same, "{text}");
            kept += usize::from(same);
            (last_keys, last_shape) = (Some(keys), Some(set.last_shape()));
        }
        // `{"a"..}` twice, and `{}` after `[1,2,3]` (no keys either).
        assert_eq!(kept, 3, "three views have the keys of the one before");
        // Appended answers equal `find_all`'s and leave what was there,
        // whether the set searched the view or remembered its shape.
        let mut batch = vec![Some(7)];
        for text in views {
            let view = JsonView::parse(text.as_bytes()).expect("json");
            let start = batch.len();
            set.append_all(&view, &mut batch);
            set.find_all(&view, &mut found);
            assert_eq!(&batch[start..], &found[..], "{text}");
        }
        assert_eq!(batch.len(), 1 + views.len() * set.names().len());
        assert_eq!(batch[0], Some(7));
        // A clone starts from the same remembered shape and stays right.
        let clone = set.clone();
        let view = JsonView::parse(br#"{"cd":0,"a":1}"#).expect("json");
        clone.find_all(&view, &mut found);
        assert_eq!(found, vec![Some(1), None, Some(0), Some(1)]);
    }
}
