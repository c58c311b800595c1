//! `sluice-bench` as CI and users run it. Figures are printed, never
//! asserted: only counts and records are checked here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sluice-bench"));
    c.env("SLUICE_CACHE_DIR", target_dir().join("test-cache"));
    c
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// A built-in plugin; fails loudly (never skips) when it was not built.
fn plugin(name: &str) -> PathBuf {
    let p = target_dir().join("plugins").join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-plugins.sh first",
        p.display()
    );
    p
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(rel)
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("sluice-bench runs");
    assert!(
        out.status.success(),
        "sluice-bench failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn component_measures_one_plugin_with_its_parameters() {
    let out = run_ok(
        bench()
            .arg("--component")
            .arg(plugin("filter"))
            .arg("--input")
            .arg(fixture("seed-logistics/orders.jsonl"))
            .args(["--param", "where=currency != 'aud'", "--events", "500"]),
    );
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains("sluice-plugin-filter@0.1.0"), "{line}");
    assert!(
        line.contains("(500 events in, 300 out, 0 dead-lettered)"),
        "3 of every 5 orders pass: {line}"
    );
    let bad = bench()
        .arg("--component")
        .arg(plugin("filter"))
        .args(["--param", "where"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--param `where`: expected NAME=VALUE"));
}

const ORDERS: &str = r#"{"order_id":"a","customer_id":1,"price":12.35,"currency":"usd","ts":"2026-01-01T00:00:00.000000+00:00"}
{"order_id":"b","customer_id":2,"price":0.10,"currency":"aud","ts":"2026-01-01T00:00:01.000000+00:00"}
{"order_id":"c","customer_id":3,"price":99.99,"currency":"jpy","ts":"2026-01-01T00:00:02.000000+00:00"}
{"order_id":"d","customer_id":2,"price":1.005,"currency":"eur","ts":"2026-01-01T00:00:03.000000+00:00"}
"#;

const CUSTOMERS: &str = r#"{"customer_id":1,"name":"Ana Silva","age":31}
{"customer_id":2,"name":"Hiro Tanaka","age":47}
"#;

fn reference(job: &str) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().expect("tmp");
    let (input, table, output) = (
        dir.path().join("in.jsonl"),
        dir.path().join("customers.jsonl"),
        dir.path().join("out.jsonl"),
    );
    std::fs::write(&input, ORDERS).expect("write");
    std::fs::write(&table, CUSTOMERS).expect("write");
    run_ok(
        bench()
            .args(["reference", "--shape", "orders", "--job", job])
            .arg("--input")
            .arg(&input)
            .arg("--table")
            .arg(&table)
            .arg("--output")
            .arg(&output),
    );
    std::fs::read_to_string(&output)
        .expect("output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

#[test]
fn reference_transform_drops_aud_and_computes_price_cents() {
    assert_eq!(
        reference("transform"),
        vec![
            serde_json::json!({"order_id": "a", "customer_id": 1, "currency": "usd", "price_cents": 1235}),
            serde_json::json!({"order_id": "c", "customer_id": 3, "currency": "jpy", "price_cents": 9999}),
            // 1.005 is 1.00499999... in binary: rounds down, as `round(price * 100)` does.
            serde_json::json!({"order_id": "d", "customer_id": 2, "currency": "eur", "price_cents": 100}),
        ]
    );
}

#[test]
fn reference_join_is_inner_and_adds_the_customer() {
    assert_eq!(
        reference("join"),
        vec![
            serde_json::json!({"order_id": "a", "customer_id": 1, "currency": "usd", "price_cents": 1235, "customer_name": "Ana Silva", "customer_age": 31}),
            serde_json::json!({"order_id": "d", "customer_id": 2, "currency": "eur", "price_cents": 100, "customer_name": "Hiro Tanaka", "customer_age": 47}),
        ]
    );
}

#[test]
fn reference_reports_the_line_of_a_malformed_event() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"order_id\":\"a\"}\n").expect("write");
    let out = bench()
        .args(["reference", "--shape", "orders", "--job", "transform"])
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("out.jsonl"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in.jsonl line 1"), "{err}");
}
