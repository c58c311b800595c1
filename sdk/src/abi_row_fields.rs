//! Rows answered as the values of a few named fields: `lookup-many`'s
//! option bit 1 ([`WITH_FIELDS`], layout in `wit/sluice.wit`).
//!
//! A join that reads two fields of each row otherwise receives the whole
//! row and its field table, decodes the table and finds the names in it,
//! per event, in Wasm. The host, which holds each row's table already,
//! finds them natively and sends only their values.

use super::{put, span_u32, u32_at, Rows, Span, NO_ROW, OPTIONS};
use crate::json::{JsonParser, Raw};

/// Option bit: the keys buffer names fields after the option word, and the
/// host answers each object row with those fields' values instead of the
/// row. Excludes [`WITH_TABLES`](super::WITH_TABLES).
pub const WITH_FIELDS: u32 = 2;

/// Most field names one call may ask for (the host's bound).
pub const MAX_LOOKUP_FIELDS: usize = 256;

/// The answer word before an object row's field values.
const OBJECT: u32 = u32::MAX - 1;
/// The value word of a field the row does not have.
const ABSENT: u32 = u32::MAX;

/// The `i`-th key's row as [`RowFields::get`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowAnswer<'a> {
    /// A JSON object: the asked fields' values.
    Object(FieldValues<'a>),
    /// A row that is not a JSON object (or not JSON): its bytes, for the
    /// plugin to read as it would an unprojected row.
    Other(&'a [u8]),
}

/// An object row's values of the asked fields, in the order asked. Equal
/// when the values are (wherever their bytes are kept).
#[derive(Debug, Clone, Copy)]
pub struct FieldValues<'a> {
    data: &'a [u8],
    values: &'a [Option<Span>],
}

impl PartialEq for FieldValues<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.values.len() == other.values.len()
            && (0..self.values.len()).all(|j| self.get(j) == other.get(j))
    }
}

impl Eq for FieldValues<'_> {}

impl<'a> FieldValues<'a> {
    /// The `j`-th asked field's value, as the row has it (its last
    /// occurrence), or `None` when the row has no such field.
    pub fn get(&self, j: usize) -> Option<Raw<'a>> {
        self.values
            .get(j)
            .copied()
            .flatten()?
            .slice(self.data)
            .map(Raw::checked)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Missing,
    /// Index of the row's first value in `values`.
    Object(usize),
    Other(Span),
}

/// The answer of one or more projected lookups
/// ([`crate::Host::lookup_fields`]): per key asked, no row, an object
/// row's field values, or a row that is not an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFields {
    data: Vec<u8>,
    names: usize,
    rows: Vec<Entry>,
    values: Vec<Option<Span>>,
}

impl RowFields {
    /// No answers yet, for rows projected on `names` fields.
    pub fn new(names: usize) -> Self {
        Self {
            data: Vec::new(),
            names,
            rows: Vec::new(),
            values: Vec::new(),
        }
    }

    /// The row for the `i`-th key asked, if the table has one.
    pub fn get(&self, i: usize) -> Option<RowAnswer<'_>> {
        match *self.rows.get(i)? {
            Entry::Missing => None,
            Entry::Object(first) => Some(RowAnswer::Object(FieldValues {
                data: &self.data,
                values: self.values.get(first..first + self.names)?,
            })),
            Entry::Other(span) => span.slice(&self.data).map(RowAnswer::Other),
        }
    }

    /// Number of keys answered.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no key was asked.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> Span {
        let offset = span_u32(self.data.len());
        self.data.extend_from_slice(bytes);
        Span {
            offset,
            len: span_u32(bytes.len()),
        }
    }

    /// Appends one answer: no row (`None`), or a row, projected here on
    /// `names` when it is a JSON object (`table`: its field table, if known).
    pub fn push_row(&mut self, row: Option<&[u8]>, table: Option<&[u8]>, names: &[&str]) {
        self.push_row_with(&mut JsonParser::new(), row, table, names);
    }

    fn push_row_with(
        &mut self,
        parser: &mut JsonParser,
        row: Option<&[u8]>,
        table: Option<&[u8]>,
        names: &[&str],
    ) {
        let Some(row) = row else {
            self.rows.push(Entry::Missing);
            return;
        };
        match parser.parse_with_table(row, table) {
            Ok(view) if view.is_object() => {
                self.rows.push(Entry::Object(self.values.len()));
                for j in 0..self.names {
                    let value = names.get(j).and_then(|n| view.get(n));
                    let span = value.map(|v| self.push_bytes(v.bytes()));
                    self.values.push(span);
                }
            }
            _ => {
                let span = self.push_bytes(row);
                self.rows.push(Entry::Other(span));
            }
        }
    }

    /// Appends `rows` projected on `names`: what a host that does not know
    /// [`WITH_FIELDS`] makes the plugin do itself.
    pub fn extend_from_rows(&mut self, rows: &Rows, names: &[&str]) {
        let mut parser = JsonParser::new();
        for i in 0..rows.len() {
            self.push_row_with(&mut parser, rows.get(i), rows.table(i), names);
        }
    }

    /// Appends the answers of one `lookup-many` call made with
    /// [`WITH_FIELDS`] ([`encode_keys_with_fields`] with as many names as
    /// this was made for). Takes the answer's buffer without copying when
    /// nothing was appended before. Returns false, having appended nothing,
    /// if the answer does not hold exactly `keys` entries.
    pub fn extend_from_answer(&mut self, answer: Vec<u8>, keys: usize) -> bool {
        let base = self.data.len();
        let (rows_before, values_before) = (self.rows.len(), self.values.len());
        let span = |start: usize, len: usize| Span {
            offset: span_u32(base + start),
            len: span_u32(len),
        };
        let word = |at: usize| answer.get(at..at + 4).map(|_| u32_at(&answer, at));
        let mut at = 0;
        let mut ok = true;
        while ok && at < answer.len() {
            let Some(first) = word(at) else {
                ok = false;
                break;
            };
            at += 4;
            match first {
                NO_ROW => self.rows.push(Entry::Missing),
                OBJECT => {
                    self.rows.push(Entry::Object(self.values.len()));
                    for _ in 0..self.names {
                        match word(at) {
                            Some(ABSENT) => {
                                at += 4;
                                self.values.push(None);
                            }
                            Some(len) if answer.len() - (at + 4) >= len as usize => {
                                self.values.push(Some(span(at + 4, len as usize)));
                                at += 4 + len as usize;
                            }
                            _ => {
                                ok = false;
                                break;
                            }
                        }
                    }
                }
                len if answer.len() - at >= len as usize => {
                    self.rows.push(Entry::Other(span(at, len as usize)));
                    at += len as usize;
                }
                _ => ok = false,
            }
        }
        if !ok || self.rows.len() - rows_before != keys {
            self.rows.truncate(rows_before);
            self.values.truncate(values_before);
            return false;
        }
        if base == 0 {
            self.data = answer;
        } else {
            self.data.extend_from_slice(&answer);
        }
        true
    }
}

/// Keys in `lookup-many`'s layout asking for [`WITH_FIELDS`]: the option
/// words, the field count and each name (a u32 length then its UTF-8
/// bytes), then the keys as [`super::encode_keys`] writes them.
pub fn encode_keys_with_fields<'k>(
    names: &[&str],
    keys: impl IntoIterator<Item = &'k [u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    put(&mut out, OPTIONS);
    put(&mut out, WITH_FIELDS);
    put(&mut out, span_u32(names.len()));
    for n in names {
        put(&mut out, span_u32(n.len()));
        out.extend_from_slice(n.as_bytes());
    }
    for k in keys {
        put(&mut out, span_u32(k.len()));
        out.extend_from_slice(k);
    }
    out
}

/// Writes one row's entry of a [`WITH_FIELDS`] answer (the host's side,
/// here so that both sides of the layout live together): `values` are the
/// asked fields' raw values, `None` for a field the row lacks.
pub fn put_object_row<'v>(out: &mut Vec<u8>, values: impl IntoIterator<Item = Option<&'v [u8]>>) {
    put(out, OBJECT);
    for v in values {
        match v {
            Some(v) => {
                put(out, span_u32(v.len()));
                out.extend_from_slice(v);
            }
            None => put(out, ABSENT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::table;

    fn table_of(row: &[u8]) -> Option<Vec<u8>> {
        let mut t = Vec::new();
        matches!(table::encode(row, &mut t), Ok(true)).then_some(t)
    }

    /// The answer a host sends for `rows` (`None`: no row), projected on
    /// `names` with the view.
    fn answer(rows: &[Option<&[u8]>], names: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for row in rows {
            match row {
                None => put(&mut out, NO_ROW),
                Some(r) => match JsonParser::new().parse(r) {
                    Ok(view) if view.is_object() => put_object_row(
                        &mut out,
                        names.iter().map(|n| view.get(n).map(|v| v.bytes())),
                    ),
                    _ => {
                        put(&mut out, r.len() as u32);
                        out.extend_from_slice(r);
                    }
                },
            }
        }
        out
    }

    // A row that is not an object comes last too: its bytes end the answer.
    const ROWS: [Option<&[u8]>; 7] = [
        Some(br#"{"name":"ann","age":34,"name":"bo"}"#),
        None,
        Some(b"[1,2]"),
        Some(b"{not json"),
        Some(br#"{"n\u0061me":"esc","x":{"age":1}}"#),
        Some(b"{}"),
        Some(b"7"),
    ];

    fn object(fields: &RowFields, i: usize) -> FieldValues<'_> {
        match fields.get(i) {
            Some(RowAnswer::Object(values)) => values,
            other => panic!("row {i} is not an object: {other:?}"),
        }
    }

    #[test]
    fn an_answer_reads_as_the_rows_projected_here() {
        let names = ["name", "age", "name"];
        let mut from_answer = RowFields::new(names.len());
        assert!(from_answer.extend_from_answer(answer(&ROWS, &names), ROWS.len()));
        let mut here = RowFields::new(names.len());
        for r in ROWS {
            let t = r.and_then(table_of);
            here.push_row(r, t.as_deref(), &names);
        }
        assert_eq!(from_answer.len(), ROWS.len());
        for i in 0..ROWS.len() {
            assert_eq!(from_answer.get(i), here.get(i), "row {i}");
        }
        let first = object(&from_answer, 0);
        assert_eq!(
            first.get(0).map(|v| v.bytes()),
            Some(&br#""bo""#[..]),
            "the last duplicate"
        );
        assert_eq!(first.get(1).map(|v| v.bytes()), Some(&b"34"[..]));
        assert_eq!(first.get(3), None, "past the names asked");
        assert_eq!(from_answer.get(1), None);
        assert_eq!(from_answer.get(2), Some(RowAnswer::Other(b"[1,2]")));
        assert_eq!(from_answer.get(3), Some(RowAnswer::Other(b"{not json")));
        let escaped = object(&from_answer, 4);
        assert_eq!(
            escaped.get(0).map(|v| v.bytes()),
            Some(&br#""esc""#[..]),
            "keys compare unescaped"
        );
        assert_eq!(escaped.get(1), None, "only top-level fields");
        let empty = object(&from_answer, 5);
        assert_eq!((empty.get(0), empty.get(1)), (None, None));
    }

    #[test]
    fn answers_append_and_a_bad_answer_appends_nothing() {
        let names = ["name"];
        let good = answer(&ROWS[..2], &names);
        let mut fields = RowFields::new(1);
        assert!(fields.extend_from_answer(good.clone(), 2));
        assert!(
            fields.extend_from_answer(good.clone(), 2),
            "a second call appends"
        );
        assert_eq!(fields.len(), 4);
        assert_eq!(fields.get(2), fields.get(0));
        let before = fields.clone();
        for cut in 0..good.len() {
            // A cut answer either fails to parse or holds fewer rows.
            assert!(
                !fields.extend_from_answer(good[..cut].to_vec(), 2),
                "cut at {cut}"
            );
        }
        assert!(!fields.extend_from_answer(good.clone(), 3), "wrong count");
        let mut huge = Vec::new();
        put(&mut huge, OBJECT);
        put(&mut huge, u32::MAX - 2);
        assert!(!fields.extend_from_answer(huge, 1), "a length past the end");
        let mut huge = Vec::new();
        put(&mut huge, u32::MAX - 2);
        assert!(
            !fields.extend_from_answer(huge, 1),
            "an other row past the end"
        );
        assert_eq!(fields, before, "nothing appended on refusal");
    }

    #[test]
    fn keys_with_fields_carry_the_names_first() {
        let buf = encode_keys_with_fields(&["ab"], [&b"k"[..]]);
        let words: Vec<u32> = buf
            .chunks(4)
            .take(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("word")))
            .collect();
        assert_eq!(words, [OPTIONS, WITH_FIELDS, 1, 2]);
        assert_eq!(&buf[16..18], b"ab");
        assert_eq!(&buf[18..], &[1, 0, 0, 0, b'k']);
        assert_eq!(WITH_FIELDS & crate::abi::WITH_TABLES, 0);
    }
}
