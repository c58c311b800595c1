//! [`FieldSet`]: the names a plugin reads from every event, found in one
//! pass over a view's fields.
//!
//! [`JsonView::get`] walks the field table from the end for each name, so a
//! plugin reading seven fields of a five-field event compares keys a score of
//! times per event; in Wasm that was a seventh of `lookup-join`'s time.
//! A `FieldSet` visits each field once and compares its key only with the
//! names of the same length, first and last byte (a wide event's `f12` and
//! `f13` differ there; a bucket of names sharing all three is rare).

use super::{unescape, JsonView};

/// Names to find together in each view (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct FieldSet {
    names: Vec<String>,
    /// `buckets[bucket(name)]`: the indexes in `names` of the names that
    /// fall there, compared in full.
    buckets: Vec<Vec<usize>>,
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
        FieldSet { names, buckets }
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
        found.resize(self.names.len(), None);
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
}
