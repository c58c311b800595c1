//! Field tables end to end: the `file` source checks and indexes each value
//! in one scan when a stage downstream reads tables, the built-ins read
//! fields from those tables (a filter's forwarded values keep theirs for the
//! next stage; values a stage changed get theirs when a later stage reads
//! them), and what they write is what scanning would give: the last of
//! duplicate keys, escaped keys, nested and Unicode values, non-objects.
//! What the source lets through does not depend on the stages downstream.
//! (The files set `fuse_stages: false`: fused, the filter and the projection
//! would run as one stage, and no table would pass between them.)

use std::io::Write;

use serde_json::{json, Value};

use crate::support::*;

/// Writes `body` as the pipeline file in `dir` and runs it to the end.
fn run(dir: &std::path::Path, body: &str) -> std::process::Output {
    let p = write_pipeline(dir, body);
    run_ok(
        sluice()
            .current_dir(dir)
            .args(["run", "--no-progress", "-q"])
            .arg(&p),
    )
}

fn input(dir: &std::path::Path) {
    let mut w = std::fs::File::create(dir.join("in.jsonl")).expect("create");
    let rows: [&[u8]; 7] = [
        br#"{"id":1,"cur":"usd","amount":2.5,"cur":"eur"}"#,
        br#"{"id":2,"c\u0075r":"usd","amount":10,"note":"caf\u00e9 \ud83d\ude00"}"#,
        "{\"id\":3,\"cur\":\"gbp\",\"amount\":1,\"nested\":{\"cur\":\"x\"},\"name\":\"Zoë 😀\"}"
            .as_bytes(),
        br#"[1,2,3]"#,
        b"{\"id\":5,\"cur\":\"\xff\",\"amount\":1}",
        br#"{"id":6,"cur":"aud","amount":7}"#,
        br#"{"id":7,"amount":9007199254740993,"cur":"cad"}"#,
    ];
    for r in rows {
        w.write_all(r).expect("write");
        w.write_all(b"\n").expect("write");
    }
}

#[test]
fn stages_reading_field_tables_write_what_scanning_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    input(dir.path());
    let body = format!(
        "name: tables\nfuse_stages: false\nsources:\n  in: {{type: file, path: in.jsonl}}\n\
         stages:\n  keep:\n    plugin: {filter}\n    inputs: [in]\n    params:\n      where: \"cur != 'aud'\"\n\
         \x20 shape:\n    plugin: {project}\n    inputs: [keep]\n    params:\n      select: [id, cur, amount]\n      set:\n        cents: \"round(amount * 100)\"\n\
         \x20 flag:\n    plugin: {project}\n    inputs: [in]\n    params:\n      select: [id]\n      set:\n        big: \"amount > 5\"\n\
         \x20 bigs:\n    plugin: {filter}\n    inputs: [flag]\n    params:\n      where: \"big\"\n\
         sinks:\n  out: {{type: file, path: out.jsonl, inputs: [shape]}}\n\
         \x20 raw: {{type: file, path: raw.jsonl, inputs: [in]}}\n\
         \x20 big: {{type: file, path: big.jsonl, inputs: [bigs]}}\n",
        filter = q(&plugin("filter")),
        project = q(&plugin("project")),
    );
    let out = run(dir.path(), &body);
    let got = json_lines(&dir.path().join("out.jsonl"));
    assert_eq!(
        got,
        vec![
            // The last `cur` counts, in the filter and in the output.
            json!({"id": 1, "cur": "eur", "amount": 2.5, "cents": 250}),
            // An escaped key is the same name.
            json!({"id": 2, "cur": "usd", "amount": 10, "cents": 1000}),
            // The nested `cur` is not the top-level one.
            json!({"id": 3, "cur": "gbp", "amount": 1, "cents": 100}),
            json!({"id": 7, "cur": "cad", "amount": 9007199254740993u64, "cents": 900719925474099300u64}),
        ],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The id keeps its exact text through both stages.
    let text = std::fs::read_to_string(dir.path().join("out.jsonl")).expect("out");
    assert!(text.contains("9007199254740993"), "{text}");
    // A branch that reads the source directly gets every line, the broken
    // one too: the source keeps what its usual check accepts.
    let raw = std::fs::read(dir.path().join("raw.jsonl")).expect("raw");
    assert_eq!(
        raw.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count(),
        7
    );
    // A table-reading stage after one that changed the values: the changed
    // values' tables are built for it, and it reads the new field.
    let big: Vec<Value> = json_lines(&dir.path().join("big.jsonl"));
    assert_eq!(
        big,
        vec![
            json!({"id": 2, "big": true}),
            json!({"id": 6, "big": true}),
            json!({"id": 7, "big": true}),
        ]
    );
    // (A dead letter keeps the broken line's bytes as they were.)
    let dead =
        std::fs::read(dir.path().join(".sluice/tables/dead-letters.jsonl")).expect("dead letters");
    let dead = String::from_utf8_lossy(&dead);
    // Broken UTF-8 in a string is refused by the stages that read the value,
    // with the reason and byte offset: the filter on one branch, the project
    // on the other. (The array has no `cur`, so the filter drops it, as it
    // would without tables; `flag` refuses it as not an object.)
    let letters: Vec<&str> = dead.lines().collect();
    assert_eq!(letters.len(), 3, "{dead}");
    let utf8: Vec<&&str> = letters
        .iter()
        .filter(|l| l.contains("invalid UTF-8 at byte 15"))
        .collect();
    assert_eq!(utf8.len(), 2, "{dead}");
    for stage in ["keep", "flag"] {
        let tag = format!(r#""sluice.error.stage":"{stage}""#);
        assert!(utf8.iter().any(|l| l.contains(&tag)), "{stage}: {dead}");
    }
    assert!(
        dead.contains("value is an array, not a JSON object"),
        "{dead}"
    );
}

#[test]
fn without_a_stage_that_reads_tables_the_source_does_not_build_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    input(dir.path());
    let body = format!(
        "name: tables\nsources:\n  in: {{type: file, path: in.jsonl}}\n\
         stages:\n  same:\n    plugin: {}\n    inputs: [in]\n\
         sinks:\n  out: {{type: file, path: out.jsonl, inputs: [same]}}\n",
        q(&plugin("passthrough")),
    );
    run(dir.path(), &body);
    // serde's check, as before tables: every line passes, the broken UTF-8
    // one too (the file sink writes it lossily as JSON text).
    let text = std::fs::read(dir.path().join("out.jsonl")).expect("out");
    assert_eq!(
        text.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        7
    );
}

#[test]
fn lookup_join_reads_rows_through_their_tables_as_a_scan_would() {
    // Rows now come with the field tables the host built when it stored
    // them; the join must read from them exactly what a scan reads.
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = [
        // The last of duplicate keys counts.
        r#"{"k":"1","name":"ann","age":3,"name":"bea"}"#,
        // An escaped key is the same name.
        r#"{"k":"2","n\u0061me":"esc","age":4}"#,
        // Nested values are copied as they are.
        r#"{"k":"3","name":{"first":"x","age":1},"age":[1,2]}"#,
        // A missing field is null; Unicode is kept.
        "{\"k\":\"4\",\"name\":\"caf\\u00e9 😀 Zoë\"}",
    ];
    std::fs::write(dir.path().join("rows.jsonl"), rows.join("\n") + "\n").expect("rows");
    let events: String = (1..=5)
        .map(|i| format!("{{\"id\":{i},\"k\":\"{i}\"}}\n"))
        .collect();
    std::fs::write(dir.path().join("in.jsonl"), events).expect("events");
    let body = format!(
        "name: rows\ntables:\n  t: {{input: rows, key_field: k}}\n\
         sources:\n  in: {{type: file, path: in.jsonl}}\n  rows: {{type: file, path: rows.jsonl}}\n\
         stages:\n  enrich:\n    plugin: {}\n    inputs: [in]\n    tables: [t]\n    params:\n      table: t\n      on: k\n      fields: \"id, table.name as name, table.age as age\"\n\
         sinks:\n  out: {{type: file, path: out.jsonl, inputs: [enrich]}}\n",
        q(&plugin("lookup-join")),
    );
    let out = run(dir.path(), &body);
    let mut got = json_lines(&dir.path().join("out.jsonl"));
    got.sort_by_key(|v| v["id"].as_i64());
    assert_eq!(
        got,
        vec![
            json!({"id": 1, "name": "bea", "age": 3}),
            json!({"id": 2, "name": "esc", "age": 4}),
            json!({"id": 3, "name": {"first": "x", "age": 1}, "age": [1, 2]}),
            json!({"id": 4, "name": "café 😀 Zoë", "age": null}),
            json!({"id": 5, "name": null, "age": null}),
        ],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Raw values are copied byte for byte, escapes included.
    let text = std::fs::read_to_string(dir.path().join("out.jsonl")).expect("out");
    assert!(text.contains(r#""caf\u00e9 😀 Zoë""#), "{text}");
}

#[test]
fn lookup_join_with_fields_never_brings_whole_rows_into_the_plugin() {
    // Each table row is bigger than the plugin's whole memory, so a plugin
    // that fetched whole rows and projected them itself would fail every
    // event (one at a time too). With `fields` the host sends only the named
    // fields: this fails if the Wasm glue stops taking the host's projection.
    let dir = tempfile::tempdir().expect("tempdir");
    let blob = "x".repeat(6 << 20);
    let rows: String = (1..=3)
        .map(|k| format!("{{\"k\":\"{k}\",\"blob\":\"{blob}\",\"name\":\"n{k}\"}}\n"))
        .collect();
    std::fs::write(dir.path().join("rows.jsonl"), rows).expect("rows");
    let events: String = (1..=4)
        .map(|i| format!("{{\"id\":{i},\"k\":\"{}\"}}\n", (i - 1) % 3 + 1))
        .collect();
    std::fs::write(dir.path().join("in.jsonl"), events).expect("events");
    let body = format!(
        "name: wide-rows\ntables:\n  t: {{input: rows, key_field: k}}\n\
         sources:\n  in: {{type: file, path: in.jsonl}}\n  rows: {{type: file, path: rows.jsonl}}\n\
         stages:\n  enrich:\n    plugin: {}\n    inputs: [in]\n    tables: [t]\n    limits: {{memory_mb: 4}}\n    params:\n      table: t\n      on: k\n      fields: \"id, table.name as name\"\n\
         sinks:\n  out: {{type: file, path: out.jsonl, inputs: [enrich]}}\n\
         dead_letter: {{type: file, path: dead.jsonl}}\n",
        q(&plugin("lookup-join")),
    );
    let out = run(dir.path(), &body);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut got = json_lines(&dir.path().join("out.jsonl"));
    got.sort_by_key(|v| v["id"].as_i64());
    assert_eq!(
        got,
        vec![
            json!({"id": 1, "name": "n1"}),
            json!({"id": 2, "name": "n2"}),
            json!({"id": 3, "name": "n3"}),
            json!({"id": 4, "name": "n1"}),
        ],
        "stderr: {stderr}"
    );
    let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap_or_default();
    assert!(dead.is_empty(), "dead letters: {dead}\nstderr: {stderr}");
}
