//! Native micro-benchmark (no Wasm): `unwrap` over generated Debezium change events
//! (the order events as `after`, with a `source` block).
//!
//! `cargo run --release -p sluice-plugin-unwrap --example view_bench [events]`
//!
//! Prints wall-clock µs per event (single thread, so wall ≈ CPU). It is a
//! measurement, not a test: nothing is asserted about speed.

use sluice_plugin_unwrap::Unwrap;
use sluice_sdk::abi::RawBatch;
use sluice_sdk::testing::time_transform;
use sluice_sdk::{Params, Transform};

const BATCH: usize = 1024;

/// Deterministic orders shaped like issue 13's workload (~147 bytes each).
fn orders(n: usize) -> Vec<RawBatch> {
    let mut batches = Vec::new();
    let mut batch = RawBatch::default();
    for (i, value) in sluice_sdk::testing::sample_orders(n).enumerate() {
        let change = format!(
            r#"{{"before":null,"after":{value},"source":{{"version":"2.5.0.Final","connector":"postgresql","name":"shop","ts_ms":1700000000000,"db":"shop","schema":"public","table":"orders","txId":{i},"lsn":{}}},"op":"c","ts_ms":1700000000123,"transaction":null}}"#,
            24_023_128 + i
        );
        batch.push_event(None, Some(change.as_bytes()), &[], 0, 0);
        if batch.len() == BATCH {
            batches.push(std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let batches = orders(n);
    let rounds = 5;
    let jobs: [(&str, &[(&str, &str)]); 2] = [
        ("unwrap (after row)", &[]),
        (
            "unwrap add_fields op,table,lsn,source.ts_ms",
            &[("add_fields", "op, table, lsn, source.ts_ms")],
        ),
    ];
    println!("{n} change events, {rounds} rounds, native, µs/event (lower is better)");
    for (name, p) in jobs {
        let params = Params::new(p.iter().copied());
        let mut t = Unwrap::new(&params).unwrap_or_else(|e| panic!("{e}"));
        let _ = time_transform(&mut t, &batches, 1);
        let (us, bytes) = time_transform(&mut t, &batches, rounds);
        println!("{name:<44} {us:>8.3}   (output bytes {bytes})");
    }
}
