//! Built-in stages fused at run time (`host/src/pipeline/fuse.rs`): the
//! orders job as a user writes it, `filter` then `project` then
//! `lookup-join`, runs as one stage and writes what the three stages write
//! (`fuse_stages: false`), byte for byte, on ordinary and hostile events;
//! the same events are dead-lettered for the same reasons, named for the
//! stage that now refused them.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{json, Value};

use crate::support::*;

fn inputs(dir: &std::path::Path) {
    let mut w = std::fs::File::create(dir.join("orders.jsonl")).expect("create");
    let rows: [&[u8]; 14] = [
        br#"{"order_id":"a","customer_id":1,"price":12.5,"currency":"usd","ts":"t"}"#,
        // Dropped by the filter.
        br#"{"order_id":"b","customer_id":1,"price":3,"currency":"aud"}"#,
        // No such customer: the inner join drops it.
        br#"{"order_id":"c","customer_id":99,"price":1,"currency":"eur"}"#,
        // The last of duplicate keys counts; an escaped key is the same name.
        br#"{"order_id":"d","customer_id":2,"price":1.25,"currency":"aud","c\u0075rrency":"gbp"}"#,
        // An id past 2^53 keeps its exact text, as key and as output.
        br#"{"order_id":"e","customer_id":9007199254740993,"price":0.1,"currency":"cad"}"#,
        // Not objects: no `currency`, so the filter drops them.
        br#"[1,2,3]"#,
        br#"42"#,
        // Broken UTF-8: the filter refuses it.
        b"{\"order_id\":\"f\",\"customer_id\":1,\"currency\":\"\xff\"}",
        // Not JSON.
        br#"{"order_id":"g","#,
        // `price * 100` of a string: null.
        br#"{"order_id":"h","customer_id":1,"price":"ten","currency":"usd"}"#,
        // A number past f64: the projection refuses it.
        br#"{"order_id":"i","customer_id":2,"price":1e400,"currency":"usd"}"#,
        // No price: `price_cents` is null.
        br#"{"order_id":"j","customer_id":3,"currency":"jpy"}"#,
        // Spaced JSON and a nested value that is not read.
        br#" { "order_id" : "k" , "customer_id" : 3 , "price" : 2 , "currency" : "usd" , "x" : {"currency":"aud"} } "#,
        // `null != 'aud'` is null, not true: the filter drops it.
        br#"{"order_id":"l","customer_id":1,"price":5,"currency":null}"#,
    ];
    for r in rows {
        w.write_all(r).expect("write");
        w.write_all(b"\n").expect("write");
    }
    std::fs::write(
        dir.join("customers.jsonl"),
        "{\"customer_id\":1,\"name\":\"Ann\",\"age\":31}\n\
         {\"customer_id\":2,\"name\":\"Bo\",\"age\":40}\n\
         {\"customer_id\":3,\"name\":\"Zoë 😀\"}\n\
         {\"customer_id\":9007199254740993,\"name\":\"Big\",\"age\":1}\n",
    )
    .expect("customers");
}

/// Runs the orders job (fused unless `apart`) in `dir`: its output's bytes,
/// its dead letters as (stage, value, reason), and its log.
fn run_orders(
    dir: &std::path::Path,
    apart: bool,
) -> (String, Vec<(String, String, String)>, String) {
    inputs(dir);
    let body = format!(
        "name: orders\n{}\
         tables:\n  customers: {{input: people, key_field: customer_id}}\n\
         sources:\n  events: {{type: file, path: orders.jsonl}}\n  people: {{type: file, path: customers.jsonl}}\n\
         stages:\n  keep:\n    plugin: filter\n    inputs: [events]\n    params:\n      where: \"currency != 'aud'\"\n\
         \x20 shape:\n    plugin: project\n    inputs: [keep]\n    params:\n      select: [order_id, customer_id, currency]\n      set:\n        price_cents: \"round(price * 100)\"\n        half: \"price / 2\"\n\
         \x20 enrich:\n    plugin: lookup-join\n    inputs: [shape]\n    tables: [customers]\n    params:\n      table: customers\n      on: customer_id\n      join: inner\n      fields: \"order_id, half, customer_id, currency, price_cents, table.name as customer_name, table.age as customer_age\"\n\
         sinks:\n  out: {{type: file, path: out.jsonl, inputs: [enrich]}}\n",
        if apart { "fuse_stages: false\n" } else { "" },
    );
    let p = write_pipeline(dir, &body);
    let out = run_ok(
        sluice()
            .current_dir(dir)
            .args(["run", "--no-progress"])
            .arg(&p),
    );
    let mut log = String::from_utf8_lossy(&out.stderr).into_owned();
    // What `validate` says the run will do.
    let validated = run_ok(sluice().current_dir(dir).arg("validate").arg(&p));
    log.push_str(&String::from_utf8_lossy(&validated.stdout));
    let text = std::fs::read_to_string(dir.join("out.jsonl")).expect("output");
    // A dead letter keeps the broken line's bytes (not UTF-8, or a number
    // past f64 that a JSON parser refuses): read as text.
    let dead = std::fs::read(dir.join(".sluice/orders/dead-letters.jsonl")).expect("dead letters");
    let mut letters: Vec<(String, String, String)> = String::from_utf8_lossy(&dead)
        .lines()
        .map(|l| {
            let value = l
                .split_once(r#""value":"#)
                .and_then(|(_, rest)| rest.split_once(r#","headers":"#))
                .map_or("", |(v, _)| v);
            (
                header(l, "sluice.error.stage"),
                value.to_string(),
                // The source names the file by its path: the runs' differ.
                header(l, "sluice.error.message").replace(&format!("{}/", dir.display()), ""),
            )
        })
        .collect();
    letters.sort();
    (text, letters, log)
}

/// Header `name`'s text in a dead letter's line, or empty.
fn header(line: &str, name: &str) -> String {
    let Some((_, rest)) = line.split_once(&format!("\"{name}\":\"")) else {
        return String::new();
    };
    let mut end = 0;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => {
                end = i;
                break;
            }
            _ => escaped = false,
        }
    }
    serde_json::from_str(&format!("\"{}\"", &rest[..end])).unwrap_or_default()
}

#[test]
fn a_filter_project_lookup_join_chain_fused_writes_what_the_three_stages_write() {
    let fused_dir = tempfile::tempdir().expect("tempdir");
    let apart_dir = tempfile::tempdir().expect("tempdir");
    let (fused, fused_letters, fused_log) = run_orders(fused_dir.path(), false);
    let (apart, apart_letters, apart_log) = run_orders(apart_dir.path(), true);

    assert!(
        fused_log.contains("stages `keep` and `shape` run as part of `enrich`"),
        "{fused_log}"
    );
    assert!(
        fused_log.contains(
            "stages `keep` and `shape` run as part of `enrich` (built-in stages fused; `fuse_stages: false` runs them apart)"
        ),
        "validate: {fused_log}"
    );
    assert!(
        fused_log.contains("(ran `keep` and `shape` too, fused)"),
        "summary: {fused_log}"
    );
    assert!(!apart_log.contains("run as part of"), "{apart_log}");
    assert!(!apart_log.contains("fused)"), "{apart_log}");

    assert_eq!(
        fused, apart,
        "fused log: {fused_log}\napart log: {apart_log}"
    );
    // And what they write is the job's answer.
    let rows: Vec<Value> = fused
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let by_order: BTreeMap<String, &Value> = rows
        .iter()
        .map(|r| (r["order_id"].as_str().unwrap_or("").to_string(), r))
        .collect();
    assert_eq!(
        by_order.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["a", "d", "e", "h", "j", "k"],
        "{fused}"
    );
    assert_eq!(
        *by_order["a"],
        json!({"order_id": "a", "half": 6.25, "customer_id": 1, "currency": "usd", "price_cents": 1250, "customer_name": "Ann", "customer_age": 31})
    );
    assert_eq!(by_order["d"]["currency"], "gbp");
    assert_eq!(by_order["h"]["price_cents"], Value::Null);
    assert_eq!(by_order["j"]["price_cents"], Value::Null);
    assert_eq!(by_order["j"]["customer_name"], "Zoë 😀");
    assert!(
        fused.contains(r#""customer_id":9007199254740993"#),
        "{fused}"
    );

    // The same events refused for the same reasons; the fused stage names
    // itself.
    let strip = |letters: &[(String, String, String)]| {
        letters
            .iter()
            .map(|(_, value, reason)| (value.clone(), reason.clone()))
            .collect::<Vec<_>>()
    };
    let mut want = strip(&apart_letters);
    let mut got = strip(&fused_letters);
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let reasons: Vec<&str> = want.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{apart_letters:?}");
    for reason in [
        "malformed JSON at orders.jsonl line 9",
        "invalid UTF-8 at byte 44",
        "number out of range",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(reason)),
            "{reason}: {reasons:?}"
        );
    }
    let stages = |letters: &[(String, String, String)]| {
        let mut s: Vec<String> = letters.iter().map(|(s, _, _)| s.clone()).collect();
        s.sort();
        s.dedup();
        s
    };
    assert!(
        stages(&apart_letters).contains(&"keep".to_string()),
        "{apart_letters:?}"
    );
    assert!(
        stages(&apart_letters).contains(&"shape".to_string()),
        "{apart_letters:?}"
    );
    assert!(
        stages(&fused_letters)
            .iter()
            .all(|s| s == "enrich" || s == "events"),
        "{fused_letters:?}"
    );
}

#[test]
fn a_dead_letter_of_a_fused_stage_replays_through_all_of_its_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("orders.jsonl"),
        "{\"order_id\":\"i\",\"price\":1e400,\"currency\":\"usd\"}\n\
         {\"order_id\":\"j\",\"price\":1e400,\"currency\":\"eur\"}\n\
         {\"order_id\":\"a\",\"price\":2,\"currency\":\"usd\"}\n\
         {\"order_id\":\"b\",\"price\":3,\"currency\":\"aud\"}\n",
    )
    .expect("orders");
    // Broken: `price` past f64 cannot be read, so `i` and `j` are refused
    // by `shape`, which runs `keep` fused into it. Fixed: `price_cents`
    // does not read `price`, and `keep` drops euros too: a replay into
    // `shape` alone would deliver `j`.
    for (name, keep, set) in [
        ("broken", "currency != 'aud'", "round(price * 100)"),
        ("fixed", "currency != 'aud' and currency != 'eur'", "7"),
    ] {
        let body = format!(
            "name: replay\n\
             sources:\n  events: {{type: file, path: orders.jsonl}}\n\
             stages:\n  keep:\n    plugin: filter\n    inputs: [events]\n    params:\n      where: \"{keep}\"\n\
             \x20 shape:\n    plugin: project\n    inputs: [keep]\n    params:\n      select: [order_id, currency]\n      set:\n        price_cents: \"{set}\"\n\
             sinks:\n  out: {{type: file, path: out.jsonl, inputs: [shape]}}\n"
        );
        std::fs::write(dir.path().join(format!("{name}.yaml")), body).expect("pipeline");
    }
    run_ok(
        sluice()
            .current_dir(dir.path())
            .args(["run", "--no-progress", "-q", "broken.yaml"]),
    );
    let out = json_lines(&dir.path().join("out.jsonl"));
    assert_eq!(
        out,
        vec![json!({"order_id": "a", "currency": "usd", "price_cents": 200})]
    );
    let replayed = run_ok(sluice().current_dir(dir.path()).args([
        "-q",
        "dlq",
        "replay",
        "fixed.yaml",
        "--json",
    ]));
    let report: Value = serde_json::from_slice(&replayed.stdout).expect("json report");
    assert_eq!(report["planned"]["shape"], 2, "{report}");
    assert_eq!(report["outcomes"]["delivered"], 1, "{report}");
    assert_eq!(report["outcomes"]["filtered"], 1, "{report}");
    let out = json_lines(&dir.path().join("out.jsonl"));
    assert_eq!(
        out,
        vec![
            json!({"order_id": "a", "currency": "usd", "price_cents": 200}),
            json!({"order_id": "i", "currency": "usd", "price_cents": 7}),
        ]
    );
}
