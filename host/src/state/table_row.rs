//! One row of a materialized table, laid out for lookups.
//!
//! A lookup join reads a row per event. Held as a map of `Vec` to `Vec`, each
//! lookup chased two pointers to two allocations (the key to compare, then the
//! value to copy), and on a table that does not fit in cache those two misses
//! were most of the host's side of `lookup-many`. A row now keeps its key, its
//! value and the value's field table (`sluice_sdk::json::table`, built once
//! when the row is stored rather than by every plugin that reads it) in one
//! allocation.

use sluice_sdk::json::table;

/// A row: `key ‖ value ‖ field table` in one allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct Row {
    bytes: Box<[u8]>,
    key_len: usize,
    value_len: usize,
}

impl Row {
    /// A row for `value` under `key`; when `value` is a JSON object the row
    /// also holds its field table.
    pub fn new(key: &[u8], value: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(key.len() + value.len());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(value);
        // A value that is not a JSON object (or not JSON) has no table: the
        // plugin scans it and decides.
        if !matches!(table::encode(value, &mut bytes), Ok(true)) {
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

    /// The row's one allocation: key, value, table.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_holds_its_key_value_and_the_table_a_scan_gives() {
        let value = br#"{"id":7,"name":"a\u00e9","tags":[1,2]}"#;
        let row = Row::new(b"7", value);
        assert_eq!(row.key(), b"7");
        assert_eq!(row.value(), value);
        let mut want = Vec::new();
        assert!(table::encode(value, &mut want).expect("json"));
        assert_eq!(row.field_table(), Some(want.as_slice()));
        assert_eq!(row.len(), 1 + value.len() + want.len());
        // Not an object, not JSON, empty: no table, and the value as given.
        for value in [&b"[1,2]"[..], b"\"s\"", b"{\"a\":", b"", b"{} x"] {
            let row = Row::new(b"k", value);
            assert_eq!(row.value(), value);
            assert_eq!(row.field_table(), None, "{value:?}");
        }
        // An empty object has a table of no fields.
        let row = Row::new(b"", b"{}");
        assert_eq!(row.field_table(), Some(&0u32.to_le_bytes()[..]));
    }
}
