//! Change events in the Debezium MongoDB connector's shape:
//!
//! ```json
//! {"before": null, "after": "{\"_id\": 13, …}", "updateDescription": null,
//!  "source": {"version": "…", "connector": "mongodb", "name": "my-replica-set",
//!             "ts_ms": 1585912800000, "snapshot": "false", "db": "logistics",
//!             "rs": "rs0", "collection": "orders", "ord": 1},
//!  "op": "c", "ts_ms": 1700000000123}
//! ```
//!
//! `after` and `before` are the documents as relaxed Extended JSON *text*, as
//! Debezium sends them (the `unwrap` plugin parses them back). The key is the
//! document `_id` (see [`super::mapping`]).
//!
//! This follows MongoDB's documented change events: `clusterTime` is a BSON
//! Timestamp, updates carry `updateDescription` (and `fullDocument` only with
//! `updateLookup`), deletes carry only `documentKey` (plus
//! `fullDocumentBeforeChange` when pre-images are on). Emulations that send a
//! date as `clusterTime` are read too (its milliseconds), and a `fullDocument`
//! on a delete is ignored, since MongoDB never sends one.

use mongodb::bson::{Bson, Document};
use serde_json::{json, Map, Value};

use crate::clients::mongodb::mapping::{doc_to_json_text, id_to_key};

/// Where events come from, for `source{…}`.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Logical server name.
    pub name: String,
    /// Database.
    pub db: String,
    /// Replica set name (empty when the server reports none).
    pub rs: String,
}

/// One event to emit.
#[derive(Debug, Clone, PartialEq)]
pub struct Emit {
    /// The collection it belongs to.
    pub collection: String,
    /// Document `_id` as the event key.
    pub key: Option<String>,
    /// The change event JSON (`None`: a tombstone).
    pub value: Option<String>,
    /// Event time (the change's cluster time), ms since the epoch.
    pub ts_ms: i64,
}

/// What a change stream document turned into.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A change to a document: `c`, `u` or `d`.
    Event {
        /// The event.
        emit: Emit,
        /// `c`, `u` or `d`.
        op: &'static str,
    },
    /// The stream ended (collection dropped or renamed); it must be restarted
    /// after this event's token.
    Invalidate,
    /// An event with no document change (drop, rename, create, …).
    Skip(String),
}

const VERSION: &str = concat!("sluice-", env!("CARGO_PKG_VERSION"));

fn source(
    origin: &Origin,
    collection: &str,
    ts_ms: i64,
    snapshot: &str,
    ord: Option<u32>,
) -> Value {
    let mut s = Map::new();
    s.insert("version".into(), VERSION.into());
    s.insert("connector".into(), "mongodb".into());
    s.insert("name".into(), origin.name.clone().into());
    s.insert("ts_ms".into(), ts_ms.into());
    s.insert("snapshot".into(), snapshot.into());
    s.insert("db".into(), origin.db.clone().into());
    s.insert("rs".into(), origin.rs.clone().into());
    s.insert("collection".into(), collection.into());
    if let Some(ord) = ord {
        s.insert("ord".into(), ord.into());
    }
    Value::Object(s)
}

/// A snapshot read (`op: r`) of `doc`; `last` marks the snapshot's final record.
pub fn snapshot_event(
    origin: &Origin,
    collection: &str,
    doc: Document,
    now_ms: i64,
    last: bool,
) -> Emit {
    let key = doc.get("_id").map(id_to_key);
    let value = json!({
        "before": null,
        "after": doc_to_json_text(doc),
        "updateDescription": null,
        "source": source(origin, collection, now_ms, if last { "last" } else { "true" }, None),
        "op": "r",
        "ts_ms": now_ms,
    });
    Emit {
        collection: collection.to_string(),
        key,
        value: Some(value.to_string()),
        ts_ms: now_ms,
    }
}

fn doc_field(change: &Document, name: &str) -> Option<Document> {
    match change.get(name) {
        Some(Bson::Document(d)) => Some(d.clone()),
        _ => None,
    }
}

/// The `updateDescription` as Debezium writes it: `updatedFields` as
/// Extended JSON text, `removedFields` and `truncatedArrays` as they are.
fn update_description(change: &Document) -> Value {
    let Some(ud) = doc_field(change, "updateDescription") else {
        return Value::Null;
    };
    let updated = match ud.get("updatedFields") {
        Some(Bson::Document(d)) => Value::String(doc_to_json_text(d.clone())),
        _ => Value::Null,
    };
    let as_json = |name: &str| {
        ud.get(name)
            .cloned()
            .map_or(Value::Null, Bson::into_relaxed_extjson)
    };
    json!({
        "removedFields": as_json("removedFields"),
        "updatedFields": updated,
        "truncatedArrays": as_json("truncatedArrays"),
    })
}

/// Event time and `ord` from `clusterTime` (a BSON Timestamp in MongoDB;
/// some emulations send a date), else `wallTime`, else `now_ms`.
fn cluster_time(change: &Document, now_ms: i64) -> (i64, Option<u32>) {
    match change.get("clusterTime") {
        Some(Bson::Timestamp(t)) => (i64::from(t.time) * 1000, Some(t.increment)),
        Some(Bson::DateTime(d)) => (d.timestamp_millis(), None),
        _ => match change.get("wallTime") {
            Some(Bson::DateTime(d)) => (d.timestamp_millis(), None),
            _ => (now_ms, None),
        },
    }
}

/// Turns one change stream document into an event. `collection` is the
/// watched collection (used when the event lacks `ns`).
pub fn change_event(origin: &Origin, collection: &str, change: &Document, now_ms: i64) -> Change {
    let op_type = change.get_str("operationType").unwrap_or("");
    let op = match op_type {
        "insert" => "c",
        // A replace is an update of the whole document (Debezium: `u`).
        "update" | "replace" => "u",
        "delete" => "d",
        "invalidate" => return Change::Invalidate,
        "" => return Change::Skip("a change event without operationType".into()),
        other => return Change::Skip(format!("`{other}` event (no document change)")),
    };
    let coll = doc_field(change, "ns")
        .and_then(|ns| ns.get_str("coll").ok().map(str::to_string))
        .unwrap_or_else(|| collection.to_string());
    let key = doc_field(change, "documentKey")
        .and_then(|k| k.get("_id").map(id_to_key))
        .or_else(|| doc_field(change, "fullDocument").and_then(|d| d.get("_id").map(id_to_key)));
    let (ts_ms, ord) = cluster_time(change, now_ms);
    let after = if op == "d" {
        Value::Null
    } else {
        doc_field(change, "fullDocument").map_or(Value::Null, |d| doc_to_json_text(d).into())
    };
    let before = doc_field(change, "fullDocumentBeforeChange")
        .map_or(Value::Null, |d| doc_to_json_text(d).into());
    let value = json!({
        "before": before,
        "after": after,
        "updateDescription": if op == "u" { update_description(change) } else { Value::Null },
        "source": source(origin, &coll, ts_ms, "false", ord),
        "op": op,
        "ts_ms": now_ms,
    });
    Change::Event {
        emit: Emit {
            collection: coll,
            key,
            value: Some(value.to_string()),
            ts_ms,
        },
        op,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, DateTime, Timestamp};

    fn origin() -> Origin {
        Origin {
            name: "my-replica-set".into(),
            db: "logistics".into(),
            rs: "rs0".into(),
        }
    }

    fn value(c: &Change) -> Value {
        match c {
            Change::Event { emit, .. } => {
                serde_json::from_str(emit.value.as_deref().unwrap_or("null")).unwrap_or_default()
            }
            other => panic!("not an event: {other:?}"),
        }
    }

    /// MongoDB's documented update event: BSON Timestamp, updateDescription.
    #[test]
    fn a_documented_update_event_becomes_op_u_with_the_delta() {
        let change = doc! {
            "_id": {"_data": "8263"},
            "operationType": "update",
            "clusterTime": Timestamp { time: 1_585_912_800, increment: 4 },
            "ns": {"db": "logistics", "coll": "orders"},
            "documentKey": {"_id": "13"},
            "updateDescription": {"updatedFields": {"price": 51.5}, "removedFields": ["note"], "truncatedArrays": []},
            "fullDocument": {"_id": "13", "price": 51.5},
        };
        let c = change_event(&origin(), "orders", &change, 7);
        let Change::Event { emit, op } = &c else {
            panic!("{c:?}")
        };
        assert_eq!(*op, "u");
        assert_eq!(emit.key.as_deref(), Some("13"));
        assert_eq!(emit.ts_ms, 1_585_912_800_000);
        let v = value(&c);
        assert_eq!(v["after"], r#"{"_id":"13","price":51.5}"#);
        assert_eq!(v["updateDescription"]["updatedFields"], r#"{"price":51.5}"#);
        assert_eq!(v["updateDescription"]["removedFields"], json!(["note"]));
        assert_eq!(v["source"]["ord"], 4);
        assert_eq!(v["source"]["rs"], "rs0");
        assert_eq!(v["source"]["collection"], "orders");
        assert_eq!(v["source"]["snapshot"], "false");
        assert_eq!(v["ts_ms"], 7);
    }

    /// A documented delete has only documentKey; an emulation's extra
    /// fullDocument must not become `after`.
    #[test]
    fn deletes_have_no_after_and_are_keyed_by_document_key() {
        let real = doc! {
            "operationType": "delete",
            "clusterTime": Timestamp { time: 10, increment: 1 },
            "ns": {"db": "logistics", "coll": "orders"},
            "documentKey": {"_id": 13_i32},
        };
        let emulated = doc! {
            "operationType": "delete",
            "clusterTime": DateTime::from_millis(10_000),
            "ns": {"db": "logistics", "coll": "orders"},
            "documentKey": {"_id": "13"},
            "fullDocument": {"_id": 13_i32, "x": 1_i32},
        };
        for change in [real, emulated] {
            let c = change_event(&origin(), "orders", &change, 0);
            let Change::Event { emit, op } = &c else {
                panic!("{c:?}")
            };
            assert_eq!(
                (*op, emit.key.as_deref(), emit.ts_ms),
                ("d", Some("13"), 10_000)
            );
            assert_eq!(value(&c)["after"], Value::Null);
        }
    }

    #[test]
    fn replace_is_an_update_and_other_events_are_skipped_or_invalidate() {
        let replace = doc! {"operationType": "replace", "documentKey": {"_id": 1_i32}, "fullDocument": {"_id": 1_i32, "a": 2_i32}};
        assert!(matches!(
            change_event(&origin(), "c", &replace, 0),
            Change::Event { op: "u", .. }
        ));
        let drop = doc! {"operationType": "drop", "ns": {"db": "d", "coll": "c"}};
        assert!(matches!(
            change_event(&origin(), "c", &drop, 0),
            Change::Skip(_)
        ));
        let inv = doc! {"operationType": "invalidate"};
        assert_eq!(change_event(&origin(), "c", &inv, 0), Change::Invalidate);
    }

    #[test]
    fn snapshot_reads_are_op_r_with_the_document_as_text() {
        let e = snapshot_event(
            &origin(),
            "orders",
            doc! {"_id": "13", "price": 50.5},
            5,
            false,
        );
        let v: Value = serde_json::from_str(e.value.as_deref().unwrap_or("")).unwrap_or_default();
        assert_eq!(v["op"], "r");
        assert_eq!(v["after"], r#"{"_id":"13","price":50.5}"#);
        assert_eq!(v["source"]["snapshot"], "true");
        assert_eq!(e.key.as_deref(), Some("13"));
    }
}
