//! The invariants the fuzz targets check, one function per target, each taking
//! the raw input bytes. They live here rather than in the targets so that two
//! harnesses run the same checks:
//! - `fuzz_targets/*.rs`: coverage-guided libFuzzer runs (`scripts/fuzz.sh`);
//! - `host/tests/all/fuzz_replay.rs`: the normal test build replays every
//!   corpus entry and seeded mutations of them, so CI catches a regression
//!   without a second, instrumented build of the tree.
//!
//! Each function panics when an invariant breaks; returning means the input
//! was handled (accepted or refused with an error).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use apache_avro::Schema;
use arbitrary::{Arbitrary, Unstructured};
use serde_json::json;
use sluice::config::{load_str, LoadOptions};
use sluice::event::abi::{Event, Frame, Header, Output, Rejection, Span};
use sluice::event::{check_json, Batch, BatchBuilder};
use sluice::format::avro;
use sluice::format::codec::{Decoder, Format};
use sluice::format::registry::server::Registry;
use sluice::plugin::bindings::v2;
use sluice::plugin::limits::Limits;
use sluice::plugin::output_check::{self, MAX_REASON_BYTES};
use sluice::plugin::{lookup_many, wire};
use sluice_expr::Expr;

/// A target's check: panics when an invariant breaks.
pub type Check = fn(&[u8]);

/// Every target, by the name `scripts/fuzz.sh` and `fuzz/corpus/` use.
pub const TARGETS: &[(&str, Check)] = &[
    ("output_batch", output_batch),
    ("pgoutput", pgoutput),
    ("avro_wire", avro_wire),
    ("json_converter", json_converter),
    ("expression", expression),
    ("pipeline_yaml", pipeline_yaml),
    ("registry_http", registry_http),
    ("wire_output", wire_output),
    ("lookup_keys", lookup_keys),
    ("json_view", json_view),
];

// ---- output_batch -------------------------------------------------------

/// Small spans reach the paths behind the range checks; raw ones probe the
/// arithmetic at the edges of u32.
#[derive(Arbitrary, Debug)]
enum FSpan {
    Small(u8, u8),
    Raw(u32, u32),
}

impl FSpan {
    fn span(&self) -> Span {
        match *self {
            FSpan::Small(offset, len) => Span {
                offset: offset.into(),
                len: len.into(),
            },
            FSpan::Raw(offset, len) => Span { offset, len },
        }
    }
}

#[derive(Arbitrary, Debug)]
struct FEvent {
    key: Option<FSpan>,
    value: Option<FSpan>,
    headers: FSpan,
    timestamp_ms: i64,
    stream: u32,
    parent: u8,
}

#[derive(Arbitrary, Debug)]
struct Case {
    inputs: u8,
    data: Vec<u8>,
    events: Vec<FEvent>,
    headers: Vec<(FSpan, FSpan)>,
    rejected: Vec<(u16, String)>,
}

/// A guest's output is the most hostile input the host reads: every span,
/// index and count in it is chosen by the plugin. Whatever `output_check`
/// accepts, the host must be able to turn into a batch and read back without
/// a panic, and no host-owned header may survive.
pub fn output_batch(data: &[u8]) {
    let Ok(case) = Case::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut input = BatchBuilder::new("upstream", Arc::from("source"), case.inputs.into());
    for i in 0..case.inputs {
        input.push(Some(&[i]), Some(b"{}"), &[], 0, i.into());
    }
    let input = input.finish();
    let mut out = Output {
        events: Frame {
            data: case.data,
            events: case
                .events
                .iter()
                .map(|e| Event {
                    key: e.key.as_ref().map(FSpan::span),
                    value: e.value.as_ref().map(FSpan::span),
                    headers: e.headers.span(),
                    timestamp_ms: e.timestamp_ms,
                    stream: e.stream,
                    parent: e.parent.into(),
                })
                .collect(),
            headers: case
                .headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.span(),
                    value: value.span(),
                })
                .collect(),
            streams: Vec::new(),
        },
        rejected: case
            .rejected
            .into_iter()
            .map(|(index, reason)| Rejection {
                index: index.into(),
                reason,
            })
            .collect(),
    };
    if output_check::check(&mut out, input.len(), &Limits::default()).is_err() {
        return;
    }
    for r in &out.rejected {
        assert!(
            r.reason.len() <= MAX_REASON_BYTES + "… (cut)".len(),
            "a reason of {} bytes passed the check",
            r.reason.len()
        );
        assert!((r.index as usize) < input.len());
    }
    let batch = match Batch::from_output(&input, "stage", out.events) {
        Ok(batch) => batch,
        Err(e) => panic!("output_check accepted an output the host then refused: {e}"),
    };
    for event in batch.iter() {
        for (name, _) in event.headers() {
            assert!(
                !output_check::is_reserved(name.as_bytes()),
                "host-owned header `{name}` survived the check"
            );
        }
    }
}

// ---- wire_output --------------------------------------------------------

/// Splits `data` into a `u16`-length-prefixed section and the rest.
fn section(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return (&[], &[]);
    };
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    rest.split_at(len)
}

/// Contract 0.2.0: a guest's output arrives as byte tables (48-byte event
/// records, 16-byte header records) that the host unpacks before any other
/// check. Input layout: one byte of input-event count, then the data, event
/// table and header table each as a `u16`-length-prefixed section, then
/// rejection indexes as `u16`s. Whatever unpacks must pass or fail
/// `output_check` cleanly, and whatever passes must become a batch with no
/// host-owned header.
pub fn wire_output(data: &[u8]) {
    let Some((&inputs, rest)) = data.split_first() else {
        return;
    };
    let (bytes, rest) = section(rest);
    let (events, rest) = section(rest);
    let (headers, rest) = section(rest);
    let out = v2::Output {
        events: v2::Batch {
            data: bytes.to_vec(),
            events: events.to_vec(),
            headers: headers.to_vec(),
            streams: Vec::new(),
        },
        rejected: rest
            .chunks_exact(2)
            .map(|c| v2::sluice::plugin::types::Rejection {
                index: u16::from_le_bytes([c[0], c[1]]).into(),
                reason: "refused".into(),
            })
            .collect(),
    };
    let limits = Limits::default();
    // Odd inputs have headers and no key, so parent references reach every
    // part of a parent, present or absent.
    let mut input = BatchBuilder::new("upstream", Arc::from("source"), inputs.into());
    for i in 0..inputs {
        if i % 2 == 0 {
            input.push(Some(&[i]), Some(b"{}"), &[], 0, i.into());
        } else {
            input.push(
                None,
                None,
                &[("h", &[i][..]), ("sluice.x", b"y")],
                0,
                i.into(),
            );
        }
    }
    let input = input.finish();
    // An odd count stands for an answer with nothing to refer to (a
    // connector's batch, an on-timers call).
    let parents = (inputs % 2 == 0).then_some(&input.events);
    let Ok(mut out) = wire::unpack_output(out, &limits, parents) else {
        return;
    };
    assert_eq!(out.events.events.len() * wire::EVENT_RECORD, events.len());
    if output_check::check(&mut out, input.len(), &limits).is_err() {
        return;
    }
    let batch = match Batch::from_output(&input, "stage", out.events) {
        Ok(batch) => batch,
        Err(e) => {
            panic!("output_check accepted an unpacked 0.2.0 output the host then refused: {e}")
        }
    };
    for event in batch.iter() {
        for (name, _) in event.headers() {
            assert!(
                !output_check::is_reserved(name.as_bytes()),
                "host-owned header `{name}` survived the check"
            );
        }
    }
}

// ---- lookup_keys --------------------------------------------------------

/// `tables.lookup-many` reads a guest's length-prefixed key buffer: any bytes
/// must give an error or one answer per key, never a read past the buffer.
/// Against an empty table every answer is "no row" (`u32::MAX`). Against a
/// table with rows of every kind, an ask with named fields must be answered
/// in the documented layout with what the plugin would have projected
/// itself from the whole rows.
pub fn lookup_keys(data: &[u8]) {
    let empty = sluice::state::Table::default();
    for table in [None, Some(&empty)] {
        if let Ok(answer) = lookup_many::answer(table, data) {
            assert!(answer.len().is_multiple_of(4), "a ragged answer");
            assert!(
                answer.iter().all(|&b| b == 0xff),
                "a row came back from an empty table"
            );
            assert!(answer.len() <= data.len(), "more answers than keys");
        }
    }
    let table = lookup_table();
    let Ok(answer) = lookup_many::answer(Some(table), data) else {
        return;
    };
    let Some((names, keys)) = named_fields_ask(data) else {
        return;
    };
    let whole_ask: Vec<u8> = keys
        .iter()
        .flat_map(|k| {
            (k.len() as u32)
                .to_le_bytes()
                .into_iter()
                .chain(k.iter().copied())
        })
        .collect();
    let whole = lookup_many::answer(Some(table), &whole_ask).expect("whole rows for the same keys");
    let mut rows = sluice_sdk::abi::Rows::default();
    assert!(
        rows.extend_from_answer(&whole, keys.len()),
        "whole rows misread"
    );
    let mut theirs = sluice_sdk::abi::RowFields::new(names.len());
    theirs.extend_from_rows(&rows, &names);
    let mut ours = sluice_sdk::abi::RowFields::new(names.len());
    assert!(
        ours.extend_from_answer(answer, keys.len()),
        "a projected answer that is not one entry per key"
    );
    use sluice_sdk::abi::RowAnswer;
    for i in 0..keys.len() {
        match (ours.get(i), theirs.get(i)) {
            (None, None) => {}
            (Some(RowAnswer::Other(a)), Some(RowAnswer::Other(b))) => assert_eq!(a, b, "key {i}"),
            (Some(RowAnswer::Object(a)), Some(RowAnswer::Object(b))) => {
                for (j, name) in names.iter().enumerate() {
                    assert_eq!(
                        a.get(j).map(|v| v.bytes()),
                        b.get(j).map(|v| v.bytes()),
                        "key {i}, field `{name}`"
                    );
                }
            }
            (a, b) => panic!("key {i}: the host answered {a:?}, the plugin would see {b:?}"),
        }
    }
}

/// Rows of every kind under short keys, so that mutated asks hit them: an
/// object, escaped and duplicate keys with nested values, a non-object, text
/// that is not JSON, Unicode and empty names, an empty object.
fn lookup_table() -> &'static sluice::state::Table {
    static TABLE: OnceLock<sluice::state::Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let table = sluice::state::Table::default();
        for (key, row) in [
            ("", r#"{"a":1,"b":"x"}"#),
            ("a", r#"{"a\u0062":2,"b":[1,{"a":3}],"a":4}"#),
            ("1", "[1,2]"),
            ("k", "not json"),
            ("\0", r#"{"":null,"\u00e9":"\u00fc","é":"ü"}"#),
            ("ab", "{}"),
        ] {
            table.insert(key.as_bytes().to_vec(), row.as_bytes().to_vec());
        }
        table
    })
}

/// The names and keys of an ask with the named-fields option (layout in
/// `wit/sluice.wit`), once the host accepted it.
fn named_fields_ask(data: &[u8]) -> Option<(Vec<&str>, Vec<&[u8]>)> {
    let word = |at: usize| {
        data.get(at..at + 4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
    };
    if word(0)? != u32::MAX || word(4)? != sluice_sdk::abi::WITH_FIELDS {
        return None;
    }
    let prefixed = |at: usize| -> Option<(&[u8], usize)> {
        let len = word(at)? as usize;
        Some((data.get(at + 4..at + 4 + len)?, at + 4 + len))
    };
    let mut at = 12;
    let mut names = Vec::new();
    for _ in 0..word(8)? {
        let (name, next) = prefixed(at)?;
        names.push(std::str::from_utf8(name).ok()?);
        at = next;
    }
    let mut keys = Vec::new();
    while at < data.len() {
        let (key, next) = prefixed(at)?;
        keys.push(key);
        at = next;
    }
    Some((names, keys))
}

// ---- pgoutput -----------------------------------------------------------

/// The pgoutput decoder reads what the PostgreSQL server sends on the
/// replication connection; a broken or hostile server must cost an error.
pub fn pgoutput(data: &[u8]) {
    if let Ok(described) = sluice::sources::postgres_cdc::fuzz_decode_pgoutput(data) {
        assert!(!described.is_empty());
    }
}

// ---- avro_wire ----------------------------------------------------------

const SCHEMAS: &[&str] = &[
    r#"{"type":"record","name":"Order","fields":[
        {"name":"id","type":"long"},
        {"name":"name","type":"string"},
        {"name":"price","type":["null","double"],"default":null},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"attrs","type":{"type":"map","values":"int"}},
        {"name":"raw","type":"bytes"},
        {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B","C"]}},
        {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
        {"name":"ok","type":"boolean"},
        {"name":"ratio","type":"float"}
    ]}"#,
    r#"{"type":"record","name":"Logical","fields":[
        {"name":"day","type":{"type":"int","logicalType":"date"}},
        {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"at_us","type":{"type":"long","logicalType":"timestamp-micros"}},
        {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
        {"name":"uid","type":{"type":"string","logicalType":"uuid"}}
    ]}"#,
    r#"{"type":"record","name":"Node","fields":[
        {"name":"value","type":"int"},
        {"name":"next","type":["null","Node"],"default":null}
    ]}"#,
    r#"{"type":"array","items":{"type":"map","values":["null","string","long"]}}"#,
];

fn schemas() -> &'static [Schema] {
    static PARSED: OnceLock<Vec<Schema>> = OnceLock::new();
    PARSED.get_or_init(|| {
        SCHEMAS
            .iter()
            .map(|s| Schema::parse_str(s).expect("the fuzz schemas are valid"))
            .collect()
    })
}

/// Avro in the Confluent wire format, as read from Kafka topics other
/// programs write: any bytes against a schema must give an error or a value
/// that becomes valid JSON, and never an allocation the message cannot pay
/// for (libFuzzer runs with -malloc_limit_mb).
pub fn avro_wire(data: &[u8]) {
    let Some((&pick, message)) = data.split_first() else {
        return;
    };
    let schemas = schemas();
    let schema = &schemas[usize::from(pick) % schemas.len()];
    let Ok((_id, body)) = avro::split_wire(message) else {
        return;
    };
    if let Ok(value) = avro::decode(schema, body) {
        let json = avro::to_json(&value).to_string();
        if let Err(e) = check_json(json.as_bytes()) {
            panic!("a decoded Avro value became invalid JSON: {e}");
        }
    }
}

// ---- json_converter -----------------------------------------------------

/// Kafka Connect's JsonConverter envelope (`schema` + `payload`), as read from
/// topics other programs write: whatever it yields must be one JSON value.
pub fn json_converter(data: &[u8]) {
    for format in [Format::JsonSchema, Format::Json] {
        let mut decoder = Decoder::new(format, None);
        if let Ok(Some(json)) = decoder.decode(data) {
            if let Err(e) = check_json(&json) {
                panic!("the decoder produced invalid JSON: {e}");
            }
        }
    }
}

// ---- json_view ----------------------------------------------------------

/// The SDK's JSON scanner reads every event in every Rust plugin: it must
/// accept what serde_json accepts, refuse what it refuses (but numbers
/// beyond f64, which it keeps as text), and read each top-level field as
/// serde_json does.
pub fn json_view(data: &[u8]) {
    use sluice_sdk::json::{BatchViews, JsonView};
    let theirs = serde_json::from_slice::<serde_json::Value>(data);
    let ours = JsonView::parse(data);
    // The host's `check_json` lets `check_syntax` decide first and asks
    // serde_json's `IgnoredAny` only about what it refuses: that accepts
    // exactly what `IgnoredAny` does only if `check_syntax` never takes more.
    let ignored = serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
    let syntax = sluice_sdk::json::check_syntax(data).is_ok();
    assert!(
        !syntax || ignored,
        "check_syntax accepted what serde_json's IgnoredAny refuses"
    );
    assert!(
        ours.is_err() || syntax,
        "check_syntax refused what the scanner takes"
    );
    assert_eq!(
        check_json(data).is_ok(),
        ignored,
        "check_json and IgnoredAny disagree"
    );
    assert_eq!(
        sluice_sdk::json::check(data).is_ok(),
        ours.is_ok(),
        "json::check and JsonView::parse disagree"
    );
    let mut views = BatchViews::new();
    assert_eq!(
        views.scan(0, data).is_ok(),
        ours.is_ok(),
        "BatchViews::scan"
    );
    assert_eq!(
        views.get(0, data).map(|v| v.is_ok()),
        Some(ours.is_ok()),
        "BatchViews::get"
    );
    match (&ours, &theirs) {
        (Ok(_), Err(e)) => assert!(
            e.to_string().contains("number out of range"),
            "the view accepted what serde_json refuses: {e}"
        ),
        (Err(e), Ok(_)) => panic!("the view refused what serde_json accepts: {e}"),
        _ => {}
    }
    if let (Ok(view), Ok(serde_json::Value::Object(map))) = (&ours, &theirs) {
        for (key, value) in map {
            let raw = view
                .get(key)
                .unwrap_or_else(|| panic!("field {key:?} missing from the view"));
            assert_eq!(raw.to_value().ok().as_ref(), Some(value), "field {key:?}");
        }
        assert!(view.len() >= map.len(), "fewer entries than distinct keys");
    }
    // The host's field table of the value must give the plugin exactly the
    // view a scan gives, and is made for valid objects only.
    let mut table = Vec::new();
    let made = sluice_sdk::json::table::encode(data, &mut table);
    assert_eq!(
        made.is_ok(),
        ours.is_ok(),
        "table::encode and the scan disagree"
    );
    if let (Ok(true), Ok(view)) = (made, &ours) {
        assert!(
            view.is_object(),
            "a table for a value that is not an object"
        );
        let mut parser = sluice_sdk::json::JsonParser::new();
        let tabled = parser
            .parse_with_table(data, Some(&table))
            .expect("a valid table");
        assert_eq!(tabled.len(), view.len(), "fields from the table");
        for i in 0..view.len() {
            assert_eq!(tabled.field(i).0, view.field(i).0, "key {i} from the table");
            assert_eq!(
                tabled.field(i).1.bytes(),
                view.field(i).1.bytes(),
                "value {i} from the table"
            );
        }
    }
    // And no table, however garbled, can make a view panic or read outside
    // its value: the bytes themselves as a table are checked and refused or
    // kept within range.
    let mut parser = sluice_sdk::json::JsonParser::new();
    if let Ok(garbled) = parser.parse_with_table(data, Some(data)) {
        for (k, v) in garbled.fields() {
            assert!(k.escaped_text().len() <= data.len() && v.bytes().len() <= data.len());
        }
    }
}

// ---- expression ---------------------------------------------------------

/// The expression language (filter `where`, project `set`) is written by
/// pipeline authors; parsing and evaluating any text must never panic or
/// recurse without bound, and reading only the named fields must give the
/// same value as reading the whole event.
pub fn expression(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = Expr::parse(source) else {
        return;
    };
    let events = [
        json!({"amount": 12.5, "name": "Ada", "tags": ["a", "b"], "nested": {"x": 1}}),
        json!({"amount": "12", "name": null, "nested": [1, 2, 3]}),
        json!([1, {"x": -0.0}]),
        json!("text"),
    ];
    for event in &events {
        let _ = expr.eval(event);
        let _ = expr.matches(event);
        let bytes = event.to_string();
        if let Ok(partial) = expr.parse_input(bytes.as_bytes()) {
            assert_eq!(
                expr.eval(&partial),
                expr.eval(event),
                "partial parsing changed the result of `{source}` on {event}"
            );
        }
    }
}

// ---- pipeline_yaml ------------------------------------------------------

/// Pipeline files come from whoever may deploy; loading any text must end in
/// a pipeline or diagnostics, never a panic or a stack overflow.
pub fn pipeline_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name == "FUZZ_VAR").then(|| "value".to_string());
    if let Err(diagnostics) = load_str(
        Path::new("/nonexistent/fuzz/pipeline.yaml"),
        text,
        &LoadOptions::default(),
        &env,
    ) {
        assert!(
            !diagnostics.to_string().is_empty(),
            "a refused pipeline came with no diagnostic"
        );
    }
}

// ---- registry_http ------------------------------------------------------

fn registry() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir for the registry");
        let registry = Registry::bind("127.0.0.1:0", dir.path()).expect("the registry binds");
        // The registry keeps its state in the directory for the whole run.
        std::mem::forget(dir);
        registry.spawn(2)
    })
}

fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("the registry accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a read timeout");
    // The registry may answer and close before reading everything.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

fn status(answer: &[u8]) -> Option<u16> {
    let line = answer.strip_prefix(b"HTTP/1.1 ")?;
    std::str::from_utf8(line.get(..3)?).ok()?.parse().ok()
}

/// The embedded Schema Registry answers whoever can reach its port. Any bytes
/// sent as a request must get a well-formed answer that is not a server error,
/// and the registry must still answer the next client.
pub fn registry_http(data: &[u8]) {
    let addr = registry();
    let answer = exchange(addr, data);
    if !answer.is_empty() {
        match status(&answer) {
            Some(code) => assert!(
                (200..500).contains(&code),
                "status {code} for {:?}",
                String::from_utf8_lossy(data)
            ),
            None => panic!(
                "malformed answer {:?} to {:?}",
                String::from_utf8_lossy(&answer),
                String::from_utf8_lossy(data)
            ),
        }
    }
    let health = exchange(addr, b"GET /subjects HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        status(&health),
        Some(200),
        "the registry stopped answering after {:?}",
        String::from_utf8_lossy(data)
    );
}
