//! Avro at the edges: the Confluent wire format (magic byte 0, a 4-byte
//! big-endian schema id, then the Avro binary body) and conversions between
//! Avro values and the JSON events flow in.

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::Schema;
use apache_avro::types::Value as A;
use apache_avro::writer::datum::GenericDatumWriter;
use serde_json::{Map, Number, Value};

/// The first byte of every Confluent-framed message.
pub const MAGIC: u8 = 0;

/// Splits a Confluent-framed message into (schema id, Avro body), or says why
/// it is not one.
pub fn split_wire(bytes: &[u8]) -> Result<(u32, &[u8]), String> {
    match bytes {
        [] => Err("empty message: no Confluent wire-format header".into()),
        [m, ..] if *m != MAGIC => Err(format!(
            "wrong magic byte 0x{m:02x}: not the Confluent wire format (expected 0x00, then a 4-byte schema id)"
        )),
        [_, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        _ => Err(format!(
            "truncated header: {} byte(s), the Confluent wire format needs 5",
            bytes.len()
        )),
    }
}

/// Frames an Avro body with `id`.
pub fn frame(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The record a recursive schema nests in itself, if any (`{"name": "Node",
/// "fields": [{"name": "next", "type": ["null", "Node"]}]}` gives `Node`).
pub fn recursion(schema: &Schema) -> Option<String> {
    fn walk(s: &Schema, path: &mut Vec<String>) -> Option<String> {
        match s {
            Schema::Ref { name } => {
                let name = name.fullname(None);
                path.contains(&name).then_some(name)
            }
            Schema::Record(r) => {
                path.push(r.name.fullname(None));
                let found = r.fields.iter().find_map(|f| walk(&f.schema, path));
                path.pop();
                found
            }
            Schema::Array(a) => walk(&a.items, path),
            Schema::Map(m) => walk(&m.types, path),
            Schema::Union(u) => u.variants().iter().find_map(|v| walk(v, path)),
            _ => None,
        }
    }
    walk(schema, &mut Vec::new())
}

/// Decodes one Avro binary datum written with `schema`; the whole body must be used.
///
/// Recursive schemas are refused: apache-avro decodes by recursion, so a
/// message a few kilobytes long can nest deep enough to overflow the decoding
/// thread's stack and take the host down (found by `fuzz/avro_wire`).
pub fn decode(schema: &Schema, body: &[u8]) -> Result<A, String> {
    if let Some(name) = recursion(schema) {
        return Err(format!(
            "the schema is recursive (record `{name}` contains itself), which Sluice does not decode: one message could nest deep enough to exhaust the stack"
        ));
    }
    let reader = GenericDatumReader::builder(schema)
        .build()
        .map_err(|e| e.to_string())?;
    let mut rest = body;
    let value = reader
        .read_value(&mut rest)
        .map_err(|e| format!("undecodable Avro body ({} bytes): {e}", body.len()))?;
    // apache-avro reads a string cut short by the end of input as null:
    // a value that does not fit its schema means the body was truncated.
    if !value.validate(schema) {
        return Err(format!(
            "undecodable Avro body ({} bytes): truncated, or not written with this schema",
            body.len()
        ));
    }
    if !rest.is_empty() {
        return Err(format!(
            "{} byte(s) left after the Avro record: the body does not match its schema",
            rest.len()
        ));
    }
    Ok(value)
}

/// Encodes `value` as an Avro binary datum of `schema`.
pub fn encode(schema: &Schema, value: A) -> Result<Vec<u8>, String> {
    let writer = GenericDatumWriter::builder(schema)
        .build()
        .map_err(|e| e.to_string())?;
    writer.write_value_to_vec(value).map_err(|e| e.to_string())
}

/// An Avro value as JSON: unions unwrapped, bytes and fixed as strings with
/// one character per byte (Avro's JSON encoding), logical types as their
/// underlying numbers, except UUIDs (text).
pub fn to_json(v: &A) -> Value {
    match v {
        A::Null => Value::Null,
        A::Boolean(b) => Value::Bool(*b),
        A::Int(i) | A::Date(i) | A::TimeMillis(i) => Value::from(*i),
        A::Long(i)
        | A::TimeMicros(i)
        | A::TimestampMillis(i)
        | A::TimestampMicros(i)
        | A::TimestampNanos(i)
        | A::LocalTimestampMillis(i)
        | A::LocalTimestampMicros(i)
        | A::LocalTimestampNanos(i) => Value::from(*i),
        A::Float(f) => Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        A::Double(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        A::Bytes(b) | A::Fixed(_, b) => Value::String(b.iter().map(|&c| char::from(c)).collect()),
        A::String(s) | A::Enum(_, s) => Value::String(s.clone()),
        A::Union(_, inner) => to_json(inner),
        A::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        A::Map(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), to_json(&m[k])))
                    .collect::<Map<_, _>>(),
            )
        }
        A::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        A::Decimal(d) => {
            let bytes: Vec<u8> = Vec::<u8>::try_from(d).unwrap_or_default();
            Value::String(bytes.iter().map(|&c| char::from(c)).collect())
        }
        A::BigDecimal(d) => Value::String(d.to_string()),
        A::Duration(d) => serde_json::json!({
            "months": u32::from(d.months()),
            "days": u32::from(d.days()),
            "millis": u32::from(d.millis()),
        }),
        A::Uuid(u) => Value::String(u.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::schema::{parse_avro, to_avro_value};

    #[test]
    fn a_deeply_nested_message_of_a_recursive_schema_is_refused_not_a_stack_overflow() {
        let node = Schema::parse_str(
            r#"{"type":"record","name":"Node","namespace":"t","fields":[
                {"name":"value","type":"int"},
                {"name":"next","type":["null","Node"],"default":null}]}"#,
        )
        .expect("schema");
        assert_eq!(recursion(&node).as_deref(), Some("t.Node"));
        // value 0, then the union's second branch (Node), 100,000 levels deep.
        let mut body = [0u8, 2].repeat(100_000);
        body.extend_from_slice(&[0, 0]);
        // A small stack, as a source thread has: before the fix this overflowed.
        let err = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || decode(&node, &body))
            .expect("thread")
            .join()
            .expect("no stack overflow")
            .expect_err("refused");
        assert!(err.contains("recursive"), "{err}");
    }

    #[test]
    fn a_named_type_used_twice_is_not_recursion() {
        let s = Schema::parse_str(
            r#"{"type":"record","name":"Pair","fields":[
                {"name":"a","type":{"type":"enum","name":"E","symbols":["X"]}},
                {"name":"b","type":"E"},
                {"name":"inner","type":{"type":"record","name":"In","fields":[{"name":"c","type":"E"}]}},
                {"name":"more","type":{"type":"array","items":"In"}}]}"#,
        )
        .expect("schema");
        assert_eq!(recursion(&s), None);
    }

    fn schema() -> Schema {
        parse_avro(
            &serde_json::json!({"type":"record","name":"order","fields":[
            {"name":"id","type":"long"},
            {"name":"note","type":["null","string"],"default":null},
            {"name":"tags","type":{"type":"array","items":"string"}}]}),
        )
        .expect("schema")
    }

    #[test]
    fn avro_round_trips_through_the_wire_format() {
        let s = schema();
        let json = serde_json::json!({"id": 7, "note": "hi", "tags": ["a"]});
        let body = encode(&s, to_avro_value(&json, &s).expect("fits")).expect("encodes");
        let framed = frame(42, &body);
        let (id, rest) = split_wire(&framed).expect("framed");
        assert_eq!(id, 42);
        assert_eq!(to_json(&decode(&s, rest).expect("decodes")), json);
    }

    #[test]
    fn bad_frames_and_bodies_say_why() {
        assert!(split_wire(&[1, 0, 0, 0, 1])
            .expect_err("refused")
            .contains("wrong magic byte 0x01"));
        assert!(split_wire(&[0, 0, 1])
            .expect_err("refused")
            .contains("truncated header"));
        let s = schema();
        let body = encode(
            &s,
            to_avro_value(&serde_json::json!({"id": 1, "tags": ["x", "y"]}), &s).expect("fits"),
        )
        .expect("encodes");
        let err = decode(&s, &body[..body.len() - 2]).expect_err("cut short");
        assert!(err.starts_with("undecodable Avro body"), "{err}");
        let rec = parse_avro(&serde_json::json!({"type":"record","name":"r","fields":[
            {"name":"id","type":"long"},{"name":"name","type":"string"}]}))
        .expect("schema");
        let body = encode(
            &rec,
            to_avro_value(&serde_json::json!({"id": 7, "name": "a fine name"}), &rec)
                .expect("fits"),
        )
        .expect("encodes");
        assert!(decode(&rec, &body[..body.len() - 4])
            .expect_err("truncated string")
            .contains("truncated"));
        let mut long = body.clone();
        long.push(0);
        assert!(decode(&rec, &long)
            .expect_err("refused")
            .contains("left after"));
    }
}
