//! One row of a materialized table, laid out for lookups.
//!
//! A lookup join reads a row per event. Held as a map of `Vec` to `Vec`, each
//! lookup chased two pointers to two allocations (the key to compare, then the
//! value to copy), and on a table that does not fit in cache those two misses
//! were most of the host's side of `lookup-many`. A row now keeps its key, its
//! value and the value's field table (`sluice_sdk::json::table`, built once
//! when the row is stored rather than by every plugin that reads it) in one
//! allocation.

use sluice_sdk::json::{table, Entry};

/// A row: `key ‖ value ‖ field table` in one allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct Row {
    bytes: Box<[u8]>,
    key_len: usize,
    value_len: usize,
}

impl Row {
    /// A row for `value` under `key`; when `value` is a JSON object the row
    /// also holds its field table. `scratch` is kept between calls.
    pub fn new(key: &[u8], value: &[u8], scratch: &mut Vec<Entry>) -> Self {
        let mut bytes = Vec::with_capacity(key.len() + value.len());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(value);
        // A value that is not a JSON object (or not JSON) has no table: the
        // plugin scans it and decides.
        if !matches!(table::encode(value, scratch, &mut bytes), Ok(true)) {
            bytes.truncate(key.len() + value.len());
        }
        Self {
            bytes: bytes.into_boxed_slice(),
            key_len: key.len(),
            value_len: value.len(),
        }
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.bytes[..self.key_len]
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.bytes[self.key_len..self.key_len + self.value_len]
    }

    /// The value's field table, when it is a JSON object.
    pub fn field_table(&self) -> Option<&[u8]> {
        let t = &self.bytes[self.key_len + self.value_len..];
        (!t.is_empty()).then_some(t)
    }

    /// Bytes held: key, value and table.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for an empty key and value (tables do not store those, but the
    /// type allows it).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Row")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value", &String::from_utf8_lossy(self.value()))
            .finish()
    }
}

/// A table's rows, found by key.
///
/// A hash table of slots, each a row and the first eight bytes of its key.
/// On a table larger than the cache a lookup costs two misses: the slot,
/// then the row. With the key's head in the slot, a key of up to eight bytes
/// (most ids) is matched without touching the row, so [`Rows::get_many`] can
/// find a whole batch's slots first, asking the CPU to fetch each row as it
/// finds its slot, and copy the rows after: the misses overlap instead of
/// following one another. (`hashbrown`'s `HashTable`, already built for
/// wasmtime, because std's sets match a key only by comparing it whole.)
#[derive(Default, Clone)]
pub struct Rows {
    slots: hashbrown::HashTable<Slot>,
    /// SipHash with random keys, as std's maps: keys are event data, and a
    /// tenant who could choose colliding keys would slow every lookup.
    hasher: std::hash::RandomState,
}

#[derive(Clone)]
struct Slot {
    head: u64,
    row: Row,
}

/// The first eight bytes of `key`, zero-padded: equal keys have equal heads,
/// and two keys of at most eight bytes and the same length are equal when
/// their heads are.
fn head(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_le_bytes(b)
}

impl Slot {
    fn holds(&self, key: &[u8], key_head: u64) -> bool {
        self.head == key_head
            && self.row.key_len == key.len()
            && (key.len() <= 8 || self.row.key() == key)
    }
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows").field("len", &self.len()).finish()
    }
}

/// Asks the CPU to start loading the cache line at `p` (a hint: it never
/// faults, and does nothing where the target has no such instruction).
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of x86_64's baseline, and a prefetch reads
        // nothing the program sees: any address, valid or not, is allowed.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl Rows {
    fn hash(&self, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    /// The row under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Row> {
        let key_head = head(key);
        self.slots
            .find(self.hash(key), |s| s.holds(key, key_head))
            .map(|s| &s.row)
    }

    /// The row under each key, in order, into `found` (cleared first). The
    /// slots are found first and each row's first two cache lines fetched
    /// ahead, so that the caller's copies of the rows find them in cache.
    pub fn get_many<'a, 'k>(
        &'a self,
        keys: impl Iterator<Item = &'k [u8]>,
        found: &mut Vec<Option<&'a Row>>,
    ) {
        found.clear();
        for key in keys {
            let row = self.get(key);
            if let Some(row) = row {
                let p = row.bytes.as_ptr();
                prefetch(p);
                prefetch(p.wrapping_add(64));
            }
            found.push(row);
        }
    }

    /// Stores `row`, returning the row it replaces.
    pub fn insert(&mut self, row: Row) -> Option<Row> {
        let key_head = head(row.key());
        let hash = self.hash(row.key());
        let hasher = &self.hasher;
        let slot = Slot {
            head: key_head,
            row,
        };
        match self.slots.entry(
            hash,
            |s| s.holds(slot.row.key(), key_head),
            |s| {
                use std::hash::BuildHasher;
                hasher.hash_one(s.row.key())
            },
        ) {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                Some(std::mem::replace(o.get_mut(), slot).row)
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(slot);
                None
            }
        }
    }

    /// Removes the row under `key`.
    pub fn remove(&mut self, key: &[u8]) -> Option<Row> {
        let key_head = head(key);
        let hash = self.hash(key);
        self.slots
            .find_entry(hash, |s| s.holds(key, key_head))
            .ok()
            .map(|o| o.remove().0.row)
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every row, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &Row> {
        self.slots.iter().map(|s| &s.row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_holds_its_key_value_and_the_table_a_scan_gives() {
        let mut scratch = Vec::new();
        let value = br#"{"id":7,"name":"a\u00e9","tags":[1,2]}"#;
        let row = Row::new(b"7", value, &mut scratch);
        assert_eq!(row.key(), b"7");
        assert_eq!(row.value(), value);
        let mut want = Vec::new();
        assert!(table::encode(value, &mut scratch, &mut want).expect("json"));
        assert_eq!(row.field_table(), Some(want.as_slice()));
        assert_eq!(row.len(), 1 + value.len() + want.len());
        // Not an object, not JSON, empty: no table, and the value as given.
        for value in [&b"[1,2]"[..], b"\"s\"", b"{\"a\":", b"", b"{} x"] {
            let row = Row::new(b"k", value, &mut scratch);
            assert_eq!(row.value(), value);
            assert_eq!(row.field_table(), None, "{value:?}");
        }
        // An empty object has a table of no fields.
        let row = Row::new(b"", b"{}", &mut scratch);
        assert_eq!(row.field_table(), Some(&0u32.to_le_bytes()[..]));
    }

    #[test]
    fn rows_are_found_replaced_and_removed_by_key_alone() {
        let mut scratch = Vec::new();
        let mut rows = Rows::default();
        assert!(rows
            .insert(Row::new(b"a", b"{\"v\":1}", &mut scratch))
            .is_none());
        assert!(rows.insert(Row::new(b"ab", b"2", &mut scratch)).is_none());
        let old = rows.insert(Row::new(b"a", b"{\"v\":3}", &mut scratch));
        assert_eq!(old.as_ref().map(Row::value), Some(&b"{\"v\":1}"[..]));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.get(b"a").map(Row::value), Some(&b"{\"v\":3}"[..]));
        assert_eq!(rows.get(b"ab").map(Row::value), Some(&b"2"[..]));
        assert!(rows.get(b"").is_none());
        assert_eq!(
            rows.remove(b"ab").map(|r| r.key().to_vec()),
            Some(b"ab".to_vec())
        );
        assert!(rows.remove(b"ab").is_none());
        assert_eq!(rows.iter().count(), 1);
    }

    #[test]
    fn keys_with_the_same_first_eight_bytes_or_zero_padding_stay_apart() {
        let mut scratch = Vec::new();
        let mut rows = Rows::default();
        // Same head: longer keys that differ after byte 8, and short keys
        // that differ only by trailing zero bytes (the head's padding).
        let keys: [&[u8]; 7] = [
            b"customer-1",
            b"customer-2",
            b"customer",
            b"a",
            b"a\0",
            b"a\0\0\0\0\0\0\0",
            b"",
        ];
        for (i, k) in keys.iter().enumerate() {
            assert!(rows
                .insert(Row::new(k, i.to_string().as_bytes(), &mut scratch))
                .is_none());
        }
        assert_eq!(rows.len(), keys.len());
        let mut asked: Vec<&[u8]> = keys.iter().rev().copied().collect();
        asked.extend([&b"customer-3"[..], b"a\0\0", b"customer-10"]);
        let mut found = Vec::new();
        rows.get_many(asked.iter().copied(), &mut found);
        let values: Vec<Option<&[u8]>> = found.iter().map(|r| r.map(Row::value)).collect();
        let mut want: Vec<Option<&[u8]>> = (0..keys.len())
            .rev()
            .map(|i| Some(["0", "1", "2", "3", "4", "5", "6"][i].as_bytes()))
            .collect();
        want.extend([None, None, None]);
        assert_eq!(values, want);
        for (k, row) in asked.iter().zip(&found) {
            assert_eq!(rows.get(k).map(Row::key), row.map(Row::key));
        }
        drop(found);
        // Replacing and removing one of a shared head leaves the others.
        assert!(rows
            .insert(Row::new(b"customer-2", b"new", &mut scratch))
            .is_some());
        assert_eq!(
            rows.remove(b"customer-1").map(|r| r.value().to_vec()),
            Some(b"0".to_vec())
        );
        assert_eq!(rows.get(b"customer-2").map(Row::value), Some(&b"new"[..]));
        assert_eq!(rows.get(b"customer").map(Row::value), Some(&b"2"[..]));
        assert!(rows.get(b"customer-1").is_none());
        // get_many clears what it is given.
        let mut found = vec![None];
        rows.get_many(std::iter::empty(), &mut found);
        assert!(found.is_empty());
    }
}
