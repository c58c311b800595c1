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

use serde_json::{json, Value};
use sluice_sdk::select::{key_text, Selection};
use sluice_sdk::{Emitter, Event, EventError, Host, OutEvent, Params, Processor};

/// The processor.
pub struct WindowJoin {
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

impl WindowJoin {
    fn output(&self, l: &Value, r: Option<&Value>) -> Value {
        match &self.fields {
            Some(sel) => sel.apply(&[Some(l), r]),
            None => json!({"left": l, "right": r}),
        }
    }

    fn emit(&self, out: &mut Emitter<'_>, l: &Value, r: Option<&Value>, ts: i64) {
        let id = |v: Option<&Value>, f: &str| {
            v.and_then(|v| v.get(f))
                .and_then(key_text)
                .unwrap_or_default()
        };
        let key = format!("{}|{}", id(Some(l), &self.left_id), id(r, &self.right_id));
        let value = self.output(l, r).to_string();
        out.emit(&OutEvent {
            key: Some(key.as_bytes()),
            value: Some(value.as_bytes()),
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
        Ok(Self {
            left: params.required("left")?.to_string(),
            right: params.required("right")?.to_string(),
            left_id: params.get("left_id").unwrap_or(&left_key).to_string(),
            right_id: params.get("right_id").unwrap_or(&right_key).to_string(),
            left_key,
            right_key,
            within,
            outer,
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
            return Ok(());
        }
        let stream = event.stream();
        let (side, other, key_field, id_field) = if stream == self.left {
            (LEFT, RIGHT, &self.left_key, &self.left_id)
        } else if stream == self.right {
            (RIGHT, LEFT, &self.right_key, &self.right_id)
        } else {
            return Err(EventError::reject(format!(
                "input `{stream}` is neither `left` ({}) nor `right` ({})",
                self.left, self.right
            )));
        };
        let value = event.json()?;
        let Some(key) = value.get(key_field).and_then(key_text) else {
            return Err(EventError::reject(format!(
                "no `{key_field}` field to join on"
            )));
        };
        let id = value.get(id_field).and_then(key_text).unwrap_or_default();
        let ts = event.timestamp_ms();
        let mut matched = false;
        let other_prefix = prefix(other, &key);
        for (k, v) in host.scan(&other_prefix, u32::MAX) {
            let other_ts = entry_ts(&k, other_prefix.len());
            if (other_ts - ts).abs() > self.within {
                continue;
            }
            let Ok(mut buffered) = serde_json::from_slice::<Value>(&v) else {
                continue;
            };
            matched = true;
            let other_value = buffered["v"].clone();
            let at = ts.max(other_ts);
            if side == LEFT {
                self.emit(out, &value, Some(&other_value), at);
            } else {
                self.emit(out, &other_value, Some(&value), at);
                if buffered["m"] != json!(true) {
                    buffered["m"] = json!(true);
                    host.put(&k, buffered.to_string().as_bytes(), None);
                }
            }
        }
        let own = entry_key(side, &key, ts, &id);
        host.put(
            &own,
            json!({"v": value, "m": matched}).to_string().as_bytes(),
            None,
        );
        host.register_timer(&own, ts.saturating_add(self.within));
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
        if self.outer && k.first() == Some(&LEFT) {
            if let Ok(buffered) = serde_json::from_slice::<Value>(&v) {
                if buffered["m"] != json!(true) {
                    self.emit(out, &buffered["v"], None, timer.timestamp_ms());
                }
            }
        }
        Ok(())
    }
}

sluice_sdk::export_processor!(WindowJoin);

#[cfg(test)]
mod tests {
    use super::*;
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
}
