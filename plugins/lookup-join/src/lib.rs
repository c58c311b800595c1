//! `lookup-join`: a stream–table join, like ksqlDB's
//! `SELECT ... FROM orders LEFT JOIN customers_by_key c ON orders.customer_id = c.id`.
//!
//! Parameters:
//! - `table`: the table to look up (the stage must list it under `tables:`);
//! - `on`: the event's field whose value is the table key;
//! - `join`: `left` (default: unmatched events go on with the table's fields
//!   null) or `inner` (unmatched events are dropped);
//! - `fields`: the output, `[stream.|table.]field [as name]`, comma-separated
//!   (a bare field is the event's). Default: the event's fields plus the row
//!   under the table's name.
//!
//! The row is the table's latest value for the key when the event is
//! processed. Output events keep the input's key and timestamp.

use serde_json::Value;
use sluice_sdk::select::{key_text, Selection};
use sluice_sdk::{Emitter, Event, EventError, Host, Params, Processor};

/// The processor.
pub struct LookupJoin {
    table: String,
    on: String,
    inner: bool,
    fields: Option<Selection>,
}

impl Processor for LookupJoin {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&["table", "on", "join", "fields"])?;
        let inner = match params.get("join").unwrap_or("left") {
            "left" => false,
            "inner" => true,
            other => return Err(format!("`join`: unknown `{other}`; expected left or inner")),
        };
        let fields = params
            .get("fields")
            .map(|f| Selection::parse("fields", f, &["stream", "table"]))
            .transpose()?;
        Ok(Self {
            table: params.required("table")?.to_string(),
            on: params.required("on")?.to_string(),
            inner,
            fields,
        })
    }

    fn process(
        &mut self,
        event: &Event<'_>,
        out: &mut Emitter<'_>,
        host: &mut dyn Host,
    ) -> Result<(), EventError> {
        if event.is_tombstone() {
            out.forward();
            return Ok(());
        }
        let value = event.json()?;
        let row: Option<Value> = value
            .get(&self.on)
            .and_then(key_text)
            .and_then(|k| host.lookup(&self.table, k.as_bytes()))
            .and_then(|b| serde_json::from_slice(&b).ok());
        if row.is_none() && self.inner {
            return Ok(());
        }
        let joined = match &self.fields {
            Some(sel) => sel.apply(&[Some(&value), row.as_ref()]),
            None => {
                let mut v = value.clone();
                if let Some(m) = v.as_object_mut() {
                    m.insert(self.table.clone(), row.unwrap_or(Value::Null));
                }
                v
            }
        };
        out.json(&joined);
        Ok(())
    }
}

sluice_sdk::export_processor!(LookupJoin);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::json_of as value;
    use sluice_sdk::testing::Harness;

    fn parse(v: &str) -> Value {
        serde_json::from_str(v).unwrap_or(Value::Null)
    }

    #[test]
    fn left_join_projects_fields_and_nulls_unknown_rows() {
        let mut h = Harness::<LookupJoin>::new(&[
            ("table", "customers_by_key"),
            ("on", "customer_id"),
            (
                "fields",
                "order_id, price, table.id as customer_id, table.name as customer_name",
            ),
        ])
        .expect("params");
        h.table_row(
            "customers_by_key",
            "5",
            r#"{"id":"5","name":"fred","age":34}"#,
        );
        let out = h
            .send(
                "orders",
                None,
                Some(r#"{"order_id":1,"customer_id":"5","price":9.5}"#),
                0,
            )
            .expect("ok");
        assert_eq!(
            value(&out[0].1),
            parse(r#"{"order_id":1,"price":9.5,"customer_id":"5","customer_name":"fred"}"#)
        );
        let out = h
            .send(
                "orders",
                None,
                Some(r#"{"order_id":2,"customer_id":"9","price":1}"#),
                0,
            )
            .expect("ok");
        assert_eq!(
            value(&out[0].1),
            parse(r#"{"order_id":2,"price":1,"customer_id":null,"customer_name":null}"#)
        );
    }

    #[test]
    fn inner_join_drops_unmatched_and_numbers_match_text_keys() {
        let mut h = Harness::<LookupJoin>::new(&[("table", "t"), ("on", "k"), ("join", "inner")])
            .expect("params");
        h.table_row("t", "7", r#"{"v":1}"#);
        assert_eq!(
            h.send("s", None, Some(r#"{"k":8}"#), 0).expect("ok").len(),
            0
        );
        let out = h.send("s", None, Some(r#"{"k":7}"#), 0).expect("ok");
        assert_eq!(value(&out[0].1), parse(r#"{"k":7,"t":{"v":1}}"#));
        assert!(Harness::<LookupJoin>::new(&[("table", "t")]).is_err());
    }
}
