//! `lookup-many`: many keys of a table answered in one call, as one buffer
//! (layout in `wit/sluice.wit`).

use std::ops::Range;

use sluice_sdk::abi::{put_object_row, MAX_LOOKUP_FIELDS, WITH_FIELDS};
use sluice_sdk::json::table::Lookup;
use sluice_sdk::json::JsonParser;

use super::wire::{put, u32_at};
use crate::state::Table;

/// Most keys one `lookup-many` call may ask for.
pub const MAX_LOOKUP_KEYS: usize = 65_536;
/// Most row bytes one `lookup-many` answer may carry.
pub const MAX_LOOKUP_BYTES: usize = 16 << 20;
/// Most field records one call with named fields may search: each row's
/// field count times the names asked, summed over the rows. The bytes bound
/// does not bound this work (an absent name costs 4 bytes however wide the
/// row), and no epoch interrupts the host inside a call, with the table's
/// read lock held.
pub const MAX_LOOKUP_SEARCH: usize = 16 << 20;
/// The entry length that means "no row".
const NO_ROW: u32 = u32::MAX;

/// The first word of a `lookup-many` keys buffer that carries options (a
/// key cannot claim 4 GiB in a buffer the bounds keep far smaller).
const OPTIONS: u32 = u32::MAX;
/// Option bit: after each row, its field table (or [`NO_TABLE`]).
const WITH_TABLES: u32 = 1;
/// The table word that means "no table: scan the row".
const NO_TABLE: u32 = u32::MAX;

/// A parsed `keys` buffer.
struct Ask<'a> {
    with_tables: bool,
    /// With [`WITH_FIELDS`]: the fields to answer object rows with.
    names: Option<Vec<&'a str>>,
    keys: Vec<&'a [u8]>,
}

/// A u32 length at `at` and the bytes it prefixes, with the position after them.
fn prefixed<'a>(buf: &'a [u8], at: usize, what: &str) -> Result<(&'a [u8], usize), String> {
    let len = buf
        .get(at..at + 4)
        .map(|_| u32_at(buf, at) as usize)
        .ok_or_else(|| format!("lookup-many: keys end inside a length prefix at byte {at}"))?;
    let start = at + 4;
    let end = start
        .checked_add(len)
        .filter(|&end| end <= buf.len())
        .ok_or_else(|| {
            format!("lookup-many: {what} at byte {at} claims {len} bytes past the end of the keys")
        })?;
    Ok((&buf[start..end], end))
}

impl<'a> Ask<'a> {
    /// Checks and splits `buf` before any row is read.
    fn parse(buf: &'a [u8]) -> Result<Self, String> {
        let mut at = 0;
        let mut flags = 0;
        if buf.len() >= 4 && u32_at(buf, 0) == OPTIONS {
            flags = buf
                .get(4..8)
                .map(|_| u32_at(buf, 4))
                .ok_or("lookup-many: the keys end inside the options word")?;
            at = 8;
        }
        let known = WITH_TABLES | WITH_FIELDS;
        if flags & !known != 0 {
            return Err(format!(
                "lookup-many: unknown options {flags:#x}; this host knows {WITH_TABLES:#x} (field tables) and {WITH_FIELDS:#x} (named fields)"
            ));
        }
        if flags == known {
            return Err(format!(
                "lookup-many: options {WITH_TABLES:#x} (field tables) and {WITH_FIELDS:#x} (named fields) exclude each other"
            ));
        }
        let mut names = None;
        if flags & WITH_FIELDS != 0 {
            let count = buf
                .get(at..at + 4)
                .map(|_| u32_at(buf, at) as usize)
                .ok_or("lookup-many: the keys end inside the field count")?;
            if count > MAX_LOOKUP_FIELDS {
                return Err(format!(
                    "lookup-many: {count} field names; at most {MAX_LOOKUP_FIELDS} in one call"
                ));
            }
            at += 4;
            let mut list = Vec::with_capacity(count);
            for i in 0..count {
                let (name, next) = prefixed(buf, at, "field name")?;
                list.push(std::str::from_utf8(name).map_err(|_| {
                    format!("lookup-many: field name {i} at byte {at} is not UTF-8")
                })?);
                at = next;
            }
            names = Some(list);
        }
        let mut keys = Vec::new();
        while at < buf.len() {
            if keys.len() == MAX_LOOKUP_KEYS {
                return Err(format!(
                    "lookup-many: more than {MAX_LOOKUP_KEYS} keys in one call; split them"
                ));
            }
            let (key, next) = prefixed(buf, at, "key")?;
            keys.push(key);
            at = next;
        }
        Ok(Ask {
            with_tables: flags & WITH_TABLES != 0,
            names,
            keys,
        })
    }
}

/// Where the values of `names` are in an object row with field table
/// `table`: read in place, or through a view where a key is escaped (the
/// view unescapes). Ranges, not slices, so that `parser` is free again.
fn project(
    value: &[u8],
    table: &[u8],
    names: &[&str],
    parser: &mut JsonParser,
    out: &mut Vec<Option<Range<usize>>>,
) {
    // Every value found is a slice of `value` (`Lookup` and the view both
    // slice it); the subtraction is checked all the same.
    let range = |v: &[u8]| {
        let start = (v.as_ptr() as usize).saturating_sub(value.as_ptr() as usize);
        debug_assert!(start + v.len() <= value.len(), "a value outside its row");
        start..start + v.len()
    };
    out.clear();
    if let Some(lookup) = Lookup::new(value, table) {
        for name in names {
            match lookup.get(name) {
                Ok(v) => out.push(v.map(|v| range(v.bytes()))),
                Err(_) => break,
            }
        }
        if out.len() == names.len() {
            return;
        }
    }
    out.clear();
    let view = parser.parse_with_table(value, Some(table)).ok();
    out.extend(names.iter().map(|n| {
        view.as_ref()
            .and_then(|v| v.get(n))
            .map(|v| range(v.bytes()))
    }));
}

fn too_many_bytes() -> String {
    format!(
        "lookup-many: rows past {} MiB in one call; split the keys",
        MAX_LOOKUP_BYTES >> 20
    )
}

/// Answers `lookup-many`: `keys` is length-prefixed keys, the answer one
/// length-prefixed row (or `NO_ROW`) per key, in order. A buffer that starts
/// with the word [`OPTIONS`] then a word of flags asks for each row's field
/// table too, or (with [`WITH_FIELDS`] and a list of names) for the named
/// fields' values instead of each object row (layouts in `wit/sluice.wit`).
/// The buffer is checked before any row is read, under one read lock.
pub fn answer(table: Option<&Table>, keys: &[u8]) -> Result<Vec<u8>, String> {
    let ask = Ask::parse(keys)?;
    let mut out = Vec::with_capacity(ask.keys.len() * 4);
    let Some(table) = table else {
        // Grants are checked when the pipeline is validated: an unknown name
        // can only come from a plugin asking for a table it was not given.
        for _ in &ask.keys {
            put(&mut out, NO_ROW);
        }
        return Ok(out);
    };
    let mut parser = JsonParser::new();
    let mut values = Vec::new();
    let mut searched = 0usize;
    table.with_rows(|rows| {
        // Every row is found (and fetched into the cache) before any is
        // copied: on a table larger than the cache each lookup misses, and
        // the misses of a batch then overlap instead of following one another.
        let mut found = Vec::with_capacity(ask.keys.len());
        rows.get_many(&ask.keys, &mut found);
        for row in found {
            let Some(row) = row else {
                put(&mut out, NO_ROW);
                continue;
            };
            let value = row.value();
            if let (Some(names), Some(t)) = (&ask.names, row.field_table()) {
                // A stored table starts with its field count.
                let records = t.get(..4).map_or(0, |_| u32_at(t, 0) as usize);
                searched = searched.saturating_add(records.saturating_mul(names.len()));
                if searched > MAX_LOOKUP_SEARCH {
                    return Err(format!(
                        "lookup-many: named fields over more than {MAX_LOOKUP_SEARCH} field records in one call (each row's fields times the names asked); split the keys"
                    ));
                }
                project(value, t, names, &mut parser, &mut values);
                let bytes: usize = values
                    .iter()
                    .map(|v| 4 + v.as_ref().map_or(0, Range::len))
                    .sum();
                if out.len() + 4 + bytes > MAX_LOOKUP_BYTES {
                    return Err(too_many_bytes());
                }
                put_object_row(
                    &mut out,
                    values.iter().map(|v| v.clone().map(|r| &value[r])),
                );
                continue;
            }
            // A row sent whole: not an object, or no fields asked.
            let field_table = row.field_table().filter(|_| ask.with_tables);
            // The table, or the word that says there is none.
            let table_bytes = match (ask.with_tables, field_table) {
                (false, _) => 0,
                (true, t) => t.map_or(4, <[u8]>::len),
            };
            if out.len() + 4 + value.len() + table_bytes > MAX_LOOKUP_BYTES {
                return Err(too_many_bytes());
            }
            put(&mut out, u32::try_from(value.len()).unwrap_or(NO_ROW - 2));
            out.extend_from_slice(value);
            if ask.with_tables {
                match field_table {
                    // Its first word is its field count, never NO_TABLE.
                    Some(t) => out.extend_from_slice(t),
                    None => put(&mut out, NO_TABLE),
                }
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ks: &[&[u8]]) -> Vec<u8> {
        let mut b = Vec::new();
        for k in ks {
            put(&mut b, k.len() as u32);
            b.extend_from_slice(k);
        }
        b
    }

    fn rows(answer: &[u8]) -> Vec<Option<Vec<u8>>> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < answer.len() {
            let len = u32_at(answer, at);
            at += 4;
            if len == NO_ROW {
                out.push(None);
            } else {
                out.push(Some(answer[at..at + len as usize].to_vec()));
                at += len as usize;
            }
        }
        out
    }

    #[test]
    fn lookup_many_answers_in_order_with_misses() {
        let t = Table::default();
        t.insert(b"1".to_vec(), b"{\"n\":1}".to_vec());
        t.insert(b"".to_vec(), b"empty".to_vec());
        let got = answer(Some(&t), &keys(&[b"1", b"2", b"", b"1"])).expect("ok");
        assert_eq!(
            rows(&got),
            vec![
                Some(b"{\"n\":1}".to_vec()),
                None,
                Some(b"empty".to_vec()),
                Some(b"{\"n\":1}".to_vec())
            ]
        );
        assert_eq!(
            answer(None, &keys(&[b"1"])).expect("ok"),
            NO_ROW.to_le_bytes()
        );
        assert!(answer(Some(&t), &[]).expect("ok").is_empty());
    }

    #[test]
    fn lookup_many_with_tables_sends_each_rows_table_after_it() {
        use sluice_sdk::json::table;
        let t = Table::default();
        let object = br#"{"name":"ann","age":34}"#;
        t.insert(b"1".to_vec(), object.to_vec());
        t.insert(b"2".to_vec(), b"[1]".to_vec());
        t.insert(b"3".to_vec(), b"{not json".to_vec());
        let mut ask = Vec::new();
        put(&mut ask, OPTIONS);
        put(&mut ask, WITH_TABLES);
        ask.extend(keys(&[b"1", b"9", b"2", b"3"]));
        let got = answer(Some(&t), &ask).expect("ok");
        let mut want = Vec::new();
        put(&mut want, object.len() as u32);
        want.extend_from_slice(object);
        assert!(table::encode(object, &mut want).expect("json"));
        put(&mut want, NO_ROW);
        for row in [&b"[1]"[..], b"{not json"] {
            put(&mut want, row.len() as u32);
            want.extend_from_slice(row);
            put(&mut want, NO_TABLE);
        }
        assert_eq!(got, want);
        // Without the options word the answer is the plain layout.
        assert_eq!(
            rows(&answer(Some(&t), &keys(&[b"1"])).expect("ok")),
            vec![Some(object.to_vec())]
        );
        // Options alone ask for nothing.
        assert!(answer(Some(&t), &ask[..8]).expect("ok").is_empty());
    }

    #[test]
    fn lookup_many_refuses_options_it_does_not_know() {
        let t = Table::default();
        let mut ask = Vec::new();
        put(&mut ask, OPTIONS);
        let e = answer(Some(&t), &ask).expect_err("cut options");
        assert!(e.contains("options word"), "{e}");
        put(&mut ask, WITH_TABLES | 4);
        let e = answer(Some(&t), &ask).expect_err("unknown bit");
        assert!(e.contains("unknown options 0x5"), "{e}");
        // Tables count against the row bytes bound: 16 lookups of a row of
        // 1 MiB minus a little fit without tables, not with them.
        let fields: String = (0..8_000).map(|i| format!("\"f{i}\":0,")).collect();
        let big = format!(
            "{{{}\"pad\":\"{}\"}}",
            fields,
            "x".repeat((1 << 20) - 200_000)
        );
        t.insert(b"k".to_vec(), big.into_bytes());
        let sixteen: Vec<&[u8]> = vec![b"k"; 16];
        assert!(answer(Some(&t), &keys(&sixteen)).is_ok());
        let mut ask = Vec::new();
        put(&mut ask, OPTIONS);
        put(&mut ask, WITH_TABLES);
        ask.extend(keys(&sixteen));
        let e = answer(Some(&t), &ask).expect_err("bytes with tables");
        assert!(e.contains("16 MiB"), "{e}");
    }

    #[test]
    fn lookup_many_is_bounded_against_hostile_keys() {
        let t = Table::default();
        t.insert(b"k".to_vec(), vec![b'x'; 1 << 20]);
        // A length prefix that claims 4 GiB.
        let mut hostile = keys(&[b"k"]);
        put(&mut hostile, u32::MAX);
        let e = answer(Some(&t), &hostile).expect_err("past the end");
        assert!(e.contains("past the end"), "{e}");
        let e = answer(Some(&t), &[1, 0]).expect_err("cut prefix");
        assert!(e.contains("inside a length prefix"), "{e}");
        // Too many keys: 65,537 empty keys are 4 bytes each.
        let e = answer(Some(&t), &vec![0; 4 * (MAX_LOOKUP_KEYS + 1)]).expect_err("count");
        assert!(e.contains("65536 keys"), "{e}");
        assert!(answer(Some(&t), &vec![0; 4 * MAX_LOOKUP_KEYS]).is_ok());
        // 17 lookups of a 1 MiB row: past 16 MiB of rows.
        let many: Vec<&[u8]> = vec![b"k"; 17];
        let e = answer(Some(&t), &keys(&many)).expect_err("bytes");
        assert!(e.contains("16 MiB"), "{e}");
        let fifteen: Vec<&[u8]> = vec![b"k"; 15];
        assert!(answer(Some(&t), &keys(&fifteen)).is_ok());
    }

    /// Keys asking for `names` ([`WITH_FIELDS`]).
    fn ask_fields(names: &[&str], ks: &[&[u8]]) -> Vec<u8> {
        sluice_sdk::abi::encode_keys_with_fields(names, ks.iter().copied())
    }

    /// Rows of every kind the projection meets: duplicates (the last one
    /// counts), escaped keys (compared unescaped), nested fields (not
    /// top-level), whitespace, non-objects and text that is not JSON.
    fn awkward_rows() -> Vec<Vec<u8>> {
        let mut rows: Vec<Vec<u8>> = [
            &br#"{"name":"ann","age":34}"#[..],
            br#"{"name":"ann","age":34,"name":{"first":"bo"}}"#,
            br#"{"n\u0061me":"esc","age":1,"na\"me":2}"#,
            br#"{"name":"x","n\u0061me":"later, escaped"}"#,
            br#" { "age" : [1, {"name": 2}] , "other": null } "#,
            br#"{"x":{"name":"nested"}}"#,
            b"{}",
            b"[1,2]",
            b"\"text\"",
            b"{not json",
            b"",
        ]
        .iter()
        .map(|r| r.to_vec())
        .collect();
        // Random objects over a few names, some escaped, some repeated.
        let mut seed = 0x9e37_79b9_u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let keys = [
            "name",
            "age",
            r"n\u0061me",
            "",
            r"caf\u00e9",
            r#"a\"b"#,
            "zz",
        ];
        for _ in 0..300 {
            let n = next() % 6;
            let fields: Vec<String> = (0..n)
                .map(|i| {
                    let k = keys[(next() % keys.len() as u32) as usize];
                    format!(
                        "\"{k}\":{}",
                        [
                            i.to_string(),
                            "null".into(),
                            "\"s\"".into(),
                            "[1,{}]".into()
                        ][(next() % 4) as usize]
                    )
                })
                .collect();
            rows.push(format!("{{{}}}", fields.join(",")).into_bytes());
        }
        rows
    }

    #[test]
    fn named_fields_answer_as_the_plugin_would_project_each_row() {
        use sluice_sdk::abi::RowFields;
        let t = Table::default();
        let rows = awkward_rows();
        let ks: Vec<Vec<u8>> = (0..rows.len())
            .map(|i| i.to_string().into_bytes())
            .collect();
        for (k, r) in ks.iter().zip(&rows) {
            t.insert(k.clone(), r.clone());
        }
        let mut asked: Vec<&[u8]> = ks.iter().map(Vec::as_slice).collect();
        asked.insert(3, b"no such key");
        for names in [
            &["name", "age"][..],
            &["age", "name", "age", "caf\u{e9}", "a\"b", "", "missing"],
            &[],
        ] {
            let got = answer(Some(&t), &ask_fields(names, &asked)).expect("answered");
            let mut from_host = RowFields::new(names.len());
            assert!(from_host.extend_from_answer(got, asked.len()), "{names:?}");
            // What a host without the option makes the plugin do: project
            // each whole row itself, through the view.
            let mut plain = sluice_sdk::abi::Rows::default();
            let whole = answer(Some(&t), &keys(&asked)).expect("answered");
            assert!(plain.extend_from_answer(&whole, asked.len()));
            let mut in_plugin = RowFields::new(names.len());
            in_plugin.extend_from_rows(&plain, names);
            for (i, key) in asked.iter().enumerate() {
                assert_eq!(
                    from_host.get(i),
                    in_plugin.get(i),
                    "names {names:?}, key {:?}",
                    String::from_utf8_lossy(key)
                );
            }
        }
        // One case spelled out: the last duplicate, as raw JSON text.
        let got = answer(Some(&t), &ask_fields(&["name", "age"], &[b"1"])).expect("answered");
        let mut one = RowFields::new(2);
        assert!(one.extend_from_answer(got, 1));
        let Some(sluice_sdk::abi::RowAnswer::Object(values)) = one.get(0) else {
            panic!("an object row");
        };
        assert_eq!(
            values.get(0).map(|v| v.bytes()),
            Some(&br#"{"first":"bo"}"#[..])
        );
        assert_eq!(values.get(1).map(|v| v.bytes()), Some(&b"34"[..]));
    }

    #[test]
    fn named_fields_are_bounded_against_hostile_asks() {
        let t = Table::default();
        t.insert(
            b"k".to_vec(),
            format!(r#"{{"big":"{}"}}"#, "x".repeat(1 << 20)).into_bytes(),
        );
        let name = |n: usize| format!("f{n}");
        // More names than the bound: refused before any row is read.
        let names: Vec<String> = (0..=MAX_LOOKUP_FIELDS).map(name).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let e = answer(Some(&t), &ask_fields(&refs, &[b"k"])).expect_err("names");
        assert!(e.contains("257 field names"), "{e}");
        assert!(answer(Some(&t), &ask_fields(&refs[1..], &[b"k"])).is_ok());
        // A name claiming bytes past the end; the count cut; not UTF-8.
        let mut ask = Vec::new();
        for w in [OPTIONS, WITH_FIELDS, 1, u32::MAX] {
            put(&mut ask, w);
        }
        let e = answer(Some(&t), &ask).expect_err("past the end");
        assert!(e.contains("field name at byte 12 claims"), "{e}");
        let e = answer(Some(&t), &ask[..10]).expect_err("cut count");
        assert!(e.contains("field count"), "{e}");
        let mut ask = ask[..12].to_vec();
        put(&mut ask, 1);
        ask.push(0xff);
        let e = answer(Some(&t), &ask).expect_err("not UTF-8");
        assert!(e.contains("not UTF-8"), "{e}");
        // Both options at once.
        let mut ask = Vec::new();
        for w in [OPTIONS, WITH_FIELDS | WITH_TABLES, 0] {
            put(&mut ask, w);
        }
        let e = answer(Some(&t), &ask).expect_err("both");
        assert!(e.contains("exclude each other"), "{e}");
        // The row-bytes bound holds for values: 17 values of 1 MiB are past
        // 16 MiB, while asking for a field the row lacks stays small.
        let many: Vec<&[u8]> = vec![b"k"; 17];
        let e = answer(Some(&t), &ask_fields(&["big"], &many)).err();
        assert!(e.as_ref().is_some_and(|e| e.contains("16 MiB")), "{e:?}");
        let small = answer(Some(&t), &ask_fields(&["other"], &many)).expect("small");
        assert_eq!(small.len(), 17 * 8);
        // Absent fields count too: the row's marker and 255 absent words are
        // 1 KiB, so exactly 16,384 rows fit in 16 MiB.
        let fits: Vec<&[u8]> = vec![b"k"; 16_384];
        let got = answer(Some(&t), &ask_fields(&refs[2..], &fits));
        assert_eq!(
            got.as_ref().map(Vec::len).ok(),
            Some(MAX_LOOKUP_BYTES),
            "{:?}",
            got.as_ref().err()
        );
        let past: Vec<&[u8]> = vec![b"k"; 16_385];
        let e = answer(Some(&t), &ask_fields(&refs[2..], &past)).err();
        assert!(e.as_ref().is_some_and(|e| e.contains("16 MiB")), "{e:?}");
    }

    #[test]
    fn named_fields_bound_the_search_not_only_the_bytes() {
        // A row of 4,096 fields asked for 256 names it lacks costs 1 KiB of
        // answer but 2^20 record visits: 16 such rows are the most one call
        // may search.
        let t = Table::default();
        let wide: Vec<String> = (0..4096).map(|i| format!("\"f{i}\":0")).collect();
        t.insert(
            b"w".to_vec(),
            format!("{{{}}}", wide.join(",")).into_bytes(),
        );
        let names: Vec<String> = (0..256).map(|i| format!("absent{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let sixteen: Vec<&[u8]> = vec![b"w"; 16];
        assert!(answer(Some(&t), &ask_fields(&refs, &sixteen)).is_ok());
        let seventeen: Vec<&[u8]> = vec![b"w"; 17];
        let e = answer(Some(&t), &ask_fields(&refs, &seventeen)).expect_err("search");
        assert!(e.contains("16777216 field records"), "{e}");
        // Whole rows are still answered: the plugin projects them itself,
        // inside its own CPU budget.
        assert!(answer(Some(&t), &keys(&seventeen)).is_ok());
    }
}
