//! BSON ⇄ JSON. Documents leave MongoDB as MongoDB's *relaxed Extended JSON
//! v2* (what `mongoexport --jsonFormat=relaxed` and the Debezium MongoDB
//! connector write): numbers stay JSON numbers, so downstream filters and
//! joins compare them as numbers, and types JSON lacks keep a tagged form
//! that reads back losslessly:
//!
//! | BSON | JSON |
//! |---|---|
//! | string, boolean, null | the same |
//! | int32, int64 | number |
//! | double | number; `{"$numberDouble": "NaN"}` / `"Infinity"` / `"-Infinity"` |
//! | decimal128 | `{"$numberDecimal": "12.50"}` (exact, as text) |
//! | ObjectId | `{"$oid": "65a1…"}` |
//! | date | `{"$date": "2020-04-03T11:20:00Z"}` (years 1970–9999), else `{"$date": {"$numberLong": "…"}}` |
//! | binary | `{"$binary": {"base64": "…", "subType": "00"}}` |
//! | timestamp | `{"$timestamp": {"t": 1700000000, "i": 1}}` |
//! | regex | `{"$regularExpression": {"pattern": "…", "options": "…"}}` |
//! | embedded document, array | object, array (recursively) |
//! | min/max key, undefined, JavaScript, DBPointer, symbol | their Extended JSON forms (`{"$minKey": 1}`, …) |
//!
//! Event keys are the document `_id` as plain text, the project's key
//! convention (a file source's `key_field` does the same): a string as it is,
//! an ObjectId as its 24 hex digits, a number in decimal, anything else as its
//! relaxed Extended JSON text.

use mongodb::bson::{Bson, Document};
use serde_json::Value;

/// A document as relaxed Extended JSON.
pub fn doc_to_json(doc: Document) -> Value {
    Bson::Document(doc).into_relaxed_extjson()
}

/// A document as relaxed Extended JSON text (the Debezium `after` string).
pub fn doc_to_json_text(doc: Document) -> String {
    doc_to_json(doc).to_string()
}

/// The event key for a document `_id`.
pub fn id_to_key(id: &Bson) -> String {
    match id {
        Bson::String(s) => s.clone(),
        Bson::ObjectId(oid) => oid.to_hex(),
        Bson::Int32(n) => n.to_string(),
        Bson::Int64(n) => n.to_string(),
        Bson::Double(f) if f.is_finite() => Value::from(*f).to_string(),
        other => other.clone().into_relaxed_extjson().to_string(),
    }
}

/// A JSON value as BSON, reading Extended JSON (`{"$oid": …}`, `{"$date": …}`,
/// `{"$numberDecimal": …}`, …) back into the BSON types. Integers become int32
/// when they fit, else int64; other numbers become doubles.
pub fn json_to_bson(value: Value) -> Result<Bson, String> {
    Bson::try_from(value).map_err(|e| format!("invalid Extended JSON: {e}"))
}

/// A JSON object as a BSON document.
pub fn json_to_doc(value: Value) -> Result<Document, String> {
    match value {
        Value::Object(_) => match json_to_bson(value)? {
            Bson::Document(d) => Ok(d),
            other => Err(format!(
                "expected a document, the value reads as BSON {:?}",
                other.element_type()
            )),
        },
        _ => Err("documents must be JSON objects".into()),
    }
}

/// The `_id` values an event key may stand for, most likely first: the key
/// read as Extended JSON when it is a JSON object (`{"$oid": …}`), else the
/// string itself, plus the ObjectId it spells (24 hex digits) and the integer
/// it spells. [`id_to_key`] maps each of those back to this text.
pub fn key_to_ids(key: &str) -> Vec<Bson> {
    if key.starts_with('{') {
        if let Ok(v) = serde_json::from_str::<Value>(key) {
            if let Ok(b) = json_to_bson(v) {
                return vec![b];
            }
        }
    }
    let mut ids = vec![Bson::String(key.to_string())];
    if key.len() == 24 {
        if let Ok(oid) = mongodb::bson::oid::ObjectId::parse_str(key) {
            ids.push(Bson::ObjectId(oid));
        }
    }
    if let Ok(n) = key.parse::<i64>() {
        if n.to_string() == key {
            ids.push(match i32::try_from(n) {
                Ok(small) => Bson::Int32(small),
                Err(_) => Bson::Int64(n),
            });
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, oid::ObjectId, spec::BinarySubtype, Binary, DateTime, Decimal128};
    use serde_json::json;

    #[test]
    fn documents_map_to_relaxed_extended_json() {
        let oid = ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").expect("oid");
        let dec: Decimal128 = "12.50".parse().expect("decimal");
        let d = doc! {
            "_id": oid,
            "s": "x", "b": true, "n": Bson::Null,
            "i": 7_i32, "l": 1_i64 << 40, "f": 1.5,
            "nan": f64::NAN,
            "dec": dec,
            "at": DateTime::from_millis(1_585_912_800_000),
            "old": DateTime::from_millis(-1000),
            "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![0xab, 0xcd] },
            "ts": mongodb::bson::Timestamp { time: 1_700_000_000, increment: 3 },
            "nested": { "a": [1_i32, { "b": "c" }] },
        };
        assert_eq!(
            doc_to_json(d),
            json!({
                "_id": {"$oid": "65a1b2c3d4e5f60718293a4b"},
                "s": "x", "b": true, "n": null,
                "i": 7, "l": 1_i64 << 40, "f": 1.5,
                "nan": {"$numberDouble": "NaN"},
                "dec": {"$numberDecimal": "12.50"},
                "at": {"$date": "2020-04-03T11:20:00Z"},
                "old": {"$date": {"$numberLong": "-1000"}},
                "bin": {"$binary": {"base64": "q80=", "subType": "00"}},
                "ts": {"$timestamp": {"t": 1_700_000_000, "i": 3}},
                "nested": {"a": [1, {"b": "c"}]},
            })
        );
    }

    #[test]
    fn extended_json_reads_back_into_bson_types() {
        let v = json!({"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "at": {"$date": "2020-04-03T11:20:00Z"}, "n": 5, "big": 1_i64 << 40, "f": 2.5, "dec": {"$numberDecimal": "1.10"}});
        let d = json_to_doc(v.clone()).expect("doc");
        assert!(matches!(d.get("_id"), Some(Bson::ObjectId(_))));
        assert!(matches!(d.get("at"), Some(Bson::DateTime(_))));
        assert!(matches!(d.get("n"), Some(Bson::Int32(5))));
        assert!(matches!(d.get("big"), Some(Bson::Int64(_))));
        assert!(matches!(d.get("dec"), Some(Bson::Decimal128(_))));
        assert_eq!(doc_to_json(d), v);
        assert_eq!(
            json_to_doc(json!([1])).expect_err("an array"),
            "documents must be JSON objects"
        );
        let err = json_to_doc(json!({"_id": {"$oid": "nope"}})).expect_err("a bad ObjectId");
        assert!(err.starts_with("invalid Extended JSON"), "{err}");
    }

    #[test]
    fn keys_are_plain_text_and_map_back_to_candidate_ids() {
        let oid = ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").expect("oid");
        assert_eq!(id_to_key(&Bson::String("13".into())), "13");
        assert_eq!(id_to_key(&Bson::Int32(13)), "13");
        assert_eq!(id_to_key(&Bson::Int64(13)), "13");
        assert_eq!(id_to_key(&Bson::ObjectId(oid)), "65a1b2c3d4e5f60718293a4b");
        assert_eq!(id_to_key(&Bson::Document(doc! {"a": 1_i32})), r#"{"a":1}"#);
        assert_eq!(
            key_to_ids("13"),
            vec![Bson::String("13".into()), Bson::Int32(13)]
        );
        assert_eq!(
            key_to_ids("65a1b2c3d4e5f60718293a4b"),
            vec![
                Bson::String("65a1b2c3d4e5f60718293a4b".into()),
                Bson::ObjectId(oid)
            ]
        );
        assert_eq!(
            key_to_ids(r#"{"a":1}"#),
            vec![Bson::Document(doc! {"a": 1_i32})]
        );
        assert_eq!(key_to_ids("007"), vec![Bson::String("007".into())]);
    }
}
