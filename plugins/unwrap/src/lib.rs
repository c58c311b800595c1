//! # unwrap
//!
//! A Sluice transform that turns Debezium-style change events into the row
//! state they describe, like Debezium's `ExtractNewRecordState` SMT:
//! create/read/update events become their `after` row, deletes become
//! tombstones (or are dropped, or rewritten to the `before` row with
//! `"__deleted": "true"`), truncates produce nothing.
//!
//! The input value is the change event `{"before", "after", "source", "op",
//! "ts_ms"}`, either bare or wrapped as `{"schema": .., "payload": {..}}` (Kafka
//! Connect's JSON converter with schemas enabled). The key is kept as it is.
//!
//! See `README.md` next to this crate for the parameters and an example.
#![deny(missing_docs)]

use serde_json::Value;
use sluice_sdk::json::{JsonParser, JsonView, Kind, ObjectWriter, Raw, RawKey};
use sluice_sdk::{Emitter, Event, EventError, Params, Transform};

/// What a delete event (`op: "d"`) becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeleteHandling {
    /// A tombstone with the event's key.
    Tombstone,
    /// Nothing (a deliberate, configured drop).
    Drop,
    /// The `before` row plus `"__deleted": "true"`.
    Rewrite,
}

/// One `add_fields` entry: where to read the value, and the output field name.
#[derive(Debug, Clone)]
struct AddField {
    /// `None` for envelope fields (`op`, `ts_ms`), else `source` or `transaction`.
    container: Option<String>,
    field: String,
    name: String,
}

/// Envelope fields that `add_fields` reads from the top level, not from `source`.
const ENVELOPE_FIELDS: &[&str] = &["op", "ts_ms", "ts_us", "ts_ns"];
/// Bare `add_fields` names that live in the `transaction` block.
const TRANSACTION_FIELDS: &[&str] = &["id", "total_order", "data_collection_order"];
/// Prefix of added fields, as Debezium's default `add.fields.prefix`.
const PREFIX: &str = "__";
/// The field `delete_handling: rewrite` adds.
const DELETED: &str = "__deleted";

/// The unwrap transform: Debezium change event in, row state out.
pub struct Unwrap {
    delete: DeleteHandling,
    add_fields: Vec<AddField>,
    drop_tombstones: bool,
    /// Reused per event: the view's field table, and one for a row sent as
    /// JSON text.
    parser: JsonParser,
    row_parser: JsonParser,
}

impl Transform for Unwrap {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&["delete_handling", "add_fields", "drop_tombstones"])?;
        let delete = match params.get("delete_handling").map(str::trim) {
            None | Some("tombstone") => DeleteHandling::Tombstone,
            Some("drop") => DeleteHandling::Drop,
            Some("rewrite") => DeleteHandling::Rewrite,
            Some(other) => {
                return Err(format!(
                    "parameter `delete_handling`: expected `tombstone`, `drop` or `rewrite`, \
                     found `{other}`"
                ))
            }
        };
        let add_fields = parse_list(params, "add_fields")?
            .iter()
            .map(|entry| parse_add_field(entry))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in add_fields.iter().enumerate() {
            if add_fields[..i].iter().any(|b| b.name == a.name) {
                return Err(format!(
                    "parameter `add_fields`: two entries would both write `{}`",
                    a.name
                ));
            }
        }
        Ok(Self {
            delete,
            add_fields,
            drop_tombstones: params.bool_or("drop_tombstones", false)?,
            parser: JsonParser::new(),
            row_parser: JsonParser::new(),
        })
    }

    fn process(&mut self, event: &Event<'_>, out: &mut Emitter<'_>) -> Result<(), EventError> {
        if event.is_tombstone() {
            self.tombstone_in(out);
            return Ok(());
        }
        let view = event.view(&mut self.parser)?;
        if !view.is_object() {
            return Err(EventError::Reject(format!(
                "not a change event: the value is {}, expected an object with an `op` field",
                view.root().kind().described()
            )));
        }
        // `{"schema": .., "payload": {..}}`: the event is the payload.
        let mut envelope = Envelope::Root(&view);
        if view.get("op").is_none() {
            if let Some(payload) = view.get("payload") {
                match payload.kind() {
                    Kind::Object => envelope = Envelope::Nested(payload),
                    // What the JSON converter writes for a null value: a tombstone.
                    Kind::Null => {
                        self.tombstone_in(out);
                        return Ok(());
                    }
                    other => {
                        return Err(EventError::Reject(format!(
                            "not a change event: `payload` is {}, expected an object",
                            other.described()
                        )))
                    }
                }
            }
        }
        let op = match envelope.get("op") {
            Some(op) if op.kind() == Kind::String => op.as_str().unwrap_or_default(),
            Some(other) => {
                return Err(EventError::Reject(format!(
                    "not a change event: `op` is {}, expected a string",
                    other.kind().described()
                )))
            }
            None => {
                return Err(EventError::Reject(
                    "not a change event: no `op` field (expected a Debezium change event \
                     `{\"before\",\"after\",\"source\",\"op\",\"ts_ms\"}`, bare or in \
                     `{\"schema\",\"payload\"}`)"
                        .to_string(),
                ))
            }
        };
        match &*op {
            "c" | "r" | "u" => {
                let deleted = (self.delete == DeleteHandling::Rewrite).then_some("false");
                write_row(
                    &self.add_fields,
                    &mut self.row_parser,
                    &envelope,
                    "after",
                    &op,
                    deleted,
                    out,
                )?;
            }
            "d" => match self.delete {
                DeleteHandling::Tombstone => out.tombstone(),
                // Configured by the pipeline: deletes are deliberately not propagated.
                DeleteHandling::Drop => {}
                DeleteHandling::Rewrite => {
                    write_row(
                        &self.add_fields,
                        &mut self.row_parser,
                        &envelope,
                        "before",
                        &op,
                        Some("true"),
                        out,
                    )?;
                }
            },
            // Truncate has no row state to emit (as Debezium's SMT, which drops it).
            "t" => {}
            other => {
                return Err(EventError::Reject(format!(
                    "unknown change event `op` `{other}`; expected `c`, `r`, `u`, `d` or `t`"
                )))
            }
        }
        Ok(())
    }
}

/// The change event's fields: the value's own (indexed by the view) or a
/// `payload` object's.
enum Envelope<'v, 'a> {
    Root(&'v JsonView<'a>),
    Nested(Raw<'a>),
}

impl<'a> Envelope<'_, 'a> {
    /// The field `name` (its last occurrence).
    fn get(&self, name: &str) -> Option<Raw<'a>> {
        match self {
            Envelope::Root(view) => view.get(name),
            Envelope::Nested(raw) => raw.get(name),
        }
    }
}

impl Unwrap {
    /// An input tombstone (Debezium writes one after each delete event), or a
    /// `{"schema", "payload": null}` value: a tombstone with the same key.
    fn tombstone_in(&self, out: &mut Emitter<'_>) {
        if !self.drop_tombstones {
            out.tombstone();
        }
    }
}

/// Emits the `before`/`after` row: its fields copied as raw slices, then the
/// configured envelope/source fields (absent ones `null`), then `__deleted`
/// when given. A row field an added field replaces is left out. The Debezium
/// MongoDB connector sends documents as JSON text: a string is parsed.
fn write_row(
    add_fields: &[AddField],
    row_parser: &mut JsonParser,
    envelope: &Envelope<'_, '_>,
    which: &str,
    op: &str,
    deleted: Option<&str>,
    out: &mut Emitter<'_>,
) -> Result<(), EventError> {
    let text;
    let row = match envelope.get(which) {
        Some(raw) if raw.kind() == Kind::Object => raw,
        Some(raw) if raw.kind() == Kind::String => {
            text = raw.as_str().unwrap_or_default();
            match row_parser.parse(text.as_bytes()) {
                Ok(row) if row.is_object() => row.root(),
                _ => {
                    return Err(EventError::Reject(format!(
                        "`{which}` of op `{op}` event is a string that is not a JSON object"
                    )))
                }
            }
        }
        None => return Err(no_row(which, op)),
        Some(raw) if raw.is_null() => return Err(no_row(which, op)),
        Some(other) => {
            return Err(EventError::Reject(format!(
                "`{which}` of op `{op}` event is {}, expected an object",
                other.kind().described()
            )))
        }
    };
    let replaced = |key: &RawKey<'_>| {
        add_fields.iter().any(|a| key.is(&a.name)) || (deleted.is_some() && key.is(DELETED))
    };
    out.value_with(|buf| {
        let mut w = ObjectWriter::new(buf);
        for (key, value) in row.entries() {
            if !replaced(&key) {
                w.raw_field(key, value);
            }
        }
        // Each container is looked up once per event, not once per field.
        let block = |name: &str| envelope.get(name).filter(|c| c.kind() == Kind::Object);
        let (source, transaction) = if add_fields.is_empty() {
            (None, None)
        } else {
            (block("source"), block("transaction"))
        };
        for add in add_fields {
            let value = match add.container.as_deref() {
                None => envelope.get(&add.field),
                Some("source") => source.and_then(|c| c.get(&add.field)),
                Some("transaction") => transaction.and_then(|c| c.get(&add.field)),
                Some(container) => block(container).and_then(|c| c.get(&add.field)),
            };
            w.raw(&add.name, value.unwrap_or(Raw::NULL));
        }
        if let Some(deleted) = deleted {
            w.value(DELETED, &Value::from(deleted));
        }
        w.finish();
    });
    Ok(())
}

/// The rejection of a change event without the row state it needs.
fn no_row(which: &str, op: &str) -> EventError {
    EventError::Reject(format!(
        "op `{op}` event has no `{which}` row state{}",
        if which == "before" {
            " (with delete_handling: rewrite the source must send the old row, \
             e.g. PostgreSQL `REPLICA IDENTITY FULL`)"
        } else {
            ""
        }
    ))
}

/// Reads a list parameter: a JSON list of strings or a comma-separated string.
fn parse_list(params: &Params, name: &str) -> Result<Vec<String>, String> {
    let Some(text) = params.get(name) else {
        return Ok(Vec::new());
    };
    let trimmed = text.trim();
    if trimmed.starts_with('[') {
        let list: Vec<Value> = serde_json::from_str(trimmed)
            .map_err(|e| format!("parameter `{name}`: expected a JSON list ({e})"))?;
        list.into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(format!(
                    "parameter `{name}`: expected strings, found {other}"
                )),
            })
            .collect()
    } else {
        Ok(trimmed
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }
}

/// Parses one `add_fields` entry with Debezium's `add.fields` rules:
/// `op`/`ts_ms` from the envelope, any other bare name from `source`
/// (`table` → `__table`), `source.x`/`transaction.x` → `__source_x`/`__transaction_x`,
/// and `entry:alias` → `__alias`.
fn parse_add_field(entry: &str) -> Result<AddField, String> {
    let bad = |why: &str| {
        format!(
            "parameter `add_fields`: `{entry}` {why}; expected `op`, `ts_ms`, a source field \
             such as `table` or `lsn`, `source.<field>` or `transaction.<field>`, optionally \
             `:alias`"
        )
    };
    let (reference, alias) = match entry.split_once(':') {
        Some((reference, alias)) => (reference.trim(), Some(alias.trim())),
        None => (entry.trim(), None),
    };
    if alias.is_some_and(str::is_empty) {
        return Err(bad("has an empty alias"));
    }
    let (container, field, default_name) = match reference.split_once('.') {
        None => {
            let container = if ENVELOPE_FIELDS.contains(&reference) {
                None
            } else if TRANSACTION_FIELDS.contains(&reference) {
                Some("transaction")
            } else {
                Some("source")
            };
            (container, reference, reference.to_string())
        }
        Some((container @ ("source" | "transaction"), field)) if !field.contains('.') => {
            (Some(container), field, format!("{container}_{field}"))
        }
        Some(_) => return Err(bad("is not a field Debezium's envelope has")),
    };
    if field.is_empty() {
        return Err(bad("names no field"));
    }
    Ok(AddField {
        container: container.map(str::to_string),
        field: field.to_string(),
        name: format!("{PREFIX}{}", alias.unwrap_or(&default_name)),
    })
}

sluice_sdk::export_transform!(Unwrap);
sluice_sdk::declare_field_tables!();

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::abi::RawBatch;
    use sluice_sdk::testing::{run, run_batch, TestError, TestOutput};

    const SOURCE: &str = r#"{"connector":"postgresql","db":"shop","schema":"public","table":"customers","lsn":24023128,"ts_ms":1700000000000}"#;

    fn change(op: &str, before: &str, after: &str) -> String {
        format!(
            r#"{{"before":{before},"after":{after},"source":{SOURCE},"op":"{op}","ts_ms":1700000000123}}"#
        )
    }

    /// Runs over keyed events; `None` values are tombstones.
    fn run_keyed(params: &[(&str, &str)], events: &[(&str, Option<&str>)]) -> TestOutput {
        let mut batch = RawBatch {
            streams: vec!["customers".to_string()],
            ..RawBatch::default()
        };
        for (i, (key, value)) in events.iter().enumerate() {
            batch.push_event(
                Some(key.as_bytes()),
                value.map(str::as_bytes),
                &[("h", b"v")],
                i as i64,
                0,
            );
        }
        run_batch::<Unwrap>(params, &batch).expect("run")
    }

    fn keys(out: &TestOutput) -> Vec<Option<String>> {
        out.keys()
    }

    fn key(k: &str) -> Option<String> {
        Some(k.to_string())
    }

    fn init_error(params: &[(&str, &str)]) -> String {
        match run::<Unwrap>(params, &[]) {
            Err(TestError::Init(e)) => e,
            Err(other) => panic!("expected an init error, got {other:?}"),
            Ok(_) => panic!("expected an init error, got a transform"),
        }
    }

    #[test]
    fn creates_reads_and_updates_emit_the_after_row_with_the_key() {
        let c = change("c", "null", r#"{"id":"5","name":"fred","age":34}"#);
        let r = change("r", "null", r#"{"id":"7","name":"sue","age":25}"#);
        let u = change(
            "u",
            r#"{"id":"5","name":"fred","age":34}"#,
            r#"{"id":"5","name":"fred","age":35}"#,
        );
        let out = run_keyed(&[], &[("5", Some(&c)), ("7", Some(&r)), ("5", Some(&u))]);
        assert!(out.rejected().is_empty());
        assert_eq!(
            out.values(),
            vec![
                r#"{"age":34,"id":"5","name":"fred"}"#,
                r#"{"age":25,"id":"7","name":"sue"}"#,
                r#"{"age":35,"id":"5","name":"fred"}"#,
            ]
        );
        assert_eq!(keys(&out), vec![key("5"), key("7"), key("5")]);
        // Timestamps and parents follow the input events.
        let ts: Vec<i64> = out
            .raw
            .events
            .events
            .iter()
            .map(|e| e.timestamp_ms)
            .collect();
        assert_eq!(ts, vec![0, 1, 2]);
    }

    #[test]
    fn unwraps_schema_and_payload_envelopes() {
        let inner = change("c", "null", r#"{"id":"2","name":"bill","age":51}"#);
        let wrapped = format!(r#"{{"schema":{{"type":"struct","fields":[]}},"payload":{inner}}}"#);
        let null_payload = r#"{"schema":null,"payload":null}"#;
        let out = run_keyed(&[], &[("2", Some(&wrapped)), ("3", Some(null_payload))]);
        assert!(out.rejected().is_empty());
        assert_eq!(
            out.values(),
            vec![r#"{"age":51,"id":"2","name":"bill"}"#, "null"]
        );
        assert_eq!(keys(&out), vec![key("2"), key("3")]);
        assert!(out.raw.events.events[1].value.is_none());
    }

    #[test]
    fn deletes_become_tombstones_by_default() {
        let d = change("d", r#"{"id":"5","name":"fred","age":34}"#, "null");
        let out = run_keyed(&[], &[("5", Some(&d))]);
        assert_eq!(out.values(), vec!["null"]);
        assert!(out.raw.events.events[0].value.is_none());
        assert_eq!(keys(&out), vec![key("5")]);
        let explicit = run_keyed(&[("delete_handling", "tombstone")], &[("5", Some(&d))]);
        assert_eq!(explicit.values(), vec!["null"]);
    }

    #[test]
    fn deletes_are_dropped_when_configured() {
        let d = change("d", r#"{"id":"5"}"#, "null");
        let c = change("c", "null", r#"{"id":"6"}"#);
        let out = run_keyed(
            &[("delete_handling", "drop")],
            &[("5", Some(&d)), ("6", Some(&c))],
        );
        assert_eq!(out.values(), vec![r#"{"id":"6"}"#]);
        assert_eq!(keys(&out), vec![key("6")]);
        assert!(out.rejected().is_empty());
    }

    #[test]
    fn rewrite_marks_deletes_and_other_rows_like_debezium() {
        let d = change("d", r#"{"id":"5","name":"fred","age":34}"#, "null");
        let u = change("u", "null", r#"{"id":"7","name":"sue","age":26}"#);
        let out = run_keyed(
            &[("delete_handling", "rewrite")],
            &[("5", Some(&d)), ("7", Some(&u))],
        );
        assert_eq!(
            out.values(),
            vec![
                r#"{"__deleted":"true","age":34,"id":"5","name":"fred"}"#,
                r#"{"__deleted":"false","age":26,"id":"7","name":"sue"}"#,
            ]
        );
        assert_eq!(keys(&out), vec![key("5"), key("7")]);
    }

    #[test]
    fn rewrite_rejects_a_delete_without_before() {
        let d = change("d", "null", "null");
        let out = run_keyed(&[("delete_handling", "rewrite")], &[("5", Some(&d))]);
        assert!(out.values().is_empty());
        assert_eq!(
            out.rejected(),
            vec![(
                0,
                "op `d` event has no `before` row state (with delete_handling: rewrite the \
                 source must send the old row, e.g. PostgreSQL `REPLICA IDENTITY FULL`)"
                    .to_string()
            )]
        );
    }

    #[test]
    fn truncates_emit_nothing() {
        let t = r#"{"before":null,"after":null,"source":{"table":"customers"},"op":"t","ts_ms":1}"#;
        let out = run_keyed(&[], &[("", Some(t))]);
        assert!(out.values().is_empty());
        assert!(out.rejected().is_empty());
    }

    #[test]
    fn add_fields_uses_debezium_names() {
        let u = change("u", "null", r#"{"id":"5"}"#);
        let out = run_keyed(
            &[(
                "add_fields",
                "op, table, lsn, ts_ms, source.ts_ms, source.table:tbl, source.xmin",
            )],
            &[("5", Some(&u))],
        );
        assert_eq!(
            out.values(),
            vec![
                r#"{"__lsn":24023128,"__op":"u","__source_ts_ms":1700000000000,"__source_xmin":null,"__table":"customers","__tbl":"customers","__ts_ms":1700000000123,"id":"5"}"#
            ]
        );
    }

    #[test]
    fn add_fields_apply_to_rewritten_deletes() {
        let d = change("d", r#"{"id":"5"}"#, "null");
        let out = run_keyed(
            &[
                ("delete_handling", "rewrite"),
                ("add_fields", r#"["op","table"]"#),
            ],
            &[("5", Some(&d))],
        );
        assert_eq!(
            out.values(),
            vec![r#"{"__deleted":"true","__op":"d","__table":"customers","id":"5"}"#]
        );
    }

    #[test]
    fn input_tombstones_pass_through_unless_dropped() {
        let out = run_keyed(&[], &[("5", None)]);
        assert_eq!(out.values(), vec!["null"]);
        assert!(out.raw.events.events[0].value.is_none());
        assert_eq!(keys(&out), vec![key("5")]);
        let dropped = run_keyed(&[("drop_tombstones", "true")], &[("5", None)]);
        assert!(dropped.values().is_empty());
        assert!(dropped.rejected().is_empty());
    }

    #[test]
    fn parses_mongodb_documents_sent_as_json_text() {
        let c = r#"{"after":"{\"_id\":{\"$oid\":\"65a1\"},\"order_id\":\"13\",\"price\":50.5}","source":{"db":"logistics","collection":"orders"},"op":"c","ts_ms":1}"#;
        let out = run_keyed(&[("add_fields", "collection")], &[("13", Some(c))]);
        assert_eq!(
            out.values(),
            vec![r#"{"__collection":"orders","_id":{"$oid":"65a1"},"order_id":"13","price":50.5}"#]
        );
    }

    #[test]
    fn rejects_values_that_are_not_change_events() {
        let out = run::<Unwrap>(
            &[],
            &[
                r#"{"id":"5","name":"fred"}"#,
                "[1]",
                r#"{"op":"x","after":{}}"#,
                r#"{"op":"u","after":null}"#,
                r#"{"op":1}"#,
                r#"{"op":"c","after":"not json"}"#,
                r#"{"op":"c","after":[1]}"#,
                r#"{"schema":{},"payload":"text"}"#,
                "{nope",
            ],
        )
        .expect("run");
        assert!(out.values().is_empty());
        let rejected = out.rejected();
        let reasons: Vec<&str> = rejected.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(
            reasons[..8],
            [
                "not a change event: no `op` field (expected a Debezium change event \
                 `{\"before\",\"after\",\"source\",\"op\",\"ts_ms\"}`, bare or in \
                 `{\"schema\",\"payload\"}`)",
                "not a change event: the value is an array, expected an object with an `op` field",
                "unknown change event `op` `x`; expected `c`, `r`, `u`, `d` or `t`",
                "op `u` event has no `after` row state",
                "not a change event: `op` is a number, expected a string",
                "`after` of op `c` event is a string that is not a JSON object",
                "`after` of op `c` event is an array, expected an object",
                "not a change event: `payload` is a string, expected an object",
            ]
        );
        assert!(reasons[8].starts_with("value is not valid JSON"));
        let indexes: Vec<u32> = rejected.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, (0..9).collect::<Vec<u32>>());
    }

    #[test]
    fn refuses_bad_parameters() {
        assert_eq!(
            init_error(&[("delete_handling", "rewrite-with-tombstone")]),
            "parameter `delete_handling`: expected `tombstone`, `drop` or `rewrite`, found \
             `rewrite-with-tombstone`"
        );
        assert_eq!(
            init_error(&[("add_fields", "after.id")]),
            "parameter `add_fields`: `after.id` is not a field Debezium's envelope has; \
             expected `op`, `ts_ms`, a source field such as `table` or `lsn`, \
             `source.<field>` or `transaction.<field>`, optionally `:alias`"
        );
        assert_eq!(
            init_error(&[("add_fields", "table,source.table:table")]),
            "parameter `add_fields`: two entries would both write `__table`"
        );
        assert_eq!(
            init_error(&[("delete", "drop")]),
            "unknown parameter `delete`; allowed: delete_handling, add_fields, drop_tombstones"
        );
        assert_eq!(
            init_error(&[("drop_tombstones", "yes")]),
            "parameter `drop_tombstones`: expected `true` or `false`, found `yes`"
        );
    }

    #[test]
    fn row_fields_and_added_fields_pass_byte_for_byte() {
        let c = r#"{"before":null,"after":{"id":9007199254740993,"big":18446744073709551615,"price": 50.50,"e":1E+2,"name":"fr\u00e9d","tags":[1, 2.0]},"source":{"table":"t","lsn":18446744073709551615},"op":"c","ts_ms":1700000000123}"#;
        let out = run_keyed(&[("add_fields", "lsn, ts_ms")], &[("k", Some(c))]);
        assert!(out.rejected().is_empty(), "{:?}", out.rejected());
        assert_eq!(
            out.raw_values(),
            vec![
                r#"{"id":9007199254740993,"big":18446744073709551615,"price":50.50,"e":1E+2,"name":"fr\u00e9d","tags":[1, 2.0],"__lsn":18446744073709551615,"__ts_ms":1700000000123}"#
            ]
        );
        // A row sent as JSON text keeps its numbers' text too.
        let m = r#"{"after":"{\"n\":9007199254740993,\"p\":1.10}","op":"r"}"#;
        let out = run_keyed(&[], &[("k", Some(m))]);
        assert_eq!(out.raw_values(), vec![r#"{"n":9007199254740993,"p":1.10}"#]);
    }

    #[test]
    fn duplicate_keys_read_the_last_occurrence() {
        let events = [
            // The envelope's last `op` and `after` count.
            r#"{"op":"d","after":{"id":1},"op":"c","after":{"id":2}}"#,
            // Row duplicates are copied as they are (last wins for a reader);
            // a row field an added field replaces is left out, every copy.
            r#"{"op":"c","after":{"id":1,"__op":"x","id":2,"__op":"y","__deleted":"no"}}"#,
        ];
        let out = run_keyed(
            &[("add_fields", "op"), ("delete_handling", "rewrite")],
            &[("k", Some(events[0])), ("k", Some(events[1]))],
        );
        assert_eq!(
            out.raw_values(),
            vec![
                r#"{"id":2,"__op":"c","__deleted":"false"}"#,
                r#"{"id":1,"id":2,"__op":"c","__deleted":"false"}"#,
            ]
        );
        assert_eq!(
            out.values()[1],
            r#"{"__deleted":"false","__op":"c","id":2}"#
        );
    }

    #[test]
    fn hostile_values_are_rejected_with_a_reason() {
        let deep = format!(
            r#"{{"op":"c","after":{{"a":{}1{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let deep_text = format!(
            r#"{{"op":"c","after":"{}1{}"}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let out = run::<Unwrap>(
            &[],
            &[
                &deep,
                r#"{"op":"c","after":{"a":1}"#,
                r#"{"op":"c","after":{"a":"\udc00"}}"#,
                r#"{"op":"c","after":{}} {}"#,
                &deep_text,
            ],
        )
        .expect("run");
        assert!(out.values().is_empty());
        let rejected = out.rejected();
        assert_eq!(
            rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert!(
            rejected[0].1.contains("recursion limit exceeded"),
            "{rejected:?}"
        );
        for (_, reason) in &rejected[..4] {
            assert!(reason.starts_with("value is not valid JSON: "), "{reason}");
        }
        assert_eq!(
            rejected[4].1,
            "`after` of op `c` event is a string that is not a JSON object"
        );
    }
}
