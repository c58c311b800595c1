//! Zero-copy JSON: read fields of an event value without building a tree, and
//! build output objects by splicing the input's raw bytes.
//!
//! [`JsonView::parse`] checks the whole value once (one pass, no allocation
//! except the table of top-level fields, which [`JsonParser`] reuses across
//! events) and remembers where each top-level field's key and value lie.
//! Reading a field is then a lookup in that table; [`Raw`] is the exact text of
//! one JSON value, read on demand ([`Raw::as_str`], [`Raw::as_f64`], ...).
//! [`ObjectWriter`] writes an object from raw slices and new values, so a
//! number or string the plugin does not change is copied byte for byte
//! (`9007199254740993` stays `9007199254740993`, `1.50` stays `1.50`).
//!
//! Why a hand-written scanner and not `serde_json::value::RawValue`: borrowed
//! deserialization into a `HashMap<&str, &RawValue>` fails on keys with escapes
//! (they cannot be borrowed), allocates the map per event and still runs
//! serde's visitor machinery over every skipped value; serde_json's
//! `IgnoredAny` is what the old partial parse already used. A JSON validator is
//! small, and this one needs no allocation per value, which suits a Wasm
//! guest (its one dependency, `simdutf8`, checks UTF-8 with SIMD where the
//! CPU has it and falls back to `core`'s check elsewhere). Its only `unsafe`
//! is two calls into an SSE2 function on x86-64 (the host's scans), which
//! reads string text 16 bytes at a time where a Wasm guest reads 8. It accepts RFC 8259 JSON as
//! `serde_json::from_slice` does (escapes, surrogate pairs, control
//! characters, number grammar, trailing characters), with nesting capped at
//! [`MAX_DEPTH`] as serde_json caps it, so hostile input fails with a reason
//! instead of exhausting the stack. It is stricter than the host's
//! `check_json` and serde_json's `IgnoredAny`, which skip strings without
//! checking their UTF-8: every string is checked here. At a string's first
//! non-ASCII byte the rest of the value is checked in one pass (on the host
//! about 0.4 µs per 575-byte Unicode-heavy event, against 1.0 byte by byte:
//! `sluice-bench scan`); only if that fails does the check go on byte by
//! byte, to report the first error where it is. ASCII costs nothing extra.
//!
//! **Duplicate keys**: every lookup ([`JsonView::get`], [`Raw::get`]) returns
//! the *last* occurrence, as `serde_json::Value` does. [`JsonView::fields`]
//! lists every occurrence, in input order.
//!
//! **Numbers** are kept as text: [`Raw::as_i64`], [`Raw::as_u64`] and
//! [`Raw::as_f64`] parse on demand; a number that fits none of them (say
//! `1e400`) is still valid JSON here and is copied through unchanged, while
//! [`Raw::to_value`] reports it as serde_json does.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

/// Deepest nesting of arrays and objects accepted (serde_json's limit).
pub const MAX_DEPTH: usize = 128;

/// Why a value is not JSON: what was wrong and the byte offset where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset in the value where the problem was found.
    pub offset: usize,
    /// What was expected or found.
    pub message: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for JsonError {}

/// Where one top-level field of an object lies in the value bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The key's text between the quotes, still escaped.
    key: (usize, usize),
    /// The value's text.
    value: (usize, usize),
    /// Whether the key contains a backslash escape.
    escaped: bool,
    /// How many fields, this one the last, are written compactly one after
    /// another (see [`JsonView::compact_run`]); 0 when this one is not.
    /// Counted when the entry is made, so that a run is checked in one
    /// step rather than a loop over its fields, which in Wasm also pays an
    /// interruption check per field.
    run: u32,
}

impl Entry {
    /// The entry for a field whose key text is `key` and value `value`,
    /// after a field (in the same object) that ended at `prev.0` with a run
    /// of `prev.1`.
    ///
    /// Compactness is read from the offsets alone, which in valid JSON
    /// decide it: one byte between a key's closing quote and its value can
    /// only be `:`, and one byte between a value and the next key's opening
    /// quote only `,`. A view trusts its entries for every key and value it
    /// returns; runs trust them no further.
    #[inline(always)]
    fn new(
        key: (usize, usize),
        value: (usize, usize),
        escaped: bool,
        prev: Option<(usize, u32)>,
    ) -> Self {
        let run = if escaped || value.0 != key.1 + 2 {
            0
        } else {
            match prev {
                Some((end, run)) if key.0 == end + 2 => run.saturating_add(1),
                _ => 1,
            }
        };
        Entry {
            key,
            value,
            escaped,
            run,
        }
    }

    /// What [`Entry::new`] needs from this entry for the next field's.
    #[inline(always)]
    fn as_prev(&self) -> Option<(usize, u32)> {
        Some((self.value.1, self.run))
    }
}

/// Counts the runs of an object's entries as the scanner left them (run 0),
/// in one pass after the scan: the host's scan, which only encodes field
/// tables, does not pay for them (counting inside the scanner's loop made
/// it a fifth slower), and a plugin's view gets them from the table's
/// decode when the host sent one.
fn count_runs(entries: &mut [Entry]) {
    let mut prev = None;
    for e in entries {
        *e = Entry::new(e.key, e.value, e.escaped, prev);
        prev = e.as_prev();
    }
}

/// Parses values reusing its field table, so a plugin allocates nothing per
/// event once the table has grown to the widest event seen.
#[derive(Debug, Default, Clone)]
pub struct JsonParser {
    fields: Vec<Entry>,
}

impl JsonParser {
    /// A parser with an empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks `bytes` as one JSON value and indexes its top-level fields.
    pub fn parse<'a>(&'a mut self, bytes: &'a [u8]) -> Result<JsonView<'a>, JsonError> {
        self.parse_with_table(bytes, None)
    }

    /// [`JsonParser::parse`], taking the fields from `table` (the host's
    /// field table of these bytes, see [`table`]) instead of scanning when
    /// there is one and it fits them.
    pub fn parse_with_table<'a>(
        &'a mut self,
        bytes: &'a [u8],
        table: Option<&[u8]>,
    ) -> Result<JsonView<'a>, JsonError> {
        self.fields.clear();
        if !table.is_some_and(|t| table::decode(bytes, t, &mut self.fields)) {
            scan_root(bytes, &mut self.fields)?;
        }
        Ok(JsonView {
            bytes,
            fields: Cow::Borrowed(&self.fields),
        })
    }
}

/// A checked JSON value with its top-level fields indexed (none unless the
/// value is an object).
#[derive(Debug, Clone)]
pub struct JsonView<'a> {
    bytes: &'a [u8],
    fields: Cow<'a, [Entry]>,
}

impl<'a> JsonView<'a> {
    /// Checks `bytes` as one JSON value (see [`JsonParser`] to reuse the table).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, JsonError> {
        let mut fields = Vec::new();
        scan_root(bytes, &mut fields)?;
        Ok(JsonView {
            bytes,
            fields: Cow::Owned(fields),
        })
    }

    /// The whole value.
    pub fn root(&self) -> Raw<'a> {
        Raw(trim(self.bytes))
    }

    /// Whether the value is an object.
    pub fn is_object(&self) -> bool {
        // Only an object has fields: most views answer without trimming.
        !self.fields.is_empty() || self.root().kind() == Kind::Object
    }

    /// The top-level field `name` (its last occurrence), if the value is an
    /// object that has it.
    pub fn get(&self, name: &str) -> Option<Raw<'a>> {
        self.find(name).map(|i| self.field_value(i))
    }

    /// Index in [`JsonView::fields`] of the last occurrence of `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .rposition(|e| key_eq(self.bytes, e, name))
    }

    /// The value at a path of names from the root; all-digit names index
    /// arrays (`["items", "0", "sku"]`).
    pub fn path<S: AsRef<str>>(&self, names: &[S]) -> Option<Raw<'a>> {
        let (first, rest) = names.split_first()?;
        let mut at = match self.root().kind() {
            Kind::Object => self.get(first.as_ref())?,
            _ => self.root().member(first.as_ref())?,
        };
        for name in rest {
            at = at.member(name.as_ref())?;
        }
        Some(at)
    }

    /// Every top-level field in input order (duplicates included).
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (RawKey<'a>, Raw<'a>)> + '_ {
        (0..self.fields.len()).map(|i| self.field(i))
    }

    /// Number of top-level fields (occurrences).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no top-level fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Fields `first..=last` as one slice of the input, `"k":v,"k2":v2`, when
    /// the input writes them that compactly (a key's closing quote, `:` and
    /// its value; between fields only `,`) and no key has an escape. The
    /// slice is then exactly what [`ObjectWriter::raw_field`] writes for each
    /// (or [`ObjectWriter::raw_at`] under its own name), so
    /// [`ObjectWriter::raw_run`] copies several fields at once. `None`
    /// otherwise, or when the range is not within the fields.
    pub fn compact_run(&self, first: usize, last: usize) -> Option<RawRun<'a>> {
        let (head, tail) = (self.fields.get(first)?, self.fields.get(last)?);
        // `tail.run` counts the compact fields ending at `last`: enough of
        // them covers `first..=last`.
        let span = last.checked_sub(first)?;
        if (tail.run as usize) <= span {
            return None;
        }
        let start = head.key.0.checked_sub(1)?;
        Some(RawRun(self.bytes.get(start..tail.value.1)?))
    }

    /// The `i`th top-level field's value; panics if out of range, like
    /// indexing. [`JsonView::field`] without slicing the key, which in Wasm
    /// is a bounds check the compiler cannot drop.
    pub fn field_value(&self, i: usize) -> Raw<'a> {
        let e = self.fields[i];
        Raw(&self.bytes[e.value.0..e.value.1])
    }

    /// The `i`th top-level field; panics if out of range, like indexing.
    pub fn field(&self, i: usize) -> (RawKey<'a>, Raw<'a>) {
        let e = self.fields[i];
        (
            RawKey {
                text: &self.bytes[e.key.0..e.key.1],
                escaped: e.escaped,
            },
            Raw(&self.bytes[e.value.0..e.value.1]),
        )
    }
}

fn key_eq(bytes: &[u8], e: &Entry, name: &str) -> bool {
    let text = &bytes[e.key.0..e.key.1];
    if e.escaped {
        return unescape(text).is_some_and(|k| k == name);
    }
    // Most keys of a wide object differ from `name` in length or in their
    // last byte (`f12`, `f13`); checking those first saves a `memcmp` call,
    // which in Wasm is a real call, for most of the keys a lookup passes.
    let name = name.as_bytes();
    text.len() == name.len() && text.last() == name.last() && same_bytes(text, name)
}

/// `a == b` for short byte strings such as keys, eight bytes at a time and
/// inlined: slice equality calls `memcmp`, which in Wasm is wasi-libc's
/// byte-at-a-time loop behind a call, and was a twentieth of `project`'s
/// time on the benchmark's orders.
#[inline]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // Whole words, then the last word again, overlapping, instead of a byte
    // loop over the rest (in Wasm each byte is several instructions).
    if n >= 8 {
        let word = |s: &[u8], i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&s[i..i + 8]);
            u64::from_le_bytes(w)
        };
        // Most keys are sixteen bytes or fewer: two words, no loop (a loop
        // in Wasm also pays an interruption check per turn).
        if n <= 16 {
            return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
        }
        let mut i = 0;
        while i + 8 <= n {
            if word(a, i) != word(b, i) {
                return false;
            }
            i += 8;
        }
        return i == n || word(a, n - 8) == word(b, n - 8);
    }
    if n >= 4 {
        let word = |s: &[u8], i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&s[i..i + 4]);
            u32::from_le_bytes(w)
        };
        return word(a, 0) == word(b, 0) && word(a, n - 4) == word(b, n - 4);
    }
    // Three bytes or fewer: first, middle and last cover them all.
    n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1])
}

/// Appends `src` to `buf`. In Wasm, copying a slice whose length is not
/// known at compile time is a `memory.copy`, which wasmtime runs as a call
/// out of the guest into its runtime (a trampoline, bounds checks, then
/// `memmove`), and a stage writes ten-odd short pieces per event (keys,
/// small values). Up to [`SHORT`] bytes are copied here in fixed-size
/// pieces, which compile to plain loads and stores. Elsewhere `memcpy` is a
/// plain call and small copies are cheap, so this is Wasm only.
#[inline]
pub(crate) fn append(buf: &mut Vec<u8>, src: &[u8]) {
    #[cfg(target_family = "wasm")]
    if append_short(buf, src) {
        return;
    }
    buf.extend_from_slice(src);
}

/// The longest copy [`append`] makes in pieces.
#[cfg_attr(not(target_family = "wasm"), allow(dead_code))]
const SHORT: usize = 32;

/// [`append`] in pieces: false, appending nothing, when `src` is longer
/// than [`SHORT`].
#[inline]
#[cfg_attr(not(target_family = "wasm"), allow(dead_code))]
fn append_short(buf: &mut Vec<u8>, src: &[u8]) -> bool {
    if src.len() > SHORT {
        return false;
    }
    // Room made with a fixed-size write (no `memory.copy`), then cut back.
    let at = buf.len();
    buf.extend_from_slice(&[0; SHORT]);
    if let Some(dst) = buf.get_mut(at..at + src.len()) {
        copy_short(dst, src);
    }
    buf.truncate(at + src.len());
    true
}

/// `dst.copy_from_slice(src)` for at most [`SHORT`] bytes, as two
/// overlapping fixed-size copies (the same bytes written twice where they
/// overlap), as [`same_bytes`] compares. Copies nothing if the lengths
/// differ or exceed [`SHORT`].
#[inline]
#[cfg_attr(not(target_family = "wasm"), allow(dead_code))]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    fn piece<const K: usize>(dst: &mut [u8], src: &[u8], at: usize) {
        let d = dst
            .get_mut(at..at + K)
            .and_then(|d| <&mut [u8; K]>::try_from(d).ok());
        let s = src
            .get(at..at + K)
            .and_then(|s| <&[u8; K]>::try_from(s).ok());
        if let (Some(d), Some(s)) = (d, s) {
            *d = *s;
        }
    }
    let n = src.len();
    if n != dst.len() {
        return;
    }
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => {
            piece::<4>(dst, src, 0);
            piece::<4>(dst, src, n - 4);
        }
        8..=15 => {
            piece::<8>(dst, src, 0);
            piece::<8>(dst, src, n - 8);
        }
        16..=SHORT => {
            piece::<16>(dst, src, 0);
            piece::<16>(dst, src, n - 16);
        }
        _ => {}
    }
}

/// Consecutive fields of an input object as written, `"k":v,"k2":v2`: made
/// only by [`JsonView::compact_run`], written by [`ObjectWriter::raw_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRun<'a>(&'a [u8]);

/// An object key as it appears in the input, still escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawKey<'a> {
    text: &'a [u8],
    escaped: bool,
}

impl<'a> RawKey<'a> {
    /// The key's text between the quotes, escapes untouched.
    pub fn escaped_text(&self) -> &'a [u8] {
        self.text
    }

    /// Whether the key is written with a backslash escape (then its text as
    /// written differs from [`RawKey::text`]).
    pub fn has_escape(&self) -> bool {
        self.escaped
    }

    /// The key's value, unescaped (borrowed when it has no escape).
    pub fn text(&self) -> Cow<'a, str> {
        if self.escaped {
            Cow::Owned(unescape(self.text).unwrap_or_default())
        } else {
            Cow::Borrowed(std::str::from_utf8(self.text).unwrap_or_default())
        }
    }

    /// Whether the key equals `name` (after unescaping).
    pub fn is(&self, name: &str) -> bool {
        if self.escaped {
            unescape(self.text).is_some_and(|k| k == name)
        } else {
            same_bytes(self.text, name.as_bytes())
        }
    }
}

/// The JSON type of a [`Raw`] value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `null`
    Null,
    /// `true` or `false`
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl Kind {
    /// How a message names a value of this kind: `null`, `a number`, `an
    /// object`...
    pub fn described(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// The exact text of one checked JSON value, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(&'a [u8]);

impl<'a> Raw<'a> {
    /// `null`, for writing a missing value.
    pub const NULL: Raw<'static> = Raw(b"null");

    /// Text known to be one JSON value: a value the host found in a row
    /// it scanned ([`crate::abi::FieldValues`]).
    pub(crate) fn checked(bytes: &'a [u8]) -> Self {
        Raw(bytes)
    }

    /// The value's JSON text, exactly as in the input.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The value's JSON text as `str` (input was checked to be UTF-8).
    pub fn text(&self) -> &'a str {
        std::str::from_utf8(self.0).unwrap_or_default()
    }

    /// The value's type.
    pub fn kind(&self) -> Kind {
        match self.0.first() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b'"') => Kind::String,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'n') | None => Kind::Null,
            Some(_) => Kind::Number,
        }
    }

    /// Whether the value is `null`.
    pub fn is_null(&self) -> bool {
        self.kind() == Kind::Null
    }

    /// A boolean's value.
    pub fn as_bool(&self) -> Option<bool> {
        match self.0 {
            b"true" => Some(true),
            b"false" => Some(false),
            _ => None,
        }
    }

    /// A string's value, unescaped (borrowed when it has no escape).
    pub fn as_str(&self) -> Option<Cow<'a, str>> {
        // A slice pattern, not `strip_prefix`: in Wasm that compares its one
        // byte through a `memcmp` call.
        let [b'"', inner @ .., b'"'] = self.0 else {
            return None;
        };
        if inner.contains(&b'\\') {
            unescape(inner).map(Cow::Owned)
        } else {
            std::str::from_utf8(inner).ok().map(Cow::Borrowed)
        }
    }

    /// An integer number that fits `i64` (`1.0` and `1e3` do not).
    pub fn as_i64(&self) -> Option<i64> {
        self.number_text()?.parse().ok()
    }

    /// An integer number that fits `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        self.number_text()?.parse().ok()
    }

    /// A number as `f64` (nearest; `1e400` is `None`).
    pub fn as_f64(&self) -> Option<f64> {
        self.number_text()?
            .parse()
            .ok()
            .filter(|f: &f64| f.is_finite())
    }

    fn number_text(&self) -> Option<&'a str> {
        (self.kind() == Kind::Number).then(|| self.text())
    }

    /// The value as a `serde_json::Value` tree (built only for this value).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(self.0)
    }

    /// The member `name` of an object (last occurrence), or the item at index
    /// `name` (all digits) of an array.
    pub fn member(&self, name: &str) -> Option<Raw<'a>> {
        match self.kind() {
            Kind::Object => self.get(name),
            Kind::Array => {
                let index: usize = name
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| name.parse().ok())??;
                self.items().nth(index)
            }
            _ => None,
        }
    }

    /// The member `name` of an object (last occurrence).
    pub fn get(&self, name: &str) -> Option<Raw<'a>> {
        let mut found = None;
        for (key, value) in self.entries() {
            if key.is(name) {
                found = Some(value);
            }
        }
        found
    }

    /// An object's members in input order (empty for other types).
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            bytes: if self.kind() == Kind::Object {
                self.0
            } else {
                b""
            },
            pos: 1,
        }
    }

    /// An array's items in order (empty for other types).
    pub fn items(&self) -> Items<'a> {
        Items {
            bytes: if self.kind() == Kind::Array {
                self.0
            } else {
                b""
            },
            pos: 1,
        }
    }
}

/// Iterator over an object's members; see [`Raw::entries`].
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (RawKey<'a>, Raw<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        // The text was checked, so this only finds boundaries.
        let b = self.bytes;
        let mut p = skip_ws(b, self.pos);
        if b.get(p) == Some(&b',') {
            p = skip_ws(b, p + 1);
        }
        if b.get(p) != Some(&b'"') {
            self.pos = b.len();
            return None;
        }
        let key_end = skip_string_checked(b, p);
        let key = RawKey {
            text: b.get(p + 1..key_end - 1)?,
            escaped: b.get(p + 1..key_end - 1)?.contains(&b'\\'),
        };
        let v = skip_ws(b, skip_ws(b, key_end) + 1);
        let v_end = skip_checked(b, v);
        self.pos = v_end;
        Some((key, Raw(b.get(v..v_end)?)))
    }
}

/// Iterator over an array's items; see [`Raw::items`].
#[derive(Debug, Clone)]
pub struct Items<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Items<'a> {
    type Item = Raw<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.bytes;
        let mut p = skip_ws(b, self.pos);
        if b.get(p) == Some(&b',') {
            p = skip_ws(b, p + 1);
        }
        if p >= b.len() || b[p] == b']' {
            self.pos = b.len();
            return None;
        }
        let end = skip_checked(b, p);
        self.pos = end;
        Some(Raw(b.get(p..end)?))
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = skip_ws(b, 0);
    let mut end = b.len();
    while end > start && matches!(b[end - 1], b' ' | b'\t' | b'\n' | b'\r') {
        end -= 1;
    }
    &b[start..end]
}

#[inline(always)]
fn skip_ws(b: &[u8], mut p: usize) -> usize {
    // Most bytes after a token are not whitespace: one compare says so.
    while let Some(&c) = b.get(p) {
        if c > b' ' || !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            break;
        }
        p += 1;
    }
    p
}

/// End of the string starting at `p` (a `"`) in checked text.
fn skip_string_checked(b: &[u8], mut p: usize) -> usize {
    p += 1;
    while let Some(&c) = b.get(p) {
        match c {
            b'"' => return p + 1,
            b'\\' => p += 2,
            _ => p += 1,
        }
    }
    b.len()
}

/// End of the value starting at `p` in checked text.
fn skip_checked(b: &[u8], p: usize) -> usize {
    match b.get(p) {
        Some(b'"') => skip_string_checked(b, p),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut q = p;
            while let Some(&c) = b.get(q) {
                match c {
                    b'"' => {
                        q = skip_string_checked(b, q);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return q + 1;
                        }
                    }
                    _ => {}
                }
                q += 1;
            }
            b.len()
        }
        _ => {
            let mut q = p;
            while let Some(c) = b.get(q) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                q += 1;
            }
            q
        }
    }
}

/// Unescapes the text between a string's quotes (checked text).
fn unescape(text: &[u8]) -> Option<String> {
    let mut quoted = Vec::with_capacity(text.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(text);
    quoted.push(b'"');
    serde_json::from_slice(&quoted).ok()
}

/// ASCII bytes that end a run of plain string content: `"`, `\\` and
/// controls.
static STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// The high bit of each byte of `w` that is `"`, `\\`, a control
/// character or not ASCII: the bytes at which [`STOP`] or the UTF-8 check
/// must look. Bits above the lowest may be false alarms (a borrow carries
/// into the next byte), but the lowest set bit is always the first such
/// byte, which is all the caller uses.
#[inline]
fn stop_mask(w: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    (w & HIGH) | text_stop_mask(w)
}

/// [`stop_mask`] without its non-ASCII term: `"`, `\\` and controls only.
#[inline]
fn text_stop_mask(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
        | zero_bytes(w ^ (ONES * u64::from(b'"')))
        | zero_bytes(w ^ (ONES * u64::from(b'\\')))
}

/// From `p`, eight bytes at a time: `Ok` with the first byte `mask` flags
/// (the lowest high bit it sets, the only one the masks above make sure
/// of), or `Err` with where the whole words end, if none does, for the
/// caller to read the last few bytes one at a time.
#[inline(always)]
fn first_flagged(b: &[u8], mut p: usize, mask: impl Fn(u64) -> u64) -> Result<usize, usize> {
    while let Some(word) = b.get(p..p + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let flags = mask(u64::from_le_bytes(w));
        if flags != 0 {
            return Ok(p + (flags.trailing_zeros() / 8) as usize);
        }
        p += 8;
    }
    Err(p)
}

/// The high bit of each byte of `w` that is not an ASCII digit. As in
/// [`stop_mask`], bits above the lowest may be false alarms (a carry out of
/// a byte of 0x8a or more), but the lowest set bit is always the first
/// byte that is not a digit: below it every byte is one, and adding 0x76
/// to a digit's 0..=9 carries nothing.
#[inline]
fn non_digit_mask(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = w ^ (ONES * u64::from(b'0'));
    (x.wrapping_add(ONES * 0x76) | x) & HIGH
}

/// Where the plain ASCII string text from `p` ends, read eight bytes at a
/// time (most of most strings): the first byte that is `"`, `\\`, a
/// control or not ASCII, or the last eight-byte word's end, from which the
/// caller reads bytes one at a time.
#[inline(always)]
fn plain_run_end(b: &[u8], p: usize) -> usize {
    // SAFETY: `sixteen_at_a_time` needs only SSE2, which this build has
    // (the cfg), as every x86-64 target does.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let p = match unsafe { sixteen_at_a_time::<true>(b, p) } {
        Ok(stop) => return stop,
        Err(p) => p,
    };
    match first_flagged(b, p, stop_mask) {
        Ok(p) | Err(p) => p,
    }
}

/// The string scan's whole 16-byte blocks with SSE2, which every x86-64
/// CPU has (the host's scan of every event a table-reading stage gets; a
/// Wasm guest keeps the 8-byte words): `Ok` at the first byte that is `"`,
/// `\`, a control or, when `NON_ASCII_STOPS` ([`plain_run_end`]; not for
/// [`text_run_end`]), not ASCII; `Err` where the blocks end. Half the turns
/// of the 8-byte loop on a UUID or a timestamp, and exact (no false alarms
/// to mask).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn sixteen_at_a_time<const NON_ASCII_STOPS: bool>(b: &[u8], mut p: usize) -> Result<usize, usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_set_epi64x,
    };
    let half = |s: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(s);
        i64::from_le_bytes(w)
    };
    while let Some(block) = b.get(p..p + 16) {
        let v = _mm_set_epi64x(half(&block[8..]), half(&block[..8]));
        let controls = if NON_ASCII_STOPS {
            // Signed: bytes of 0x80 and above are negative, so "below
            // 0x20" also flags every byte that is not ASCII.
            _mm_cmplt_epi8(v, _mm_set1_epi8(0x20))
        } else {
            // Unsigned: the bytes whose minimum with 0x1f is themselves.
            _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v)
        };
        let stop = _mm_or_si128(
            controls,
            _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
            ),
        );
        let flags = _mm_movemask_epi8(stop) as u32;
        if flags != 0 {
            return Ok(p + flags.trailing_zeros() as usize);
        }
        p += 16;
    }
    Err(p)
}

/// Where the string text from `p` reaches a `"`, `\\` or control
/// character (the end of the value at worst); non-ASCII bytes do not stop it.
#[inline]
fn text_run_end(b: &[u8], p: usize) -> usize {
    // SAFETY: as in `plain_run_end`.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let p = match unsafe { sixteen_at_a_time::<false>(b, p) } {
        Ok(stop) => return stop,
        Err(p) => p,
    };
    let mut p = match first_flagged(b, p, text_stop_mask) {
        Ok(stop) => return stop,
        Err(end) => end,
    };
    while let Some(&c) = b.get(p) {
        if c < 0x80 && STOP[usize::from(c)] {
            break;
        }
        p += 1;
    }
    p
}

/// The validating scanner.
struct Scanner<'b> {
    b: &'b [u8],
    p: usize,
    /// Whether the value from the first non-ASCII byte in a string on is
    /// UTF-8, once that byte is met (checked in one pass).
    rest_is_utf8: Option<bool>,
}

/// Checks that `bytes` are one JSON value, as [`JsonView::parse`] does
/// (UTF-8 included), without indexing anything: what a host or a plugin
/// that only passes values on needs.
pub fn check(bytes: &[u8]) -> Result<(), JsonError> {
    scan_from::<Unkept>(bytes, None, None)
}

/// [`check`] without the UTF-8 check of strings' text: the grammar, escapes
/// (surrogate pairs included), control characters and nesting only. What
/// serde_json's `IgnoredAny` checks, less its unbounded nesting and lone
/// surrogates, which this refuses: for a host that passes values on and
/// leaves their text to whatever reads them. Outside strings the grammar
/// admits only ASCII, so a value this accepts is UTF-8 but for the bytes
/// inside strings.
pub fn check_syntax(bytes: &[u8]) -> Result<(), JsonError> {
    // Told the text is UTF-8 already, the scanner only skips non-ASCII
    // bytes in strings (`text_run_end`, which stops at the same ASCII bytes
    // whatever the others are).
    scan_from::<Unkept>(bytes, None, Some(true))
}

/// Scans one value and appends its top-level fields, runs counted, to
/// `fields`: what views are made of.
fn scan_root(bytes: &[u8], fields: &mut Vec<Entry>) -> Result<(), JsonError> {
    let start = fields.len();
    scan_fields(bytes, fields)?;
    count_runs(&mut fields[start..]);
    Ok(())
}

/// [`scan_root`] without the runs, into any [`Fields`]: a field table's
/// records are written as the scan meets the fields.
fn scan_fields<F: Fields>(bytes: &[u8], fields: &mut F) -> Result<(), JsonError> {
    scan_from(bytes, Some(fields), None)
}

/// Where a scan puts the top-level fields it meets: a view's entries, or a
/// field table's records ([`table::encode`]), without a pass in between.
trait Fields {
    fn field(&mut self, key: (usize, usize), value: (usize, usize), escaped: bool);
}

impl Fields for Vec<Entry> {
    #[inline(always)]
    fn field(&mut self, key: (usize, usize), value: (usize, usize), escaped: bool) {
        self.push(Entry {
            key,
            value,
            escaped,
            run: 0,
        });
    }
}

/// Fields no one keeps: a nested object's, or any in a check.
struct Unkept;

impl Fields for Unkept {
    #[inline(always)]
    fn field(&mut self, _: (usize, usize), _: (usize, usize), _: bool) {}
}

fn scan_from<F: Fields>(
    bytes: &[u8],
    fields: Option<&mut F>,
    rest_is_utf8: Option<bool>,
) -> Result<(), JsonError> {
    let mut s = Scanner {
        b: bytes,
        p: 0,
        rest_is_utf8,
    };
    s.root(fields).map_err(|message| JsonError {
        offset: s.p,
        message,
    })
}

/// Why a scan failed; where is the scanner's position when it returns.
/// (Not a [`JsonError`]: a `Result` of this fits in two registers, one of
/// 24 bytes goes through memory at every `?`, a tenth of the scan.)
type Failed = &'static str;

impl Scanner<'_> {
    fn root<F: Fields>(&mut self, fields: Option<&mut F>) -> Result<(), Failed> {
        self.ws();
        if self.peek() == Some(b'{') {
            self.object(1, fields)?;
        } else {
            self.value(0)?;
        }
        self.ws();
        if self.p != self.b.len() {
            return Err("trailing characters");
        }
        Ok(())
    }

    fn err(&self, message: &'static str) -> Failed {
        message
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.p).copied()
    }

    #[inline(always)]
    fn ws(&mut self) {
        self.p = skip_ws(self.b, self.p);
    }

    /// The next byte that is not whitespace, the position moved onto it.
    /// Compact JSON has none between tokens: one load and one compare say
    /// so, where `ws` then `peek` read the byte twice.
    #[inline(always)]
    fn next_token(&mut self) -> Option<u8> {
        match self.b.get(self.p) {
            Some(&c) if c > b' ' => Some(c),
            _ => {
                self.ws();
                self.peek()
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), Failed> {
        match self.peek() {
            Some(b'{') => self.object::<Unkept>(depth + 1, None),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(|_| ()),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("EOF while parsing a value")),
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), Failed> {
        if self.b[self.p..].starts_with(word) {
            self.p += word.len();
            Ok(())
        } else {
            Err(self.err("expected a value"))
        }
    }

    /// The end of the run of ASCII digits from `p`: eight bytes at a time,
    /// then one at a time near the end of the value.
    #[inline(always)]
    fn digits_from(&self, p: usize) -> usize {
        let b = self.b;
        let mut p = match first_flagged(b, p, non_digit_mask) {
            Ok(other) => return other,
            Err(end) => end,
        };
        while b.get(p).is_some_and(u8::is_ascii_digit) {
            p += 1;
        }
        p
    }

    /// A value in an object or array: strings and numbers (most values)
    /// read inline, the rest through [`Scanner::value`].
    #[inline(always)]
    fn member(&mut self, depth: usize) -> Result<(), Failed> {
        let first = self.next_token();
        self.member_at(first, depth)
    }

    /// [`Scanner::member`] at its first byte `first`, already read.
    #[inline(always)]
    fn member_at(&mut self, first: Option<u8>, depth: usize) -> Result<(), Failed> {
        match first {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.value(depth),
        }
    }

    #[inline]
    fn number(&mut self) -> Result<(), Failed> {
        let mut p = self.p + usize::from(self.peek() == Some(b'-'));
        p = match self.b.get(p) {
            Some(b'0') => p + 1,
            Some(b'1'..=b'9') => self.digits_from(p + 1),
            _ => {
                self.p = p;
                return Err(self.err("invalid number"));
            }
        };
        if self.b.get(p) == Some(&b'.') {
            let end = self.digits_from(p + 1);
            if end == p + 1 {
                self.p = end;
                return Err(self.err("invalid number"));
            }
            p = end;
        }
        if let Some(b'e' | b'E') = self.b.get(p) {
            p += 1;
            if let Some(b'+' | b'-') = self.b.get(p) {
                p += 1;
            }
            let end = self.digits_from(p);
            if end == p {
                self.p = end;
                return Err(self.err("invalid number"));
            }
            p = end;
        }
        self.p = p;
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16, Failed> {
        let digits = self
            .b
            .get(self.p..self.p + 4)
            .ok_or_else(|| self.err("EOF while parsing a string"))?;
        let mut n = 0u16;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.err("invalid escape")),
            };
            n = n * 16 + u16::from(v);
        }
        self.p += 4;
        Ok(n)
    }

    /// Scans a string at `"`; returns whether it had an escape.
    ///
    /// Most strings (keys above all) are plain ASCII and end within a few
    /// 8-byte words: those are read here, inlined into the caller; the
    /// first byte that is not plain ASCII text or the closing quote hands
    /// over to [`Scanner::string_rest`].
    #[inline(always)]
    fn string(&mut self) -> Result<bool, Failed> {
        let p = plain_run_end(self.b, self.p + 1);
        if self.b.get(p) == Some(&b'"') {
            self.p = p + 1;
            return Ok(false);
        }
        self.p = p;
        self.string_rest()
    }

    /// [`Scanner::string`] from inside the string, at `self.p`: UTF-8,
    /// escapes, controls and the end of the value.
    #[inline(never)]
    fn string_rest(&mut self) -> Result<bool, Failed> {
        let mut escaped = false;
        let b = self.b;
        loop {
            // One tight loop over plain text, ASCII or well-formed UTF-8
            // (Unicode table 3-7: no overlongs, surrogates or code points
            // above U+10FFFF). Outside strings the grammar admits only
            // ASCII, so this makes the whole value UTF-8 without a second
            // pass.
            let mut p = self.p;
            loop {
                // The byte loop below takes over at the first byte that
                // might stop or need UTF-8 checking.
                p = plain_run_end(b, p);
                let Some(&c) = b.get(p) else { break };
                if c < 0x80 {
                    if STOP[usize::from(c)] {
                        break;
                    }
                    p += 1;
                    continue;
                }
                // The first non-ASCII byte: the rest of the value is checked
                // as UTF-8 at once, with SIMD where the CPU has it (byte by
                // byte below it cost 1.8 ns a byte of Unicode-heavy text,
                // three times serde_json's skip). If it is valid, non-ASCII
                // text is only skipped from here on; if not, the check goes
                // on byte by byte, so that the first error in reading order
                // is the one reported, where it is.
                let rest_is_utf8 = *self
                    .rest_is_utf8
                    .get_or_insert_with(|| simdutf8::basic::from_utf8(&b[p..]).is_ok());
                if rest_is_utf8 {
                    p = text_run_end(b, p);
                    continue;
                }
                let in_range =
                    |i: usize, lo: u8, hi: u8| b.get(p + i).is_some_and(|x| (lo..=hi).contains(x));
                let tail = |i: usize| in_range(i, 0x80, 0xBF);
                let width = match c {
                    0xC2..=0xDF if tail(1) => 2,
                    0xE0 if in_range(1, 0xA0, 0xBF) && tail(2) => 3,
                    0xE1..=0xEC | 0xEE..=0xEF if tail(1) && tail(2) => 3,
                    0xED if in_range(1, 0x80, 0x9F) && tail(2) => 3,
                    0xF0 if in_range(1, 0x90, 0xBF) && tail(2) && tail(3) => 4,
                    0xF1..=0xF3 if tail(1) && tail(2) && tail(3) => 4,
                    0xF4 if in_range(1, 0x80, 0x8F) && tail(2) && tail(3) => 4,
                    _ => {
                        self.p = p;
                        return Err(self.err("invalid UTF-8"));
                    }
                };
                p += width;
            }
            self.p = p;
            let Some(c) = self.peek() else {
                return Err(self.err("EOF while parsing a string"));
            };
            match c {
                b'"' => {
                    self.p += 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.p += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.p += 1,
                        Some(b'u') => {
                            self.p += 1;
                            let n = self.hex4()?;
                            if (0xDC00..0xE000).contains(&n) {
                                return Err(self.err("lone trailing surrogate in hex escape"));
                            }
                            if (0xD800..0xDC00).contains(&n) {
                                if !self.b[self.p..].starts_with(b"\\u") {
                                    return Err(self.err("lone leading surrogate in hex escape"));
                                }
                                self.p += 2;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return Err(self.err("lone leading surrogate in hex escape"));
                                }
                            }
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                _ => return Err(self.err("control character in string")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), Failed> {
        if depth > MAX_DEPTH {
            return Err(self.err("recursion limit exceeded"));
        }
        self.p += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.p += 1;
            return Ok(());
        }
        loop {
            self.member(depth)?;
            match self.next_token() {
                Some(b',') => self.p += 1,
                Some(b']') => {
                    self.p += 1;
                    return Ok(());
                }
                Some(_) => return Err(self.err("expected `,` or `]`")),
                None => return Err(self.err("EOF while parsing a list")),
            }
        }
    }

    fn object<F: Fields>(
        &mut self,
        depth: usize,
        mut record: Option<&mut F>,
    ) -> Result<(), Failed> {
        if depth > MAX_DEPTH {
            return Err(self.err("recursion limit exceeded"));
        }
        self.p += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.p += 1;
            return Ok(());
        }
        loop {
            match self.next_token() {
                Some(b'"') => {}
                Some(_) => return Err(self.err("key must be a string")),
                None => return Err(self.err("EOF while parsing an object")),
            }
            let key_start = self.p + 1;
            let escaped = self.string()?;
            let key_end = self.p - 1;
            match self.next_token() {
                Some(b':') => self.p += 1,
                Some(_) => return Err(self.err("expected `:`")),
                None => return Err(self.err("EOF while parsing an object")),
            }
            let first = self.next_token();
            let value_start = self.p;
            self.member_at(first, depth)?;
            if let Some(fields) = record.as_deref_mut() {
                fields.field((key_start, key_end), (value_start, self.p), escaped);
            }
            match self.next_token() {
                Some(b',') => self.p += 1,
                Some(b'}') => {
                    self.p += 1;
                    return Ok(());
                }
                Some(_) => return Err(self.err("expected `,` or `}`")),
                None => return Err(self.err("EOF while parsing an object")),
            }
        }
    }
}

/// An object key encoded once (`"name":`, escaped as JSON needs) for
/// [`ObjectWriter::raw_at`] and [`ObjectWriter::value_at`]: a plugin that
/// writes the same names in every event escapes them once, not per event
/// (escaping was a twentieth of `lookup-join`'s time in Wasm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonKey(Box<[u8]>);

impl JsonKey {
    /// `name` encoded as an object key.
    pub fn new(name: &str) -> Self {
        let mut b = Vec::with_capacity(name.len() + 3);
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut b, name);
        b.push(b':');
        JsonKey(b.into_boxed_slice())
    }
}

/// Writes one JSON object into a byte buffer, field by field: raw slices are
/// copied as they are, new values are serialized. It does not check for
/// duplicate keys; the caller decides what goes in once.
pub struct ObjectWriter<'b> {
    buf: &'b mut Vec<u8>,
    empty: bool,
}

impl<'b> ObjectWriter<'b> {
    /// Starts an object at the end of `buf`.
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        buf.push(b'{');
        ObjectWriter { buf, empty: true }
    }

    fn sep(&mut self) {
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
    }

    fn key(&mut self, key: &str) {
        self.sep();
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.buf, key);
        self.buf.push(b':');
    }

    /// Writes a key encoded beforehand with a raw value copied as it is: for
    /// keys written in every event, which then cost one copy.
    pub fn raw_at(&mut self, key: &JsonKey, value: Raw<'_>) {
        self.sep();
        append(self.buf, &key.0);
        append(self.buf, value.0);
    }

    /// Writes a key encoded beforehand with `value` serialized.
    pub fn value_at(&mut self, key: &JsonKey, value: &Value) {
        self.sep();
        append(self.buf, &key.0);
        // An integer (a computed field's usual value) is formatted here, as
        // serde_json formats it, without going through its serializer.
        let mut digits = itoa::Buffer::new();
        let integer = match value {
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Some(digits.format(u)),
                (None, Some(i)) => Some(digits.format(i)),
                (None, None) => None,
            },
            _ => None,
        };
        match integer {
            Some(text) => append(self.buf, text.as_bytes()),
            // Writing into a Vec cannot fail.
            None => drop(serde_json::to_writer(&mut *self.buf, value)),
        }
    }

    /// Copies input fields found by [`JsonView::compact_run`], in one copy:
    /// what [`ObjectWriter::raw_field`] writes for each.
    pub fn raw_run(&mut self, run: RawRun<'_>) {
        self.sep();
        // Runs are several fields: mostly longer than `append` copies in pieces.
        self.buf.extend_from_slice(run.0);
    }

    /// Copies the input fields `first..=last` of `view` as
    /// [`ObjectWriter::raw_field`] copies each, in one copy when the input
    /// writes them compactly ([`JsonView::compact_run`]). Panics if the
    /// range is not within the fields, like [`JsonView::field`].
    pub fn raw_fields(&mut self, view: &JsonView<'_>, first: usize, last: usize) {
        match view.compact_run(first, last) {
            Some(run) => self.raw_run(run),
            None => {
                for i in first..=last {
                    let (key, value) = view.field(i);
                    self.raw_field(key, value);
                }
            }
        }
    }

    /// Copies an input field: its key as written and its raw value.
    pub fn raw_field(&mut self, key: RawKey<'_>, value: Raw<'_>) {
        self.sep();
        self.buf.push(b'"');
        append(self.buf, key.text);
        self.buf.extend_from_slice(b"\":");
        append(self.buf, value.0);
    }

    /// Writes `key` (escaped as needed) with a raw value copied as it is.
    pub fn raw(&mut self, key: &str, value: Raw<'_>) {
        self.key(key);
        append(self.buf, value.0);
    }

    /// Writes `key` and starts an object as its value; [`ObjectWriter::finish`]
    /// the returned writer before writing on to this one.
    pub fn object(&mut self, key: &str) -> ObjectWriter<'_> {
        self.key(key);
        ObjectWriter::new(self.buf)
    }

    /// Writes `key` with `value` serialized.
    pub fn value(&mut self, key: &str, value: &Value) {
        self.key(key);
        let _ = serde_json::to_writer(&mut *self.buf, value);
    }

    /// Closes the object.
    pub fn finish(self) {
        self.buf.push(b'}');
    }
}

// Beside this file, not under `json/`: the scaffold copies `sdk/src` flat.
#[path = "json_batch.rs"]
mod batch;
pub use batch::BatchViews;
#[path = "json_fieldset.rs"]
mod fieldset;
#[path = "json_table.rs"]
pub mod table;
pub use fieldset::FieldSet;

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
