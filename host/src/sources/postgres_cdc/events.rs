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
    /// Commit time, ms since the epoch.
    pub ts_ms: i64,
    /// Transaction id, when streaming.
    pub tx_id: Option<u32>,
    /// LSN of the change, when streaming.
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

/// One change event.
pub fn envelope(
    rel: &Relation,
    info: &SourceInfo<'_>,
    op: &str,
    before: Value,
    after: Value,
    now_ms: i64,
) -> Value {
    let mut source = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "connector": "postgresql",
        "name": info.server,
        "ts_ms": info.ts_ms,
        "snapshot": info.snapshot,
        "db": info.db,
        "schema": rel.schema,
        "table": rel.table,
    });
    if let Some(m) = source.as_object_mut() {
        m.insert("txId".into(), info.tx_id.map_or(Value::Null, Value::from));
        m.insert("lsn".into(), info.lsn.map_or(Value::Null, Value::from));
    }
    json!({
        "before": before,
        "after": after,
        "source": source,
        "op": op,
        "ts_ms": now_ms,
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
            ts_ms: 7,
            tx_id: Some(9),
            lsn: Some(100),
        };
        let e = envelope(&rel, &info, "c", Value::Null, after, 8);
        assert_eq!(e["after"], json!({"id": "5", "age": 34}));
        assert_eq!(e["op"], "c");
        assert_eq!(e["source"]["table"], "customers");
        assert_eq!(e["source"]["lsn"], 100);
        assert_eq!(topic("pg", &rel), "pg.public.customers");
    }
}
