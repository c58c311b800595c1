//! Field tables: a value's top-level fields as the host hands them over, so a
//! plugin reads fields without scanning the value again.
//!
//! Scanning is most of what reading an event costs a plugin (a quarter to a
//! half of a built-in's time in Wasm), and in a pipeline of several stages
//! every stage scanned every event anew. The host scans each value once,
//! natively, with this very scanner ([`encode`]), and sends the result beside
//! the value (contract 0.2.0, event record word 44, layout in
//! `wit/sluice.wit`). A plugin that declares it reads field tables
//! ([`crate::declare_field_tables`]) gets them; [`crate::Event::view`] uses
//! one when it is there and scans as before when it is not.
//!
//! The layout, little-endian, at the offset word 44 gives in `data`:
//! a `u32` count `n`, then `n` records of four `u32`: key start, key end,
//! value start, value end, as offsets from the first byte of the value (key:
//! the text between the quotes, still escaped; value: its JSON text). Bit 31
//! of the key start is set when the key holds a backslash escape. Records are
//! every occurrence in input order, duplicates included: what
//! [`super::JsonView::fields`] lists.
//!
//! The host is trusted to send tables of valid JSON (it checks the value with
//! the same scanner before it makes one), but a view still checks a table
//! against the bytes it describes, in one pass over its records: every range
//! inside the value, in order, not overlapping. A table that fails is ignored
//! and the value is scanned, so no table can make a view read outside its
//! value or panic.
//!
//! [`Lookup`] reads a table in place instead, for a plugin that looks up a
//! few names per event (a filter's condition), and checks less: only the
//! records it reads, each range inside the value, as event spans are
//! checked; a table that fails elsewhere is not noticed. A wrong table can
//! then give a wrong field (where the view would have rescanned), never a
//! read outside the value or a panic; the host's tables come from the same
//! scanner as the check.

use super::{same_bytes, scan_fields, skip_ws, trim, Entry, Fields, JsonError, Raw};

/// Bit 31 of a record's key start: the key holds a backslash escape.
const ESCAPED: u32 = 1 << 31;
/// Bytes of one record.
const RECORD: usize = 16;

/// Appends `value`'s field table to `out` if `value` is a JSON object, as
/// [`super::JsonView::parse`] checks it; returns whether it did. Values of
/// 2 GiB or more get no table (offsets leave bit 31 to the escape flag).
/// For the host. A value that is not JSON leaves `out` as it was.
pub fn encode(value: &[u8], out: &mut Vec<u8>) -> Result<bool, JsonError> {
    // The records go out as the scan meets the fields (no list of entries
    // in between), the count before them once known.
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut records = Records { out, n: 0 };
    let scanned = scan_fields(value, &mut records);
    let n = records.n;
    if let Err(e) = scanned {
        out.truncate(start);
        return Err(e);
    }
    if trim(value).first() != Some(&b'{') || value.len() >= ESCAPED as usize {
        out.truncate(start);
        return Ok(false);
    }
    out[start..start + 4].copy_from_slice(&n.to_le_bytes());
    Ok(true)
}

/// A field table's records, written as a scan meets the fields.
struct Records<'o> {
    out: &'o mut Vec<u8>,
    n: u32,
}

impl Fields for Records<'_> {
    #[inline(always)]
    fn field(&mut self, key: (usize, usize), value: (usize, usize), escaped: bool) {
        // Offsets past 2^31 are cut here and the table dropped by `encode`.
        let words = [
            key.0 as u32 | if escaped { ESCAPED } else { 0 },
            key.1 as u32,
            value.0 as u32,
            value.1 as u32,
        ];
        // One 16-byte copy a record, not four of four.
        let mut record = [0u8; RECORD];
        for (chunk, w) in record.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        self.out.extend_from_slice(&record);
        self.n = self.n.wrapping_add(1);
    }
}

/// Whether `value` (valid JSON) is an object: its first byte after any
/// whitespace is `{`. Only the start is read; trimming the end as well was a
/// second loop per event, which in Wasm pays an interruption check.
fn is_object(value: &[u8]) -> bool {
    value.get(skip_ws(value, 0)) == Some(&b'{')
}

fn word(b: &[u8], at: usize) -> Option<u32> {
    let mut w = [0u8; 4];
    w.copy_from_slice(b.get(at..at + 4)?);
    Some(u32::from_le_bytes(w))
}

/// Appends to `entries` the records of the table at `table` (the rest of
/// `data` from the table's offset) for `value`; `false`, with `entries` as
/// it was, when the table does not fit the value (the caller then scans).
pub(crate) fn decode(value: &[u8], table: &[u8], entries: &mut Vec<Entry>) -> bool {
    let start = entries.len();
    if !is_object(value) {
        return false;
    }
    let Some(n) = word(table, 0).map(|n| n as usize) else {
        return false;
    };
    let Some(records) = n
        .checked_mul(RECORD)
        .and_then(|len| table.get(4..4usize.checked_add(len)?))
    else {
        return false;
    };
    // Each range must start at or after the previous one ended: keys and
    // values in input order, none overlapping, all inside the value. One
    // pass writes the entries and folds the check into a flag: an exact-size
    // `extend` writes them with no capacity check per entry, and fixed-size
    // records need no bounds check per word (a wide event's table has fifty
    // records; checking and pushing each was a fifth of a filter's time).
    let (records, _) = records.as_chunks::<RECORD>();
    let mut floor = 0usize;
    let mut fits = true;
    let mut prev = None;
    entries.extend(records.iter().map(|rec| {
        let at = |i: usize| u32::from_le_bytes([rec[i], rec[i + 1], rec[i + 2], rec[i + 3]]);
        let (ks, ke, vs, ve) = (at(0), at(4), at(8), at(12));
        let escaped = ks & ESCAPED != 0;
        let (ks, ke, vs, ve) = (
            (ks & !ESCAPED) as usize,
            ke as usize,
            vs as usize,
            ve as usize,
        );
        fits &= floor <= ks && ks <= ke && ke < vs && vs < ve && ve <= value.len();
        floor = ve;
        let entry = Entry::new((ks, ke), (vs, ve), escaped, prev);
        prev = entry.as_prev();
        entry
    }));
    if !fits {
        entries.truncate(start);
    }
    fits
}

/// A field table read in place: [`Lookup::get`] finds a name by walking the
/// records from the end, with no decoding of the others (a filter reading
/// one field of a five-field event spent more on decoding the whole table
/// than on the rest of its condition). See the module docs for what is
/// checked.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    value: &'a [u8],
    records: &'a [[u8; RECORD]],
}

/// [`Lookup::get`] cannot answer from the table: the caller reads the value
/// through [`crate::json::JsonView`] instead, which always can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unanswered;

impl<'a> Lookup<'a> {
    /// The table at `table` (the rest of the batch data from its offset) of
    /// `value`, or `None` when `value` is not an object or the table's
    /// records do not fit.
    pub fn new(value: &'a [u8], table: &'a [u8]) -> Option<Self> {
        if !is_object(value) {
            return None;
        }
        let n = usize::try_from(word(table, 0)?).ok()?;
        let records = table.get(4..n.checked_mul(RECORD)?.checked_add(4)?)?;
        Some(Lookup {
            value,
            records: records.as_chunks::<RECORD>().0,
        })
    }

    /// The value of the last field named `name` (as
    /// [`crate::json::JsonView::get`] finds it), `Ok(None)` when there is
    /// none. `Err` when a record it passes has an escaped key (compared
    /// only after unescaping, which the view does) or a range outside the
    /// value.
    pub fn get(&self, name: &str) -> Result<Option<Raw<'a>>, Unanswered> {
        let name = name.as_bytes();
        for rec in self.records.iter().rev() {
            let at = |i: usize| u32::from_le_bytes([rec[i], rec[i + 1], rec[i + 2], rec[i + 3]]);
            let (ks, ke) = (at(0), at(4));
            if ks & ESCAPED != 0 || ks > ke {
                return Err(Unanswered);
            }
            if (ke - ks) as usize != name.len() {
                continue;
            }
            let key = self.value.get(ks as usize..ke as usize).ok_or(Unanswered)?;
            if !same_bytes(key, name) {
                continue;
            }
            let (vs, ve) = (at(8), at(12));
            if !(ke < vs && vs < ve) {
                return Err(Unanswered);
            }
            let value = self.value.get(vs as usize..ve as usize).ok_or(Unanswered)?;
            return Ok(Some(Raw(value)));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{scan_root, JsonParser};

    fn table_of(value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(encode(value, &mut out).expect("json"));
        out
    }

    #[test]
    fn a_table_gives_the_view_a_scan_gives() {
        for value in [
            &br#"{"a":1,"b":[1,{"c":2}],"a":"x","\u0041":null, "e" : {"f":"g"} }"#[..],
            br#"  {}  "#,
            "{\"\":\"\",\"k\\\"q\":\"caf\u{e9} \u{1f600} \\u00e9\"}".as_bytes(),
        ] {
            let table = table_of(value);
            let mut entries = Vec::new();
            assert!(decode(value, &table, &mut entries), "{value:?}");
            let mut scanned = JsonParser::new();
            let view = scanned.parse(value).expect("json");
            let mut from_table = JsonParser::new();
            let tabled = from_table
                .parse_with_table(value, Some(&table))
                .expect("json");
            assert_eq!(tabled.len(), view.len());
            for i in 0..view.len() {
                let (k1, v1) = view.field(i);
                let (k2, v2) = tabled.field(i);
                assert_eq!(k1, k2);
                assert_eq!(v1.bytes(), v2.bytes());
            }
            assert_eq!(
                tabled.get("A").map(|r| r.text()),
                view.get("A").map(|r| r.text())
            );
        }
    }

    #[test]
    fn only_objects_get_a_table_and_bad_json_is_an_error() {
        let mut out = Vec::new();
        for scalar in [&b"[1,2]"[..], b"1", b"\"s\"", b"null"] {
            assert!(!encode(scalar, &mut out).expect("json"));
        }
        assert!(out.is_empty());
        assert!(encode(b"{\"a\":", &mut out).is_err());
        assert!(encode(b"{\"a\":\"\xff\"}", &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn a_table_that_does_not_fit_its_value_is_ignored_and_the_value_scanned() {
        let value = br#"{"id":7,"name":"Ana"}"#;
        let good = table_of(value);
        let mut entries = Vec::new();
        let corrupt = |at: usize, v: u32| {
            let mut t = good.clone();
            t[at..at + 4].copy_from_slice(&v.to_le_bytes());
            t
        };
        let len = value.len() as u32;
        for bad in [
            good[..good.len() - 1].to_vec(), // a record cut short
            corrupt(0, 3),                   // more records than sent
            corrupt(0, u32::MAX),            // a count that overflows
            corrupt(16, len + 1),            // value end past the value
            corrupt(12, 30),                 // value start after its end
            corrupt(20, 0),                  // second key before the first value
            corrupt(8, 20),                  // key end after the value start
        ] {
            entries.clear();
            scan_root(b"{\"kept\":1}", &mut entries).expect("json");
            assert!(!decode(value, &bad, &mut entries), "{bad:?}");
            assert_eq!(entries.len(), 1, "what was there before is kept");
            // The view falls back to scanning, and is right.
            let mut parser = JsonParser::new();
            let view = parser.parse_with_table(value, Some(&bad)).expect("json");
            assert_eq!(view.get("name").map(|r| r.text()), Some(r#""Ana""#));
        }
        // A table for an object applied to something else is refused too.
        assert!(!decode(b"[1]", &good, &mut entries));
        assert!(
            !decode(b" \t[1]", &good, &mut entries),
            "not an object after whitespace"
        );
        // A table does not make bad JSON good: without a table it is scanned.
        let mut parser = JsonParser::new();
        assert!(parser.parse_with_table(b"{\"a\":", None).is_err());
    }

    /// A lookup in place finds what the view finds, name by name: the last
    /// occurrence of duplicates, empty keys, names absent or differing
    /// only in the last byte; an escaped key on the way is left to the view.
    #[test]
    fn a_lookup_finds_what_the_view_finds() {
        let values: [&[u8]; 4] = [
            br#"{"a":1,"b":[1,{"c":2}],"a":"x","ab":null, "e" : {"f":"g"} }"#,
            br#"  {}  "#,
            br#"{"":"","currency":"usd","currencz":1,"price":12.5}"#,
            br#"{"id":1,"k\"q":2,"name":"Ana"}"#,
        ];
        let names = [
            "a", "b", "ab", "e", "f", "", "currency", "currencx", "price", "id", "name", "k\"q",
            "zz",
        ];
        let mut parser = JsonParser::new();
        let mut answered = 0;
        for value in values {
            let table = table_of(value);
            let lookup = Lookup::new(value, &table).expect("an object's table");
            let view = parser.parse(value).expect("json");
            for name in names {
                match lookup.get(name) {
                    Ok(found) => {
                        answered += 1;
                        assert_eq!(found, view.get(name), "{name} in {value:?}");
                    }
                    // Only past the escaped key of the last value.
                    Err(Unanswered) => assert!(
                        value.starts_with(br#"{"id""#) && !matches!(name, "name"),
                        "{name} in {value:?}"
                    ),
                }
            }
        }
        assert!(answered > 30, "{answered}");
        assert!(Lookup::new(b"[1]", &table_of(b"{}")).is_none());
        assert!(Lookup::new(b" \n [1] ", &table_of(b"{}")).is_none());
        assert!(Lookup::new(b" \n {} ", &table_of(b"{}")).is_some());
    }

    /// Whatever the table says, a lookup reads inside the value or answers
    /// `Err`; it never panics (random and corrupted tables).
    #[test]
    fn a_lookup_in_a_corrupt_table_stays_inside_the_value() {
        let value = br#"{"id":7,"name":"Ana","tags":["x"]}"#;
        let good = table_of(value);
        let mut seed = 0x853C_49E6_748F_EA9Bu64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..20_000 {
            let mut t = good.clone();
            for _ in 0..1 + round % 4 {
                let at = (next() % t.len() as u64) as usize;
                t[at] = match next() % 4 {
                    0 => 0,
                    1 => 0xFF,
                    2 => (next() % 64) as u8,
                    _ => next() as u8,
                };
            }
            let Some(lookup) = Lookup::new(value, &t) else {
                continue;
            };
            for name in ["id", "name", "tags", "x", ""] {
                if let Ok(Some(raw)) = lookup.get(name) {
                    let start = raw.bytes().as_ptr() as usize - value.as_ptr() as usize;
                    assert!(start + raw.bytes().len() <= value.len());
                }
            }
        }
    }
}
