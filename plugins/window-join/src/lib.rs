//! `window-join`: a stream–stream join within a time bound on event time,
//! like ksqlDB's `... INNER JOIN shipments s WITHIN 7 DAYS ON o.order_id = s.order_id`.
//!
//! Parameters:
//! - `left`, `right`: the two input streams (stage `inputs`), by name;
//! - `left_key`, `right_key`: the fields to join on (`key` sets both);
//! - `within_ms`: how far apart the two events' times may be, either way;
//! - `join`: `inner` (default) or `left` (a left event that finds no match
//!   by the time the bound passes goes on with the right side's fields null);
//! - `fields`: the output, `[left.|right.]field [as name]` (a bare field is
//!   the left's); default: `{"left": ..., "right": ...}`;
//! - `left_id`, `right_id`: fields identifying each event (default: the join
//!   keys); the output key is `left_id|right_id`, deterministic, so a
//!   replayed pair overwrites its document instead of duplicating it.
//!
//! Whichever side arrives first waits in the host's keyed state for the
//! other, so the result does not depend on arrival order. Each buffered
//! event is removed by a timer once the watermark is past its time plus the
//! bound: no later match is possible then.

use sluice_sdk::json::{JsonParser, Kind, ObjectWriter, Raw};
use sluice_sdk::select::Selection;
use sluice_sdk::{Emitter, Event, EventError, Host, OutEvent, Params, Processor};

/// The processor.
pub struct WindowJoin {
    join: Join,
    /// Reused per event: the event's field table, a buffered event's, and
    /// the bytes of an output value or state entry.
    parser: JsonParser,
    state_parser: JsonParser,
    buf: Vec<u8>,
}

/// The join's parameters.
struct Join {
    left: String,
    right: String,
    left_key: String,
    right_key: String,
    left_id: String,
    right_id: String,
    within: i64,
    outer: bool,
    fields: Option<Selection>,
}

const LEFT: u8 = b'L';
const RIGHT: u8 = b'R';

/// `side` + join key + NUL: the prefix of one side's buffered events for a key.
fn prefix(side: u8, key: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(key.len() + 2);
    p.push(side);
    p.extend_from_slice(key.as_bytes());
    p.push(0);
    p
}

/// A buffered event's state key: prefix + event time + its id (unique per event).
fn entry_key(side: u8, key: &str, ts: i64, id: &str) -> Vec<u8> {
    let mut k = prefix(side, key);
    k.extend_from_slice(&((ts as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

fn entry_ts(k: &[u8], prefix_len: usize) -> i64 {
    let mut b = [0u8; 8];
    if let Some(raw) = k.get(prefix_len..prefix_len + 8) {
        b.copy_from_slice(raw);
    }
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

/// A field's value as lookup text, exactly as [`sluice_sdk::select::key_text`]
/// gives it for the same value in a tree: strings unescaped, `null` none,
/// other JSON as serde_json writes it. An integer's text is already that
/// (serde_json writes `-0` as `-0.0`, so it goes through the tree); floats,
/// objects and arrays are converted, only this value.
fn key_text(raw: Raw<'_>) -> Option<String> {
    match raw.kind() {
        Kind::Null => None,
        Kind::String => raw.as_str().map(|s| s.into_owned()),
        Kind::Number
            if raw.bytes() != b"-0" && (raw.as_i64().is_some() || raw.as_u64().is_some()) =>
        {
            Some(raw.text().to_string())
        }
        _ => raw.to_value().ok().map(|v| v.to_string()),
    }
}

/// A buffered event's state value: `{"m": matched, "v": the event's value}`,
/// the value's bytes copied as they are.
fn write_entry(buf: &mut Vec<u8>, value: Raw<'_>, matched: bool) {
    buf.clear();
    buf.extend_from_slice(if matched {
        b"{\"m\":true,\"v\":"
    } else {
        b"{\"m\":false,\"v\":"
    });
    buf.extend_from_slice(value.bytes());
    buf.push(b'}');
}

impl Join {
    /// Writes the output value: the selected fields as raw slices, or
    /// `{"left": .., "right": ..}` with both values copied as they are.
    fn output(&self, buf: &mut Vec<u8>, l: Raw<'_>, r: Option<Raw<'_>>) {
        buf.clear();
        let mut w = ObjectWriter::new(buf);
        match &self.fields {
            Some(sel) => {
                for (i, item) in sel.0.iter().enumerate() {
                    // A name given twice is written once, the last (as a
                    // map built item by item keeps it).
                    if sel.0[i + 1..].iter().any(|later| later.name == item.name) {
                        continue;
                    }
                    let source = match item.source {
                        0 => Some(l),
                        _ => r,
                    };
                    let value = source.and_then(|v| v.get(&item.field));
                    w.raw(&item.name, value.unwrap_or(Raw::NULL));
                }
            }
            None => {
                w.raw("left", l);
                w.raw("right", r.unwrap_or(Raw::NULL));
            }
        }
        w.finish();
    }

    fn emit(
        &self,
        buf: &mut Vec<u8>,
        out: &mut Emitter<'_>,
        l: Raw<'_>,
        r: Option<Raw<'_>>,
        ts: i64,
    ) {
        let id = |v: Option<Raw<'_>>, f: &str| {
            v.and_then(|v| v.get(f))
                .and_then(key_text)
                .unwrap_or_default()
        };
        let key = format!("{}|{}", id(Some(l), &self.left_id), id(r, &self.right_id));
        self.output(buf, l, r);
        out.emit(&OutEvent {
            key: Some(key.as_bytes()),
            value: Some(buf),
            headers: Vec::new(),
            timestamp_ms: ts,
        });
    }
}

impl Processor for WindowJoin {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&[
            "left",
            "right",
            "key",
            "left_key",
            "right_key",
            "left_id",
            "right_id",
            "within_ms",
            "join",
            "fields",
        ])?;
        let key = params.get("key");
        let left_key = params
            .get("left_key")
            .or(key)
            .ok_or("missing `left_key` (or `key` for both sides)")?
            .to_string();
        let right_key = params
            .get("right_key")
            .or(key)
            .ok_or("missing `right_key` (or `key` for both sides)")?
            .to_string();
        let within = params.required("within_ms")?;
        let within = match within.trim().parse::<i64>() {
            Ok(n) if n >= 0 => n,
            _ => {
                return Err(format!(
                    "`within_ms` must be milliseconds >= 0, got `{within}`"
                ))
            }
        };
        let outer = match params.get("join").unwrap_or("inner") {
            "inner" => false,
            "left" => true,
            other => return Err(format!("`join`: unknown `{other}`; expected inner or left")),
        };
        let fields = params
            .get("fields")
            .map(|f| Selection::parse("fields", f, &["left", "right"]))
            .transpose()?;
        let join = Join {
            left: params.required("left")?.to_string(),
            right: params.required("right")?.to_string(),
            left_id: params.get("left_id").unwrap_or(&left_key).to_string(),
            right_id: params.get("right_id").unwrap_or(&right_key).to_string(),
            left_key,
            right_key,
            within,
            outer,
            fields,
        };
        Ok(Self {
            join,
            parser: JsonParser::new(),
            state_parser: JsonParser::new(),
            buf: Vec::new(),
        })
    }

    fn process(
        &mut self,
        event: &Event<'_>,
        out: &mut Emitter<'_>,
        host: &mut dyn Host,
    ) -> Result<(), EventError> {
        if event.is_tombstone() {
            return Ok(());
        }
        let join = &self.join;
        let stream = event.stream();
        let (side, other, key_field, id_field) = if stream == join.left {
            (LEFT, RIGHT, &join.left_key, &join.left_id)
        } else if stream == join.right {
            (RIGHT, LEFT, &join.right_key, &join.right_id)
        } else {
            return Err(EventError::reject(format!(
                "input `{stream}` is neither `left` ({}) nor `right` ({})",
                join.left, join.right
            )));
        };
        let view = event.view(&mut self.parser)?;
        let Some(key) = view.get(key_field).and_then(key_text) else {
            return Err(EventError::reject(format!(
                "no `{key_field}` field to join on"
            )));
        };
        let id = view.get(id_field).and_then(key_text).unwrap_or_default();
        let value = view.root();
        let ts = event.timestamp_ms();
        let buf = &mut self.buf;
        let mut matched = false;
        let other_prefix = prefix(other, &key);
        for (k, v) in host.scan(&other_prefix, u32::MAX) {
            let other_ts = entry_ts(&k, other_prefix.len());
            if (other_ts - ts).abs() > join.within {
                continue;
            }
            let Ok(buffered) = self.state_parser.parse(&v) else {
                continue;
            };
            matched = true;
            let other_value = buffered.get("v").unwrap_or(Raw::NULL);
            let at = ts.max(other_ts);
            if side == LEFT {
                join.emit(buf, out, value, Some(other_value), at);
            } else {
                join.emit(buf, out, other_value, Some(value), at);
                if buffered.get("m").and_then(|m| m.as_bool()) != Some(true) {
                    write_entry(buf, other_value, true);
                    host.put(&k, buf, None);
                }
            }
        }
        let own = entry_key(side, &key, ts, &id);
        write_entry(buf, value, matched);
        host.put(&own, buf, None);
        host.register_timer(&own, ts.saturating_add(join.within));
        Ok(())
    }

    fn on_timer(
        &mut self,
        timer: &Event<'_>,
        out: &mut Emitter<'_>,
        host: &mut dyn Host,
    ) -> Result<(), EventError> {
        let Some(k) = timer.key() else {
            return Ok(());
        };
        let Some(v) = host.get(k) else {
            return Ok(());
        };
        host.delete(k);
        if self.join.outer && k.first() == Some(&LEFT) {
            if let Ok(buffered) = self.state_parser.parse(&v) {
                if buffered.get("m").and_then(|m| m.as_bool()) != Some(true) {
                    let value = buffered.get("v").unwrap_or(Raw::NULL);
                    self.join
                        .emit(&mut self.buf, out, value, None, timer.timestamp_ms());
                }
            }
        }
        Ok(())
    }
}

sluice_sdk::export_processor!(WindowJoin);
sluice_sdk::declare_field_tables!();

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use sluice_sdk::testing::json_of as value;
    use sluice_sdk::testing::Harness;

    fn parse(v: &str) -> Value {
        serde_json::from_str(v).unwrap_or(Value::Null)
    }

    const DAY: i64 = 86_400_000;

    fn join(kind: &str) -> Harness<WindowJoin> {
        Harness::<WindowJoin>::new(&[
            ("left", "orders"),
            ("right", "shipments"),
            ("key", "order_id"),
            ("right_id", "shipment_id"),
            ("within_ms", &(7 * DAY).to_string()),
            ("join", kind),
            ("fields", "order_id, right.shipment_id, price, right.origin"),
        ])
        .expect("params")
    }

    #[test]
    fn either_arrival_order_joins_within_the_bound() {
        let mut h = join("inner");
        // Shipment first, order two days later.
        assert!(h
            .send(
                "shipments",
                None,
                Some(r#"{"order_id":1,"shipment_id":"s1","origin":"x"}"#),
                0
            )
            .expect("ok")
            .is_empty());
        let out = h
            .send("orders", None, Some(r#"{"order_id":1,"price":5}"#), 2 * DAY)
            .expect("ok");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.as_deref(), Some("1|s1"));
        assert_eq!(
            value(&out[0].1),
            parse(r#"{"order_id":1,"shipment_id":"s1","price":5,"origin":"x"}"#)
        );
        // Order first, shipment 8 days later: outside the bound.
        h.send("orders", None, Some(r#"{"order_id":2,"price":1}"#), 3 * DAY)
            .expect("ok");
        let late = h
            .send(
                "shipments",
                None,
                Some(r#"{"order_id":2,"shipment_id":"s2"}"#),
                11 * DAY,
            )
            .expect("ok");
        assert!(late.is_empty());
    }

    #[test]
    fn left_join_emits_unmatched_when_the_bound_passes_and_state_is_freed() {
        let mut h = join("left");
        h.send("orders", None, Some(r#"{"order_id":3,"price":2}"#), 0)
            .expect("ok");
        h.send("orders", None, Some(r#"{"order_id":4,"price":2}"#), 0)
            .expect("ok");
        h.send(
            "shipments",
            None,
            Some(r#"{"order_id":4,"shipment_id":"s4"}"#),
            DAY,
        )
        .expect("ok");
        let out = h.advance(8 * DAY).expect("ok");
        assert_eq!(out.len(), 1, "only the unmatched order: {out:?}");
        assert_eq!(
            value(&out[0].1),
            parse(r#"{"order_id":3,"shipment_id":null,"price":2,"origin":null}"#)
        );
        assert!(h.host.state.is_empty(), "expired entries are deleted");
        assert!(h.host.timers.is_empty());
    }

    fn pair(fields: Option<&str>) -> Harness<WindowJoin> {
        let mut params = vec![
            ("left", "orders"),
            ("right", "shipments"),
            ("key", "order_id"),
            ("right_id", "shipment_id"),
            ("within_ms", "1000"),
        ];
        if let Some(f) = fields {
            params.push(("fields", f));
        }
        Harness::<WindowJoin>::new(&params).expect("params")
    }

    #[test]
    fn values_pass_byte_for_byte_into_output_and_state() {
        let order =
            r#"{"order_id":18446744073709551615,"n":9007199254740993,"price": 50.50,"e":1E+2}"#;
        let shipment = r#"{"order_id":18446744073709551615,"shipment_id":"s\u0031","w":[1, 2.0]}"#;
        let mut h = pair(None);
        h.send("orders", None, Some(order), 0).expect("ok");
        let state: Vec<&Vec<u8>> = h.host.state.values().collect();
        assert_eq!(
            String::from_utf8_lossy(state[0]),
            format!(r#"{{"m":false,"v":{order}}}"#)
        );
        let out = h.send("shipments", None, Some(shipment), 10).expect("ok");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.as_deref(), Some("18446744073709551615|s1"));
        assert_eq!(
            out[0].1.as_deref(),
            Some(format!(r#"{{"left":{order},"right":{shipment}}}"#).as_str())
        );

        let mut h = pair(Some("n, price, right.w as weights, e"));
        h.send("shipments", None, Some(shipment), 0).expect("ok");
        let out = h.send("orders", None, Some(order), 10).expect("ok");
        assert_eq!(
            out[0].1.as_deref(),
            Some(r#"{"n":9007199254740993,"price":50.50,"weights":[1, 2.0],"e":1E+2}"#)
        );
    }

    #[test]
    fn state_written_by_the_tree_path_still_joins() {
        // The tree path wrote `{"m":..,"v":..}` re-serialized; the view
        // reads the same layout.
        let mut h = pair(None);
        let key = entry_key(RIGHT, "7", 0, "s7");
        h.host.state.insert(
            key,
            br#"{"m":false,"v":{"order_id":7,"shipment_id":"s7"}}"#.to_vec(),
        );
        let out = h
            .send("orders", None, Some(r#"{"order_id":7}"#), 5)
            .expect("ok");
        assert_eq!(out[0].0.as_deref(), Some("7|s7"));
        assert_eq!(
            value(&out[0].1),
            parse(r#"{"left":{"order_id":7},"right":{"order_id":7,"shipment_id":"s7"}}"#)
        );
    }

    #[test]
    fn duplicate_keys_read_the_last_occurrence() {
        let mut h = pair(Some("order_id, price, right.origin as price"));
        h.send(
            "orders",
            None,
            Some(r#"{"order_id":1,"price":1,"order_id":2,"price":3}"#),
            0,
        )
        .expect("ok");
        let out = h
            .send(
                "shipments",
                None,
                Some(r#"{"order_id":2,"shipment_id":"a","origin":"x"}"#),
                1,
            )
            .expect("ok");
        assert_eq!(out.len(), 1, "joined on the last order_id: {out:?}");
        // `price` is given twice in `fields`: written once, the last.
        assert_eq!(out[0].1.as_deref(), Some(r#"{"order_id":2,"price":"x"}"#));
    }

    #[test]
    fn join_keys_read_as_the_tree_reads_them() {
        let tree = |v: &str| sluice_sdk::select::key_text(&parse(v));
        for text in [
            r#""a\u00e9""#,
            "12",
            "-12",
            "-0",
            "1.50",
            "1e2",
            "18446744073709551615",
            "18446744073709551616",
            "true",
            r#"{"b": 1, "a": [2]}"#,
            "null",
        ] {
            let view = sluice_sdk::json::JsonView::parse(text.as_bytes()).expect("json");
            assert_eq!(key_text(view.root()), tree(text), "{text}");
        }
    }

    #[test]
    fn hostile_values_are_rejected_with_a_reason() {
        let mut h = pair(None);
        let deep = format!(r#"{{"order_id":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
        for bad in [
            deep.as_str(),
            r#"{"order_id":1"#,
            r#"{"order_id":"\ud800"}"#,
            "{} 1",
        ] {
            let err = h
                .send("orders", None, Some(bad), 0)
                .err()
                .unwrap_or_default();
            assert!(err.starts_with("value is not valid JSON: "), "{err}");
        }
        assert!(h.host.state.is_empty());
        let err = h
            .send("orders", None, Some("[1]"), 0)
            .err()
            .unwrap_or_default();
        assert_eq!(err, "no `order_id` field to join on");
    }
}
