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
            if let Some(i) = raw.as_i64() {
                return Ok(Value::from(i));
            }
            if let Some(u) = raw.as_u64() {
                return Ok(Value::from(u));
            }
        }
        Kind::Array | Kind::Object => {}
    }
    raw.to_value()
}
