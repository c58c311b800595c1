//! Parsing a JSON value while keeping only some top-level fields.
//!
//! Building a `serde_json::Value` dominates the cost of evaluating a filter
//! (every key and string is allocated). An expression only reads the fields it
//! names, so the others are validated and skipped without being built.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use sluice_sdk::json::{Kind, Raw};

use crate::eval::{Lean, Num};

/// Builds a `Value`, keeping only the `fields` of a top-level object.
struct KeepFields<'f, S> {
    fields: &'f [S],
}

/// A map key: `Some(key)` when it is to be kept.
struct Key<'f, S> {
    fields: &'f [S],
}

impl<'de, S: AsRef<str>> DeserializeSeed<'de> for Key<'_, S> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, S: AsRef<str>> Visitor<'de> for Key<'_, S> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self
            .fields
            .iter()
            .any(|f| f.as_ref() == v)
            .then(|| v.to_string()))
    }
}

impl<'de, S: AsRef<str>> Visitor<'de> for KeepFields<'_, S> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // Array roots are kept whole: paths like `0.x` index them.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key {
            fields: self.fields,
        })? {
            match key {
                Some(key) => {
                    let value = map.next_value::<Value>()?;
                    out.insert(key, value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// Parses `bytes` as one JSON value, building only the `fields` of a
/// top-level object.
///
/// The whole text is checked as by `serde_json::from_slice` (same errors,
/// trailing characters refused), except that skipped strings are not checked
/// for valid UTF-8. Other roots (arrays, scalars) are built whole. Use it when
/// only some fields of wide events are needed: skipping is several times
/// cheaper than building. [`crate::Expr::parse_input`] does this with the
/// fields an expression reads.
pub fn parse_json_keeping<S: AsRef<str>>(
    bytes: &[u8],
    fields: &[S],
) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = (&mut de).deserialize_any(KeepFields { fields })?;
    de.end()?;
    Ok(value)
}

/// Writes `raw` into `slot`, reusing the string buffer already there: a
/// filter reading one string field then allocates nothing per event.
pub(crate) fn raw_into_value(
    raw: Raw<'_>,
    slot: &mut Option<Value>,
) -> Result<(), serde_json::Error> {
    if let (Some(Value::String(buf)), Some(Cow::Borrowed(text))) = (slot.as_mut(), raw.as_str()) {
        buf.clear();
        buf.push_str(text);
        return Ok(());
    }
    *slot = Some(raw_to_value(raw)?);
    Ok(())
}

/// One raw value as a tree, with the common scalars built directly (strings
/// without escapes, integers, literals); the rest goes through serde_json so
/// floats round exactly as the tree path rounds them.
pub(crate) fn raw_to_value(raw: Raw<'_>) -> Result<Value, serde_json::Error> {
    match raw.kind() {
        Kind::Null => return Ok(Value::Null),
        Kind::Bool => return Ok(Value::Bool(raw.as_bool() == Some(true))),
        Kind::String => {
            if let Some(Cow::Borrowed(s)) = raw.as_str() {
                return Ok(Value::String(s.to_string()));
            }
        }
        Kind::Number => {
            if let Some(v) = short_number(raw.bytes()) {
                return Ok(v);
            }
            // serde_json reads `-0` as the float `-0.0`; `as_i64` reads 0.
            if raw.bytes() != b"-0" {
                if let Some(i) = raw.as_i64() {
                    return Ok(Value::from(i));
                }
                if let Some(u) = raw.as_u64() {
                    return Ok(Value::from(u));
                }
            }
        }
        Kind::Array | Kind::Object => {}
    }
    raw.to_value()
}

/// Exact powers of ten up to 10^22, the largest a `f64` holds exactly.
const EXACT_POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The common numbers (`42`, `-7`, `123.45`) read without serde_json's
/// deserializer or `str::parse`, which in Wasm cost more than the rest of
/// evaluating `round(price * 100)`; `None` for anything else (exponents,
/// more than 15 digits, JSON the scanner would refuse), which then takes
/// the general path.
///
/// Same values as serde_json, bit for bit: an integer of at most 15 digits is
/// exact, and a decimal is its digits as an integer (exact below 2^53)
/// divided by an exact power of ten, one correctly rounded division, which
/// is what serde_json computes for such text too (`f64_from_parts`).
fn short_number(text: &[u8]) -> Option<Value> {
    match short_num(text)? {
        Num::Int(i) => Some(Value::from(i64::try_from(i).ok()?)),
        Num::Float(f) => Number::from_f64(f).map(Value::Number),
    }
}

/// [`short_number`] as the number evaluation reads it: the `Num` that
/// `Num::of_number` makes of its `Value` (an integer, or a finite float
/// that is not one), without building the `Value`.
pub(crate) fn short_num(text: &[u8]) -> Option<Num> {
    short_lean(text).and_then(Lean::num)
}

/// [`short_num`] as the arithmetic's `i64` path holds it ([`Lean`]).
#[inline(always)]
pub(crate) fn short_lean(text: &[u8]) -> Option<Lean> {
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let mut digits: u64 = 0;
    let mut count = 0usize;
    let mut decimals: Option<usize> = None;
    for (i, &c) in body.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                digits = digits * 10 + u64::from(c - b'0');
                count += 1;
                if count > 15 {
                    return None;
                }
            }
            b'.' if decimals.is_none() && i > 0 && i + 1 < body.len() => decimals = Some(i),
            _ => return None,
        }
    }
    // JSON numbers have no leading zeros (`01`) and no empty integer part.
    let int_len = decimals.unwrap_or(body.len());
    if int_len == 0 || (int_len > 1 && body[0] == b'0') {
        return None;
    }
    match decimals {
        // serde_json reads `-0` as the float `-0.0`: left to it.
        None if negative && digits == 0 => None,
        None => {
            // At most 15 digits: fits i64 exactly.
            let n = i64::try_from(digits).ok()?;
            Some(Lean::Int(if negative { -n } else { n }))
        }
        Some(dot) => {
            let scale = EXACT_POW10.get(body.len() - dot - 1)?;
            let f = digits as f64 / scale;
            // At most 15 digits over a power of ten: always finite.
            Some(Lean::Float(if negative { -f } else { f }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path must give serde_json's value bit for bit, or nothing.
    #[test]
    fn short_numbers_are_read_as_serde_json_reads_them() {
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "7",
            "-7",
            "0.5",
            "-0.0",
            "123.45",
            "1.50",
            "999999999999999",
            "-999999999999999",
            "1000000000000000",
            "0.1",
            "0.2",
            "0.3",
            "2.675",
            "1.005",
            "9007199254740.993",
            "0.000000000000001",
            "12345678.9012345",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // A deterministic spread of prices and coordinates.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let decimals = (x % 12) as usize;
            let digits = (x >> 8) % 10u64.pow(1 + (x % 15) as u32);
            let mut t = digits.to_string();
            if decimals > 0 && decimals < t.len() {
                t.insert(t.len() - decimals, '.');
            } else if decimals > 0 {
                t = format!("0.{}{t}", "0".repeat(decimals - t.len()));
            }
            if x & 1 == 1 {
                t.insert(0, '-');
            }
            texts.push(t);
        }
        let mut fast = 0;
        for t in &texts {
            let Some(got) = short_number(t.as_bytes()) else {
                continue;
            };
            fast += 1;
            let want: Value = serde_json::from_str(t).expect("valid JSON");
            match (got.as_f64(), want.as_f64()) {
                (Some(g), Some(w)) if got.is_f64() => {
                    assert_eq!(g.to_bits(), w.to_bits(), "{t}: {got} against {want}")
                }
                _ => assert_eq!(got, want, "{t}"),
            }
        }
        assert!(fast > 15_000, "only {fast} took the fast path");
    }

    /// `-0` is the float `-0.0` to serde_json (and so to the tree path):
    /// reading fields from a view must not make it the integer 0, which
    /// arithmetic then keeps apart (`-0 * 2 - 1` is `-1.0`, not `-1`).
    #[test]
    fn negative_zero_is_the_float_serde_json_reads() {
        let view = sluice_sdk::json::JsonView::parse(br#"{"a":-0,"b":-0.0,"c":0}"#).expect("json");
        let read = |name: &str| {
            let raw = view.get(name).expect(name);
            raw_to_value(raw).expect(name).to_string()
        };
        assert_eq!(read("a"), "-0.0");
        assert_eq!(read("b"), "-0.0");
        assert_eq!(read("c"), "0");
    }

    #[test]
    fn what_json_refuses_or_the_fast_path_cannot_hold_takes_the_general_path() {
        for t in [
            "",
            "-",
            "01",
            "-01",
            "1.",
            ".5",
            "1.2.3",
            "1e5",
            "1E5",
            "1.5e3",
            "+1",
            "0x10",
            "1234567890123456",
            "0.1234567890123456",
            "1234567890.123456", // sixteen digits, the dot anywhere
            "999999999999999.9",
            "-9.999999999999999",
            "1.00000000000000000000001",
            "- 1",
        ] {
            assert_eq!(short_number(t.as_bytes()), None, "{t}");
        }
    }
}
