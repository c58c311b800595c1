//! Debezium-compatible change events: `{before, after, source, op, ts_ms}`,
//! keyed by the primary key as a JSON object, so consumers written for
//! Debezium's PostgreSQL connector (and the `unwrap` plugin) keep working.

use serde_json::{json, Map, Value};

use super::pgoutput::{Datum, Relation};
use super::types::TypeRegistry;

/// Debezium's placeholder for an unchanged TOASTed value the server did not resend.
pub const UNAVAILABLE: &str = "__debezium_unavailable_value";

/// Where a change came from, for the `source` block.
#[derive(Debug, Clone)]
pub struct SourceInfo<'a> {
    /// Logical server name.
    pub server: &'a str,
    /// Database.
    pub db: &'a str,
    /// `"true"` in the snapshot, `"false"` when streaming.
    pub snapshot: &'static str,
    /// Commit time (the snapshot's time in the snapshot), µs since the epoch.
    pub ts_us: i64,
    /// Transaction id, when streaming.
    pub tx_id: Option<u32>,
    /// LSN of the change when streaming; the slot's consistent point in the snapshot.
    pub lsn: Option<u64>,
}

/// The row as a JSON object (`None` datums stand for columns not sent).
pub fn row(rel: &Relation, types: &TypeRegistry, datums: &[Datum]) -> Value {
    let mut m = Map::with_capacity(rel.columns.len());
    for (col, d) in rel.columns.iter().zip(datums) {
        let v = match d {
            Datum::Null => Value::Null,
            Datum::Unchanged => Value::String(UNAVAILABLE.into()),
            Datum::Text(t) => types.to_json(col.type_oid, t),
        };
        m.insert(col.name.clone(), v);
    }
    Value::Object(m)
}

/// The key columns of `row`, or `None` when the table has none.
pub fn key(rel: &Relation, row: &Value) -> Option<Value> {
    let mut m = Map::new();
    for c in rel.columns.iter().filter(|c| c.key) {
        m.insert(
            c.name.clone(),
            row.get(&c.name).cloned().unwrap_or(Value::Null),
        );
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// The topic: `<server>.<schema>.<table>`.
pub fn topic(server: &str, rel: &Relation) -> String {
    format!("{server}.{}.{}", rel.schema, rel.table)
}

/// One change event, with the fields Debezium 3.6.1 writes (checked against it by
/// host/tests/all/debezium_oracle.rs). `now_us` is the time the event is made.
/// `xmin`, `origin`, `origin_lsn` and `transaction` are always null: Debezium fills
/// them only when xmin tracking, replication origins or transaction metadata are on.
pub fn envelope(
    rel: &Relation,
    info: &SourceInfo<'_>,
    op: &str,
    before: Value,
    after: Value,
    now_us: i64,
) -> Value {
    let source = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "connector": "postgresql",
        "name": info.server,
        "ts_ms": info.ts_us.div_euclid(1000),
        "ts_us": info.ts_us,
        "ts_ns": info.ts_us.saturating_mul(1000),
        "snapshot": info.snapshot,
        "db": info.db,
        "schema": rel.schema,
        "table": rel.table,
        "txId": info.tx_id,
        "lsn": info.lsn,
        "xmin": null,
        "origin": null,
        "origin_lsn": null,
    });
    json!({
        "before": before,
        "after": after,
        "source": source,
        "transaction": null,
        "op": op,
        "ts_ms": now_us.div_euclid(1000),
        "ts_us": now_us,
        "ts_ns": now_us.saturating_mul(1000),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::postgres_cdc::pgoutput::Column;
    use crate::sources::postgres_cdc::types::DecimalHandling;

    fn customers() -> Relation {
        Relation {
            id: 1,
            schema: "public".into(),
            table: "customers".into(),
            replica_identity: b'd',
            columns: vec![
                Column {
                    key: true,
                    name: "id".into(),
                    type_oid: 25,
                },
                Column {
                    key: false,
                    name: "age".into(),
                    type_oid: 23,
                },
            ],
        }
    }

    #[test]
    fn an_insert_looks_like_debezium() {
        let rel = customers();
        let types = TypeRegistry::new(DecimalHandling::Double);
        let after = row(
            &rel,
            &types,
            &[Datum::Text("5".into()), Datum::Text("34".into())],
        );
        assert_eq!(key(&rel, &after), Some(json!({"id": "5"})));
        let info = SourceInfo {
            server: "pg",
            db: "shop",
            snapshot: "false",
            ts_us: 7_001,
            tx_id: Some(9),
            lsn: Some(100),
        };
        let e = envelope(&rel, &info, "c", Value::Null, after, 8_002);
        assert_eq!(e["after"], json!({"id": "5", "age": 34}));
        assert_eq!(e["op"], "c");
        assert_eq!(e["source"]["table"], "customers");
        assert_eq!(e["source"]["lsn"], 100);
        assert_eq!(
            (
                &e["source"]["ts_ms"],
                &e["source"]["ts_us"],
                &e["source"]["ts_ns"]
            ),
            (&json!(7), &json!(7_001), &json!(7_001_000))
        );
        assert_eq!((&e["ts_ms"], &e["ts_us"]), (&json!(8), &json!(8_002)));
        assert_eq!(e["transaction"], Value::Null);
        assert_eq!(topic("pg", &rel), "pg.public.customers");
    }
}
